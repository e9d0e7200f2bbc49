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
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import gradio as gr

from rag.corpus_files import MAX_UPLOAD_BYTES, add_article, list_files, remove_article
from rag.domain import Answer, Article, Citation
from rag.errors import CorpusError, QueryError, RagError
from rag.lexicon import QUESTION_TOKENS, tokenize
from rag.llm import stop_generation_on
from rag.settings import ANSWER_MODES, Settings
from ui.indexer import BackgroundIndexer
from ui.loader import NOT_READY_MESSAGE, KBLoader
from ui.render import conversation_markdown as render_conversation_markdown
from ui.render import (
    esc,
    mode_choices,
    render_conversation,
    render_corpus,
    render_hint,
    render_hits,
    render_notice,
    render_pending,
    render_status,
    render_turn,
    turn_markdown,
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


#: The most turns a conversation keeps (in the browser, and given back to the server on each question).
MAX_TURNS: int = Settings.model_fields["ui_max_turns"].default


_CITATION_FIELDS = tuple(f.name for f in dataclass_fields(Citation))


def _probability(value: Any) -> float | None:
    """A probability kept by the browser (a number in [0, 1]), or None (missing, old state, altered)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        return None
    return float(value)


def _citation_from_dict(data: Any) -> Citation:
    """A ``Citation`` from its ``to_dict()``: keys it does not know are left out, ``support``
    may be missing (state kept before it existed). Raises TypeError when it is not one."""
    if not isinstance(data, dict):
        raise TypeError("a citation is a dict")
    fields = {k: data[k] for k in _CITATION_FIELDS if k in data}
    fields["support"] = _probability(data.get("support"))
    citation = Citation(**fields)
    if not isinstance(citation.quote, str):
        raise TypeError("a citation's quote is text")
    return citation


def _answer_from_dict(data: Any) -> Answer | None:
    """An ``Answer`` from its ``to_dict()`` (as the browser kept it), or None when it is not one.

    ``grounding`` (a property) is not read back; ``confidence`` and ``closest`` may be missing
    (state kept before they existed)."""
    if not isinstance(data, dict):
        return None
    try:
        citations = tuple(_citation_from_dict(c) for c in data.get("citations") or ())
        closest = _citation_from_dict(data["closest"]) if data.get("closest") is not None else None
        fields = {k: data[k] for k in ("question", "text") if k in data}
        answer = Answer(
            **fields,
            citations=citations,
            abstained=bool(data.get("abstained", False)),
            mode=str(data.get("mode") or "extractive"),
            standalone_question=data.get("standalone_question"),
            timings={k: float(v) for k, v in (data.get("timings") or {}).items() if isinstance(v, (int, float))},
            confidence=_probability(data.get("confidence")),
            closest=closest,
        )
    except (TypeError, ValueError, AttributeError):
        return None
    if not isinstance(answer.text, str):
        return None
    return answer


@dataclass(frozen=True)
class Turn:
    """A finished turn: the question and its answer, the problem it ended in, or the partial
    text of an answer that was stopped. Kept in the browser as ``to_dict()`` (JSON)."""

    question: str
    answer: Answer | None = None
    problem: str | None = None
    stopped: str | None = None  # the text written before the user stopped the answer

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer.to_dict() if self.answer is not None else None,
            "problem": self.problem,
            "stopped": self.stopped,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Turn | None:
        """A turn as the browser kept it; None when it is not one (an old or altered value)."""
        if isinstance(data, Turn):
            return data
        if not isinstance(data, dict) or not isinstance(data.get("question"), str):
            return None
        answer = _answer_from_dict(data.get("answer")) if data.get("answer") is not None else None
        problem, stopped = data.get("problem"), data.get("stopped")
        problem = problem if isinstance(problem, str) else None
        stopped = stopped if isinstance(stopped, str) else None
        if answer is None and problem is None and stopped is None:
            return None
        return cls(data["question"], answer, problem, stopped)

    def html(self, index: int, articles: dict[str, Article] | None = None) -> str:
        return render_turn(index, self.question, self.answer, self.problem, articles=articles, stopped=self.stopped)


def clean_turns(value: Any) -> list[Turn]:
    """The conversation as the browser sent it back: turns that are not turns are left out."""
    if not isinstance(value, list):
        return []
    turns = [t for t in (Turn.from_dict(v) for v in value[-MAX_TURNS:]) if t is not None]
    return turns


def turns_value(turns: Sequence[Turn]) -> list[dict[str, Any]]:
    """What the browser keeps: the turns as JSON-ready dicts."""
    return [t.to_dict() for t in turns[-MAX_TURNS:]]


def history_of(turns: Sequence[Turn]) -> list[dict[str, str]]:
    """The conversation so far, as the library takes it (failed and stopped turns are left out)."""
    history: list[dict[str, str]] = []
    for t in turns:
        if t.answer is None:
            continue
        history.append({"role": "user", "content": t.question})
        history.append({"role": "assistant", "content": t.answer.text})
    return history


def conversation_html(turns: Sequence[Turn], kb: KnowledgeBase | None = None) -> str:
    """The finished turns as HTML; their cards show the whole article when ``kb`` has it."""
    doc_ids = [c.doc_id for t in turns if t.answer is not None for c in _sources(t.answer)]
    articles = articles_of(kb, doc_ids) if kb is not None and doc_ids else {}
    return render_conversation([t.html(i, articles) for i, t in enumerate(turns)])


def _sources(answer: Answer) -> tuple[Citation, ...]:
    """The passages an answer shows: its citations, and an abstention's closest passage."""
    return answer.citations + ((answer.closest,) if answer.closest is not None else ())


class Run:
    """One answer being written, so that Stop and New conversation can end it."""

    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self.reason: str | None = None  # "stopped" or "cleared"

    def stop(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.stop_event.set()

    @property
    def stopped(self) -> bool:
        return self.stop_event.is_set()


class Runs:
    """The answers being written, per browser session (Gradio's ``session_hash``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, set[Run]] = {}

    def start(self, session: str | None) -> Run:
        run = Run()
        if session:
            with self._lock:
                self._runs.setdefault(session, set()).add(run)
        return run

    def finish(self, session: str | None, run: Run) -> None:
        if not session:
            return
        with self._lock:
            runs = self._runs.get(session)
            if runs is not None:
                runs.discard(run)
                if not runs:
                    del self._runs[session]

    def stop(self, session: str | None, reason: str) -> int:
        """Stop every answer of the session; how many were running."""
        if not session:
            return 0
        with self._lock:
            runs = list(self._runs.get(session, ()))
        for run in runs:
            run.stop(reason)
        return len(runs)


def session_of(request: Any) -> str | None:
    """The browser session an event came from (None outside a browser session, e.g. in tests)."""
    return getattr(request, "session_hash", None) or None


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


def _worker(open_stream: Callable[[], Iterator[Any]], events: queue.Queue, run: Run) -> None:
    """Run the library's answer stream on its own thread, handing each event over ``events``.

    On Stop (or when the page leaves) the local model is told to stop generating
    (``rag.llm.stop_generation_on``: LangChain does not close a model's stream when the chain's
    stream is closed), and the stream is closed.
    """
    stream: Iterator[Any] | None = None
    try:
        with stop_generation_on(run.stop_event):
            stream = open_stream()
            for event in stream:
                if run.stopped:
                    break
                events.put(("event", event))
            else:
                events.put(("done", None))
    except BaseException as exc:
        if not run.stopped:
            events.put(("error", exc))
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                log.debug("closing the answer stream failed", exc_info=True)


def _buttons(answering: bool) -> tuple[Any, Any]:
    """(Ask, Stop) updates: Stop replaces Ask while an answer is being written."""
    return gr.Button(visible=not answering), gr.Button(visible=answering)


class Handlers:
    """The app's event handlers and API endpoints over a knowledge base loaded in the background."""

    def __init__(self, loader: KBLoader, settings: Settings, *, stream_interval: float | None = None) -> None:
        self.loader = loader
        self.settings = settings
        self.defaults = UIDefaults.from_settings(settings)
        #: Streamed text is re-rendered at most this often (seconds), not once per token.
        self.stream_interval = settings.ui_stream_interval_s if stream_interval is None else stream_interval
        self.runs = Runs()
        self.indexer = BackgroundIndexer()

    # --- chat ----------------------------------------------------------------------------

    def _question_problem(self, question: str) -> str | None:
        """Why the question cannot be sent as it is (it stays in the box to be fixed), or None."""
        text = question.strip()
        if not text:
            return "Type a question first."
        limit = self.settings.max_query_chars
        if len(text) > limit:
            return (
                f"The question is too long ({len(text):,} characters; the limit is {limit:,}). "
                "Shorten it, then send it again."
            )
        return None

    def respond(
        self, question: str, turns: Any, mode: str, k: float, request: gr.Request = None  # type: ignore[assignment]
    ) -> Iterator[tuple]:
        """Answer in the chat. Yields (question box, conversation, pending turn, turns, hint, Ask, Stop).

        A question that cannot be sent (empty, too long, the index not loaded yet) stays in the
        box with a hint under it and adds nothing to the conversation. While the answer is being
        written, the pending turn shows the stage and the seconds so far; Stop ends it, marked as
        stopped; New conversation ends it and nothing of it comes back.
        """
        turns = clean_turns(turns)
        index = len(turns)
        question = question if isinstance(question, str) else ""
        problem = self._question_problem(question)
        kb, not_ready = self.loader.get()
        if problem is None and kb is None:
            problem = not_ready or NOT_READY_MESSAGE
        if problem is not None:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), render_hint(problem), *_buttons(False)
            return
        assert kb is not None
        session = session_of(request)
        run = self.runs.start(session)
        k = int(k)
        history = history_of(turns) or None

        def open_stream() -> Iterator[Any]:
            return kb.answer_stream(question, history=history, mode=mode, k=k)

        events: queue.Queue = queue.Queue()
        worker = threading.Thread(target=_worker, args=(open_stream, events, run), name="rag-ui-answer", daemon=True)
        started = time.monotonic()
        searching = f"Searching the articles and reading the best {k} paragraphs…"
        yield "", gr.skip(), render_pending(index, question, "", searching), gr.skip(), "", *_buttons(True)
        worker.start()
        text = ""
        final: Answer | None = None
        error: BaseException | None = None
        last_render = time.monotonic()
        try:
            while not run.stopped:
                try:
                    kind, event = events.get(timeout=min(0.25, max(self.stream_interval, 0.02)))
                except queue.Empty:
                    kind, event = "tick", None
                if kind == "done":
                    break
                if kind == "error":
                    error = event
                    break
                if kind == "event":
                    if isinstance(event, Answer):
                        final = event
                        continue
                    text += str(event)
                now = time.monotonic()
                if run.stopped or now - last_render < max(self.stream_interval, 0.25 if kind == "tick" else 0):
                    continue
                last_render = now
                seconds = f"{now - started:.0f} s"
                stage = f"Writing the answer… {seconds}" if text else f"{searching} {seconds}"
                yield gr.skip(), gr.skip(), render_pending(index, question, text, stage), gr.skip(), gr.skip(), \
                    gr.skip(), gr.skip()
        finally:
            if final is None and error is None:
                run.stop("gone")  # the page went away: stop writing
            self.runs.finish(session, run)
        if run.reason == "cleared":  # New conversation was pressed: it has already cleared everything
            yield gr.skip(), gr.skip(), "", gr.skip(), gr.skip(), *_buttons(False)
            return
        if run.reason == "stopped" and final is None:
            turns.append(Turn(question, stopped=text))
        elif error is not None:
            if isinstance(error, QueryError) and not text:  # the library refused the question itself
                yield question, gr.skip(), "", gr.skip(), render_hint(problem_text(error)), *_buttons(False)
                return
            turns.append(Turn(question, problem=problem_text(error)))
        elif final is not None:
            turns.append(Turn(question, answer=final))
        else:
            turns.append(Turn(question, problem=UNFINISHED_MESSAGE))
        yield gr.skip(), conversation_html(turns, kb), "", turns_value(turns), "", *_buttons(False)

    def stop(self, request: gr.Request = None) -> None:  # type: ignore[assignment]
        """Stop the answer being written in this browser session (it is kept, marked as stopped)."""
        self.runs.stop(session_of(request), "stopped")

    def clear(self, request: gr.Request = None) -> tuple:  # type: ignore[assignment]
        """A new conversation: ends an answer being written; (question box, conversation, pending, turns, hint)."""
        self.runs.stop(session_of(request), "cleared")
        return "", conversation_html([]), "", [], ""

    def restore(self, turns: Any, prefs: Any) -> tuple:
        """On page load: the conversation the browser kept, and the mode and k chosen before.
        (conversation, turns, mode, k)"""
        kept = clean_turns(turns)
        kb, _ = self.loader.get()
        prefs = prefs if isinstance(prefs, dict) else {}
        mode = prefs.get("mode")
        k = prefs.get("k")
        mode_update = gr.Radio(value=mode) if mode in ANSWER_MODES else gr.skip()
        k_ok = isinstance(k, (int, float)) and not isinstance(k, bool) and 1 <= k <= MAX_ANSWER_K
        k_update = gr.Slider(value=int(k)) if k_ok else gr.skip()
        return conversation_html(kept, kb), turns_value(kept), mode_update, k_update

    def save_prefs(self, mode: str, k: float) -> dict[str, Any]:
        """What the browser keeps of the controls: the answer mode and k."""
        return {"mode": mode if mode in ANSWER_MODES else self.defaults.mode, "k": int(k)}

    def export_markdown(self, turns: Any) -> str:
        """The whole conversation as Markdown (questions, answers, numbered sources)."""
        return conversation_markdown(clean_turns(turns))

    # --- search view -------------------------------------------------------------------

    def search_view(self, query: str, k: float) -> str:
        """The Search tab: the paragraphs that match, as cards (no answer); a card that holds
        none of the query's words says so, and when none does, a notice says they match weakly."""
        kb, problem = self.loader.get()
        if kb is None:
            return render_notice(problem or NOT_READY_MESSAGE)
        try:
            hits = kb.search(query or "", int(k))
        except Exception as exc:
            return render_notice(problem_text(exc))
        terms = set(tokenize(query or "")) - QUESTION_TOKENS
        unmatched = [bool(terms) and not terms & set(tokenize(f"{h.title}\n{h.text}")) for h in hits]
        return render_hits(hits, articles_of(kb, (h.doc_id for h in hits)), unmatched)

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

    # --- the corpus panel ----------------------------------------------------------------

    def corpus_html(self) -> str:
        """The articles of the live index, how fresh it is, and an update that is running."""
        kb, problem = self.loader.get()
        if kb is None:
            return render_notice(problem or NOT_READY_MESSAGE)
        state = self.indexer.state()
        try:
            info = kb.index_info()
            articles = kb.articles()
            indexed = {d: m.get("sha256") for d, m in (info.manifest.get("files") or {}).items()}
            on_disk = {f.doc_id: f.sha256 for f in list_files(kb.corpus_dir)}
        except Exception as exc:
            return render_notice(problem_text(exc))
        pending = [d for d, sha in on_disk.items() if indexed.get(d) != sha]
        removed = [d for d in indexed if d not in on_disk]
        updating = f"{state.stage} ({state.seconds:.0f} s)" if state.running else None
        return render_corpus(
            articles,
            created=info.manifest.get("created"),
            paragraphs=info.paragraphs,
            pending=pending,
            removed=removed,
            updating=updating,
            last_error=None if state.running else state.last_error,
        )

    def _removable(self) -> Any:
        kb, _ = self.loader.get()
        if kb is None:
            return gr.Dropdown(choices=[], value=None)
        try:
            choices = [(f.doc_id, f.doc_id) for f in list_files(kb.corpus_dir)]
        except Exception:
            choices = []
        return gr.Dropdown(choices=choices, value=None)

    def corpus_view(self) -> tuple:
        """(corpus panel, removal choices, corpus timer): the timer runs while the index is updated."""
        return self.corpus_html(), self._removable(), gr.Timer(active=self.indexer.running)

    def upload(self, files: Any) -> tuple:
        """Add uploaded .txt/.md files to the corpus folder, then update the index in the background.

        Each file is checked (``rag.corpus_files.add_article``); one that fails is named with the
        reason and changes nothing. (message, corpus panel, removal choices, corpus timer, file box)
        """
        kb, problem = self.loader.get()
        paths = [files] if isinstance(files, (str, Path)) else list(files or [])
        try:
            if kb is None:
                return (render_hint(problem or NOT_READY_MESSAGE), *self.corpus_view(), None)
            if not paths:
                return (render_hint("Choose one or more .txt or .md files first."), *self.corpus_view(), None)
            added: list[str] = []
            problems: list[str] = []
            for item in paths:
                path = Path(getattr(item, "name", None) or item)
                name = _original_name(path)
                try:
                    data = _read_upload(path, MAX_UPLOAD_BYTES)
                    added.append(add_article(kb.corpus_dir, name, data))
                except RagError as exc:
                    problems.append(_not_added(name, str(exc)))
                except OSError:
                    problems.append(_not_added(name, "the upload could not be read"))
            if added:
                self.indexer.request(kb)
            lines = []
            if added:
                lines.append(f"Added {', '.join(added)}; the index is being updated.")
            lines += problems
            message = render_upload_result(lines, ok=not problems)
            return (message, *self.corpus_view(), None)
        finally:
            for item in paths:
                _discard_upload(Path(getattr(item, "name", None) or item))

    def remove(self, doc_id: str | None) -> tuple:
        """Delete one article file from the corpus folder, then update the index in the background.
        (message, corpus panel, removal choices, corpus timer)"""
        kb, problem = self.loader.get()
        if kb is None:
            return (render_hint(problem or NOT_READY_MESSAGE), *self.corpus_view())
        if not doc_id:
            return (render_hint("Choose the article to remove first."), *self.corpus_view())
        try:
            remove_article(kb.corpus_dir, doc_id)
        except RagError as exc:
            return (render_upload_result([problem_text(exc)], ok=False), *self.corpus_view())
        self.indexer.request(kb)
        return (render_upload_result([f"Removed {doc_id}; the index is being updated."], ok=True), *self.corpus_view())

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

        Also: ``confidence`` (the estimated probability that the answer is right), ``grounding``
        ("stated": the citations state it; "closest": abstained, ``closest`` holds the nearest
        passage, which may not answer the question; "none": abstained, nothing close) and each
        citation's ``support`` (the reader's probability that its quote states the answer).

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


def conversation_markdown(turns: Sequence[Turn]) -> str:
    """The conversation as one Markdown document (what "Export conversation" saves)."""
    return render_conversation_markdown([turn_markdown(t.question, t.answer, t.problem, t.stopped) for t in turns])


def _not_added(name: str, reason: str) -> str:
    """Why a file was not added, naming the file once ("notes.txt" was not added: not valid UTF-8 ...)."""
    for prefix in (f"{name}: ", f'"{name}": ', f'"{name}" '):
        reason = reason.removeprefix(prefix)
    return f'"{name}" was not added: {reason}'


def render_upload_result(lines: Sequence[str], *, ok: bool) -> str:
    kind = "rag-upload-ok" if ok else "rag-upload-problem"
    items = "".join(f"<div>{esc(line)}</div>" for line in lines)
    return f'<div class="rag-hint-box {kind}" role="{"status" if ok else "alert"}">{items}</div>'


def _original_name(path: Path) -> str:
    """The name the file had on the user's machine (Gradio keeps it as the upload's file name)."""
    return path.name


def _upload_root() -> Path | None:
    try:
        from gradio.utils import get_upload_folder

        return Path(get_upload_folder()).resolve()
    except Exception:
        return None


def _read_upload(path: Path, limit: int) -> bytes:
    """An uploaded file's bytes, reading at most one byte past ``limit`` (the check says how big)."""
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        size = path.stat().st_size
        raise CorpusError(f'"{path.name}" is {size:,} bytes; the limit is {limit:,} bytes')
    return data


def _discard_upload(path: Path) -> None:
    """Delete Gradio's temporary copy of an upload (only inside its upload folder), so it is not served back."""
    root = _upload_root()
    try:
        resolved = path.resolve()
        if root is None or not resolved.is_relative_to(root) or resolved == root:
            return
        resolved.unlink(missing_ok=True)
        parent = resolved.parent
        if parent != root and parent.is_relative_to(root) and not any(parent.iterdir()):
            parent.rmdir()
    except OSError:
        log.debug("could not delete the upload %s", path, exc_info=True)
