"""BM25 over paragraphs as a sparse matrix (scikit-learn counts, scipy algebra).

Vectorized so that scoring 100,000 paragraphs is one sparse mat-vec, and so that the retriever
can re-weight the same saturated term frequencies per article (see ``bm25_focus``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer

from rag.lexicon import tokenize

BM25_K1 = 1.2
BM25_B = 0.75


def _identity(tokens: list[str]) -> list[str]:
    return tokens


class BM25Index:
    """Okapi BM25 over a fixed list of texts.

    >>> bm25 = BM25Index(["cooperatives in Korea", "home-based workers in Cambodia"])
    >>> int(bm25.scores("Cambodian home workers").argmax())
    1
    """

    def __init__(
        self,
        texts: Sequence[str],
        k1: float = BM25_K1,
        b: float = BM25_B,
    ) -> None:
        self.k1, self.b = k1, b
        self.vectorizer = CountVectorizer(analyzer=_identity, lowercase=False)
        token_lists = [tokenize(t) for t in texts]
        if not any(token_lists):
            token_lists = [["\x00empty"], *token_lists[1:]]  # CountVectorizer needs one token
        self.counts: sparse.csr_matrix = self.vectorizer.fit_transform(token_lists).tocsr().astype(np.float32)
        self.vocab: dict[str, int] = self.vectorizer.vocabulary_
        self.doc_len = np.asarray(self.counts.sum(axis=1)).ravel()
        self.n_docs = self.counts.shape[0]
        df = np.bincount(self.counts.indices, minlength=len(self.vocab))
        self.idf = np.log1p((self.n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        avg = self.doc_len.mean() if self.n_docs else 1.0
        norm = self.k1 * (1 - self.b + self.b * self.doc_len / max(avg, 1e-9))
        # Saturated term frequencies, precomputed once: tf * (k1 + 1) / (tf + norm).
        tf = self.counts.tocoo()
        values = tf.data * (self.k1 + 1) / (tf.data + norm[tf.row])
        self.saturated = sparse.csr_matrix((values, (tf.row, tf.col)), shape=self.counts.shape)

    def term_presence(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Binary text x term matrix over this index's vocabulary (unknown terms ignored)."""
        if not texts:
            return sparse.csr_matrix((0, len(self.vocab)), dtype=np.float32)
        counts = self.vectorizer.transform([tokenize(t) for t in texts]).tocsr().astype(np.float32)
        counts.data[:] = 1.0
        return counts

    def query_terms(self, query: str | Iterable[str]) -> np.ndarray:
        """The vocabulary ids of the query's terms (a text, or its ``tokenize`` terms)."""
        tokens = tokenize(query) if isinstance(query, str) else query
        return np.array(sorted({self.vocab[t] for t in tokens if t in self.vocab}), dtype=np.int64)

    def scores(self, query: str | Iterable[str], terms: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every text for the query (a text, or its terms)."""
        terms = self.query_terms(query) if terms is None else terms
        if len(terms) == 0:
            return np.zeros(self.n_docs, dtype=np.float32)
        sub = self.saturated[:, terms]
        return np.asarray(sub @ self.idf[terms]).ravel()
