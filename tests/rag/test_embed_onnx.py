"""Tests of the ONNX Runtime embedder (rag.embed.OnnxEmbeddings): the same vectors as torch, near enough."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rag.embed import OnnxEmbeddings, SentenceTransformerEmbeddings, make_embedder
from rag.settings import Settings

pytest.importorskip("onnxruntime", reason='onnxruntime is not installed (pip install -e ".[onnx]")')
pytest.importorskip("onnx", reason='onnx is not installed (pip install -e ".[onnx]")')

TEXTS = ["Cooperatives in Asia met in Bangkok.", "Who funded the 2021 workshop?", "A longer text " * 40]


@pytest.mark.slow
@pytest.mark.parametrize("quantize", [False, True])
def test_onnx_vectors_match_torch(tmp_path: Path, embedder: SentenceTransformerEmbeddings, quantize: bool) -> None:
    onnx = OnnxEmbeddings(settings=Settings(models_dir=tmp_path, onnx_int8=quantize))
    vectors = onnx.encode(TEXTS)
    reference = embedder.encode(TEXTS)
    assert vectors.shape == reference.shape
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosine = np.sum(vectors * reference, axis=1)
    # int8 is lossy: measured 0.97 on short texts, 0.84 on a long repetitive one (fp32: 1.0).
    assert cosine.min() > (0.8 if quantize else 0.9999), cosine
    # fp32 shares torch's vector space (its fingerprint); int8 has its own.
    assert (onnx.describe()["fingerprint"] == embedder.describe()["fingerprint"]) is not quantize
    assert (tmp_path / "onnx").is_dir()  # exported once, under models_dir
    # Its pool threads do not spin after a run: they would take the cores the search needs next.
    session, _ = onnx._load()
    assert session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"


@pytest.mark.slow
def test_an_index_built_by_torch_is_served_by_onnx_fp32_but_not_by_int8(
    tmp_path: Path, tiny_corpus: Callable[..., Path], embedder: SentenceTransformerEmbeddings
) -> None:
    from rag.index import IndexStore

    corpus = tiny_corpus()
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", models_dir=tmp_path / "models")
    IndexStore(settings.index_dir, settings, embedder).build(corpus, progress=False)
    fp32 = OnnxEmbeddings(settings=settings.model_copy(update={"embedding_backend": "onnx"}))
    assert not IndexStore(settings.index_dir, settings, fp32).is_stale(corpus)
    report = IndexStore(settings.index_dir, settings, fp32).build(corpus, progress=False)
    assert report.up_to_date  # nothing re-embedded
    int8 = OnnxEmbeddings(settings=settings.model_copy(update={"embedding_backend": "onnx", "onnx_int8": True}))
    assert IndexStore(settings.index_dir, settings, int8).is_stale(corpus)


def test_onnx_backend_is_registered() -> None:
    assert isinstance(make_embedder(Settings(embedding_backend="onnx")), OnnxEmbeddings)
