"""What the app's events and API endpoints do: ask the knowledge base, hand the results to ``ui.render``.

``Handlers`` holds the background loader and the settings; ``ui.app`` wires its methods to the
components (``respond``, ``clear``, ``search_view``, ``status_tick``, ``status_html``) and to the
named API endpoints (``ask`` → ``/ask``, ``search`` → ``/search``). The library's typed objects
(``Answer``, ``Hit``) become dicts only at the API boundary (``.to_dict()``).
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import gradio as gr

from rag.domain import Answer, Article
from rag.errors import RagError
from ui.loader import NOT_READY_MESSAGE, KBLoader
from ui.render import (
    mode_choices,
    render_conversation,
    render_hits,
    render_notice,
    render_pending,
    render_status,
    render_turn,
)

if TYPE_CHECKING:
    from rag.knowledge import KnowledgeBase
    from rag.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The largest k the sliders offer: paragraphs given to the answerer, and paragraphs a search lists.
MAX_ANSWER_K = 10
MAX_SEARCH_K = 20

UNFINISHED_MESSAGE = "The answer did not finish. Please ask again."


@dataclass(frozen=True)
class UIDefaults:
    """What the controls start at: the server's settings, within the sliders' ranges."""

    mode: str
    k: int
    search_k: int

    @classmethod
    def from_settings(cls, settings: Settings) -> UIDefaults:
        return cls(
            mode=settings.answer_mode,
            k=max(1, min(settings.answer_context_k, MAX_ANSWER_K)),
            search_k=max(1, min(settings.top_k, MAX_SEARCH_K)),
        )


@dataclass(frozen=True)
class Turn:
    """A finished turn as the session keeps it: what the library needs next, and its HTML."""

    question: str
    answer: str | None  # the answer's text; None when the turn ended in a problem
    abstained: bool | None
    error: str | None
    html: str

    @classmethod
    def answered(
        cls, index: int, question: str, answer: Answer, articles: dict[str, Article] | None = None
    ) -> Turn:
        html = render_turn(index, question, answer, articles=articles)
        return cls(question, answer.text, answer.abstained, None, html)

    @classmethod
    def failed(cls, index: int, question: str, problem: str) -> Turn:
        return cls(question, None, None, problem, render_turn(index, question, None, problem))


def history_of(turns: Sequence[Turn]) -> list[dict[str, str]]:
    """The conversation so far, as the library takes it (turns that failed are left out)."""
    history: list[dict[str, str]] = []
    for t in turns:
        if t.answer is None:
            continue
        history.append({"role": "user", "content": t.question})
        history.append({"role": "assistant", "content": t.answer})
    return history


def conversation_html(turns: Sequence[Turn]) -> str:
    return render_conversation([t.html for t in turns])


def problem_text(exc: BaseException) -> str:
    """What people are told about a failure: a library error as it is, anything else without details."""
    if isinstance(exc, RagError):
        text = str(exc) or type(exc).__name__
        return text[:1].upper() + text[1:]
    log.error("unexpected error in the UI", exc_info=exc)
    return f"Something went wrong ({type(exc).__name__}). The details are in the server's log."


def parse_history(history: list[dict[str, Any]] | str | None) -> list[dict[str, Any]] | None:
    """The API's ``history`` argument (a list, its JSON text, or nothing) as a list, or None."""
    if history is None or history == "":
        return None
    if isinstance(history, str):
        try:
            history = json.loads(history)
        except json.JSONDecodeError as exc:
            raise gr.Error(f"history is not valid JSON: {exc.msg}", print_exception=False) from None
    if not isinstance(history, list):
        raise gr.Error("history must be a list of {'role': ..., 'content': ...} turns", print_exception=False)
    return history


def articles_of(kb: KnowledgeBase, doc_ids: Iterable[str]) -> dict[str, Article]:
    """The whole articles behind some cards, by doc_id; one that cannot be had is left out
    (its card still shows the cited paragraph)."""
    found: dict[str, Article] = {}
    for doc_id in dict.fromkeys(doc_ids):
        try:
            article = kb.article(doc_id)
        except Exception:
            log.debug("no article %s", doc_id, exc_info=True)
            continue
        if article is not None:
            found[doc_id] = article
    return found


def with_defaults(fn: Callable[..., T], **defaults: Any) -> Callable[..., T]:
    """``fn`` with other defaults for some of its parameters, in its signature too.

    ``gr.api`` lists an endpoint's defaults from the signature (and a client fills them in), so an
    endpoint whose default is a setting is wired through this.
    """
    signature = inspect.signature(fn)
    signature = signature.replace(
        parameters=[
            p.replace(default=defaults[p.name]) if p.name in defaults else p for p in signature.parameters.values()
        ]
    )

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> T:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return fn(*bound.args, **bound.kwargs)

    call.__signature__ = signature  # type: ignore[attr-defined]
    return call


class Handlers:
    """The app's event handlers and API endpoints over a knowledge base loaded in the background."""

    def __init__(self, loader: KBLoader, settings: Settings, *, stream_interval: float | None = None) -> None:
        self.loader = loader
        self.settings = settings
        self.defaults = UIDefaults.from_settings(settings)
        #: Streamed text is re-rendered at most this often (seconds), not once per token.
        self.stream_interval = settings.ui_stream_interval_s if stream_interval is None else stream_interval

    # --- chat ----------------------------------------------------------------------------

    def respond(self, question: str, turns: list[Turn] | None, mode: str, k: float) -> Iterator[tuple]:
        """Answer in the chat: yields (question box, conversation, pending turn, turns) updates."""
        turns = list(turns or [])
        index = len(turns)
        question = question or ""
        kb, problem = self.loader.get()
        if kb is None:
            turns.append(Turn.failed(index, question, problem or NOT_READY_MESSAGE))
            yield "", conversation_html(turns), "", turns
            return
        yield "", gr.skip(), render_pending(index, question, ""), gr.skip()
        text = ""
        final: Answer | None = None
        error: str | None = None
        last = time.monotonic()
        try:
            for event in kb.answer_stream(question, history=history_of(turns) or None, mode=mode, k=int(k)):
                if isinstance(event, Answer):
                    final = event
                    continue
                text += str(event)
                now = time.monotonic()
                if now - last >= self.stream_interval:
                    last = now
                    yield gr.skip(), gr.skip(), render_pending(index, question, text), gr.skip()
        except Exception as exc:
            error = problem_text(exc)
        if error is None and final is not None:
            turns.append(Turn.answered(index, question, final, articles_of(kb, (c.doc_id for c in final.citations))))
        else:
            turns.append(Turn.failed(index, question, error or UNFINISHED_MESSAGE))
        yield gr.skip(), conversation_html(turns), "", turns

    def clear(self) -> tuple:
        """A new conversation: (question box, conversation, pending turn, turns)."""
        return "", conversation_html([]), "", []

    # --- search view -------------------------------------------------------------------

    def search_view(self, query: str, k: float) -> str:
        """The Search tab: the paragraphs that match, as cards (no answer)."""
        kb, problem = self.loader.get()
        if kb is None:
            return render_notice(problem or NOT_READY_MESSAGE)
        try:
            hits = kb.search(query or "", int(k))
        except Exception as exc:
            return render_notice(problem_text(exc))
        return render_hits(hits, articles_of(kb, (h.doc_id for h in hits)))

    # --- loading status ------------------------------------------------------------------

    def status_html(self) -> str:
        """The banner: a loading failure, "being loaded", or nothing once the knowledge base is ready."""
        failure = self.loader.get()[1] if self.loader.error is not None else None
        return render_status(loading=not self.loader.ready, failure=failure)

    def status_tick(self) -> tuple:
        """(banner, answer-mode radio, timer) updates; the timer stops once loading has finished."""
        done = self.loader.ready or self.loader.error is not None
        choices = mode_choices(self.loader.llm_available if self.loader.ready else None)
        return gr.HTML(value=self.status_html()), gr.Radio(choices=choices), gr.Timer(active=not done)

    # --- API endpoints -----------------------------------------------------------------

    def _api_kb(self) -> KnowledgeBase:
        self.loader.wait(self.settings.ui_api_ready_wait_s)
        kb, problem = self.loader.get()
        if kb is None:
            raise gr.Error(problem or NOT_READY_MESSAGE, print_exception=False)
        return kb

    def ask(
        self,
        question: str,
        history: list[dict[str, Any]] | str | None = None,
        mode: str | None = None,
        k: int | None = None,
    ) -> dict[str, Any]:
        """Answer a question from the articles: the answer text with [n] markers and its citations.

        Args:
            question: the question.
            history: earlier turns, [{"role": "user"|"assistant", "content": str}, ...] (list or JSON).
            mode: "auto", "extractive" or "llm" (default: the server's setting).
            k: paragraphs given to the answerer.
        """
        kb = self._api_kb()
        turns = parse_history(history)
        try:
            answer = kb.answer(question, history=turns, mode=mode or None, k=k or None)
        except Exception as exc:
            raise gr.Error(problem_text(exc), print_exception=False) from None
        return answer.to_dict()

    def search(self, query: str, k: int = 0) -> list[dict[str, Any]]:
        """The k paragraphs that best match the query (title, date, paragraph number, text, score)."""
        kb = self._api_kb()
        try:
            hits = kb.search(query, int(k) if k else None)
        except Exception as exc:
            raise gr.Error(problem_text(exc), print_exception=False) from None
        return [h.to_dict() for h in hits]
