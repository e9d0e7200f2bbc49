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
summed with weights from ``Settings`` (chosen on the gold set; see ``evals/`` and the README's
comparison table).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from rag.citations import is_instruction
from rag.embed import SentenceTransformerEmbeddings
from rag.errors import QueryError
from rag.index import LoadedIndex
from rag.lexical import BM25Index
from rag.models import Hit
from rag.settings import Settings
from rag.text import sentence_spans, tokenize

#: Opening paragraphs that, with the title, introduce an article's event (the news "lead").
INTRO_PARAGRAPHS = 2
#: Weight of a question term inside an article whose opening already contains it.
INTRO_DISCOUNT = 0.2
FEATURES = ("dense", "dense_sentence", "bm25", "bm25_focus", "article", "answer_type", "sentence_coverage")


@dataclass(frozen=True)
class RetrievalWeights:
    dense: float
    dense_sentence: float
    bm25: float
    bm25_focus: float
    article: float
    answer_type: float
    sentence_coverage: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetrievalWeights:
        return cls(*(getattr(settings, f"weight_{name}") for name in FEATURES))

    def as_array(self) -> np.ndarray:
        return np.array([getattr(self, name) for name in FEATURES], dtype=np.float32)


# --- answer-type signals -----------------------------------------------------------------

_MONTHS = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_ANSWER_TYPES: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "number": (
        re.compile(r"\bhow (?:many|much)\b|\bnumber of\b|\bwhat (?:percentage|share|proportion)\b|\bcount\b", re.I),
        re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|thousand|million|dozen)\b", re.I),
    ),
    "date": (
        re.compile(r"\bwhen\b|\bwhat (?:date|day|year|month|time)\b|\bwhich (?:date|day|year|month)\b|\bhow long\b", re.I),
        re.compile(_MONTHS + r"|\b(?:19|20)\d\d\b|\b(?:first|second|last|next) day\b|\b\w+-day\b", re.I),
    ),
    "person": (
        re.compile(r"^\s*(?:and\s+)?who\b|\bwhom\b|\bwhose\b|\bwhich (?:person|official|speaker|organi[sz]ation|agency|ministry|partner)\b|\bname of\b", re.I),
        re.compile(r"\b(?:Mr|Ms|Mrs|Dr|Prof)\.?\s+[A-Z]|\b[A-Z][a-z]+ [A-Z][a-z]+\b|\b[A-Z]{3,}\b"),
    ),
    "place": (
        re.compile(r"^\s*(?:and\s+)?where\b|\bwhich (?:countr(?:y|ies)|city|cities|region|place)\b|\bwhat countr", re.I),
        re.compile(r"\b[A-Z][a-z]+(?:,| and)\s+[A-Z][a-z]+|\bin [A-Z][a-z]+"),
    ),
}


def answer_types(question: str) -> list[str]:
    return [name for name, (asks, _) in _ANSWER_TYPES.items() if asks.search(question)]


def holds_answer_type(text: str, kinds: Sequence[str]) -> float:
    if not kinds:
        return 0.0
    return sum(1.0 for k in kinds if _ANSWER_TYPES[k][1].search(text)) / len(kinds)


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


# --- the searcher ----------------------------------------------------------------------


def _scale(values: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1] among candidates; a constant signal carries no information (all 0)."""
    lo, hi = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if hi - lo < 1e-9:
        return np.zeros_like(values, dtype=np.float32)
    return ((values - lo) / (hi - lo)).astype(np.float32)


@dataclass
class Candidates:
    """Feature matrix of candidate paragraphs (rows of ``LoadedIndex.paragraph_keys``)."""

    rows: np.ndarray
    features: np.ndarray  # shape (len(rows), len(FEATURES)), each column in [0, 1]


class HybridSearcher:
    """Searches one loaded index; thread-safe (read-only after construction)."""

    def __init__(self, index: LoadedIndex, embedder: SentenceTransformerEmbeddings, settings: Settings) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self.weights = RetrievalWeights.from_settings(settings)
        paragraphs = [index.paragraph(row)[1].text for row in range(len(index.paragraph_keys))]
        self.paragraph_bm25 = BM25Index(paragraphs)
        doc_ids = list(index.articles)
        self.doc_row = {doc_id: i for i, doc_id in enumerate(doc_ids)}
        self.article_bm25 = BM25Index(
            [a.title + "\n" + "\n".join(p.text for p in a.paragraphs) for a in index.articles.values()]
        )
        self.paragraph_doc = np.array([self.doc_row[d] for d, _ in index.paragraph_keys], dtype=np.int64)
        self.doc_paragraph_rows = [np.flatnonzero(self.paragraph_doc == i) for i in range(len(doc_ids))]
        # Terms of each article's title and opening paragraphs: news leads introduce the event,
        # so a question's words that name the event are found there, and they say which
        # article, not which paragraph. ``bm25_focus`` discounts them inside their article.
        self.intro_terms: list[set[int]] = []
        for article in index.articles.values():
            intro = article.title + "\n" + "\n".join(p.text for p in article.paragraphs[:INTRO_PARAGRAPHS])
            vocab = self.paragraph_bm25.vocab
            self.intro_terms.append({vocab[t] for t in set(tokenize(intro)) if t in vocab})
        # Chunk rows of each paragraph's sentence chunks, in order (for answering without re-embedding).
        self.sentence_rows: dict[tuple[str, int], list[int]] = {}
        for row, chunk in enumerate(index.chunks):
            if chunk.kind == "sentence":
                self.sentence_rows.setdefault((chunk.doc_id, chunk.paragraph), []).append(row)
        # Which terms each sentence holds, for the best-sentence coverage signal.
        sentence_texts, self.sentence_offsets = sentence_offsets(paragraphs)
        self.sentence_terms = self.paragraph_bm25.term_presence(sentence_texts)
        kinds = np.array([c.kind for c in index.chunks])
        self.is_sentence_chunk = kinds == "sentence"
        self._lock = threading.Lock()

    def focus_term_weights(self, query: str, doc_id: str) -> dict[str, float]:
        """IDF weight of each query term inside one article, event-naming (intro) terms discounted."""
        bm25 = self.paragraph_bm25
        intro = self.intro_terms[self.doc_row[doc_id]] if doc_id in self.doc_row else set()
        top_idf = float(bm25.idf.max(initial=1.0))
        weights = {}
        for term in set(tokenize(query)):
            tid = bm25.vocab.get(term)
            idf = float(bm25.idf[tid]) if tid is not None else top_idf
            weights[term] = idf * (INTRO_DISCOUNT if tid in intro else 1.0)
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

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        query = self.check_query(query)
        k = k or self.settings.top_k
        cands = self.candidates(query)
        scores = cands.features @ self.weights.as_array()
        order = np.argsort(-scores, kind="stable")[:k]
        return [self._hit(int(cands.rows[i]), float(scores[i])) for i in order]

    def dense_search(self, query: str, k: int) -> list[Hit]:
        """Dense only (for comparisons): the best chunk score per paragraph."""
        query = self.check_query(query)
        para_scores = self._dense_paragraph_scores(self._embed(query), self.is_sentence_chunk | True)
        order = np.argsort(-para_scores)[:k]
        return [self._hit(int(r), float(para_scores[r])) for r in order if np.isfinite(para_scores[r])]

    def bm25_search(self, query: str, k: int) -> list[Hit]:
        """BM25 only (for comparisons)."""
        query = self.check_query(query)
        scores = self.paragraph_bm25.scores(query)
        order = np.argsort(-scores, kind="stable")[:k]
        return [self._hit(int(r), float(scores[r])) for r in order]

    # --- internals ---------------------------------------------------------------------

    def _embed(self, query: str) -> np.ndarray:
        return self.embedder.encode_query(query)[None, :]

    def _dense_paragraph_scores(self, query_vec: np.ndarray, chunk_mask: np.ndarray) -> np.ndarray:
        """Max chunk similarity per paragraph over chunks in ``chunk_mask`` (-inf if none found)."""
        n_chunks = self.index.vectors.ntotal
        k = n_chunks if n_chunks <= 20_000 else max(self.settings.candidate_pool * 20, 1000)
        sims, ids = self.index.vectors.search(query_vec, k)
        sims, ids = sims[0], ids[0]
        keep = ids >= 0
        sims, ids = sims[keep], ids[keep]
        keep = chunk_mask[ids]
        sims, ids = sims[keep], ids[keep]
        scores = np.full(len(self.index.paragraph_keys), -np.inf, dtype=np.float32)
        np.maximum.at(scores, self.index.chunk_paragraph[ids], sims)
        return scores

    def candidates(self, query: str) -> Candidates:
        n_par = len(self.index.paragraph_keys)
        pool = self.settings.candidate_pool
        query_vec = self._embed(query)
        dense_para = self._dense_paragraph_scores(query_vec, ~self.is_sentence_chunk)
        dense_sent = self._dense_paragraph_scores(query_vec, self.is_sentence_chunk)
        # A paragraph with a single sentence has no sentence chunks: its paragraph score stands in.
        dense_sent = np.where(np.isfinite(dense_sent), dense_sent, dense_para)
        dense_best = np.maximum(dense_para, dense_sent)

        terms = self.paragraph_bm25.query_terms(query)
        bm25 = self.paragraph_bm25.scores(query, terms)
        doc_bm25 = self.article_bm25.scores(query)
        doc_dense = np.full(len(self.doc_row), -np.inf, dtype=np.float32)
        finite = np.isfinite(dense_best)
        np.maximum.at(doc_dense, self.paragraph_doc[finite], dense_best[finite])
        doc_dense = np.where(np.isfinite(doc_dense), doc_dense, doc_dense[np.isfinite(doc_dense)].min(initial=0.0))
        doc_score = _scale(doc_bm25) + _scale(doc_dense)

        # Candidates: the best paragraphs by each signal, plus every paragraph of the best articles.
        rows: set[int] = set()
        if n_par <= pool * 4:
            rows.update(range(n_par))
        else:
            rows.update(np.argsort(-np.where(finite, dense_best, -np.inf))[:pool].tolist())
            rows.update(np.argsort(-bm25)[:pool].tolist())
            for doc in np.argsort(-doc_score)[:3]:
                rows.update(self.doc_paragraph_rows[doc][: pool * 2].tolist())
        cand = np.array(sorted(rows), dtype=np.int64)

        focus = np.zeros(len(cand), dtype=np.float32)
        coverage = np.zeros(len(cand), dtype=np.float32)
        cand_doc = self.paragraph_doc[cand]
        for doc in np.unique(cand_doc):
            mask = cand_doc == doc
            if len(terms):
                weights = self.paragraph_bm25.idf[terms] * np.array(
                    [INTRO_DISCOUNT if t in self.intro_terms[doc] else 1.0 for t in terms.tolist()], dtype=np.float32
                )
                focus[mask] = np.asarray(self.paragraph_bm25.saturated[cand[mask]][:, terms] @ weights).ravel()
                coverage[mask] = best_sentence_coverage(
                    self.sentence_terms, self.sentence_offsets, cand[mask], terms, weights
                )

        kinds = answer_types(query)
        answer_type = np.array(
            [holds_answer_type(self.index.paragraph(int(r))[1].text, kinds) for r in cand], dtype=np.float32
        )
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
        return Candidates(rows=cand, features=features)

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
