"""The chat UI: cited, streamed answers over the indexed articles, and a search view.

``build_app(kb_or_factory)`` returns the ``gr.Blocks``; ``serve(...)`` (what ``rag serve`` runs)
builds it and listens on 127.0.0.1 by default, without a share link. The knowledge base is loaded
in a background thread, so the page is up at once and says "the index is being loaded" until then.

This module only presents: retrieval and answering are the library's (``kb.search``,
``kb.answer_stream``). Every piece of article text, question and answer is ``html.escape``-d before
it goes into HTML; only the markup written here (cards, ``<mark>``, marker links) is not.

Named API endpoints for ``gradio_client``:

- ``/ask`` (question, history, mode, k) → ``Answer.to_dict()``
- ``/search`` (query, k) → a list of ``Hit.to_dict()``
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from rag.errors import RagError
from rag.domain import Answer

log = logging.getLogger(__name__)

#: Streamed text is re-rendered at most this often (seconds), not once per token.
STREAM_INTERVAL = 0.1
#: How long an API call waits for a knowledge base that is still loading (seconds).
API_READY_WAIT = 60.0

DEFAULT_EXAMPLES = (
    "Who funded the country studies and workshops?",
    "Which countries were part of the mapping study in phase 2?",
    "When was the research orientation held?",
    "What did Benjamin Velasco present at the webinar?",
)

MODE_AUTO = "auto"
MODE_EXTRACTIVE = "extractive"
MODE_LLM = "llm"
MODE_LABELS = {
    MODE_AUTO: "Auto",
    MODE_EXTRACTIVE: "Instant (extractive)",
    MODE_LLM: "LLM (generative)",
}

LOADING_MESSAGE = (
    "The index is being built or loaded. This can take a minute the first time; "
    "you can ask as soon as this message goes away."
)
NOT_READY_MESSAGE = "The index is still being built or loaded. Please wait a moment, then ask again."

KBLike = Any  # a rag.KnowledgeBase, or anything with the same search/answer_stream/llm_available


# --------------------------------------------------------------------------------------
# Loading the knowledge base in the background
# --------------------------------------------------------------------------------------


class KBLoader:
    """Holds the knowledge base, loading it in a background thread.

    ``kb_or_factory`` is a knowledge base (its ``ensure_ready()`` is called in the background, if
    it has one) or a function that returns one (e.g. ``lambda: rag.load(corpus, index)``).
    """

    def __init__(self, kb_or_factory: KBLike | Callable[[], KBLike]) -> None:
        self._source = kb_or_factory
        self._kb: KBLike | None = None
        self._error: str | None = None
        self._llm_available = False
        self._done = threading.Event()
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._load, name="rag-kb-loader", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        try:
            source = self._source
            if hasattr(source, "answer_stream") or not callable(source):
                kb = source
                if hasattr(kb, "ensure_ready"):
                    kb.ensure_ready()
            else:
                kb = source()
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

    def get(self) -> tuple[KBLike | None, str | None]:
        """The knowledge base, or None and a message for people saying why not."""
        if self._kb is not None:
            return self._kb, None
        if self._error is not None:
            return None, f"The knowledge base could not be loaded: {self._error}"
        return None, NOT_READY_MESSAGE


# --------------------------------------------------------------------------------------
# Rendering (pure functions: strings in, escaped HTML out)
# --------------------------------------------------------------------------------------

_MARKER = re.compile(r"\[(\d{1,3})\]")
_UNSUPPORTED = "[unsupported]"


def esc(text: Any) -> str:
    """Text made safe for HTML (quotes too, so it can also go into attributes)."""
    return html.escape("" if text is None else str(text), quote=True)


def format_date(date: str | None) -> str:
    if not date:
        return ""
    try:
        return _dt.date.fromisoformat(date).strftime("%-d %B %Y")
    except ValueError:
        return date


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def highlight(text: str, quote: str | None) -> str:
    """The escaped paragraph with the (exact) quote wrapped in ``<mark>``."""
    text = text or ""
    if quote:
        at = text.find(quote)
        if at >= 0:
            end = at + len(quote)
            return f"{esc(text[:at])}<mark>{esc(text[at:end])}</mark>{esc(text[end:])}"
    return esc(text)


def render_answer_text(text: str, prefix: str, numbers: Sequence[int]) -> str:
    """The escaped answer text; each ``[n]`` of a known source becomes a link to its card."""
    known = set(numbers)

    def link(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n not in known:
            return match.group(0)
        return f'<a class="rag-cite" href="#{prefix}-{n}" title="Source {n}">[{n}]</a>'

    out = _MARKER.sub(link, esc(text))
    return out.replace(
        esc(_UNSUPPORTED),
        '<span class="rag-unsupported" title="No article paragraph supports this sentence">unsupported</span>',
    )


def article_of(kb: KBLike | None, doc_id: str) -> Any | None:
    """The whole article (title, date, paragraphs) from the loaded index, or None."""
    if kb is None:
        return None
    try:
        accessor = getattr(kb, "article", None)
        if callable(accessor):
            return accessor(doc_id)
        return kb.searcher.index.articles.get(doc_id)
    except Exception:  # the card still shows the cited paragraph
        log.debug("no article %s", doc_id, exc_info=True)
        return None


def render_article(article: Any, cited: int, quote: str | None, anchor: str) -> str:
    """A ``<details>`` with every paragraph of the article; the cited one is marked and anchored."""
    paragraphs = list(_get(article, "paragraphs", ()) or ())
    if not paragraphs:
        return ""
    rows = []
    for p in paragraphs:
        number = _get(p, "number")
        text = _get(p, "text", "")
        if number == cited:
            rows.append(
                f'<p class="rag-cited" id="{anchor}-p{number}"><span class="rag-pnum">¶{number}</span>'
                f"{highlight(text, quote)}</p>"
            )
        else:
            rows.append(f'<p><span class="rag-pnum">¶{number}</span>{esc(text)}</p>')
    return (
        '<details class="rag-article">'
        f"<summary>Read the whole article ({len(paragraphs)} paragraphs, ¶{cited} highlighted)</summary>"
        f'<div class="rag-article-body"><a class="rag-jump" href="#{anchor}-p{cited}">Go to ¶{cited}</a>'
        f"<h4>{esc(_get(article, 'title', ''))}</h4>{''.join(rows)}</div></details>"
    )


def render_card(source: Any, anchor: str, label: str, kb: KBLike | None = None, extra_meta: str = "") -> str:
    """A numbered source card: title, date, paragraph number, the paragraph (quote marked), article."""
    doc_id = _get(source, "doc_id", "")
    paragraph = _get(source, "paragraph")
    quote = _get(source, "quote")
    date = format_date(_get(source, "date"))
    meta = [f"paragraph {esc(paragraph)}"]
    if date:
        meta.insert(0, esc(date))
    meta.append(f'<span class="rag-doc">{esc(doc_id)}</span>')
    if extra_meta:
        meta.append(esc(extra_meta))
    article = article_of(kb, doc_id)
    body = render_article(article, paragraph, quote, anchor) if article is not None else ""
    return (
        f'<div class="rag-card" id="{anchor}">'
        f'<div class="rag-card-head"><span class="rag-n">{esc(label)}</span>'
        f'<span class="rag-title">{esc(_get(source, "title", ""))}</span></div>'
        f'<div class="rag-meta">{" · ".join(meta)}</div>'
        f'<div class="rag-para">{highlight(_get(source, "text", ""), quote)}</div>'
        f"{body}</div>"
    )


def _mode_label(mode: str | None) -> str:
    return MODE_LABELS.get(mode or "", mode or "")


def render_answer(answer: Answer | dict[str, Any], turn: int, kb: KBLike | None = None) -> str:
    """The assistant's part of a turn: the answer (or abstention) and its source cards."""
    data = answer.to_dict() if isinstance(answer, Answer) else dict(answer)
    prefix = f"src-{turn}"
    citations = list(data.get("citations") or [])
    meta = [f"answered by {esc(_mode_label(data.get('mode')))}"]
    total = (data.get("timings") or {}).get("total")
    if isinstance(total, (int, float)):
        meta.append(f"{total:.1f} s")
    meta_html = f'<div class="rag-meta">{" · ".join(meta)}</div>'
    standalone = data.get("standalone_question")
    if standalone:
        meta_html += f'<div class="rag-meta">understood as: “{esc(standalone)}”</div>'
    if data.get("abstained"):
        return (
            '<div class="rag-a rag-abstain"><div class="rag-label">Not in the articles</div>'
            f'<div class="rag-answer-text">{esc(data.get("text", ""))}</div>'
            '<div class="rag-hint">Try rephrasing, or look at the paragraphs the Search tab finds.</div>'
            f"{meta_html}</div>"
        )
    numbers = [int(c["n"]) for c in citations]
    text = render_answer_text(data.get("text", ""), prefix, numbers)
    cards = "".join(render_card(c, f"{prefix}-{c['n']}", str(c["n"]), kb) for c in citations)
    sources = (
        f'<div class="rag-sources"><div class="rag-label">Sources</div>{cards}</div>'
        if cards
        else '<div class="rag-hint">No sources were cited.</div>'
    )
    return (
        f'<div class="rag-a rag-answered"><div class="rag-label">Answer</div>'
        f'<div class="rag-answer-text">{text}</div>{meta_html}{sources}</div>'
    )


def render_notice(message: str) -> str:
    """A problem, as a plain message (never a traceback)."""
    return f'<div class="rag-a rag-notice" role="alert"><div class="rag-label">Problem</div>{esc(message)}</div>'


def render_question(question: str) -> str:
    return f'<div class="rag-q"><div class="rag-bubble">{esc(question)}</div></div>'


def render_turn(turn: dict[str, Any]) -> str:
    """One finished turn (its HTML was made when it ended)."""
    return turn["html"]


def render_pending(index: int, question: str, text: str) -> str:
    """The turn being answered: the question and the answer text streamed so far."""
    if text:
        body = f'<div class="rag-answer-text rag-streaming">{esc(text)}</div>'
    else:
        body = '<div class="rag-answer-text rag-streaming rag-thinking">Searching the articles…</div>'
    return (
        f'<div class="rag-turn rag-pending" data-turn="{index}">{render_question(question)}'
        f'<div class="rag-a"><div class="rag-label">Answer</div>{body}</div></div>'
    )


def make_turn(index: int, question: str, answer: Answer | None, error: str | None, kb: KBLike | None) -> dict:
    """A finished turn as kept in the session state: what the library needs next, and its HTML."""
    inner = render_notice(error) if error is not None else render_answer(answer, index, kb)  # type: ignore[arg-type]
    return {
        "question": question,
        "answer": answer.text if answer is not None else None,
        "abstained": bool(answer.abstained) if answer is not None else None,
        "error": error,
        "html": f'<div class="rag-turn" data-turn="{index}">{render_question(question)}{inner}</div>',
    }


def render_conversation(turns: Sequence[dict[str, Any]]) -> str:
    if not turns:
        return (
            '<div class="rag-empty">Ask a question about the articles. Every answer cites the '
            "paragraphs it comes from; follow-up questions keep the conversation's context.</div>"
        )
    return "".join(render_turn(t) for t in turns)


def history_of(turns: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """The conversation so far, as the library takes it (turns that failed are left out)."""
    history: list[dict[str, str]] = []
    for t in turns:
        if t.get("answer") is None:
            continue
        history.append({"role": "user", "content": t["question"]})
        history.append({"role": "assistant", "content": t["answer"]})
    return history


def render_hits(hits: Sequence[Any], kb: KBLike | None = None) -> str:
    if not hits:
        return '<div class="rag-empty">No paragraph matches.</div>'
    cards = []
    for rank, hit in enumerate(hits, start=1):
        score = _get(hit, "score")
        extra = f"score {score:.3f}" if isinstance(score, (int, float)) else ""
        cards.append(render_card(hit, f"hit-{rank}", str(rank), kb, extra_meta=extra))
    return f'<div class="rag-sources rag-hits">{"".join(cards)}</div>'


def render_status(loader: KBLoader) -> str:
    if loader.error is not None:
        return f'<div class="rag-status rag-failed" role="alert">{esc(loader.get()[1])}</div>'
    if not loader.ready:
        return f'<div class="rag-status rag-loading" role="status">⏳ {esc(LOADING_MESSAGE)}</div>'
    return ""


def mode_choices(llm_available: bool | None) -> list[tuple[str, str]]:
    if llm_available is None:
        llm = "LLM (checking…)"
        auto = "Auto"
    elif llm_available:
        llm = MODE_LABELS[MODE_LLM]
        auto = "Auto (LLM)"
    else:
        llm = "LLM — unavailable (model not installed)"
        auto = "Auto (instant: no LLM installed)"
    return [(auto, MODE_AUTO), (MODE_LABELS[MODE_EXTRACTIVE], MODE_EXTRACTIVE), (llm, MODE_LLM)]


# --------------------------------------------------------------------------------------
# Styles and behaviour (kept here so the app looks the same however it is launched)
# --------------------------------------------------------------------------------------

CSS = """
:root, .gradio-container { --font: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  "Liberation Sans", "DejaVu Sans", sans-serif; }
#rag-conv { max-height: 66vh; overflow-y: auto; padding-right: 4px; }
.rag-header h1 { font-size: 1.5rem; margin: 0 0 2px; }
.rag-header p { margin: 0; color: var(--body-text-color-subdued, #64748b); }
.rag-empty { color: var(--body-text-color-subdued, #64748b); padding: 14px 4px; }
.rag-turn { margin: 0 0 18px; }
.rag-q { display: flex; justify-content: flex-end; }
.rag-bubble { background: var(--color-accent-soft, #e0e7ff); color: var(--body-text-color, #111827);
  border-radius: 14px 14px 3px 14px; padding: 8px 13px; max-width: 80%; white-space: pre-wrap;
  overflow-wrap: anywhere; }
.rag-a { border: 1px solid var(--border-color-primary, #e5e7eb); border-radius: 3px 14px 14px 14px;
  padding: 10px 14px; margin-top: 8px; background: var(--block-background-fill, #fff); }
.rag-label { font-size: .72rem; text-transform: uppercase; letter-spacing: .06em; font-weight: 700;
  color: var(--body-text-color-subdued, #64748b); margin-bottom: 4px; }
.rag-answer-text { white-space: pre-wrap; line-height: 1.55; overflow-wrap: anywhere; }
.rag-streaming::after { content: "▍"; opacity: .6; }
.rag-thinking { color: var(--body-text-color-subdued, #64748b); font-style: italic; }
#rag-status:not(:has(.rag-status)) { display: none !important; }
a.rag-cite { text-decoration: none; font-weight: 700; color: var(--color-accent, #2563eb);
  padding: 0 1px !important; margin: 0 !important; }
a.rag-cite:hover { text-decoration: underline; }
.rag-unsupported { font-size: .75em; padding: 0 5px; border-radius: 4px; background: #fee2e2; color: #991b1b; }
.rag-meta { font-size: .8rem; color: var(--body-text-color-subdued, #64748b); margin-top: 4px; }
.rag-hint { font-size: .85rem; margin-top: 6px; color: var(--body-text-color-subdued, #64748b); }
.rag-abstain { border: 1px dashed #d97706; background: #fffbeb; color: #78350f; }
.rag-abstain .rag-label { color: #b45309; }
.rag-abstain .rag-hint, .rag-abstain .rag-meta { color: #92400e; }
.rag-notice { border-left: 4px solid #dc2626; background: #fef2f2; color: #7f1d1d; }
.rag-notice .rag-label { color: #b91c1c; }
.rag-sources { margin-top: 12px; display: grid; gap: 8px; }
.rag-card { border: 1px solid var(--border-color-primary, #e5e7eb); border-radius: 10px; padding: 8px 12px;
  background: var(--background-fill-secondary, #f8fafc); transition: box-shadow .3s; scroll-margin: 12px; }
.rag-card:target, .rag-card.rag-flash { box-shadow: 0 0 0 3px var(--color-accent, #2563eb); }
.rag-card-head { display: flex; gap: 8px; align-items: baseline; }
.rag-n { background: var(--color-accent, #2563eb); color: #fff; border-radius: 999px; min-width: 1.5em;
  text-align: center; font-weight: 700; font-size: .78rem; padding: 1px 7px; flex: none; }
.rag-title { font-weight: 600; }
.rag-doc { font-family: var(--font-mono, monospace); font-size: .72rem; }
.rag-para { white-space: pre-wrap; font-size: .92rem; line-height: 1.5; margin: 6px 0 4px; overflow-wrap: anywhere; }
.rag-card mark, .rag-article mark { background: #fde68a; color: #111827; padding: 0 2px; border-radius: 3px; }
details.rag-article summary { cursor: pointer; font-size: .85rem; color: var(--color-accent, #2563eb); }
.rag-article-body { position: relative; max-height: 300px; overflow-y: auto; margin-top: 6px; padding: 6px 8px;
  border-top: 1px solid var(--border-color-primary, #e5e7eb); }
.rag-article-body h4 { margin: 4px 0 8px; font-size: .95rem; }
.rag-article-body p { white-space: pre-wrap; font-size: .88rem; line-height: 1.5; margin: 0 0 8px; padding: 2px 6px;
  overflow-wrap: anywhere; }
.rag-article-body p.rag-cited { background: rgba(253, 230, 138, .35); border-left: 3px solid #f59e0b; }
.rag-pnum { color: var(--body-text-color-subdued, #64748b); font-size: .72rem; margin-right: 6px; }
.rag-jump { float: right; font-size: .78rem; }
.rag-status { padding: 10px 14px; border-radius: 8px; background: #eff6ff; border: 1px solid #bfdbfe; color: #1e3a8a; }
.rag-status.rag-failed { background: #fef2f2; border-color: #fecaca; color: #7f1d1d; }
"""

# Runs once per HTML component (``element`` is the component's root). Marker links scroll to
# their card and flash it; opening an article scrolls its cited paragraph into view.
JS_ON_LOAD = """
if (!element.dataset.ragBound) {
  element.dataset.ragBound = "1";
  element.addEventListener("click", (ev) => {
    const a = ev.target.closest("a[href^='#']");
    if (!a) return;
    const target = document.getElementById(decodeURIComponent(a.getAttribute("href").slice(1)));
    if (!target) return;
    ev.preventDefault();
    const details = target.closest("details");
    if (details && !details.open) details.open = true;
    target.scrollIntoView({behavior: "smooth", block: "nearest"});
    target.classList.remove("rag-flash");
    void target.offsetWidth;
    target.classList.add("rag-flash");
    setTimeout(() => target.classList.remove("rag-flash"), 1800);
  });
  element.addEventListener("toggle", (ev) => {
    const d = ev.target;
    if (!d || d.tagName !== "DETAILS" || !d.open) return;
    const box = d.querySelector(".rag-article-body");
    const cited = box && box.querySelector(".rag-cited");
    if (box && cited) box.scrollTop = Math.max(0, cited.offsetTop - 8);
  }, true);
  if (element.closest("#rag-conv")) {
    new MutationObserver(() => {
      const conv = document.getElementById("rag-conv");
      const turns = element.querySelectorAll(".rag-turn");
      const last = turns[turns.length - 1];
      if (!conv || !last) return;
      const key = last.dataset.turn + (last.classList.contains("rag-pending") ? "p" : "d");
      if (element.dataset.ragLast === key) return;
      element.dataset.ragLast = key;
      conv.scrollTop += last.getBoundingClientRect().top - conv.getBoundingClientRect().top - 8;
    }).observe(element, {childList: true});
  }
}
"""

HEADER = (
    f"<style>{CSS}</style>"
    '<div class="rag-header"><h1>Ask the ILO news articles</h1>'
    "<p>Answers come only from the indexed articles, each claim with its numbered source. "
    "Nothing leaves this machine.</p></div>"
)


# --------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------


@dataclass
class _Defaults:
    mode: str
    k: int
    search_k: int


def _defaults(source: Any) -> _Defaults:
    settings = getattr(source, "settings", None)
    if settings is None:
        from rag.settings import get_settings

        try:
            settings = get_settings()
        except Exception:  # a bad RAG_* variable: the loader will say so
            settings = None
    mode = getattr(settings, "answer_mode", MODE_AUTO) or MODE_AUTO
    k = int(getattr(settings, "answer_context_k", 4) or 4)
    search_k = int(getattr(settings, "top_k", 5) or 5)
    return _Defaults(mode=mode, k=max(1, min(k, 10)), search_k=max(1, min(search_k, 20)))


def _problem_text(exc: BaseException) -> str:
    if isinstance(exc, RagError):
        text = str(exc) or type(exc).__name__
        return text[:1].upper() + text[1:]
    log.error("unexpected error in the UI", exc_info=exc)
    return f"Something went wrong ({type(exc).__name__}). The details are in the server's log."


def _parse_history(history: Any) -> list[dict[str, Any]] | None:
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


def build_app(
    kb_or_factory: KBLike | Callable[[], KBLike],
    *,
    examples: Sequence[str] = DEFAULT_EXAMPLES,
    stream_interval: float = STREAM_INTERVAL,
    title: str = "Ask the ILO news articles",
) -> gr.Blocks:
    """The Gradio app over a knowledge base (or a function that loads one, run in the background)."""
    loader = KBLoader(kb_or_factory)
    defaults = _defaults(kb_or_factory)

    # --- handlers ----------------------------------------------------------------------

    def respond(question: str, turns: list[dict] | None, mode: str, k: float) -> Iterator[tuple]:
        turns = list(turns or [])
        index = len(turns)
        question = question or ""
        kb, problem = loader.get()
        if kb is None:
            turns.append(make_turn(index, question, None, problem, None))
            yield "", render_conversation(turns), "", turns
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
                if now - last >= stream_interval:
                    last = now
                    yield gr.skip(), gr.skip(), render_pending(index, question, text), gr.skip()
            if final is None:
                error = "The answer did not finish. Please ask again."
        except Exception as exc:
            error = _problem_text(exc)
        turns.append(make_turn(index, question, final if error is None else None, error, kb))
        yield gr.skip(), render_conversation(turns), "", turns

    def clear() -> tuple:
        return "", render_conversation([]), "", []

    def search_view(query: str, k: float) -> str:
        kb, problem = loader.get()
        if kb is None:
            return render_notice(problem or NOT_READY_MESSAGE)
        try:
            return render_hits(kb.search(query or "", int(k)), kb)
        except Exception as exc:
            return render_notice(_problem_text(exc))

    def status_tick() -> tuple:
        done = loader.ready or loader.error is not None
        status = render_status(loader)
        choices = mode_choices(loader.llm_available if loader.ready else None)
        return (
            gr.HTML(value=status),
            gr.Radio(choices=choices),
            gr.Timer(active=not done),
        )

    def _api_kb() -> KBLike:
        loader.wait(API_READY_WAIT)
        kb, problem = loader.get()
        if kb is None:
            raise gr.Error(problem or NOT_READY_MESSAGE, print_exception=False)
        return kb

    def ask(
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
        kb = _api_kb()
        try:
            answer = kb.answer(question, history=_parse_history(history), mode=mode or None, k=k or None)
        except Exception as exc:
            raise gr.Error(_problem_text(exc), print_exception=False) from None
        return answer.to_dict()

    def search(query: str, k: int = defaults.search_k) -> list[dict[str, Any]]:
        """The k paragraphs that best match the query (title, date, paragraph number, text, score)."""
        kb = _api_kb()
        try:
            hits = kb.search(query, int(k) if k else None)
        except Exception as exc:
            raise gr.Error(_problem_text(exc), print_exception=False) from None
        return [h.to_dict() for h in hits]

    # --- layout ------------------------------------------------------------------------

    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        gr.HTML(HEADER, js_on_load=None)
        # A callable value is computed on every page load: no stale "loading" banner after a reload.
        status = gr.HTML(lambda: render_status(loader), js_on_load=None, elem_id="rag-status")
        turns_state = gr.State([])
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"), gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    with gr.Column(elem_id="rag-conv"):
                        conversation = gr.HTML(
                            render_conversation([]), elem_id="rag-conversation", js_on_load=JS_ON_LOAD
                        )
                        pending = gr.HTML("", elem_id="rag-pending", js_on_load=JS_ON_LOAD)
                    with gr.Row():
                        question = gr.Textbox(
                            placeholder="Ask about the articles… (Enter to send)",
                            show_label=False,
                            lines=1,
                            max_lines=4,
                            scale=5,
                            elem_id="rag-question",
                            autofocus=True,
                        )
                        send = gr.Button("Ask", variant="primary", scale=1, elem_id="rag-send")
                    gr.Examples(examples=[[e] for e in examples], inputs=[question], label="Example questions")
                with gr.Column(scale=1, min_width=240):
                    mode = gr.Radio(
                        choices=mode_choices(loader.llm_available if loader.ready else None),
                        value=defaults.mode,
                        label="Answer mode",
                        info="Instant quotes the best sentences; the LLM writes an answer (slower on a CPU).",
                        elem_id="rag-mode",
                    )
                    k = gr.Slider(1, 10, value=defaults.k, step=1, label="Sources to read (k)", elem_id="rag-k")
                    clear_btn = gr.Button("New conversation", variant="secondary", elem_id="rag-clear")
            with gr.Tab("Search", id="search"):
                with gr.Row():
                    query = gr.Textbox(
                        placeholder="Words or a question: lists matching paragraphs, without answering",
                        show_label=False,
                        scale=5,
                        elem_id="rag-query",
                    )
                    search_k = gr.Slider(1, 20, value=defaults.search_k, step=1, label="Paragraphs", scale=2)
                    search_btn = gr.Button("Search", variant="primary", scale=1, elem_id="rag-search")
                hits_html = gr.HTML("", elem_id="rag-hits", js_on_load=JS_ON_LOAD)

        chat_io = {
            "fn": respond,
            "inputs": [question, turns_state, mode, k],
            "outputs": [question, conversation, pending, turns_state],
            "api_visibility": "private",
            "concurrency_id": "answer",
            "concurrency_limit": 2,
            "show_progress": "hidden",
        }
        question.submit(**chat_io)
        send.click(**chat_io)
        clear_btn.click(
            clear, None, [question, conversation, pending, turns_state], api_visibility="private", queue=False
        )
        search_io = {
            "fn": search_view,
            "inputs": [query, search_k],
            "outputs": [hits_html],
            "api_visibility": "private",
            "concurrency_id": "search",
            "concurrency_limit": 4,
        }
        query.submit(**search_io)
        search_btn.click(**search_io)

        timer = gr.Timer(1.0)
        timer.tick(status_tick, None, [status, mode, timer], api_visibility="private", show_progress="hidden")
        demo.load(status_tick, None, [status, mode, timer], api_visibility="private", show_progress="hidden")

        gr.api(ask, api_name="ask", concurrency_id="answer", concurrency_limit=2)
        gr.api(search, api_name="search", concurrency_id="search", concurrency_limit=4)

    demo.rag_loader = loader  # type: ignore[attr-defined]  # for tests and serve()
    return demo


def serve(
    corpus_dir: str | Path | None = None,
    index_dir: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    block: bool = True,
) -> gr.Blocks:
    """Start the UI (what ``rag serve`` runs): localhost by default, never a share link."""
    from rag.knowledge import load

    demo = build_app(lambda: load(corpus_dir, index_dir))
    print(f"Loading the knowledge base in the background; the UI is at http://{host}:{port}", flush=True)
    demo.queue(default_concurrency_limit=2)
    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        show_error=False,
        ssr_mode=False,
        prevent_thread_lock=not block,
        quiet=False,
    )
    return demo
