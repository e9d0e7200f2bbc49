"""LangChain ``BaseRetriever`` over the hybrid paragraph search.

Each ``Document`` is one paragraph; its metadata carries everything a citation needs.

>>> from rag.retriever import ParagraphRetriever
>>> retriever = ParagraphRetriever(corpus_dir="seeds", index_dir="index", k=3)
>>> docs = retriever.invoke("Who funded the 2021 workshop?")
>>> docs[0].metadata["doc_id"], docs[0].metadata["paragraph"]
('003_21bb20fa281d6cc8.txt', 2)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, model_validator

from rag.models import Hit


def hit_to_document(hit: Hit) -> Document:
    meta = hit.to_dict()
    text = meta.pop("text")
    return Document(page_content=text, metadata=meta, id=f"{hit.doc_id}#p{hit.paragraph}")


def document_to_hit(doc: Document) -> Hit:
    meta = doc.metadata
    return Hit(
        doc_id=meta["doc_id"], title=meta.get("title", ""), date=meta.get("date"),
        paragraph=int(meta["paragraph"]), text=doc.page_content, start=int(meta.get("start", 0)),
        end=int(meta.get("end", len(doc.page_content))), score=float(meta.get("score", 0.0)),
    )


class ParagraphRetriever(BaseRetriever):
    """Returns the ``k`` best paragraphs as Documents (``k`` may also be passed to ``invoke``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    kb: Any = Field(default=None, description="a rag.KnowledgeBase; loaded from the folders when omitted")
    corpus_dir: str | Path | None = None
    index_dir: str | Path | None = None
    k: int = Field(default=5, ge=1, le=100)

    @model_validator(mode="after")
    def _load_kb(self) -> ParagraphRetriever:
        if self.kb is None:
            from rag.knowledge import load

            self.kb = load(self.corpus_dir, self.index_dir)
        return self

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None, **_: Any
    ) -> list[Document]:
        return [hit_to_document(h) for h in self.kb.search(query, k or self.k)]
