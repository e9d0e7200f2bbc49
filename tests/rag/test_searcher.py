"""Tests of rag.searcher: hybrid search over the seeds, its fields and offsets, query checks."""

from __future__ import annotations

import numpy as np
import pytest

from rag.bm25 import BM25Index, LexicalTables, tokenize_by_sentence
from rag.domain import Hit
from rag.errors import QueryError
from rag.knowledge import KnowledgeBase
from rag.lexicon import tokenize
from rag.question import analyze_question, holds_answer_type
from rag.searcher import (
    FEATURES,
    _column_scores,
    _top,
    best_sentence_coverage,
    best_sentence_coverage_weighted,
    sentence_offsets,
)
from rag.sentences import sentence_spans

PHASE2_COUNTRIES = ("Cambodia", "Mongolia", "Thailand", "Vietnam")


def assert_valid_hit(hit: Hit, kb: KnowledgeBase) -> None:
    """The hit's fields agree with the parsed article and its offsets index the source file."""
    article = kb.searcher.index.articles[hit.doc_id]
    para = article.paragraph(hit.paragraph)
    assert (hit.title, hit.date) == (article.title, article.date)
    assert (hit.text, hit.start, hit.end) == (para.text, para.start, para.end)
    source = (kb.corpus_dir / hit.doc_id).read_text(encoding="utf-8")
    assert source[hit.start : hit.end] == hit.text
    assert isinstance(hit.score, float)


def test_search_returns_k_hits_best_first(seeds_kb: KnowledgeBase) -> None:
    hits = seeds_kb.search("Who funded the 2021 workshop?", k=4)
    assert len(hits) == 4
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert len({(h.doc_id, h.paragraph) for h in hits}) == 4
    for hit in hits:
        assert_valid_hit(hit, seeds_kb)
    assert set(hits[0].to_dict()) == {"doc_id", "title", "date", "paragraph", "text", "start", "end", "score"}


def test_search_default_k(seeds_kb: KnowledgeBase) -> None:
    assert len(seeds_kb.search("cooperatives")) == seeds_kb.settings.top_k


def test_search_k_larger_than_corpus(seeds_kb: KnowledgeBase) -> None:
    n_paragraphs = len(seeds_kb.searcher.index.paragraph_keys)
    hits = seeds_kb.search("social and solidarity economy", k=100)
    assert len(hits) == n_paragraphs == 48
    assert len({(h.doc_id, h.paragraph) for h in hits}) == n_paragraphs


def test_search_is_deterministic(seeds_kb: KnowledgeBase) -> None:
    first = seeds_kb.search("What did Simel Esim present?", k=5)
    assert seeds_kb.search("What did Simel Esim present?", k=5) == first
    assert seeds_kb.search("  What did Simel Esim present?\n", k=5) == first


def test_phase_2_countries_in_top_3(seeds_kb: KnowledgeBase) -> None:
    hits = seeds_kb.search("Which countries were in phase 2?", k=3)
    naming = [
        h for h in hits
        if h.doc_id.startswith(("004_", "002_")) and sum(c in h.text for c in PHASE2_COUNTRIES) >= 3
    ]
    assert naming, [(h.doc_id, h.paragraph, h.text[:80]) for h in hits]


@pytest.mark.parametrize(
    ("query", "doc_prefix", "must_contain"),
    [
        ("Kyrgyzstan mapping study research orientation", "004_", "Kyrgyzstan"),
        ("HomeNet Southeast Asia Phnom Penh workshop", "001_", "Phnom Penh"),
        ("Which ministry funded the SSE policy project in 2021?", "003_", "Korean Ministry of Employment"),
    ],
)
def test_easy_queries_find_their_paragraph(seeds_kb: KnowledgeBase, query: str, doc_prefix: str, must_contain: str) -> None:
    hits = seeds_kb.search(query, k=3)
    assert any(h.doc_id.startswith(doc_prefix) and must_contain in h.text for h in hits), [
        (h.doc_id, h.paragraph) for h in hits
    ]


def test_dense_search(seeds_kb: KnowledgeBase) -> None:
    hits = seeds_kb.searcher.dense_search("digital colonialism and offshore digital labour", 3)
    assert len(hits) == 3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(-1.0 <= h.score <= 1.0001 for h in hits)
    for hit in hits:
        assert_valid_hit(hit, seeds_kb)
    assert any(h.doc_id.startswith("000_") and "digital colonialism" in h.text for h in hits)


def test_bm25_search(seeds_kb: KnowledgeBase) -> None:
    hits = seeds_kb.searcher.bm25_search("Kyrgyzstan", 3)
    assert len(hits) == 3
    # The word is in exactly two paragraphs (articles 003 and 004).
    assert {h.doc_id[:4] for h in hits[:2]} == {"003_", "004_"}
    assert all("Kyrgyzstan" in h.text and h.score > 0 for h in hits[:2])
    assert hits[2].score == 0.0
    for hit in hits:
        assert_valid_hit(hit, seeds_kb)


def test_candidate_features_are_scaled(seeds_kb: KnowledgeBase) -> None:
    cands = seeds_kb.searcher.candidates("When was the regional workshop in 2024?")
    assert cands.features.shape == (len(cands.rows), len(FEATURES))
    assert float(cands.features.min()) >= 0.0
    assert float(cands.features.max()) <= 1.0 + 1e-6


# --- bad queries ------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "   ", "\n\t \u00a0"])
def test_empty_query_is_rejected(seeds_kb: KnowledgeBase, query: str) -> None:
    with pytest.raises(QueryError, match="empty"):
        seeds_kb.search(query)
    with pytest.raises(QueryError):
        seeds_kb.searcher.dense_search(query, 3)
    with pytest.raises(QueryError):
        seeds_kb.searcher.bm25_search(query, 3)


def test_over_long_query_is_rejected(seeds_kb: KnowledgeBase) -> None:
    limit = seeds_kb.settings.max_query_chars
    with pytest.raises(QueryError, match=f"too long .*{limit:,}"):
        seeds_kb.search("a" * (limit + 1))
    with pytest.raises(QueryError, match="too long"):
        seeds_kb.search("word " * 20_000)
    assert seeds_kb.search("phase " + "x" * (limit - 10), k=1)  # at the limit it is fine


def test_non_text_query_is_rejected(seeds_kb: KnowledgeBase) -> None:
    with pytest.raises(QueryError, match="text"):
        seeds_kb.search(None)  # type: ignore[arg-type]


def test_query_of_unknown_words_still_answers(seeds_kb: KnowledgeBase) -> None:
    hits = seeds_kb.search("zxqv wplk", k=2)
    assert len(hits) == 2


# --- answer types ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "kinds"),
    [
        ("How many participants attended?", ["number"]),
        ("What percentage of workers are informal?", ["number"]),
        ("When was the workshop held?", ["date"]),
        ("In which year did phase 2 start?", ["date"]),
        ("Which year did phase 2 start?", ["date"]),
        ("Who funded the 2021 workshop?", ["person"]),
        ("Which organisation implemented the project?", ["person"]),
        ("Where did the workshop take place?", ["place"]),
        ("Which countries were in phase 2?", ["place"]),
        ("Summarize the SSE resolution.", []),
    ],
)
def test_answer_types(question: str, kinds: list[str]) -> None:
    assert list(analyze_question(question).answer_types) == kinds


def test_holds_answer_type() -> None:
    assert holds_answer_type("It drew 37 participants.", ["number"]) == 1.0
    assert holds_answer_type("It drew many participants.", ["number"]) == 0.0
    assert holds_answer_type("Held on 5 May 2021 in Cambodia.", ["date", "person"]) == 0.5
    assert holds_answer_type("Opened by Ms. Simel Esim.", ["person"]) == 1.0
    assert holds_answer_type("anything", []) == 0.0


# --- best-sentence coverage -------------------------------------------------------------------


def test_term_presence_is_binary_and_ignores_unknown_terms() -> None:
    bm25 = BM25Index(["alpha beta", "gamma"])
    m = bm25.term_presence(["alpha alpha zeta", ""]).toarray()
    assert m.shape == (2, len(bm25.vocab))
    assert m[0, bm25.vocab["alpha"]] == 1.0
    assert m.sum() == 1.0


def test_sentence_offsets() -> None:
    sentences, offsets = sentence_offsets(["One here. Two there.", "Three.", ""])
    assert sentences == ["One here.", "Two there.", "Three."]
    assert offsets.tolist() == [0, 2, 3, 3]


def test_best_sentence_coverage_rewards_terms_found_together() -> None:
    paragraphs = ["Alpha beta. Gamma delta.", "Alpha gamma together.", "Nothing relevant."]
    bm25 = BM25Index(paragraphs)
    sentences, offsets = sentence_offsets(paragraphs)
    sentence_terms = bm25.term_presence(sentences)
    terms = bm25.query_terms("alpha gamma")
    weights = np.ones(len(terms), dtype=np.float32)
    rows = np.arange(len(paragraphs))
    cover = best_sentence_coverage(sentence_terms, offsets, rows, terms, weights)
    # Paragraph 0 holds both terms, but in different sentences: half; paragraph 1 holds both in one.
    assert cover.tolist() == pytest.approx([0.5, 1.0, 0.0])
    # Weights count: a heavier term found alone covers more.
    heavy = np.array([3.0 if t == bm25.vocab["alpha"] else 1.0 for t in terms.tolist()], dtype=np.float32)
    assert best_sentence_coverage(sentence_terms, offsets, rows[:1], terms, heavy)[0] == pytest.approx(0.75)
    # Any subset of rows, in any order; no terms: zeros.
    assert best_sentence_coverage(sentence_terms, offsets, np.array([1, 0]), terms, weights).tolist() == [1.0, 0.5]
    assert not best_sentence_coverage(sentence_terms, offsets, rows, terms[:0], weights[:0]).any()


def test_candidates_carry_sentence_coverage(seeds_kb: KnowledgeBase) -> None:
    """A question made of one sentence's words: that paragraph is fully covered, in [0, 1]."""
    searcher = seeds_kb.searcher
    row = next(
        r
        for r in range(len(searcher.index.paragraph_keys))
        if searcher.index.paragraph_keys[r][1] > 2 and len(sentence_spans(searcher.index.paragraph(r)[1].text)) > 1
    )
    text = searcher.index.paragraph(row)[1].text
    a, b = sentence_spans(text)[-1]
    cands = searcher.candidates(text[a:b])
    column = cands.features[:, FEATURES.index("sentence_coverage")]
    assert column[cands.rows.tolist().index(row)] == pytest.approx(1.0)
    assert float(column.min()) >= 0.0
    assert float(np.median(column)) < 1.0


def test_weighted_coverage_equals_one_call_per_article() -> None:
    """The vectorized coverage (one weight vector per row) is bit-identical to the per-article loop."""
    rng = np.random.default_rng(3)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    paragraphs = [
        " ".join(" ".join(rng.choice(words, size=4)) + "." for _ in range(int(rng.integers(1, 4)))) for _ in range(40)
    ]
    bm25 = BM25Index(paragraphs)
    sentences, offsets = sentence_offsets(paragraphs)
    sentence_terms = bm25.term_presence(sentences)
    terms = bm25.query_terms("alpha gamma zeta theta")
    rows = rng.permutation(40)[:25]
    weights = (bm25.idf[terms][None, :] * rng.choice([0.2, 1.0], size=(len(rows), len(terms)))).astype(np.float32)
    one_by_one = [best_sentence_coverage(sentence_terms, offsets, rows[i : i + 1], terms, weights[i])[0] for i in range(25)]
    together = best_sentence_coverage_weighted(sentence_terms, offsets, rows, terms, weights)
    assert together.tolist() == [float(x) for x in one_by_one]


def test_column_scores_equal_bm25_scores() -> None:
    bm25 = BM25Index(["cooperatives in Korea", "home-based workers in Cambodia", "workers and cooperatives"])
    terms = bm25.query_terms("cooperatives workers")
    fast = _column_scores(bm25.saturated.tocsc(), bm25.idf, terms)
    assert fast.tolist() == bm25.scores("cooperatives workers").tolist()
    assert not _column_scores(bm25.saturated.tocsc(), bm25.idf, terms[:0]).any()


def test_top_is_a_partial_sort() -> None:
    values = np.array([0.1, 0.9, 0.5, 0.9, 0.3], dtype=np.float32)
    assert sorted(_top(values, 2).tolist()) == [1, 3]
    assert _top(values, 3).tolist()[2] == 2
    assert _top(values, 10).tolist() == np.argsort(-values, kind="stable").tolist()
    assert _top(values, 0).tolist() == []


def test_per_query_work_does_not_read_every_paragraph(seeds_kb: KnowledgeBase) -> None:
    """Articles' paragraph rows are ranges, and answer types are looked up once per paragraph."""
    searcher = seeds_kb.searcher
    for doc in range(len(searcher.doc_row)):
        rows = searcher.doc_paragraph_rows(doc)
        assert rows.tolist() == np.flatnonzero(searcher.paragraph_doc == doc).tolist()
    searcher.search("How many people attended the workshop?")
    cache = searcher._answer_type_cache["number"]
    known = int((cache >= 0).sum())
    assert known > 0
    searcher.search("How many people attended the workshop?")
    assert int((cache >= 0).sum()) == known
    for row in np.flatnonzero(cache >= 0).tolist():
        assert cache[row] == holds_answer_type(searcher.index.paragraph(row)[1].text, ("number",))


# --- start-up: each text tokenized once -----------------------------------------------------------

TRICKY_PARAGRAPHS = [
    "Ms. Esim spoke first. Then 20 workers, i.e. most of them, joined.",
    "He said it was 'fine.' Then the workers' union left! Did they? Yes…",
    "• First item here\n• Second item, with café and naïve\n1. Numbered item.\n2) Another one",
    "Caf\u0065\u0301 opened.\u00a0Next sentence — with a dash. ___ . Last one “quoted.”",
    "   leading spaces. trailing spaces.   ",
    "",
    "No sentence end at all",
    "A.B.C. corp. sold 1,200 units in Jan. 2022. The U.S. office closed.",
    "Line one\n\nLine three after a blank line. And… more.",
]


def test_tokenize_by_sentence_equals_tokenizing_each_text() -> None:
    paragraph_tokens, sentence_tokens, offsets = tokenize_by_sentence(TRICKY_PARAGRAPHS)
    sentences, expected_offsets = sentence_offsets(TRICKY_PARAGRAPHS)
    assert paragraph_tokens == [tokenize(t) for t in TRICKY_PARAGRAPHS]
    assert sentence_tokens == [tokenize(t) for t in sentences]
    np.testing.assert_array_equal(offsets, expected_offsets)


def _csr_equal(a, b) -> None:  # type: ignore[no-untyped-def]
    a, b = a.tocsr(), b.tocsr()
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)


def test_startup_tokenizing_once_builds_what_tokenizing_each_text_built(seeds_kb: KnowledgeBase) -> None:
    """The lexical tables (each paragraph tokenized once, sentence by sentence), both as stored
    by the build and read back memory-mapped, and as made at start-up for an index without them,
    equal what tokenizing every text on its own built: same vocabularies, BM25 matrices, intro
    terms and sentence terms, so every score is the same."""
    searcher = seeds_kb.searcher
    index = searcher.index
    assert index.lexical is not None  # read from the index version
    paragraphs = [index.paragraph(r)[1].text for r in range(len(index.paragraph_keys))]
    articles = list(index.articles.values())
    old_paragraphs = BM25Index(paragraphs)
    old_articles = BM25Index([a.title + "\n" + "\n".join(p.text for p in a.paragraphs) for a in articles])
    intro = seeds_kb.settings.intro_paragraphs
    old_intro = old_paragraphs.term_presence(
        [a.title + "\n" + "\n".join(p.text for p in a.paragraphs[:intro]) for a in articles]
    )
    sentences, offsets = sentence_offsets(paragraphs)
    made = LexicalTables.build(paragraphs, [a.title for a in articles], searcher.doc_bounds)
    for tables in (index.lexical, made):
        for new, old in ((tables.paragraph, old_paragraphs), (tables.article, old_articles)):
            assert new.vocab == old.vocab
            _csr_equal(new.saturated, old.saturated)
            np.testing.assert_array_equal(new.idf, old.idf)
        _csr_equal(tables.paragraph_columns, old_paragraphs.saturated.tocsc())
        _csr_equal(tables.article_columns, old_articles.saturated.tocsc())
        _csr_equal(tables.intro_matrix(searcher.doc_bounds, intro), old_intro)
        _csr_equal(tables.sentence_terms, old_paragraphs.term_presence(sentences))
        np.testing.assert_array_equal(tables.sentence_offsets, offsets)
    _csr_equal(searcher.intro_matrix, old_intro)


def test_read_back_bm25_index_scores_and_finds_terms_as_the_original() -> None:
    texts = ["cooperatives in Korea", "home-based workers in Cambodia", "workers and cooperatives"]
    fresh = BM25Index(texts)
    back = BM25Index.from_arrays(fresh.terms(), fresh.idf, fresh.saturated)
    np.testing.assert_array_equal(back.scores("Cambodian cooperatives"), fresh.scores("Cambodian cooperatives"))
    _csr_equal(back.term_presence(["korea workers korea", "", "zeta"]), fresh.term_presence(["korea workers korea", "", "zeta"]))
