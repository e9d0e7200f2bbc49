"""Updating the index in a background thread after an upload or a removal.

``kb.refresh()`` re-embeds only what changed and swaps the new index in with one assignment, so
questions asked meanwhile are answered from the old index. ``BackgroundIndexer`` runs one
refresh at a time (a request made while one runs is queued behind it) and keeps what the corpus
panel shows: the stage, how long it has been running, and how the last one ended.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag.errors import RagError

if TYPE_CHECKING:
    from rag.knowledge import KnowledgeBase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexerState:
    """A snapshot: whether a refresh runs (its stage, seconds so far), and the last one's outcome."""

    running: bool
    stage: str
    seconds: float
    last_summary: str | None
    last_error: str | None
    generation: int  # how many refreshes have finished (the panel re-reads the articles when it moves)


class BackgroundIndexer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pending = False
        self._stage = ""
        self._started = 0.0
        self._summary: str | None = None
        self._error: str | None = None
        self._generation = 0

    def request(self, kb: KnowledgeBase) -> None:
        """Refresh the index from the corpus in the background (again after the running one, if any)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._pending = True
                return
            self._start(kb)

    def _start(self, kb: KnowledgeBase) -> None:
        self._pending = False
        self._stage = "scanning the corpus"
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, args=(kb,), name="rag-ui-indexer", daemon=True)
        self._thread.start()

    def _on_stage(self, name: str) -> None:
        with self._lock:
            self._stage = name

    def _run(self, kb: KnowledgeBase) -> None:
        summary = error = None
        try:
            report = kb.refresh(on_stage=self._on_stage, progress=False)
            summary = report.summary()
        except RagError as exc:
            error = str(exc)
        except Exception as exc:  # never a traceback on the page; the log has it
            log.exception("updating the index failed")
            error = f"updating the index failed ({type(exc).__name__}); the details are in the server's log"
        with self._lock:
            self._summary, self._error = summary, error
            self._generation += 1
            if self._pending:
                self._start(kb)
            else:
                self._stage = ""

    @property
    def running(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def state(self) -> IndexerState:
        with self._lock:
            running = self._thread is not None and self._thread.is_alive()
            return IndexerState(
                running=running,
                stage=self._stage if running else "",
                seconds=time.monotonic() - self._started if running else 0.0,
                last_summary=self._summary,
                last_error=self._error,
                generation=self._generation,
            )

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no refresh runs or is queued (for tests); True when idle."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                thread = self._thread
            if thread is None:
                return True
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
            with self._lock:
                if self._thread is thread and not thread.is_alive():
                    return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
