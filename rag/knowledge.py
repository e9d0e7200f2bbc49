"""The knowledge base: the facade that composes the stages over one corpus folder and its index.

It owns the lifecycle (build, load, swap on refresh) and wires each stage with what it needs:
the index store, the hybrid searcher over the live index, and the answerer, which receives the
searcher, the embedder, the settings and the chat model rather than this object.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable

from rag.answering import Answerer, Candidate, LLMTrial
from rag.domain import Answer, Article, Hit
from rag.embed import make_embedder
from rag.embed_base import VectorEmbeddings
from rag.entities import AnswerTypeModel
from rag.index import BuildReport, IndexStore
from rag.langchain_retriever import ParagraphRetriever
from rag.reader import Reader
from rag.searcher import Candidates, HybridSearcher
from rag.settings import Settings, get_settings

History = Sequence[dict[str, Any]] | None


@dataclass(frozen=True)
class IndexInfo:
    """What the live index is: its version folder and manifest, and how much it holds."""

    version_dir: Path
    manifest: dict[str, Any]
    articles: int
    paragraphs: int
    chunks: int


class KnowledgeBase:
    """A corpus and its index, loaded and ready to search and answer.

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
        embedder: VectorEmbeddings | None = None,
        chat_model: BaseChatModel | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.corpus_dir = Path(corpus_dir) if corpus_dir is not None else self.settings.corpus_dir
        self.index_dir = Path(index_dir) if index_dir is not None else self.settings.index_dir
        self.embedder = embedder or make_embedder(self.settings)
        self.store = IndexStore(self.index_dir, self.settings, self.embedder)
        self.reader: Reader | None = Reader.from_settings(self.settings)
        self._searcher: HybridSearcher | None = None
        self._refresh_lock = threading.Lock()
        self.last_build: BuildReport | None = None
        self.answer_types = AnswerTypeModel.load(self.settings.answer_type_model) if self.settings.answer_type_model else None
        self.answerer = Answerer(
            lambda: self.searcher, self.embedder, self.settings, chat_model, self.reader, self.answer_types
        )

    # --- lifecycle ---------------------------------------------------------------------

    def refresh(
        self, rebuild: bool = False, *, progress: bool | None = None, on_stage: Callable[[str], None] | None = None
    ) -> BuildReport:
        """Update the index from the corpus (only what changed) and swap it in.

        Searches already running keep the index they started with: the swap is one assignment.
        """
        with self._refresh_lock:
            report = self.store.build(self.corpus_dir, rebuild=rebuild, progress=progress, on_stage=on_stage)
            if self._searcher is None or report.version_dir != self._searcher.index.version_dir:
                self._searcher = HybridSearcher(self.store.load(), self.embedder, self.settings, self.reader)
            self.last_build = report
            return report

    def ensure_ready(self) -> KnowledgeBase:
        if self._searcher is None:
            self.refresh()
        return self

    @property
    def searcher(self) -> HybridSearcher:
        """The searcher over the live index (loaded on first use)."""
        self.ensure_ready()
        assert self._searcher is not None
        return self._searcher

    def index_info(self) -> IndexInfo:
        index = self.searcher.index
        return IndexInfo(
            version_dir=index.version_dir, manifest=index.manifest, articles=len(index.articles),
            paragraphs=len(index.paragraph_keys), chunks=len(index.chunks),
        )

    # --- articles and search -----------------------------------------------------------

    def article(self, doc_id: str) -> Article | None:
        """A parsed article of the live index (title, date, numbered paragraphs), or None."""
        return self.searcher.article(doc_id)

    def articles(self) -> list[Article]:
        """Every article of the live index, in corpus order."""
        return list(self.searcher.index.articles.values())

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        """The k paragraphs that best answer ``query``, best first."""
        return self.searcher.search(query, k)

    def dense_search(self, query: str, k: int) -> list[Hit]:
        """Dense similarity alone (for comparisons)."""
        return self.searcher.dense_search(query, k)

    def bm25_search(self, query: str, k: int) -> list[Hit]:
        """Paragraph BM25 alone (for comparisons)."""
        return self.searcher.bm25_search(query, k)

    def retrieval_candidates(self, query: str, rerank: int | None = None) -> Candidates:
        """Every candidate paragraph with all its retrieval signals (for tuning the fusion weights);
        the reader reads the first stage's ``rerank`` best (default: the setting)."""
        return self.searcher.candidates(query, all_signals=True, rerank=rerank)

    def as_retriever(self, k: int | None = None) -> ParagraphRetriever:
        """This knowledge base as a LangChain ``BaseRetriever`` (one Document per paragraph)."""
        return ParagraphRetriever(searcher=self, k=k or self.settings.top_k)

    # --- answers -----------------------------------------------------------------------

    def answer(self, question: str, history: History = None, mode: str | None = None, k: int | None = None) -> Answer:
        """A cited answer (or an abstention) to ``question``; see ``rag.answer``."""
        return self.answerer.answer(question, history, mode, k)

    def answer_stream(
        self, question: str, history: History = None, mode: str | None = None, k: int | None = None
    ) -> Iterator[str | Answer]:
        """Incremental answer text, then the final ``Answer``."""
        return self.answerer.stream(question, history, mode, k)

    def answer_candidates(self, question: str, history: History = None) -> list[Candidate]:
        """The extractive candidate answers to ``question``, each with the features its confidence
        is computed from and that confidence (what ``python -m evals.calibrate`` fits on)."""
        answerer = self.answerer
        return answerer.extractive_candidates(answerer.prepare(question, history, mode="extractive"))

    def llm_trial(self, question: str, history: History = None, judges: Sequence[str] = ("after", "before")) -> LLMTrial:
        """LLM mode's steps for ``question`` with no threshold applied: the model's answer as a
        candidate, its yes/no judgment in each form (what ``python -m evals.calibrate_llm`` fits on)."""
        return self.answerer.llm_trial(question, history, judges)

    def llm_available(self) -> bool:
        return self.answerer.llm_available()

    def chain(self, mode: str | None = None) -> Runnable:
        """The answering chain as a LangChain Runnable: ``{"question": ...}`` → ``Answer``."""
        return self.answerer.as_runnable(mode)


def load(
    corpus_dir: str | Path | None = None,
    index_dir: str | Path | None = None,
    settings: Settings | None = None,
) -> KnowledgeBase:
    """A ready knowledge base over any folder of .txt/.md articles (index built if missing or stale)."""
    return KnowledgeBase(corpus_dir, index_dir, settings).ensure_ready()
