"""Grounded, cited question answering over a folder of news articles, offline.

>>> import rag
>>> hits = rag.search("Which countries were in phase 2?", k=5)
>>> kb = rag.load(corpus_dir="seeds", index_dir="index")
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from rag.domain import Answer, Article, Chunk, Citation, Hit, Paragraph
from rag.errors import CorpusError, IndexCorruptError, ModelNotInstalledError, QueryError, RagError
from rag.knowledge import KnowledgeBase, load
from rag.settings import Settings, get_settings

__all__ = [
    "Answer",
    "Article",
    "Chunk",
    "Citation",
    "CorpusError",
    "Hit",
    "IndexCorruptError",
    "KnowledgeBase",
    "ModelNotInstalledError",
    "Paragraph",
    "QueryError",
    "RagError",
    "Settings",
    "answer",
    "answer_stream",
    "default_kb",
    "get_settings",
    "load",
    "search",
]

_default_kb: KnowledgeBase | None = None
_default_lock = threading.Lock()


def default_kb() -> KnowledgeBase:
    """The knowledge base over the default corpus (``seeds/``) and index (``index/``)."""
    global _default_kb
    with _default_lock:
        if _default_kb is None:
            _default_kb = load()
        return _default_kb


def search(query: str, k: int = 5) -> list[Hit]:
    """Search the default corpus: the k best paragraphs for ``query``."""
    return default_kb().search(query, k)


def answer(question: str, history: list[dict[str, str]] | None = None, mode: str = "auto", k: int | None = None) -> Answer:
    """A grounded answer from the default corpus; every claim ends with [n] citation markers."""
    return default_kb().answer(question, history=history, mode=mode, k=k)


def answer_stream(
    question: str, history: list[dict[str, str]] | None = None, mode: str = "auto", k: int | None = None
) -> Iterator[str | Answer]:
    """Incremental answer text (str events), then the final ``Answer``."""
    return default_kb().answer_stream(question, history=history, mode=mode, k=k)
