"""Loading the knowledge base in a background thread, so the page is up at once."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rag.errors import RagError

if TYPE_CHECKING:
    from rag.knowledge import KnowledgeBase

log = logging.getLogger(__name__)

NOT_READY_MESSAGE = "The index is still being built or loaded. Please wait a moment, then ask again."


class KBLoader:
    """Holds the knowledge base, loading it in a background thread.

    ``kb_or_factory`` is a knowledge base (its ``ensure_ready()`` runs in the background) or a
    function that returns a ready one (e.g. ``lambda: rag.load(corpus, index)``).
    """

    def __init__(self, kb_or_factory: KnowledgeBase | Callable[[], KnowledgeBase]) -> None:
        self._source = kb_or_factory
        self._kb: KnowledgeBase | None = None
        self._error: str | None = None
        self._llm_available = False
        self._done = threading.Event()
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._load, name="rag-kb-loader", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        try:
            source = self._source
            kb = source() if callable(source) else source.ensure_ready()
            try:
                self._llm_available = bool(kb.llm_available())
            except Exception:  # the LLM is optional: without it, extractive answers still work
                log.warning("could not tell whether the LLM is available", exc_info=True)
                self._llm_available = False
            self._kb = kb
        except RagError as exc:
            self._error = str(exc)
        except Exception as exc:
            log.exception("the knowledge base could not be loaded")
            self._error = f"{type(exc).__name__}: {exc}"
        finally:
            self._done.set()

    @property
    def ready(self) -> bool:
        return self._kb is not None

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def llm_available(self) -> bool:
        return self._llm_available

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until loading has finished (ready or failed); True when it has."""
        return self._done.wait(timeout)

    def get(self) -> tuple[KnowledgeBase | None, str | None]:
        """The knowledge base, or None and a message for people saying why not."""
        if self._kb is not None:
            return self._kb, None
        if self._error is not None:
            return None, f"The knowledge base could not be loaded: {self._error}"
        return None, NOT_READY_MESSAGE
