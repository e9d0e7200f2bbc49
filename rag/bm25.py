"""BM25 over paragraphs as a sparse matrix (scikit-learn counts, scipy algebra).

Vectorized so that scoring 100,000 paragraphs is one sparse mat-vec, and so that the retriever
can re-weight the same saturated term frequencies per article (see ``bm25_focus``).

``LexicalTables`` are everything lexical the searcher reads (paragraph and article BM25, the
terms of every title and sentence), made once per build, with each paragraph tokenized once,
and stored in the index version as ``.npy`` arrays: serving processes memory-map them (shared
pages, no start-up tokenization) instead of each rebuilding them on its heap.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer

from rag.lexicon import tokenize
from rag.sentences import sentence_spans

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
        *,
        tokens: Sequence[list[str]] | None = None,
    ) -> None:
        """BM25 over ``texts``; or, with ``tokens``, over texts already tokenized by ``tokenize``
        (``texts`` is then ignored): the searcher tokenizes each paragraph once and shares the
        tokens between its indexes."""
        self.k1, self.b = k1, b
        self.vectorizer = CountVectorizer(analyzer=_identity, lowercase=False)
        token_lists = list(tokens) if tokens is not None else [tokenize(t) for t in texts]
        if not any(token_lists):
            token_lists = [["\x00empty"], *token_lists[1:]]  # CountVectorizer needs one token
        self.counts: sparse.csr_matrix | None = self.vectorizer.fit_transform(token_lists).tocsr().astype(np.float32)
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

    @classmethod
    def from_tokens(cls, tokens: Sequence[list[str]], k1: float = BM25_K1, b: float = BM25_B) -> BM25Index:
        """BM25 over already tokenized texts (``tokenize`` output): equal to ``BM25Index(texts)``."""
        return cls((), k1, b, tokens=tokens)

    @classmethod
    def from_arrays(
        cls, terms: Sequence[str], idf: np.ndarray, saturated: sparse.csr_matrix, k1: float = BM25_K1, b: float = BM25_B
    ) -> BM25Index:
        """A BM25 index read back (``LexicalTables``): its vocabulary in id order, IDF and saturated
        term frequencies. It scores as the one it was made from; it has no ``counts``."""
        self = cls.__new__(cls)
        self.k1, self.b = k1, b
        self.vectorizer = None  # type: ignore[assignment]
        self.counts = None
        self.vocab = {term: i for i, term in enumerate(terms)}
        self.idf = idf
        self.saturated = saturated
        self.n_docs = saturated.shape[0]
        self.doc_len = None  # type: ignore[assignment]
        return self

    def terms(self) -> list[str]:
        """The vocabulary in id order."""
        out = [""] * len(self.vocab)
        for term, i in self.vocab.items():
            out[i] = term
        return out

    def term_presence(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Binary text x term matrix over this index's vocabulary (unknown terms ignored)."""
        return self.token_presence([tokenize(t) for t in texts])

    def token_presence(self, tokens: Sequence[list[str]]) -> sparse.csr_matrix:
        """``term_presence`` of already tokenized texts."""
        if not tokens:
            return sparse.csr_matrix((0, len(self.vocab)), dtype=np.float32)
        if self.vectorizer is None:  # read back: no fitted vectorizer, the same matrix from the vocabulary
            vocab = self.vocab
            rows = [sorted({vocab[t] for t in text if t in vocab}) for text in tokens]
            indptr = np.zeros(len(rows) + 1, dtype=np.int32)
            np.cumsum([len(r) for r in rows], out=indptr[1:])
            indices = np.fromiter((i for r in rows for i in r), dtype=np.int32, count=int(indptr[-1]))
            return sparse.csr_matrix(
                (np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(len(rows), len(vocab))
            )
        counts = self.vectorizer.transform(tokens).tocsr().astype(np.float32)
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


# --- tokenized once: the lexical tables of an index -------------------------------------------


def tokenize_by_sentence(paragraphs: Sequence[str]) -> tuple[list[list[str]], list[list[str]], np.ndarray]:
    """Every paragraph tokenized once, sentence by sentence: (tokens of each paragraph, tokens of
    each sentence, where each paragraph's sentences start: those of paragraph ``i`` are
    ``offsets[i]:offsets[i + 1]``).

    A paragraph's tokens are its sentences' tokens and those of the text between them (spaces,
    list bullets, anything the splitter leaves out), in order: the same as ``tokenize`` of the
    whole paragraph, because sentences begin and end next to a space or a line break and tokens
    never span one. So each text is tokenized once (the searcher did it three times: paragraph
    BM25, article BM25, sentence terms; ~1 ms per paragraph).
    """
    paragraph_tokens: list[list[str]] = []
    sentence_tokens: list[list[str]] = []
    offsets = [0]
    for text in paragraphs:
        tokens: list[str] = []
        at = 0
        for a, b in sentence_spans(text):
            if a > at and not text[at:a].isspace():  # mostly a space: no tokens
                tokens.extend(tokenize(text[at:a]))
            own = tokenize(text[a:b])
            sentence_tokens.append(own)
            tokens.extend(own)
            at = b
        if at < len(text) and not text[at:].isspace():
            tokens.extend(tokenize(text[at:]))
        paragraph_tokens.append(tokens)
        offsets.append(len(sentence_tokens))
    return paragraph_tokens, sentence_tokens, np.array(offsets, dtype=np.int64)


#: Bumped when what ``LexicalTables`` stores changes.
LEXICAL_FORMAT = 1
_LEXICON_SOURCES = ("lexicon.py", "sentences.py", "bm25.py")


def lexical_fingerprint() -> str:
    """What stored lexical tables depend on: the tokenizer, the sentence splitter and BM25's code
    and constants. Conservative: any edit of those files makes stored tables stale (the searcher
    then computes its own, and the next build rewrites them, reusing the vectors)."""
    digest = hashlib.sha256(f"{LEXICAL_FORMAT} {BM25_K1} {BM25_B}".encode())
    here = Path(__file__).resolve().parent
    for name in _LEXICON_SOURCES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


def _sparse_arrays(matrix: sparse.csr_matrix | sparse.csc_matrix) -> dict[str, np.ndarray]:
    """data / indices / indptr, with indices in int32 when they fit (what scipy would pick, so
    that a matrix made from the mapped arrays does not copy them to another dtype)."""
    index_dtype = np.int32 if max(matrix.nnz, *matrix.shape) < 2**31 - 1 else np.int64
    return {
        "data": np.ascontiguousarray(matrix.data),
        "indices": matrix.indices.astype(index_dtype, copy=False),
        "indptr": matrix.indptr.astype(index_dtype, copy=False),
    }


@dataclass
class LexicalTables:
    """The lexical side of a searcher over paragraphs grouped by article (rows ``doc_bounds[d]:
    doc_bounds[d + 1]`` are article ``d``'s, in order).

    ``paragraph``/``article``: BM25 over paragraphs and over whole articles (title + paragraphs);
    ``*_columns``: their saturated frequencies column-major (a query reads its terms' postings);
    ``title_terms``: which paragraph-vocabulary terms each title holds; ``sentence_terms``: the
    same for every sentence, ``sentence_offsets`` where each paragraph's sentences start.
    """

    paragraph: BM25Index
    article: BM25Index
    paragraph_columns: sparse.csc_matrix
    article_columns: sparse.csc_matrix
    title_terms: sparse.csr_matrix
    sentence_terms: sparse.csr_matrix
    sentence_offsets: np.ndarray

    @classmethod
    def build(cls, paragraphs: Sequence[str], titles: Sequence[str], doc_bounds: np.ndarray) -> LexicalTables:
        """Made with each paragraph tokenized once (``tokenize_by_sentence``): the article token
        lists are the title's followed by the paragraphs' (tokens never span a line break), so
        every matrix equals what tokenizing each text on its own gives."""
        paragraph_tokens, sentence_tokens, offsets = tokenize_by_sentence(paragraphs)
        paragraph = BM25Index.from_tokens(paragraph_tokens)
        title_tokens = [tokenize(t) for t in titles]
        article = BM25Index.from_tokens(
            [
                [*title, *(t for row in range(doc_bounds[d], doc_bounds[d + 1]) for t in paragraph_tokens[row])]
                for d, title in enumerate(title_tokens)
            ]
        )
        return cls(
            paragraph=paragraph,
            article=article,
            paragraph_columns=paragraph.saturated.tocsc(),
            article_columns=article.saturated.tocsc(),
            title_terms=paragraph.token_presence(title_tokens).tocsr(),
            sentence_terms=paragraph.token_presence(sentence_tokens),
            sentence_offsets=offsets,
        )

    def intro_matrix(self, doc_bounds: np.ndarray, intro_paragraphs: int) -> sparse.csr_matrix:
        """Binary article x term matrix of each title and its first ``intro_paragraphs`` paragraphs:
        the terms that name an article's event (``bm25_focus`` discounts them in their article)."""
        n_docs = len(doc_bounds) - 1
        if n_docs <= 0:
            return sparse.csr_matrix((0, len(self.paragraph.vocab)), dtype=np.float32)
        firsts = np.asarray(doc_bounds[:-1], dtype=np.int64)
        counts = np.minimum(np.diff(doc_bounds), intro_paragraphs) if intro_paragraphs > 0 else np.zeros(n_docs, int)
        rows = np.repeat(firsts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(counts.sum())
        owner = np.repeat(np.arange(n_docs), counts)
        pick = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (owner, rows)), shape=(n_docs, self.paragraph.n_docs)
        )
        matrix = (pick @ self.paragraph.saturated + self.title_terms).tocsr()
        matrix.eliminate_zeros()
        matrix.sort_indices()
        matrix.data = np.ones(len(matrix.data), dtype=np.float32)
        return matrix

    # --- stored in the index version ---------------------------------------------------------

    def _arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {
            "paragraph-idf": self.paragraph.idf,
            "article-idf": self.article.idf,
            "sentence-offsets": self.sentence_offsets,
        }
        for name, matrix in (
            ("paragraph-csr", self.paragraph.saturated),
            ("paragraph-csc", self.paragraph_columns),
            ("article-csr", self.article.saturated),
            ("article-csc", self.article_columns),
            ("title-terms", self.title_terms),
            ("sentence-terms", self.sentence_terms),
        ):
            for part, array in _sparse_arrays(matrix).items():
                out[f"{name}-{part}"] = array
        return out

    def write(self, folder: Path) -> tuple[dict[str, Any], list[str]]:
        """Write the tables into ``folder``: every array in one byte pool (``lex-arrays.npy``, each
        array at a 64-byte aligned offset that the manifest entry records) and the vocabularies
        (``lex-vocab.json``), each fsynced. Returns the manifest entry and the file names."""
        layout: dict[str, list[Any]] = {}
        parts: list[bytes] = []
        size = 0
        for name, array in self._arrays().items():
            array = np.ascontiguousarray(array)
            pad = -size % 64
            parts.append(b"\0" * pad)
            size += pad
            layout[name] = [array.dtype.str, size, int(array.size)]
            parts.append(array.tobytes())
            size += array.nbytes
        with open(folder / "lex-arrays.npy", "wb") as handle:
            np.save(handle, np.frombuffer(b"".join(parts), dtype=np.uint8), allow_pickle=False)
            handle.flush()
            os.fsync(handle.fileno())
        vocab = {"paragraph": self.paragraph.terms(), "article": self.article.terms()}
        with open(folder / "lex-vocab.json", "w", encoding="utf-8") as handle:
            json.dump(vocab, handle, ensure_ascii=False)
            handle.flush()
            os.fsync(handle.fileno())
        entry = {
            "fingerprint": lexical_fingerprint(),
            "shapes": {
                "paragraph": list(self.paragraph.saturated.shape),
                "article": list(self.article.saturated.shape),
                "sentences": list(self.sentence_terms.shape),
            },
            "arrays": layout,
        }
        return entry, ["lex-arrays.npy", "lex-vocab.json"]

    @classmethod
    def read(cls, folder: Path, entry: dict[str, Any], *, mmap: bool = True) -> LexicalTables:
        """Read tables written by ``write`` (memory-mapped, read-only, with ``mmap``: views into
        the mapped pool, no copies). Raises ``ValueError``/``KeyError``/``OSError`` when damaged."""
        pool = np.load(folder / "lex-arrays.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
        if pool.dtype != np.uint8 or pool.ndim != 1:
            raise ValueError("lex-arrays.npy is not a byte array")

        def load(name: str) -> np.ndarray:
            dtype_str, offset, count = entry["arrays"][name]
            dtype = np.dtype(dtype_str)
            if dtype.kind not in "fiu" or offset % 64 or offset + count * dtype.itemsize > len(pool):
                raise ValueError(f"lexical array {name} lies outside lex-arrays.npy")
            return pool[offset : offset + count * dtype.itemsize].view(dtype)

        def matrix(name: str, shape: Sequence[int], kind: type) -> Any:
            parts = (load(f"{name}-data"), load(f"{name}-indices"), load(f"{name}-indptr"))
            out = kind(parts, shape=tuple(shape), copy=False)
            out.check_format(full_check=False)
            return out
        with open(folder / "lex-vocab.json", encoding="utf-8") as handle:
            vocab = json.load(handle)
        shapes = entry["shapes"]
        p_shape, a_shape, s_shape = shapes["paragraph"], shapes["article"], shapes["sentences"]
        if len(vocab["paragraph"]) != p_shape[1] or len(vocab["article"]) != a_shape[1]:
            raise ValueError("lexical vocabulary does not match its matrices")
        paragraph = BM25Index.from_arrays(
            vocab["paragraph"], load("paragraph-idf"), matrix("paragraph-csr", p_shape, sparse.csr_matrix)
        )
        article = BM25Index.from_arrays(
            vocab["article"], load("article-idf"), matrix("article-csr", a_shape, sparse.csr_matrix)
        )
        offsets = load("sentence-offsets")
        if len(offsets) != p_shape[0] + 1 or (len(offsets) and int(offsets[-1]) != s_shape[0]):
            raise ValueError("sentence offsets do not match the sentence terms")
        if len(paragraph.idf) != p_shape[1] or len(article.idf) != a_shape[1]:
            raise ValueError("IDF does not match the vocabulary")
        return cls(
            paragraph=paragraph,
            article=article,
            paragraph_columns=matrix("paragraph-csc", p_shape, sparse.csc_matrix),
            article_columns=matrix("article-csc", a_shape, sparse.csc_matrix),
            title_terms=matrix("title-terms", (a_shape[0], p_shape[1]), sparse.csr_matrix),
            sentence_terms=matrix("sentence-terms", s_shape, sparse.csr_matrix),
            sentence_offsets=offsets,
        )
