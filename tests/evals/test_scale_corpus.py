"""Tests of evals.scale_corpus's composed embeddings: pieces cached once, per vector space."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from evals.scale_corpus import ComposedEmbeddings
from rag.embed_base import VectorEmbeddings, unit_rows


class _Fake(VectorEmbeddings):
    def __init__(self, fingerprint: str, seed: int) -> None:
        super().__init__()
        self.fingerprint, self.seed, self.calls = fingerprint, seed, 0

    @property
    def dimension(self) -> int:
        return 8

    def describe(self) -> dict[str, Any]:
        return {"backend": "fake", "dimension": 8, "fingerprint": self.fingerprint}

    def encode(self, texts: list[str], *, progress: bool | None = None) -> np.ndarray:
        self.calls += len(texts)
        rows = [np.random.default_rng([self.seed, sum(map(ord, t))]).normal(size=8) for t in texts]
        return unit_rows(np.array(rows, dtype=np.float32))


def test_pieces_are_embedded_once_and_cached_per_vector_space(tmp_path: Path) -> None:
    text = "A title\nOne sentence here. Another sentence there."
    first = _Fake("model-a", 1)
    made = ComposedEmbeddings(first, tmp_path).encode([text])
    assert first.calls == 3 and np.isclose(np.linalg.norm(made), 1.0)
    again = _Fake("model-a", 1)
    np.testing.assert_allclose(ComposedEmbeddings(again, tmp_path).encode([text]), made)
    assert again.calls == 0  # read from the cache
    # Another model's pieces are never mixed in: it embeds its own, in a folder of its own.
    other = _Fake("model-b", 2)
    assert not np.allclose(ComposedEmbeddings(other, tmp_path).encode([text]), made)
    assert other.calls == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-a", "model-b"]
