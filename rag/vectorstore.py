"""FAISS behind a small interface: exact search for small collections, IVF for large ones (HNSW by name).

The index type is chosen by size (``choose_index_type``) so a 50-paragraph corpus gets exact
answers and a million-vector one stays fast. Vectors are unit length, so inner product is
cosine similarity. Measured with ``python -m evals.scale_bench`` (``evals/results/scale.json``):

- ``flat``: exact search, perfect recall. Below ``FLAT_MAX_VECTORS`` it is fast enough (tens
  of milliseconds per query at 100,000-200,000 vectors of 384 dimensions on 2 CPU cores), builds
  instantly and costs 1,536 bytes per vector.
- ``ivf`` (the default above the threshold): an inverted file with ``4·√n`` lists. Questions
  land in other cells than the paragraphs that answer them, so it must probe many lists: on real
  MiniLM vectors (100,000 generated paragraphs, questions as queries) a third of the lists gives
  recall@10 ≈ 0.82 by id and ≈ 0.96 within 0.01 cosine of the exact 10th neighbour, at ~2 ms
  against ~90 ms exact. Paragraph-like queries reach 0.99 with a few percent of the lists.
  It builds 3x faster than HNSW, which matters since every corpus change rebuilds it.
- ``hnsw``: a graph index, available by name. At equal latency its recall on questions was
  slightly lower than IVF's (``efSearch`` 1,024: 0.82 / 0.97); asking for more rows than
  ``efSearch`` widens the search to k.

Every type keeps the vectors themselves (``vectors()``), which incremental builds reuse.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

#: Below this many vectors exact (flat) search is fast enough and has perfect recall.
FLAT_MAX_VECTORS = 200_000
INDEX_TYPES = ("flat", "ivf", "hnsw")

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
#: Candidates kept by the graph search (raised to k when more rows are asked for).
HNSW_EF_SEARCH = 256

#: Lists per √n, the training sample per list, and k-means iterations (FAISS's default is 25;
#: 10 gives the same recall on the benchmark at 40% of the training time).
IVF_LISTS_PER_SQRT_N = 4
IVF_TRAIN_PER_LIST = 40
IVF_TRAIN_ITERATIONS = 10
IVF_TRAIN_SEED = 1234
#: Lists searched: a share of all lists, at least ``IVF_MIN_NPROBE``. A third, because questions
#: and their answers sit in different cells (see the module docstring).
IVF_NPROBE_SHARE = 1 / 3
IVF_MIN_NPROBE = 32

#: How each type is memory-mapped: the flat codes (``IO_FLAG_MMAP_IFC``), the IVF lists
#: (``IO_FLAG_MMAP``: read as mmapped on-disk lists). HNSW keeps its graph on the heap.
_MMAP_FLAGS = {
    "flat": faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY,
    "ivf": faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY,
}


def choose_index_type(n_vectors: int, flat_max: int = FLAT_MAX_VECTORS) -> str:
    return "flat" if n_vectors <= flat_max else "ivf"


def ivf_lists(n_vectors: int) -> int:
    """Number of inverted lists for ``n_vectors``: ``4·√n``, with enough training points each."""
    wanted = round(IVF_LISTS_PER_SQRT_N * math.sqrt(max(n_vectors, 1)))
    return max(1, min(wanted, n_vectors // IVF_TRAIN_PER_LIST))


def ivf_nprobe(n_lists: int) -> int:
    return max(1, min(n_lists, max(IVF_MIN_NPROBE, round(n_lists * IVF_NPROBE_SHARE))))


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
        elif kind == "ivf":
            index = _trained_ivf(vectors)
        else:
            raise ValueError(f"unknown FAISS index type {kind!r} (use one of {', '.join(INDEX_TYPES)})")
        if len(vectors):
            index.add(vectors)
        if kind == "ivf":
            index.make_direct_map()  # so vectors() can reconstruct rows for incremental builds
        return cls(index, kind)

    @classmethod
    def read(cls, path: Path, kind: str, *, mmap: bool = False) -> VectorIndex:
        """Read an index file. With ``mmap`` the vectors stay in the file's pages (flat: the codes;
        IVF: the inverted lists), read-only and shared by every process that maps the same
        file, instead of a private copy each. Safe because a version's files are never
        modified once written (a build writes a new version folder)."""
        flags = _MMAP_FLAGS.get(kind, 0) if mmap else 0
        index = faiss.read_index(str(path), flags)
        if kind == "hnsw":
            faiss.downcast_index(index).hnsw.efSearch = HNSW_EF_SEARCH
        elif kind == "ivf":
            ivf = faiss.extract_index_ivf(index)
            ivf.nprobe = ivf_nprobe(ivf.nlist)
            if ivf.direct_map.type == faiss.DirectMap.NoMap:
                ivf.make_direct_map()
        return cls(index, kind)

    def write(self, path: Path) -> None:
        """Write the index and fsync it. Write errors (a full disk) raise ``OSError``.

        ``faiss.write_index(index, filename)`` reports a failed final flush only on stderr
        ("file close error"), so a small index written to a full disk would look written. Going
        through a Python file object makes every failed write or flush raise.
        """
        with open(path, "wb") as handle:
            writer = faiss.PyCallbackIOWriter(handle.write)
            try:
                faiss.write_index(self.index, writer)
            finally:
                del writer
            handle.flush()
            os.fsync(handle.fileno())

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self.index.d)

    def vectors(self) -> np.ndarray:
        """All stored vectors (every index type keeps them), for incremental rebuilds."""
        if self.ntotal == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.index.reconstruct_n(0, self.ntotal)

    def reconstruct(self, rows: list[int]) -> np.ndarray:
        """The stored vectors of the given rows."""
        if not rows:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.vstack([self.index.reconstruct(int(r)) for r in rows]).astype(np.float32)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, row ids) of the k nearest rows per query; ids are -1 where fewer exist."""
        k = max(1, min(k, self.ntotal))
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self.kind == "hnsw" and k > self.index.hnsw.efSearch:
            # The graph search keeps efSearch candidates: asking for more than that needs more.
            params = faiss.SearchParametersHNSW(efSearch=k)
            return self.index.search(queries, k, params=params)
        return self.index.search(queries, k)


def _trained_ivf(vectors: np.ndarray) -> faiss.Index:
    n, dim = vectors.shape
    if n == 0:
        raise ValueError("an IVF index needs vectors to train on; use 'flat' for an empty index")
    n_lists = ivf_lists(n)
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, n_lists, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = IVF_TRAIN_ITERATIONS
    index.cp.seed = IVF_TRAIN_SEED
    # A fixed sample, so the same vectors always give the same index.
    sample_size = min(n, n_lists * IVF_TRAIN_PER_LIST)
    rows = np.sort(np.random.default_rng(IVF_TRAIN_SEED).choice(n, size=sample_size, replace=False))
    index.train(vectors[rows])
    index.nprobe = ivf_nprobe(n_lists)
    return index
