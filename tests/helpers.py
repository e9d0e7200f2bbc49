"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel

from rag.answering import Answerer
from rag.knowledge import KnowledgeBase


def answerer_for(kb: KnowledgeBase, chat_model: BaseChatModel | None = None) -> Answerer:
    """An answerer over ``kb``'s live searcher, with a chat model of the test's choosing."""
    return Answerer(lambda: kb.searcher, kb.embedder, kb.settings, chat_model, kb.reader, kb.answer_types)
