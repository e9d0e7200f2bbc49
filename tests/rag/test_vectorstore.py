"""Tests of rag.vectorstore: memory-mapped reading gives the same index, read-only and shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.vectorstore import VectorIndex


def _vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_mmap_read_equals_plain_read(tmp_path: Path, kind: str) -> None:
    data = _vectors(4000)
    path = tmp_path / f"{kind}.faiss"
    VectorIndex.build(data, kind).write(path)
    plain = VectorIndex.read(path, kind)
    mapped = VectorIndex.read(path, kind, mmap=True)
    queries = _vectors(5, seed=1)
    for k in (10, 500):
        a, b = plain.search(queries, k), mapped.search(queries, k)
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(mapped.vectors(), plain.vectors())
    np.testing.assert_array_equal(mapped.reconstruct([3, 7]), data[[3, 7]])


def test_mmap_maps_the_file(tmp_path: Path) -> None:
    """The flat index's vectors are pages of the file (shared between processes), not a heap copy."""
    path = tmp_path / "flat.faiss"
    VectorIndex.build(_vectors(2000), "flat").write(path)
    mapped = VectorIndex.read(path, "flat", mmap=True)
    maps = Path("/proc/self/maps").read_text()
    assert str(path) in maps
    assert mapped.ntotal == 2000
