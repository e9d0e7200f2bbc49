"""The vector index at (small) scale: type chosen by size, every type round-trips and is exact
enough, and the approximate types work through the whole index store (incremental builds
reuse their vectors). The full measurement is ``python -m evals.scale_bench``; this is its
fast check."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rag.index as index_module
from evals.scale_bench import clustered_vectors, recall, run_vectors
from rag import vectorstore
from rag.index import IndexStore
from rag.settings import Settings
from rag.vectorstore import VectorIndex, choose_index_type

N, DIM = 6_000, 64


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vectors = clustered_vectors(N, seed=3, dim=DIM, clusters=60, topics=10, subspace=8)
    queries = clustered_vectors(100, seed=3, point_seed=7, dim=DIM, clusters=60, topics=10, subspace=8)
    truth = VectorIndex.build(vectors, "flat").search(queries, 10)[1]
    return vectors, queries, truth


def test_type_is_chosen_by_size() -> None:
    assert choose_index_type(0) == choose_index_type(50) == choose_index_type(vectorstore.FLAT_MAX_VECTORS) == "flat"
    assert choose_index_type(vectorstore.FLAT_MAX_VECTORS + 1) == "ivf"
    assert choose_index_type(1_000, flat_max=999) == "ivf"


def test_ivf_parameters_scale() -> None:
    assert vectorstore.ivf_lists(1_000_000) == 4_000
    assert vectorstore.ivf_nprobe(4_000) == 1333
    for n in (1, 10, 1_000, 200_001, 5_000_000):
        lists = vectorstore.ivf_lists(n)
        assert 1 <= lists <= max(1, n // vectorstore.IVF_TRAIN_PER_LIST)
        assert 1 <= vectorstore.ivf_nprobe(lists) <= lists


def test_data_generator_is_deterministic() -> None:
    a = clustered_vectors(500, seed=1, dim=32, clusters=20, topics=4, subspace=4)
    b = clustered_vectors(500, seed=1, dim=32, clusters=20, topics=4, subspace=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("kind", vectorstore.INDEX_TYPES)
def test_every_type_round_trips_and_finds_neighbours(
    kind: str, data: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    vectors, queries, truth = data
    built = VectorIndex.build(vectors, kind)
    built.write(tmp_path / "v.faiss")
    index = VectorIndex.read(tmp_path / "v.faiss", kind)
    assert (index.kind, index.ntotal, index.dimension) == (kind, N, DIM)
    np.testing.assert_allclose(index.vectors(), vectors, atol=1e-6)
    assert recall(index.search(queries, 10)[1], truth) >= 0.95
    # The retriever asks for up to 1,000 rows: all valid and distinct, best first.
    scores, ids = index.search(queries[:5], 1000)
    assert ids.shape == (5, 1000)
    for row_scores, row_ids in zip(scores, ids, strict=True):
        valid = row_ids[row_ids >= 0]
        assert len(valid) == len(set(valid.tolist()))
        assert np.all(np.diff(row_scores[row_ids >= 0]) <= 1e-6)
    if kind == "hnsw":
        assert (ids >= 0).all(), "HNSW must search wider than efSearch when asked for more"


def test_same_vectors_give_the_same_ivf_index(data: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    vectors, queries, _ = data
    a, b = VectorIndex.build(vectors, "ivf"), VectorIndex.build(vectors, "ivf")
    np.testing.assert_array_equal(a.search(queries, 10)[1], b.search(queries, 10)[1])


def test_ivf_needs_vectors() -> None:
    with pytest.raises(ValueError, match="flat"):
        VectorIndex.build(np.zeros((0, 8), dtype=np.float32), "ivf")
    with pytest.raises(ValueError, match="unknown FAISS index type"):
        VectorIndex.build(np.zeros((3, 8), dtype=np.float32), "lsh")


class HashEmbedder:
    dimension = 32

    def describe(self) -> dict[str, Any]:
        return {"model": "hash", "dimension": self.dimension, "fingerprint": "hash-32"}

    def encode(self, texts: list[str], *, progress: bool | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            out[i] = np.random.default_rng(seed).standard_normal(self.dimension)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_index_through_the_index_store(kind: str, tiny_corpus, tiny_articles: dict[str, str],
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the threshold the store writes an approximate index, loads it and reuses its vectors."""
    monkeypatch.setattr(index_module, "choose_index_type", lambda n: kind)
    corpus = tiny_corpus()
    store = IndexStore(tmp_path / "index", Settings(), HashEmbedder())  # type: ignore[arg-type]
    store.build(corpus)
    loaded = store.load()
    assert loaded.manifest["faiss"]["type"] == kind and loaded.vectors.kind == kind
    rows = [0, len(loaded.chunks) - 1]
    np.testing.assert_array_equal(loaded.vectors.reconstruct(rows), loaded.vectors.vectors()[rows])
    before = {c.chunk_id: v for c, v in zip(loaded.chunks, loaded.vectors.vectors(), strict=True)}
    (corpus / "trains.txt").write_text(tiny_articles["trains.txt"] + "\n\nOne more paragraph.", encoding="utf-8")
    report = store.build(corpus)
    assert sorted(report.reused_files) == ["apples.txt", "bees.txt"]
    reloaded = store.load()
    after = dict(zip((c.chunk_id for c in reloaded.chunks), reloaded.vectors.vectors(), strict=True))
    for chunk_id, vector in before.items():
        if not chunk_id.startswith("trains.txt"):
            np.testing.assert_array_equal(after[chunk_id], vector)


def test_scale_bench_vectors_part_runs(tmp_path: Path) -> None:
    result = run_vectors(3_000, ["flat", "ivf", "hnsw"], tmp_path, n_queries=30, hnsw_max=10_000)
    assert result["chosen_type"] == "flat"
    for kind in ("flat", "ivf", "hnsw"):
        entry = result["types"][kind]
        assert entry["recall_at_10"] >= 0.95, (kind, entry)
        assert entry["bytes_per_vector_file"] >= 4 * 384
    assert result["types"]["flat"]["recall_at_10"] == 1.0
    assert list(tmp_path.iterdir()) == []  # index files are removed after measuring
