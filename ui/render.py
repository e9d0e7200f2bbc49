"""Rendering: pure functions from the library's typed objects to HTML strings.

``Answer``, ``Citation``, ``Hit`` and ``Article`` (``rag.domain``) in, HTML out. Every piece of
article text, question and answer is ``html.escape``-d; only the markup written here (cards,
``<mark>``, marker links) is not. Whole articles are passed in (``articles``: doc_id → Article):
these functions never look anything up.
"""

from __future__ import annotations

import datetime as _dt
import html
import re
from collections.abc import Mapping, Sequence

from rag.domain import CITATION_MARKER, Answer, Article, Citation, Hit
from rag.prompts import UNSUPPORTED_MARK
from rag.settings import ANSWER_MODES

#: What each answer mode (``rag.settings.ANSWER_MODES``) is called in the UI.
MODE_LABELS: dict[str, str] = {
    "auto": "Auto",
    "extractive": "Instant (extractive)",
    "llm": "LLM (generative)",
}
#: Labels that depend on whether the LLM is available: unknown yet (None), installed (True), not (False).
_AVAILABILITY_LABELS: dict[bool | None, dict[str, str]] = {
    None: {"llm": "LLM (checking…)"},
    True: {"auto": "Auto (LLM)"},
    False: {"auto": "Auto (instant: no LLM installed)", "llm": "LLM — unavailable (model not installed)"},
}

LOADING_MESSAGE = (
    "The index is being built or loaded. This can take a minute the first time; "
    "you can ask as soon as this message goes away."
)

_UNSUPPORTED_HTML = '<span class="rag-unsupported" title="No article paragraph supports this sentence">unsupported</span>'


def esc(text: object) -> str:
    """Text made safe for HTML (quotes too, so it can also go into attributes)."""
    return html.escape("" if text is None else str(text), quote=True)


def format_date(date: str | None) -> str:
    """An ISO date as people write it ("2 January 2024"); anything else as it is."""
    if not date:
        return ""
    try:
        return _dt.date.fromisoformat(date).strftime("%-d %B %Y")
    except ValueError:
        return date


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
    """The escaped answer text; each ``[n]`` of a known source becomes a link to its card.

    ``rag.prompts.UNSUPPORTED_MARK`` (a sentence no paragraph supports) becomes a visible badge.
    """
    known = set(numbers)

    def link(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n not in known:
            return match.group(0)
        return f'<a class="rag-cite" href="#{prefix}-{n}" title="Source {n}">[{n}]</a>'

    return CITATION_MARKER.sub(link, esc(text)).replace(esc(UNSUPPORTED_MARK), _UNSUPPORTED_HTML)


def render_article(article: Article, cited: int, quote: str | None, anchor: str) -> str:
    """A ``<details>`` with every paragraph of the article; the cited one is marked and anchored."""
    if not article.paragraphs:
        return ""
    rows = []
    for p in article.paragraphs:
        if p.number == cited:
            rows.append(
                f'<p class="rag-cited" id="{anchor}-p{p.number}"><span class="rag-pnum">¶{p.number}</span>'
                f"{highlight(p.text, quote)}</p>"
            )
        else:
            rows.append(f'<p><span class="rag-pnum">¶{p.number}</span>{esc(p.text)}</p>')
    return (
        '<details class="rag-article">'
        f"<summary>Read the whole article ({len(article.paragraphs)} paragraphs, ¶{cited} highlighted)</summary>"
        f'<div class="rag-article-body"><a class="rag-jump" href="#{anchor}-p{cited}">Go to ¶{cited}</a>'
        f"<h4>{esc(article.title)}</h4>{''.join(rows)}</div></details>"
    )


def render_card(
    source: Citation | Hit, anchor: str, label: str, article: Article | None = None, extra_meta: str = ""
) -> str:
    """A numbered source card: title, date, paragraph number, the paragraph (quote marked), article."""
    quote = source.quote if isinstance(source, Citation) else None
    date = format_date(source.date)
    meta = [f"paragraph {esc(source.paragraph)}"]
    if date:
        meta.insert(0, esc(date))
    meta.append(f'<span class="rag-doc">{esc(source.doc_id)}</span>')
    if extra_meta:
        meta.append(esc(extra_meta))
    body = render_article(article, source.paragraph, quote, anchor) if article is not None else ""
    return (
        f'<div class="rag-card" id="{anchor}">'
        f'<div class="rag-card-head"><span class="rag-n">{esc(label)}</span>'
        f'<span class="rag-title">{esc(source.title)}</span></div>'
        f'<div class="rag-meta">{" · ".join(meta)}</div>'
        f'<div class="rag-para">{highlight(source.text, quote)}</div>'
        f"{body}</div>"
    )


def mode_label(mode: str | None) -> str:
    return MODE_LABELS.get(mode or "", mode or "")


def render_answer(answer: Answer, turn: int, articles: Mapping[str, Article] | None = None) -> str:
    """The assistant's part of a turn: the answer (or abstention) and its source cards.

    ``articles`` holds the cited articles by doc_id; a card whose article is missing shows only
    the cited paragraph.
    """
    articles = articles or {}
    prefix = f"src-{turn}"
    meta = [f"answered by {esc(mode_label(answer.mode))}"]
    total = answer.timings.get("total")
    if isinstance(total, (int, float)):
        meta.append(f"{total:.1f} s")
    meta_html = f'<div class="rag-meta">{" · ".join(meta)}</div>'
    if answer.standalone_question:
        meta_html += f'<div class="rag-meta">understood as: “{esc(answer.standalone_question)}”</div>'
    if answer.abstained:
        return (
            '<div class="rag-a rag-abstain"><div class="rag-label">Not in the articles</div>'
            f'<div class="rag-answer-text">{esc(answer.text)}</div>'
            '<div class="rag-hint">Try rephrasing, or look at the paragraphs the Search tab finds.</div>'
            f"{meta_html}</div>"
        )
    text = render_answer_text(answer.text, prefix, [c.n for c in answer.citations])
    cards = "".join(
        render_card(c, f"{prefix}-{c.n}", str(c.n), articles.get(c.doc_id)) for c in answer.citations
    )
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


def render_turn(
    index: int,
    question: str,
    answer: Answer | None,
    problem: str | None = None,
    articles: Mapping[str, Article] | None = None,
) -> str:
    """One finished turn: the question, then the answer, or the problem when there is one."""
    if problem is not None or answer is None:
        inner = render_notice(problem or "")
    else:
        inner = render_answer(answer, index, articles)
    return f'<div class="rag-turn" data-turn="{index}">{render_question(question)}{inner}</div>'


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


def render_conversation(turns_html: Sequence[str]) -> str:
    """The finished turns (each rendered by ``render_turn`` when it ended), or an invitation to ask."""
    if not turns_html:
        return (
            '<div class="rag-empty">Ask a question about the articles. Every answer cites the '
            "paragraphs it comes from; follow-up questions keep the conversation's context.</div>"
        )
    return "".join(turns_html)


def render_hits(hits: Sequence[Hit], articles: Mapping[str, Article] | None = None) -> str:
    """The search view: one numbered card a paragraph, with its score."""
    if not hits:
        return '<div class="rag-empty">No paragraph matches.</div>'
    articles = articles or {}
    cards = [
        render_card(hit, f"hit-{rank}", str(rank), articles.get(hit.doc_id), extra_meta=f"score {hit.score:.3f}")
        for rank, hit in enumerate(hits, start=1)
    ]
    return f'<div class="rag-sources rag-hits">{"".join(cards)}</div>'


def render_status(*, loading: bool, failure: str | None = None) -> str:
    """The banner above the app: a failure to load, "being loaded", or nothing once ready."""
    if failure is not None:
        return f'<div class="rag-status rag-failed" role="alert">{esc(failure)}</div>'
    if loading:
        return f'<div class="rag-status rag-loading" role="status">⏳ {esc(LOADING_MESSAGE)}</div>'
    return ""


def mode_choices(llm_available: bool | None) -> list[tuple[str, str]]:
    """The answer-mode radio's (label, mode) pairs; ``llm_available`` None while it is not known yet."""
    labels = MODE_LABELS | _AVAILABILITY_LABELS[llm_available]
    return [(labels.get(mode, mode), mode) for mode in ANSWER_MODES]
