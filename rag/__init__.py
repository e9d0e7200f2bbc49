"""Grounded, cited question answering over a folder of news articles, offline.

>>> import rag
>>> hits = rag.search("Which countries were in phase 2?", k=5)
>>> kb = rag.load(corpus_dir="seeds", index_dir="index")
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from rag.errors import CorpusError, IndexCorruptError, ModelNotInstalledError, QueryError, RagError
from rag.knowledge import KnowledgeBase, load
from rag.models import Answer, Article, Chunk, Citation, Hit, Paragraph
from rag.settings import Settings, get_settings

if TYPE_CHECKING:
    pass

__all__ = [
    "Answer", "Article", "Chunk", "Citation", "CorpusError", "Hit", "IndexCorruptError",
    "KnowledgeBase", "ModelNotInstalledError", "Paragraph", "QueryError", "RagError", "Settings",
    "default_kb", "get_settings", "load", "search",
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
