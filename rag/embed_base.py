"""What every embedding backend shares: LangChain's ``Embeddings`` plus the fast numpy path.

A backend implements ``encode`` (documents: unit float32 rows), ``_encode_queries`` (questions:
the same, or with the model's query prefix), ``dimension`` and ``describe``; this base adds the
cached ``encode_query`` and LangChain's ``embed_documents`` / ``embed_query``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

_QUERY_CACHE_SIZE = 512


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` as a C-contiguous float32 matrix whose rows have length 1 (zero rows stay zero)."""
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix


class VectorEmbeddings(Embeddings):
    """Base of the project's embedders: normalized vectors, cosine = inner product."""

    #: The name under which ``rag.embed.EMBEDDING_BACKENDS`` lists the backend.
    backend: str = ""

    def __init__(self) -> None:
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    # --- what a backend provides ---------------------------------------------------------

    @property
    def dimension(self) -> int:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What the index manifest records: backend, model, dimension and a weights fingerprint."""
        raise NotImplementedError

    def encode(self, texts: list[str], *, progress: bool | None = None) -> np.ndarray:
        """float32 matrix of unit vectors, one row per document text (the index's fast path)."""
        raise NotImplementedError

    def _encode_queries(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of questions; a model with a query prefix overrides this."""
        return self.encode(texts, progress=False)

    # --- shared ---------------------------------------------------------------------------

    def encode_query(self, text: str) -> np.ndarray:
        """One query's vector, cached: search and answering embed the same question once."""
        with self._cache_lock:
            cached = self._query_cache.get(text)
            if cached is not None:
                self._query_cache.move_to_end(text)
                return cached
        vector = self._encode_queries([text])[0]
        vector.setflags(write=False)
        with self._cache_lock:
            self._query_cache[text] = vector
            while len(self._query_cache) > _QUERY_CACHE_SIZE:
                self._query_cache.popitem(last=False)
        return vector

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self._encode_queries([text])[0].tolist()
