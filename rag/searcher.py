"""Hybrid paragraph retrieval: dense (FAISS) and lexical (BM25) evidence fused per paragraph.

Why not one similarity: a question usually names its event ("the HomeNet workshop") while the
answer sits in some other paragraph of that article. So the searcher scores two things and
combines them:

1. *Which article*: BM25 over whole articles (title included) and the article's best dense match.
2. *Which paragraph in it*: dense similarity of the paragraph and of its best sentence, global
   BM25, BM25 with term weights computed inside the article (the event's name, repeated all
   over the article, stops counting), and whether the paragraph holds the kind of thing asked
   for ("how many" → a number, "when" → a date, "who" → a person or organisation), and how
   much of the question (its event-naming terms discounted, as in the focus BM25) one single
   sentence of the paragraph covers: an answer usually sits in one sentence.

Each signal is scaled to [0, 1] among the candidates (the answer-type and sentence-coverage
signals are shares in [0, 1] already, comparable across questions, and stay as they are) and
summed with weights from ``Settings``.

Then the reader (``rag.reader``, the project's cross-encoder) reads the question with each of
the first stage's best ``rerank_candidates`` paragraphs, and its probability that the paragraph
answers, times ``weight_reader``, is added to their score: the final order. ``python -m
evals.tune`` measures every weight on the gold set and the SQuAD articles together, cross-
validated by article (the README's ablation table; why the defaults are what they are is in
``rag.settings``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from rag.bm25 import LexicalTables
from rag.domain import Article, Hit
from rag.embed import SentenceTransformerEmbeddings
from rag.errors import QueryError
from rag.evidence import is_instruction
from rag.index import LoadedIndex
from rag.lexicon import tokenize
from rag.question import ANSWER_TYPES, Question, analyze_question
from rag.reader import Reader, reader_passage
from rag.sentences import sentence_spans
from rag.settings import RETRIEVAL_SIGNALS, Settings

FEATURES = RETRIEVAL_SIGNALS


@dataclass(frozen=True)
class RetrievalWeights:
    dense: float
    dense_sentence: float
    bm25: float
    bm25_focus: float
    article: float
    answer_type: float
    sentence_coverage: float
    reader: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetrievalWeights:
        return cls(*(getattr(settings, f"weight_{name}") for name in FEATURES))

    def as_array(self) -> np.ndarray:
        return np.array([getattr(self, name) for name in FEATURES], dtype=np.float32)


# --- best-sentence coverage ------------------------------------------------------------


def sentence_offsets(paragraphs: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """All sentences of the paragraphs, in order, and where each paragraph's sentences start:
    the sentences of paragraph ``i`` are ``sentences[offsets[i]:offsets[i + 1]]``."""
    sentences: list[str] = []
    offsets = [0]
    for text in paragraphs:
        sentences.extend(text[a:b] for a, b in sentence_spans(text))
        offsets.append(len(sentences))
    return sentences, np.array(offsets, dtype=np.int64)


def best_sentence_coverage(
    sentence_terms: sparse.csr_matrix,
    offsets: np.ndarray,
    rows: np.ndarray,
    terms: np.ndarray,
    weights: np.ndarray,
) -> np.ndarray:
    """Per paragraph in ``rows``: the largest share of the query's term weight held by a single
    one of its sentences (1.0: one sentence holds every query term). An answer usually sits in
    one sentence, so terms scattered over a paragraph count for less than terms found together.

    ``sentence_terms`` is the binary sentence x term matrix, ``offsets`` as from
    ``sentence_offsets``, ``terms`` the query's term ids and ``weights`` their weights.
    """
    rows = np.asarray(rows, dtype=np.int64)
    out = np.zeros(len(rows), dtype=np.float32)
    total = float(np.sum(weights))
    if len(rows) == 0 or len(terms) == 0 or total <= 0:
        return out
    starts, ends = offsets[rows], offsets[rows + 1]
    counts = ends - starts
    if not counts.any():
        return out
    sent = np.concatenate([np.arange(a, b) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)])
    owner = np.repeat(np.arange(len(rows)), counts)
    cover = np.asarray(sentence_terms[sent][:, terms] @ np.asarray(weights, dtype=np.float32)).ravel() / total
    np.maximum.at(out, owner, cover.astype(np.float32))
    return out


def weighted_row_sums(matrix: sparse.csr_matrix, row_weights: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Row ``i`` of ``matrix`` dotted with ``row_weights[owner[i]]``, for all rows at once.

    The products are formed in place on the matrix's values and summed in the same order as
    ``matrix @ weights`` would, so the result is bit-identical to one product per weight vector
    (the per-article loop this replaces).
    """
    matrix = matrix.tocsr(copy=True)
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    matrix.data = (matrix.data * row_weights[owner[rows], matrix.indices]).astype(np.float32)
    return np.asarray(matrix @ np.ones(matrix.shape[1], dtype=np.float32)).ravel()


def best_sentence_coverage_weighted(
    sentence_terms: sparse.csr_matrix,
    offsets: np.ndarray,
    rows: np.ndarray,
    terms: np.ndarray,
    weights: np.ndarray,
) -> np.ndarray:
    """``best_sentence_coverage`` with one weight vector per row (``weights[i]`` for ``rows[i]``),
    in one sparse product instead of one call per article: equal to calling it per row."""
    rows = np.asarray(rows, dtype=np.int64)
    out = np.zeros(len(rows), dtype=np.float32)
    if len(rows) == 0 or len(terms) == 0:
        return out
    totals = np.array([float(np.sum(w)) for w in weights], dtype=np.float64)
    starts, ends = offsets[rows], offsets[rows + 1]
    counts = np.where(totals > 0, ends - starts, 0)
    if not counts.any():
        return out
    owner = np.repeat(np.arange(len(rows)), counts)
    sent = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(counts.sum())
    cover = weighted_row_sums(sentence_terms[sent][:, terms], np.asarray(weights, dtype=np.float32), owner)
    # Divided as ``best_sentence_coverage`` divides (float32 by the float32 of the float64 total).
    cover = cover / totals.astype(np.float32)[owner]
    np.maximum.at(out, owner, cover.astype(np.float32))
    return out


# --- the searcher ----------------------------------------------------------------------


def _scale(values: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1] among candidates; a constant signal carries no information (all 0)."""
    lo, hi = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if hi - lo < 1e-9:
        return np.zeros_like(values, dtype=np.float32)
    return ((values - lo) / (hi - lo)).astype(np.float32)


def _column_scores(columns: sparse.csc_matrix, idf: np.ndarray, terms: np.ndarray) -> np.ndarray:
    """BM25 scores of every row from the column-major saturated term frequencies: the same
    products, summed in the same order, as ``BM25Index.scores`` (which slices the row-major one)."""
    if len(terms) == 0:
        return np.zeros(columns.shape[0], dtype=np.float32)
    return np.asarray(columns[:, terms] @ idf[terms]).ravel()


def _top(values: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` largest values, best first (a partial sort: O(len) not O(len log len))."""
    if n <= 0 or len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    if n < len(values):
        part = np.argpartition(-values, n - 1)[:n]
        return part[np.argsort(-values[part], kind="stable")]
    return np.argsort(-values, kind="stable")


@dataclass
class Candidates:
    """Feature matrix of candidate paragraphs.

    Row i is paragraph ``keys[i]`` = (doc_id, paragraph number), also row ``rows[i]`` of the
    index's paragraph table; column j is signal ``FEATURES[j]``, each in [0, 1]. Signals with
    weight 0 are left at 0 unless all signals were asked for (``evals.tune`` needs them).
    """

    rows: np.ndarray
    keys: list[tuple[str, int]]
    features: np.ndarray  # shape (len(rows), len(FEATURES))


class HybridSearcher:
    """Searches one loaded index; thread-safe (read-only after construction)."""

    def __init__(
        self,
        index: LoadedIndex,
        embedder: SentenceTransformerEmbeddings,
        settings: Settings,
        reader: Reader | None = None,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self.reader = reader
        self.weights = RetrievalWeights.from_settings(settings)
        n_par = len(index.paragraph_keys)
        doc_ids = list(index.articles)
        self.doc_row = {doc_id: i for i, doc_id in enumerate(doc_ids)}
        self.paragraph_doc = np.asarray(index.paragraph_doc, dtype=np.int64)
        # Paragraph rows are grouped by article (the index stores them article by article), so an
        # article's rows are one range: bounds instead of one mask per article over all paragraphs
        # (that was quadratic: ~10^9 comparisons at 100,000 paragraphs).
        self.doc_bounds = np.searchsorted(self.paragraph_doc, np.arange(len(doc_ids) + 1))
        # BM25 over paragraphs and over articles, the terms of every sentence and title: stored in
        # the index by its build (memory-mapped, shared by every process serving it), or made
        # here, each paragraph tokenized once, for an index without them (format 1, or built by
        # another version of the tokenizer). Either way the same matrices.
        tables = index.lexical
        if tables is None:
            tables = LexicalTables.build(
                [index.paragraph_text(row) for row in range(n_par)], index.article_titles(), self.doc_bounds
            )
        self.lexical = tables
        self.paragraph_bm25 = tables.paragraph
        self.article_bm25 = tables.article
        # Column (CSC) copies of the BM25 matrices: scoring a query reads only its terms' postings,
        # where slicing the row-major matrix by column walks every stored value (the largest
        # per-query cost at 100,000 paragraphs). Same sums in the same order: identical scores.
        self._paragraph_columns = tables.paragraph_columns
        self._article_columns = tables.article_columns
        # Terms of each article's title and opening paragraphs: news leads introduce the event,
        # so a question's words that name the event are found there, and they say which
        # article, not which paragraph. ``bm25_focus`` discounts them inside their article.
        # Kept as a sparse article x term matrix (one row per article) rather than Python sets.
        self.intro_matrix = tables.intro_matrix(self.doc_bounds, settings.intro_paragraphs)
        # Which terms each sentence holds, for the best-sentence coverage signal.
        self.sentence_terms = tables.sentence_terms
        self.sentence_offsets = tables.sentence_offsets
        # Chunk rows of each paragraph's sentence chunks, in order (for answering without re-embedding).
        self.is_sentence_chunk = index.chunk_mask("sentence")
        self.sentence_rows: dict[tuple[str, int], list[int]] = {}
        for row in np.flatnonzero(self.is_sentence_chunk).tolist():
            key = index.paragraph_keys[int(index.chunk_paragraph[row])]
            self.sentence_rows.setdefault(key, []).append(row)
        # Whether each paragraph holds each answer type: -1 not yet known, filled on first use
        # (a regex per paragraph is cheap once, not on every query; racing threads write the same).
        self._answer_type_cache = {kind: np.full(n_par, -1, dtype=np.int8) for kind in ANSWER_TYPES}

    def doc_paragraph_rows(self, doc: int) -> np.ndarray:
        """The paragraph rows of article number ``doc``, in order."""
        return np.arange(self.doc_bounds[doc], self.doc_bounds[doc + 1])

    def intro_terms(self, doc: int) -> set[int]:
        """The term ids of article ``doc``'s title and lead paragraphs."""
        start, end = self.intro_matrix.indptr[doc], self.intro_matrix.indptr[doc + 1]
        return set(self.intro_matrix.indices[start:end].tolist())

    def article(self, doc_id: str) -> Article | None:
        """A parsed article of this index, or None."""
        return self.index.articles.get(doc_id)

    def focus_term_weights(self, terms: Iterable[str], doc_id: str) -> dict[str, float]:
        """IDF weight of each query term inside one article, event-naming (intro) terms discounted."""
        bm25 = self.paragraph_bm25
        intro = self.intro_terms(self.doc_row[doc_id]) if doc_id in self.doc_row else set()
        top_idf = float(bm25.idf.max(initial=1.0))
        discount = self.settings.intro_discount
        weights = {}
        for term in set(terms):
            tid = bm25.vocab.get(term)
            idf = float(bm25.idf[tid]) if tid is not None else top_idf
            weights[term] = idf * (discount if tid in intro else 1.0)
        return weights

    def sentence_vectors(self, hits: Sequence[Hit], sentence_texts: Sequence[str]) -> np.ndarray:
        """Stored embeddings of the hits' sentences (in ``split_sentences`` order).

        The index already holds one vector per sentence (its sentence chunks), so answering
        embeds only the question. Sentences without a stored vector (one-sentence paragraphs,
        whose chunk carries the title header) are embedded on the spot.
        """
        rows: list[int | None] = []
        for hit in hits:
            spans = sentence_spans(hit.text)
            stored = self.sentence_rows.get((hit.doc_id, hit.paragraph), [])
            aligned = stored if len(stored) == len(spans) else [None] * len(spans)
            # Keep only the sentences the caller kept (evidence filters may drop some).
            kept = [r for r, (s, e) in zip(aligned, spans, strict=True) if not is_instruction(hit.text[s:e])]
            rows.extend(kept)
        if len(rows) != len(sentence_texts):  # not split as the index split them: embed all
            rows = [None] * len(sentence_texts)
        missing = [i for i, r in enumerate(rows) if r is None]
        dim = self.index.vectors.dimension
        out = np.zeros((len(sentence_texts), dim), dtype=np.float32)
        present = [i for i, r in enumerate(rows) if r is not None]
        if present:
            out[present] = self.index.vectors.reconstruct([rows[i] for i in present])  # type: ignore[misc]
        if missing:
            out[missing] = self.embedder.encode([sentence_texts[i] for i in missing], progress=False)
        return out

    def check_query(self, query: str) -> str:
        if not isinstance(query, str):
            raise QueryError("the question must be text")
        query = query.strip()
        if not query:
            raise QueryError("the question is empty: type a question about the articles")
        if len(query) > self.settings.max_query_chars:
            raise QueryError(
                f"the question is too long ({len(query):,} characters; the limit is "
                f"{self.settings.max_query_chars:,}): ask it in a sentence or two"
            )
        return query

    def search(self, query: str | Question, k: int | None = None) -> list[Hit]:
        """The k best paragraphs for the question (text, or as analysed by ``analyze_question``)."""
        question = query if isinstance(query, Question) else analyze_question(self.check_query(query))
        k = k or self.settings.top_k
        cands = self.candidates(question)
        scores = cands.features @ self.weights.as_array()
        order = np.argsort(-scores, kind="stable")[:k]
        return [self._hit(int(cands.rows[i]), float(scores[i])) for i in order]

    def dense_search(self, query: str, k: int) -> list[Hit]:
        """Dense only (for comparisons): the best chunk score per paragraph."""
        query = self.check_query(query)
        para_scores = self._dense_paragraph_scores(self._embed(query), np.ones_like(self.is_sentence_chunk))
        order = np.argsort(-para_scores)[:k]
        return [self._hit(int(r), float(para_scores[r])) for r in order if np.isfinite(para_scores[r])]

    def bm25_search(self, query: str, k: int) -> list[Hit]:
        """BM25 only (for comparisons)."""
        query = self.check_query(query)
        scores = self.paragraph_bm25.scores(tokenize(query))
        order = np.argsort(-scores, kind="stable")[:k]
        return [self._hit(int(r), float(scores[r])) for r in order]

    # --- internals ---------------------------------------------------------------------

    def _embed(self, query: str) -> np.ndarray:
        return self.embedder.encode_query(query)[None, :]

    def _dense_hits(self, query_vec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, chunk rows) of the nearest chunks: every chunk up to
        ``exhaustive_dense_max_chunks``, else the best ``max(20 x candidate_pool, 1000)``."""
        n_chunks = self.index.vectors.ntotal
        exhaustive = n_chunks <= self.settings.exhaustive_dense_max_chunks
        k = n_chunks if exhaustive else max(self.settings.candidate_pool * 20, 1000)
        sims, ids = self.index.vectors.search(query_vec, k)
        sims, ids = sims[0], ids[0]
        keep = ids >= 0
        return sims[keep], ids[keep]

    def _dense_paragraph_scores(
        self, query_vec: np.ndarray, chunk_mask: np.ndarray, found: tuple[np.ndarray, np.ndarray] | None = None
    ) -> np.ndarray:
        """Max chunk similarity per paragraph over chunks in ``chunk_mask`` (-inf if none found);
        ``found`` reuses one search's ``_dense_hits`` for several masks."""
        sims, ids = found if found is not None else self._dense_hits(query_vec)
        keep = chunk_mask[ids]
        sims, ids = sims[keep], ids[keep]
        scores = np.full(len(self.index.paragraph_keys), -np.inf, dtype=np.float32)
        np.maximum.at(scores, self.index.chunk_paragraph[ids], sims)
        return scores

    def candidates(self, query: str | Question, *, all_signals: bool = False, rerank: int | None = None) -> Candidates:
        """The candidate paragraphs and their signals; ``all_signals`` computes the weight-0 ones too,
        ``rerank`` says how many of the first stage's best the reader reads (default: the setting).

        Per query, only the question's own postings and the candidates are touched: one vector
        search (both chunk kinds read from it), BM25 over the query terms' columns, and the
        per-candidate signals in one vectorized pass. What remains proportional to the corpus is
        a few array passes over the paragraph scores and the flat vector scan: from 10,000 to 100,000
        paragraphs p50 went 21.8 -> 23.3 ms (``python -m evals.scale_search``, query vector cached).
        """
        question = query if isinstance(query, Question) else analyze_question(self.check_query(query))
        wanted = self.weights.as_array() > 0
        if all_signals:
            wanted[:] = True
        use = dict(zip(FEATURES, wanted.tolist(), strict=True))
        n_par = len(self.index.paragraph_keys)
        pool = self.settings.candidate_pool
        query_vec = self._embed(question.text)
        found = self._dense_hits(query_vec)
        dense_para = self._dense_paragraph_scores(query_vec, ~self.is_sentence_chunk, found)
        dense_sent = self._dense_paragraph_scores(query_vec, self.is_sentence_chunk, found)
        # A paragraph with a single sentence has no sentence chunks: its paragraph score stands in.
        dense_sent = np.where(np.isfinite(dense_sent), dense_sent, dense_para)
        dense_best = np.maximum(dense_para, dense_sent)

        terms = self.paragraph_bm25.query_terms(question.terms)
        bm25 = _column_scores(self._paragraph_columns, self.paragraph_bm25.idf, terms)
        doc_bm25 = _column_scores(
            self._article_columns, self.article_bm25.idf, self.article_bm25.query_terms(question.terms)
        )
        doc_dense = np.full(len(self.doc_row), -np.inf, dtype=np.float32)
        finite = np.isfinite(dense_best)
        finite_rows = np.flatnonzero(finite)
        np.maximum.at(doc_dense, self.paragraph_doc[finite_rows], dense_best[finite_rows])
        doc_dense = np.where(np.isfinite(doc_dense), doc_dense, doc_dense[np.isfinite(doc_dense)].min(initial=0.0))
        doc_score = _scale(doc_bm25) + _scale(doc_dense)

        # Candidates: the best paragraphs by each signal, plus every paragraph of the best articles.
        if n_par <= pool * 4:
            cand = np.arange(n_par, dtype=np.int64)
        else:
            parts = [
                finite_rows[_top(dense_best[finite_rows], pool)],
                # Only paragraphs that hold a query term: a zero BM25 score proposes nothing.
                (positive := np.flatnonzero(bm25 > 0))[_top(bm25[positive], pool)],
            ]
            for doc in _top(doc_score, self.settings.candidate_articles):
                parts.append(self.doc_paragraph_rows(int(doc))[: pool * 2])
            cand = np.unique(np.concatenate(parts)).astype(np.int64)

        cand_doc = self.paragraph_doc[cand]
        focus = np.zeros(len(cand), dtype=np.float32)
        coverage = np.zeros(len(cand), dtype=np.float32)
        if len(terms) and (use["bm25_focus"] or use["sentence_coverage"]):
            # Each candidate's term weights: IDF, discounted for the terms of its article's lead.
            in_intro = self.intro_matrix[cand_doc][:, terms].toarray() > 0
            weights = self.paragraph_bm25.idf[terms] * np.where(in_intro, self.settings.intro_discount, 1.0).astype(
                np.float32
            )
            if use["bm25_focus"]:
                focus = weighted_row_sums(self.paragraph_bm25.saturated[cand][:, terms], weights, np.arange(len(cand)))
            if use["sentence_coverage"]:
                coverage = best_sentence_coverage_weighted(
                    self.sentence_terms, self.sentence_offsets, cand, terms, weights
                )

        answer_type = np.zeros(len(cand), dtype=np.float32)
        if use["answer_type"] and question.answer_types:
            answer_type = self._answer_type_share(cand, question.answer_types)
        lowest = float(dense_best[finite].min(initial=0.0))
        features = np.stack(
            [
                _scale(np.where(np.isfinite(dense_para[cand]), dense_para[cand], lowest)),
                _scale(np.where(np.isfinite(dense_sent[cand]), dense_sent[cand], lowest)),
                _scale(bm25[cand]),
                _scale(focus),
                _scale(doc_score[cand_doc]),
                answer_type,
                coverage,
            ],
            axis=1,
        )
        reader = np.zeros(len(cand), dtype=np.float32)
        if use["reader"] and self.reader is not None:
            reader = self._reader_column(question, cand, features, rerank or self.settings.rerank_candidates)
        features = np.concatenate([features, reader[:, None]], axis=1)
        keys = [self.index.paragraph_keys[int(r)] for r in cand]
        return Candidates(rows=cand, keys=keys, features=features)

    def _answer_type_share(self, rows: np.ndarray, kinds: Sequence[str]) -> np.ndarray:
        """``holds_answer_type`` of each row's paragraph, each paragraph's regexes run once ever."""
        held = np.zeros((len(rows), len(kinds)), dtype=np.float64)
        for j, kind in enumerate(kinds):
            cache = self._answer_type_cache[kind]
            known = cache[rows]
            for i in np.flatnonzero(known < 0).tolist():
                row = int(rows[i])
                cache[row] = known[i] = 1 if ANSWER_TYPES[kind][1].search(self.index.paragraph(row)[1].text) else 0
            held[:, j] = known
        return (held.sum(axis=1) / len(kinds)).astype(np.float32)

    def _reader_column(self, question: Question, cand: np.ndarray, first_stage: np.ndarray, n: int) -> np.ndarray:
        """The reader's probability for the first stage's ``n`` best candidates (0 for the rest)."""
        assert self.reader is not None
        hybrid = first_stage @ self.weights.as_array()[: first_stage.shape[1]]
        top = np.argsort(-hybrid, kind="stable")[:n]
        passages = []
        for i in top.tolist():
            article, para = self.index.paragraph(int(cand[i]))
            passages.append(reader_passage(article.title, para.text))
        out = np.zeros(len(cand), dtype=np.float32)
        out[top] = self.reader.probability(question.text, passages)
        return out

    def _hit(self, row: int, score: float) -> Hit:
        article, para = self.index.paragraph(row)
        return Hit(
            doc_id=article.doc_id,
            title=article.title,
            date=article.date,
            paragraph=para.number,
            text=para.text,
            start=para.start,
            end=para.end,
            score=round(score, 6),
        )
