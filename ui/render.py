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

from rag.domain import CITATION_MARKER, DATELINE, Answer, Article, Citation, Hit, paragraph_label
from rag.lexicon import spell_date
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

#: Below this confidence an answer that was not abstained on is shown as weakly supported.
WEAK_CONFIDENCE = 0.5
#: What the abstention's closest passage is called, wherever it is shown or copied.
CLOSEST_LABEL = "The closest passage; it may not answer your question"

_UNSUPPORTED_HTML = '<span class="rag-unsupported" title="No article paragraph supports this sentence">unsupported</span>'


def esc(text: object) -> str:
    """Text made safe for HTML (quotes too, so it can also go into attributes)."""
    return html.escape("" if text is None else str(text), quote=True)


def format_date(date: str | None) -> str:
    """An ISO date as people write it ("2 January 2024"); anything else as it is."""
    return spell_date(date) or date or ""


#: Lines that hold only spaces (a no-break space between an intro and its bullet list, say).
_BLANK_LINES = re.compile(r"\n(?:[^\S\n]*\n)+")
_LINE_SPACES = re.compile(r"[^\S\n]*\n[^\S\n]*")


def display_text(text: str) -> str:
    """Paragraph text as shown: runs of blank (or space-only) lines become one line break, so a
    bullet list sits right under its intro instead of after a large gap."""
    return _LINE_SPACES.sub("\n", _BLANK_LINES.sub("\n", text or ""))


def highlight(text: str, quote: str | None) -> str:
    """The escaped paragraph with the (exact) quote wrapped in ``<mark>``."""
    text = text or ""
    if quote:
        at = text.find(quote)
        if at >= 0:
            end = at + len(quote)
            return (
                f"{esc(display_text(text[:at]))}<mark>{esc(display_text(text[at:end]))}</mark>"
                f"{esc(display_text(text[end:]))}"
            )
    return esc(display_text(text))


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
            rows.append(f'<p><span class="rag-pnum">¶{p.number}</span>{esc(display_text(p.text))}</p>')
    where = f"¶{cited}"
    if article.dateline is not None:  # shown under the title, as in the article; marked when cited
        line = article.dateline
        if cited == DATELINE:
            where = "the dateline"
            rows.insert(0, f'<p class="rag-cited rag-dateline" id="{anchor}-p{DATELINE}">{highlight(line.text, quote)}</p>')
        else:
            rows.insert(0, f'<p class="rag-dateline">{esc(display_text(line.text))}</p>')
    return (
        '<details class="rag-article">'
        f"<summary>Read the whole article ({len(article.paragraphs)} paragraphs, {where} highlighted)</summary>"
        f'<div class="rag-article-body"><a class="rag-jump" href="#{anchor}-p{cited}">Go to {where}</a>'
        f"<h4>{esc(article.title)}</h4>{''.join(rows)}</div></details>"
    )


def render_card(
    source: Citation | Hit,
    anchor: str,
    label: str,
    article: Article | None = None,
    extra_meta: str = "",
    badge: str = "",
) -> str:
    """A numbered source card: the article's title and date first, then the paragraph (quote
    marked), the paragraph number and the file name (small), and the whole article.

    It is focusable (``tabindex=0``), so keyboard users reach every source in turn.
    """
    quote = source.quote if isinstance(source, Citation) else None
    date = format_date(source.date)
    numbered = article is not None and article.paragraphs and source.paragraph != DATELINE
    of = f" of {len(article.paragraphs)}" if numbered else ""
    meta = [f"{esc(paragraph_label(source.paragraph))}{of}", f'<span class="rag-doc">{esc(source.doc_id)}</span>']
    if extra_meta:
        meta.append(esc(extra_meta))
    date_html = f'<span class="rag-date">{esc(date)}</span>' if date else ""
    badge_html = f'<span class="rag-weak">{esc(badge)}</span>' if badge else ""
    body = render_article(article, source.paragraph, quote, anchor) if article is not None else ""
    aria = f"Source {label}: {source.title}" + (f", {date}" if date else "")
    return (
        f'<div class="rag-card" id="{anchor}" tabindex="0" role="article" aria-label="{esc(aria)}">'
        f'<div class="rag-card-head"><span class="rag-n">{esc(label)}</span>'
        f'<span class="rag-title">{esc(source.title)}</span>{date_html}{badge_html}</div>'
        f'<div class="rag-para">{highlight(source.text, quote)}</div>'
        f'<div class="rag-meta rag-origin">{" · ".join(meta)}</div>'
        f"{body}</div>"
    )


def mode_label(mode: str | None) -> str:
    return MODE_LABELS.get(mode or "", mode or "")


# --- how well an answer is supported ---------------------------------------------------------


def percent(p: float | None) -> str:
    """A probability as people read it ("92%"); never "100%" (nothing here is certain), "" for None."""
    if p is None:
        return ""
    return f"{min(99, max(0, round(float(p) * 100)))}%"


def is_weak(answer: Answer) -> bool:
    """An answer given (not abstained on) whose confidence is below ``WEAK_CONFIDENCE``."""
    return not answer.abstained and answer.confidence is not None and answer.confidence < WEAK_CONFIDENCE


def support_label(answer: Answer) -> str:
    """The short label of an answer's support: "Supported · 92%", "Weakly supported · 34%",
    "Not stated · 12%" (abstained); "" when the answer carries no confidence."""
    if answer.confidence is None:
        return ""
    if answer.abstained:
        return f"Not stated · {percent(answer.confidence)}"
    kind = "Weakly supported" if is_weak(answer) else "Supported"
    return f"{kind} · {percent(answer.confidence)}"


def confidence_line(answer: Answer) -> str:
    """The confidence as one line of a copied answer ("Confidence: 92% (supported by the cited
    passages)"; on an abstention, the chance that the closest passage answers the question);
    "" when the answer carries no confidence."""
    if answer.confidence is None:
        return ""
    pct = percent(answer.confidence)
    if answer.grounding == "closest":
        return f"Confidence: {pct} that the closest passage answers it (the articles do not state it)"
    if answer.grounding == "none":
        return f"Confidence: {pct} (nothing in the articles comes close)"
    what = "weakly supported: check the sources" if is_weak(answer) else "supported by the cited passages"
    return f"Confidence: {pct} ({what})"


def _support_meta(c: Citation) -> str:
    return f"support {percent(c.support)}" if c.support is not None else ""


_CONFIDENCE_TITLE = "The estimated chance that this answer is right, from how clearly the cited passages state it"


def render_confidence(answer: Answer) -> str:
    """The answer's support, discreet when it is well supported, a visible badge when weakly."""
    label = support_label(answer)
    if not label:
        return ""
    kind = "rag-conf-weak" if is_weak(answer) else "rag-conf-ok"
    return f'<span class="rag-confidence {kind}" title="{esc(_CONFIDENCE_TITLE)}">{esc(label)}</span>'


def render_closest(c: Citation, anchor: str, article: Article | None = None, confidence: float | None = None) -> str:
    """An abstention's closest passage: muted, dashed, no citation number, labelled as what it is."""
    date = format_date(c.date)
    meta = [esc(paragraph_label(c.paragraph)), f'<span class="rag-doc">{esc(c.doc_id)}</span>']
    if confidence is not None:
        meta.append(esc(f"estimated {percent(confidence)} chance it answers the question"))
    date_html = f'<span class="rag-date">{esc(date)}</span>' if date else ""
    body = render_article(article, c.paragraph, c.quote, anchor) if article is not None else ""
    return (
        f'<div class="rag-closest" id="{anchor}" role="note" aria-label="{esc(CLOSEST_LABEL)}">'
        f'<div class="rag-closest-label">{esc(CLOSEST_LABEL)}</div>'
        f'<div class="rag-closest-quote">{esc(display_text(c.quote))}</div>'
        f'<div class="rag-closest-head"><span class="rag-title">{esc(c.title)}</span>{date_html}</div>'
        f'<div class="rag-meta rag-origin">{" · ".join(meta)}</div>'
        f"{body}</div>"
    )


# --- answers you can take away: plain text and Markdown ------------------------------------


def _source_line(c: Citation) -> str:
    date = format_date(c.date)
    return f"{c.title}" + (f" ({date})" if date else "") + f", {paragraph_label(c.paragraph)} — {c.doc_id}"


def answer_plain_text(question: str, answer: Answer) -> str:
    """The answer with its numbered sources (title, date, paragraph, file, quote), as plain text."""
    lines = [f"Question: {question}", "", f"Answer: {answer.text}"]
    if confidence_line(answer):
        lines.append(confidence_line(answer))
    if answer.citations:
        lines += ["", "Sources:"]
        for c in answer.citations:
            support = f" (support {percent(c.support)})" if c.support is not None else ""
            lines.append(f"[{c.n}] {_source_line(c)}{support}")
            lines.append(f'    "{_one_line(c.quote)}"')
    if answer.abstained and answer.closest is not None:
        c = answer.closest
        lines += ["", f"{CLOSEST_LABEL}:", _source_line(c), f'    "{_one_line(c.quote)}"']
    return "\n".join(lines)


_MD_SPECIAL = re.compile(r"([\\`*_{}<>#|~])")


def md_escape(text: str) -> str:
    """Text for Markdown: characters that would become formatting are backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def answer_markdown(question: str, answer: Answer) -> str:
    """The answer with its numbered sources, as Markdown."""
    lines = [f"**Question:** {md_escape(_one_line(question))}", "", md_escape(answer.text)]
    if confidence_line(answer):
        lines += ["", f"*{md_escape(confidence_line(answer))}*"]
    if answer.citations:
        lines += ["", "**Sources**", ""]
        for c in answer.citations:
            date = format_date(c.date)
            head = f"{c.n}. *{md_escape(c.title)}*" + (f" ({date})" if date else "")
            support = f" — support {percent(c.support)}" if c.support is not None else ""
            lines.append(f"{head}, {paragraph_label(c.paragraph)} (`{c.doc_id.replace('`', '')}`){support}")
            lines.append(f"   > {md_escape(_one_line(c.quote))}")
    if answer.abstained and answer.closest is not None:
        c = answer.closest
        date = format_date(c.date)
        where = f"*{md_escape(c.title)}*" + (f" ({date})" if date else "")
        lines += [
            "",
            f"**{md_escape(CLOSEST_LABEL)}:** {where}, {paragraph_label(c.paragraph)} (`{c.doc_id.replace('`', '')}`)",
            "",
            f"> {md_escape(_one_line(c.quote))}",
        ]
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return " ".join((text or "").split())


def _copy_actions(plain: str, markdown: str) -> str:
    """Buttons that copy the answer (app.js reads the text from the turn's data attributes)."""
    return (
        '<div class="rag-actions" data-rag-copy="1">'
        f'<span class="rag-copy-data" hidden data-text="{esc(plain)}" data-md="{esc(markdown)}"></span>'
        '<button type="button" class="rag-copy" data-format="text">Copy answer</button>'
        '<button type="button" class="rag-copy" data-format="md">Copy as Markdown</button>'
        '<span class="rag-copied" role="status" aria-live="polite"></span></div>'
    )


def render_answer(
    answer: Answer, turn: int, articles: Mapping[str, Article] | None = None, question: str | None = None
) -> str:
    """The assistant's part of a turn: the answer (or abstention) and its source cards.

    ``articles`` holds the cited articles by doc_id; a card whose article is missing shows only
    the cited paragraph.
    """
    articles = articles or {}
    prefix = f"src-{turn}"
    question = answer.question if question is None else question
    meta = [f"answered by {esc(mode_label(answer.mode))}"]
    total = answer.timings.get("total")
    if isinstance(total, (int, float)):
        meta.append(f"{total:.1f} s")
    confidence = "" if answer.abstained else render_confidence(answer)
    if confidence and not is_weak(answer):
        meta.insert(0, confidence)
    meta_html = f'<div class="rag-meta">{" · ".join(meta)}</div>'
    if answer.standalone_question:
        meta_html += f'<div class="rag-meta">understood as: “{esc(answer.standalone_question)}”</div>'
    actions = _copy_actions(answer_plain_text(question, answer), answer_markdown(question, answer))
    if answer.abstained:
        closest = answer.closest
        closest_html = (
            render_closest(closest, f"closest-{turn}", articles.get(closest.doc_id), answer.confidence)
            if closest is not None
            else ""
        )
        return (
            f'<div class="rag-a rag-abstain" data-grounding="{esc(answer.grounding)}">'
            '<div class="rag-label">Not in the articles</div>'
            f'<div class="rag-answer-text">{esc(answer.text)}</div>{closest_html}'
            '<div class="rag-hint">Try rephrasing, or look at the paragraphs the Search tab finds.</div>'
            f"{meta_html}{actions if closest is not None else ''}</div>"
        )
    text = render_answer_text(answer.text, prefix, [c.n for c in answer.citations])
    weak_html = ""
    if is_weak(answer):
        weak_html = (
            f'<div class="rag-weak-answer" role="note">{confidence}'
            '<span class="rag-weak-why">The cited passages only partly support this answer: '
            "check the sources before relying on it.</span></div>"
        )
    cards = "".join(
        render_card(
            c,
            f"{prefix}-{c.n}",
            str(c.n),
            articles.get(c.doc_id),
            extra_meta=_support_meta(c),
            badge="weak support" if c.support is not None and c.support < WEAK_CONFIDENCE else "",
        )
        for c in answer.citations
    )
    sources = (
        f'<div class="rag-sources"><div class="rag-label">Sources</div>{cards}</div>'
        if cards
        else '<div class="rag-hint">No sources were cited.</div>'
    )
    return (
        f'<div class="rag-a rag-answered" data-grounding="{esc(answer.grounding)}"><div class="rag-label">Answer</div>'
        f'{weak_html}<div class="rag-answer-text">{text}</div>{meta_html}{actions}{sources}</div>'
    )


def render_notice(message: str) -> str:
    """A problem, as a plain message (never a traceback)."""
    return f'<div class="rag-a rag-notice" role="alert"><div class="rag-label">Problem</div>{esc(message)}</div>'


def render_hint(message: str) -> str:
    """A short message under the question box (nothing is added to the conversation)."""
    return f'<div class="rag-hint-box" role="alert">{esc(message)}</div>' if message else ""


def render_question(question: str) -> str:
    return f'<div class="rag-q"><div class="rag-bubble">{esc(question)}</div></div>'


#: A marker the model wrote while streaming (its context numbers, renumbered only once checked),
#: and one that is still being written at the end of the text ("[", "[1").
_STREAMED_MARKER = re.compile(r"[^\S\n]*\[\d{1,3}\]|[^\S\n]*\[\d{0,3}$")


def strip_markers(text: str) -> str:
    """Streamed text without the model's ``[n]`` markers: those number the paragraphs as the model
    saw them, and change when each sentence is checked and its citation numbered; the final
    answer shows the checked ones."""
    return _STREAMED_MARKER.sub("", text or "")


def render_stopped(question: str, partial: str) -> str:
    """An answer the user stopped: what had been written, marked as stopped and not checked."""
    text = strip_markers(partial).strip()
    body = (
        f'<div class="rag-answer-text">{esc(text)}</div>'
        if text
        else '<div class="rag-answer-text rag-thinking">(nothing had been written yet)</div>'
    )
    return (
        '<div class="rag-a rag-stopped"><div class="rag-label">Stopped</div>'
        f"{body}"
        '<div class="rag-hint">You stopped this answer. Its sentences were not checked against the '
        "articles and it cites no sources; ask again for a checked answer.</div></div>"
    )


def turn_markdown(
    question: str, answer: Answer | None, problem: str | None = None, stopped: str | None = None
) -> str:
    """One turn as Markdown: the question and the answer with its sources (or what became of it)."""
    if stopped is not None:
        text = md_escape(strip_markers(stopped).strip()) or "(nothing had been written yet)"
        return f"**Question:** {md_escape(_one_line(question))}\n\n{text}\n\n*(stopped: not checked, no sources)*"
    if problem is not None or answer is None:
        return f"**Question:** {md_escape(_one_line(question))}\n\n*Problem: {md_escape(problem or '')}*"
    return answer_markdown(question, answer)


#: The heading of an exported conversation, and what separates its turns (app.js/EXPORT_JS match).
EXPORT_HEADING = "# Conversation with the articles"
EXPORT_SEPARATOR = "\n\n---\n\n"


def conversation_markdown(turns_markdown: Sequence[str]) -> str:
    """The conversation as one Markdown document (what "Export conversation" saves)."""
    return f"{EXPORT_HEADING}\n\n{EXPORT_SEPARATOR.join(turns_markdown)}\n"


def render_turn(
    index: int,
    question: str,
    answer: Answer | None,
    problem: str | None = None,
    articles: Mapping[str, Article] | None = None,
    stopped: str | None = None,
) -> str:
    """One finished turn: the question, then the answer, the stopped answer, or the problem.

    Its Markdown (``turn_markdown``) rides along in ``data-md``, for "Export conversation".
    """
    if stopped is not None:
        inner = render_stopped(question, stopped)
    elif problem is not None or answer is None:
        inner = render_notice(problem or "")
    else:
        inner = render_answer(answer, index, articles, question)
    markdown = esc(turn_markdown(question, answer, problem, stopped))
    return f'<div class="rag-turn" data-turn="{index}" data-md="{markdown}">{render_question(question)}{inner}</div>'


def render_pending(index: int, question: str, text: str, stage: str = "") -> str:
    """The turn being answered: the question, the answer text streamed so far (its unchecked
    markers left out), and what is happening now (``stage``)."""
    shown = strip_markers(text)
    if shown:
        body = f'<div class="rag-answer-text rag-streaming">{esc(shown)}</div>'
    else:
        body = '<div class="rag-answer-text rag-streaming rag-thinking">Searching the articles…</div>'
    stage_html = f'<div class="rag-stage" role="status" aria-live="polite">{esc(stage)}</div>' if stage else ""
    return (
        f'<div class="rag-turn rag-pending" data-turn="{index}">{render_question(question)}'
        f'<div class="rag-a"><div class="rag-label">Answer</div>{body}{stage_html}</div></div>'
    )


def render_conversation(turns_html: Sequence[str]) -> str:
    """The finished turns (each rendered by ``render_turn``), or an invitation to ask."""
    if not turns_html:
        return (
            '<div class="rag-empty">Ask a question about the articles. Every answer cites the '
            "paragraphs it comes from; follow-up questions keep the conversation's context.</div>"
        )
    return "".join(turns_html)


WEAK_MATCH_NOTICE = (
    "None of these paragraphs contains any of your search words: they are only the closest in "
    "meaning, and may not be about what you are looking for."
)


def render_hits(
    hits: Sequence[Hit], articles: Mapping[str, Article] | None = None, unmatched: Sequence[bool] | None = None
) -> str:
    """The search view: one numbered card a paragraph, with its score.

    ``unmatched[i]`` says that hit i holds none of the query's words: its card says so, and when
    no hit holds any, a notice above the cards says they are weak matches.
    """
    if not hits:
        return '<div class="rag-empty">No paragraph matches.</div>'
    articles = articles or {}
    unmatched = list(unmatched) if unmatched is not None else [False] * len(hits)
    cards = [
        render_card(
            hit,
            f"hit-{rank}",
            str(rank),
            articles.get(hit.doc_id),
            extra_meta=f"score {hit.score:.3f}",
            badge="none of your words" if weak else "",
        )
        for rank, (hit, weak) in enumerate(zip(hits, unmatched, strict=True), start=1)
    ]
    notice = (
        f'<div class="rag-weak-notice" role="status">{esc(WEAK_MATCH_NOTICE)}</div>' if all(unmatched) else ""
    )
    return f'{notice}<div class="rag-sources rag-hits">{"".join(cards)}</div>'


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


# --- the corpus panel ------------------------------------------------------------------------


def _format_created(created: str | None) -> str:
    if not created:
        return "at an unknown time"
    try:
        when = _dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return created
    return when.strftime("%-d %B %Y, %H:%M UTC")


def render_corpus(
    articles: Sequence[Article],
    *,
    created: str | None,
    paragraphs: int,
    pending: Sequence[str] = (),
    removed: Sequence[str] = (),
    updating: str | None = None,
    last_error: str | None = None,
) -> str:
    """The corpus panel: how fresh the index is, then one row an article (title, date, paragraphs, file).

    ``pending``: files in the folder the index does not have yet (or has an older version of);
    ``removed``: articles of the index whose file is gone; ``updating``: what the running update does.
    """
    state = f"{len(articles)} articles, {paragraphs} paragraphs; index built {_format_created(created)}"
    if updating:
        fresh = f'<div class="rag-fresh rag-updating" role="status">⏳ Updating the index: {esc(updating)}. ' \
            "Questions are answered from the current index until the update is done.</div>"
    elif pending or removed:
        waiting = len(pending) + len(removed)
        fresh = f'<div class="rag-fresh rag-stale" role="status">{waiting} change(s) not in the index yet.</div>'
    else:
        fresh = '<div class="rag-fresh rag-current" role="status">The index is up to date with the corpus folder.</div>'
    error = (
        f'<div class="rag-notice rag-a" role="alert"><div class="rag-label">Problem</div>{esc(last_error)}</div>'
        if last_error
        else ""
    )
    rows = "".join(
        '<div class="rag-row" role="row">'
        f'<span role="cell" class="rag-c-title">{esc(a.title)}</span>'
        f'<span role="cell" class="rag-c-date">{esc(format_date(a.date)) or "—"}</span>'
        f'<span role="cell" class="rag-c-paras">{len(a.paragraphs)}</span>'
        f'<span role="cell" class="rag-c-file rag-doc">{esc(a.doc_id)}</span></div>'
        for a in articles
    )
    waiting_rows = "".join(
        f'<div class="rag-row rag-row-pending" role="row"><span role="cell" class="rag-c-title">'
        f'{esc(name)}</span><span role="cell" class="rag-c-date">—</span><span role="cell" class="rag-c-paras">'
        f'—</span><span role="cell" class="rag-c-file rag-doc">not indexed yet</span></div>'
        for name in pending
    )
    head = (
        '<div class="rag-row rag-row-head" role="row"><span role="columnheader">Title</span>'
        '<span role="columnheader">Date</span><span role="columnheader">Paragraphs</span>'
        '<span role="columnheader">File</span></div>'
    )
    return (
        f'<div class="rag-corpus"><div class="rag-meta">{esc(state)}</div>{fresh}{error}'
        f'<div class="rag-table" role="table" aria-label="Articles in the index">{head}{rows}{waiting_rows}</div></div>'
    )
