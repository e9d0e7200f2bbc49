"""FAISS behind a small interface: exact search for small collections, HNSW for large ones.

The index type is chosen by size (``choose_index_type``) so a 50-paragraph corpus gets exact
answers and a million-vector one stays fast. Vectors are unit length, so inner product is
cosine similarity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

#: Below this many vectors exact (flat) search is fast enough and has perfect recall.
FLAT_MAX_VECTORS = 200_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


def choose_index_type(n_vectors: int, flat_max: int = FLAT_MAX_VECTORS) -> str:
    return "flat" if n_vectors <= flat_max else "hnsw"


@dataclass
class VectorIndex:
    """A FAISS index whose row i is chunk i of the metadata."""

    index: faiss.Index
    kind: str

    @classmethod
    def build(cls, vectors: np.ndarray, kind: str | None = None) -> VectorIndex:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dim = vectors.shape[1]
        kind = kind or choose_index_type(len(vectors))
        if kind == "flat":
            index: faiss.Index = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            index.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            raise ValueError(f"unknown FAISS index type {kind!r} (use 'flat' or 'hnsw')")
        if len(vectors):
            index.add(vectors)
        return cls(index, kind)

    @classmethod
    def read(cls, path: Path, kind: str) -> VectorIndex:
        index = faiss.read_index(str(path))
        if kind == "hnsw":
            faiss.downcast_index(index).hnsw.efSearch = HNSW_EF_SEARCH
        return cls(index, kind)

    def write(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self.index.d)

    def vectors(self) -> np.ndarray:
        """All stored vectors (both index types keep them), for incremental rebuilds."""
        if self.ntotal == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.index.reconstruct_n(0, self.ntotal)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, row ids) of the k nearest rows per query; ids are -1 where fewer exist."""
        k = max(1, min(k, self.ntotal))
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
