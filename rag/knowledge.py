"""The knowledge base: a corpus folder, its index, and search over it (answering plugs in here)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import Runnable

from rag.embed import SentenceTransformerEmbeddings
from rag.index import BuildReport, IndexStore
from rag.models import Answer, Article, Hit
from rag.retrieve import HybridSearcher
from rag.settings import Settings, get_settings

if TYPE_CHECKING:
    from rag.answer import AnswerPipeline

History = Sequence[dict[str, Any]] | None
log = logging.getLogger(__name__)


class KnowledgeBase:
    """A corpus and its index, loaded and ready to search.

    >>> import rag
    >>> kb = rag.load(corpus_dir="seeds", index_dir="index")   # builds if missing or stale
    >>> kb.search("Which countries were in phase 2?", k=3)[0].doc_id
    '004_39012777520c72e4.txt'
    """

    def __init__(
        self,
        corpus_dir: str | Path | None = None,
        index_dir: str | Path | None = None,
        settings: Settings | None = None,
        embedder: SentenceTransformerEmbeddings | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.corpus_dir = Path(corpus_dir) if corpus_dir is not None else self.settings.corpus_dir
        self.index_dir = Path(index_dir) if index_dir is not None else self.settings.index_dir
        self.embedder = embedder or SentenceTransformerEmbeddings(settings=self.settings)
        self.store = IndexStore(self.index_dir, self.settings, self.embedder)
        self._searcher: HybridSearcher | None = None
        self._refresh_lock = threading.Lock()
        self.last_build: BuildReport | None = None
        self._pipeline: AnswerPipeline | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def refresh(self, rebuild: bool = False) -> BuildReport:
        """Update the index from the corpus (only what changed) and swap it in.

        Searches already running keep the index they started with: the swap is one assignment.
        """
        with self._refresh_lock:
            report = self.store.build(self.corpus_dir, rebuild=rebuild)
            if self._searcher is None or report.version_dir != self._searcher.index.version_dir:
                self._searcher = HybridSearcher(self.store.load(), self.embedder, self.settings)
            self.last_build = report
            return report

    def ensure_ready(self) -> KnowledgeBase:
        if self._searcher is None:
            self.refresh()
        return self

    @property
    def searcher(self) -> HybridSearcher:
        self.ensure_ready()
        assert self._searcher is not None
        return self._searcher

    # --- search ------------------------------------------------------------------------

    def article(self, doc_id: str) -> Article | None:
        """A parsed article of the live index (title, date, numbered paragraphs), or None."""
        return self.searcher.index.articles.get(doc_id)

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        """The k paragraphs that best answer ``query``, best first."""
        return self.searcher.search(query, k)

    # --- answers -----------------------------------------------------------------------

    @property
    def pipeline(self) -> AnswerPipeline:
        if self._pipeline is None:
            from rag.answer import AnswerPipeline

            self._pipeline = AnswerPipeline(self)
        return self._pipeline

    def answer(self, question: str, history: History = None, mode: str | None = None, k: int | None = None) -> Answer:
        """A cited answer (or an abstention) to ``question``; see ``rag.answer``."""
        return self.pipeline.answer(question, history, mode, k)

    def answer_stream(
        self, question: str, history: History = None, mode: str | None = None, k: int | None = None
    ) -> Iterator[str | Answer]:
        """Incremental answer text, then the final ``Answer``."""
        return self.pipeline.stream(question, history, mode, k)

    def llm_available(self) -> bool:
        return self.pipeline.llm_available()

    def chain(self, mode: str | None = None) -> Runnable:
        """The answering chain as a LangChain Runnable: ``{"question": ...}`` → ``Answer``."""
        return self.pipeline.as_runnable(mode)

    def as_retriever(self, k: int | None = None):
        from rag.retriever import ParagraphRetriever

        return ParagraphRetriever(kb=self, k=k or self.settings.top_k)


def load(
    corpus_dir: str | Path | None = None,
    index_dir: str | Path | None = None,
    settings: Settings | None = None,
) -> KnowledgeBase:
    """A ready knowledge base over any folder of .txt/.md articles (index built if missing or stale)."""
    return KnowledgeBase(corpus_dir, index_dir, settings).ensure_ready()
