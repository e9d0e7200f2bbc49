"""LangChain ``BaseRetriever`` over the hybrid paragraph search.

Each ``Document`` is one paragraph; its metadata carries everything a citation needs.

>>> import rag
>>> retriever = rag.load(corpus_dir="seeds", index_dir="index").as_retriever(k=3)
>>> docs = retriever.invoke("Who funded the 2021 workshop?")
>>> docs[0].metadata["doc_id"], docs[0].metadata["paragraph"]
('003_21bb20fa281d6cc8.txt', 2)
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from rag.domain import Hit


def hit_to_document(hit: Hit) -> Document:
    meta = hit.to_dict()
    text = meta.pop("text")
    return Document(page_content=text, metadata=meta, id=f"{hit.doc_id}#p{hit.paragraph}")


@runtime_checkable
class SearchesParagraphs(Protocol):
    """Anything that ranks paragraphs: a ``rag.KnowledgeBase``, a ``HybridSearcher``, your own."""

    def search(self, query: str, k: int | None = None) -> list[Hit]: ...


class ParagraphRetriever(BaseRetriever):
    """Returns the ``k`` best paragraphs as Documents (``k`` may also be passed to ``invoke``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    searcher: SearchesParagraphs = Field(description="what ranks the paragraphs, e.g. rag.load(...)")
    k: int = Field(default=5, ge=1, le=100)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None, **_: Any
    ) -> list[Document]:
        return [hit_to_document(h) for h in self.searcher.search(query, k or self.k)]
