"""``ui.render``: typed library objects in, escaped HTML out (no knowledge base, no Gradio)."""

from __future__ import annotations

import html

from rag.domain import CITATION_MARKER, Answer, Article, Citation, Hit, Paragraph
from rag.prompts import UNSUPPORTED_MARK
from rag.settings import ANSWER_MODES
from tests.ui.html_checks import assert_no_injection
from ui import render

EVIL = '<script>alert(1)</script> <img src=x onerror="alert(2)"> & "quoted"'


def paragraph(number: int, text: str) -> Paragraph:
    return Paragraph("evil.txt", number, text, 0, len(text))


ARTICLE = Article(
    "evil.txt",
    f"Title {EVIL}",
    "2023-03-03",
    (paragraph(1, f"Intro {EVIL}"), paragraph(2, f"The cited one {EVIL} with the quote."), paragraph(3, "Last.")),
    "0" * 64,
)
HIT = Hit("evil.txt", ARTICLE.title, "2023-03-03", 2, ARTICLE.paragraphs[1].text, 0, 10, 0.87654)
CITATION = Citation.from_hit(HIT, 1, f"{EVIL} with the quote")


def answer(text: str, citations: tuple[Citation, ...] = (CITATION,), **kwargs) -> Answer:
    return Answer(f"question {EVIL}", text, citations, **kwargs)


# --- escaping ---------------------------------------------------------------------------------


def test_escape_helper_covers_attributes():
    assert render.esc('"><img src=x>') == html.escape('"><img src=x>', quote=True)
    assert render.esc(None) == ""
    assert render.esc(3) == "3"


def test_highlight_escapes_and_marks_the_quote():
    out = render.highlight("a <b>x</b> the quote & more", "the quote & more")
    assert out == "a &lt;b&gt;x&lt;/b&gt; <mark>the quote &amp; more</mark>"
    assert render.highlight("<i>", "missing") == "&lt;i&gt;"
    assert render.highlight("<i>", None) == "&lt;i&gt;"


def test_answer_card_and_article_escape_every_piece_of_text():
    out = render.render_answer(
        answer(f"Said {EVIL} [1].", standalone_question=f"rewritten {EVIL}"), 0, {"evil.txt": ARTICLE}
    )
    assert_no_injection(out)
    assert "<script" not in out and "<img" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert out.count("<mark>") == 2  # the quote, in the card and in the whole article
    assert "understood as: “rewritten &lt;script&gt;" in out


def test_hits_question_pending_notice_and_status_escape():
    for out in (
        render.render_hits([HIT], {"evil.txt": ARTICLE}),
        render.render_question(EVIL),
        render.render_pending(0, EVIL, EVIL),
        render.render_notice(EVIL),
        render.render_status(loading=False, failure=EVIL),
        render.render_turn(0, EVIL, None, EVIL),
    ):
        assert_no_injection(out)
        assert "&lt;script&gt;" in out and "<script" not in out


# --- citation markers and the unsupported mark ---------------------------------------------------


def test_marker_links_only_for_known_sources():
    out = render.render_answer_text("A <x> [1] B [2] C [9]", "src-4", [1, 2])
    assert '<a class="rag-cite" href="#src-4-1"' in out
    assert '<a class="rag-cite" href="#src-4-2"' in out
    assert "[9]" in out and 'href="#src-4-9"' not in out
    assert "&lt;x&gt;" in out


def test_markers_are_the_librarys_citation_marker():
    assert CITATION_MARKER.fullmatch("[123]") and not CITATION_MARKER.fullmatch("[1234]")
    out = render.render_answer_text("four digits [1234] and [12]", "src-0", [12, 1234])
    assert "[1234]" in out and 'href="#src-0-1234"' not in out
    assert '<a class="rag-cite" href="#src-0-12" title="Source 12">[12]</a>' in out


def test_a_marker_in_escaped_html_is_still_only_a_link():
    out = render.render_answer_text('<a href="javascript:x">[1]</a>', "src-0", [1])
    assert_no_injection(out)
    assert out.count("<a ") == 1 and 'href="#src-0-1"' in out


def test_the_unsupported_mark_is_a_visible_badge():
    out = render.render_answer_text(f"Supported [1]. Made up {UNSUPPORTED_MARK}", "src-0", [1])
    assert UNSUPPORTED_MARK not in out
    assert '<span class="rag-unsupported"' in out and ">unsupported</span>" in out
    assert render.render_answer_text("no mark here", "src-0", []) == "no mark here"


def test_card_ids_are_per_turn_and_the_cited_paragraph_is_anchored():
    out = render.render_answer(answer("Claim [1]."), 3, {"evil.txt": ARTICLE})
    assert 'id="src-3-1"' in out and 'href="#src-3-1"' in out
    assert 'class="rag-cited" id="src-3-1-p2"' in out and 'href="#src-3-1-p2"' in out
    assert "(3 paragraphs, ¶2 highlighted)" in out


# --- answers, abstentions, hits, cards ---------------------------------------------------------------


def test_abstention_rendering_differs_from_an_answer():
    answered = render.render_answer(answer("Claim [1]."), 0)
    abstained = render.render_answer(Answer("q", "The articles don't say.", abstained=True), 0)
    assert "rag-answered" in answered and "rag-card" in answered
    assert "rag-abstain" in abstained and "Not in the articles" in abstained and "rag-card" not in abstained


def test_answer_meta_names_the_mode_and_time():
    out = render.render_answer(answer("Claim [1].", mode="llm", timings={"total": 2.345}), 0)
    assert "answered by LLM (generative) · 2.3 s" in out
    assert "No sources were cited." in render.render_answer(answer("No markers.", ()), 0)


def test_card_without_its_article_shows_the_paragraph_only():
    out = render.render_card(CITATION, "src-0-1", "1")
    assert "<details" not in out and "<mark>" in out
    assert '<span class="rag-date">3 March 2023</span>' in out
    assert "paragraph 2 · " in out


def test_hit_cards_have_scores_and_no_quote():
    out = render.render_hits([HIT, Hit("b.txt", "B", None, 1, "bees", 0, 4, 0.5)])
    assert "score 0.877" in out and "score 0.500" in out
    assert "<mark>" not in out
    assert 'id="hit-1"' in out and 'id="hit-2"' in out
    assert "No paragraph matches." in render.render_hits([])


def test_article_without_paragraphs_renders_nothing():
    assert render.render_article(Article("x.txt", "X", None, (), "0" * 64), 1, None, "a") == ""


def test_dates_read_as_people_write_them():
    assert render.format_date("2024-01-02") == "2 January 2024"
    assert render.format_date("early 2024") == "early 2024"
    assert render.format_date(None) == ""


def test_conversation_and_status():
    assert "Ask a question" in render.render_conversation([])
    assert render.render_conversation(["<div>a</div>", "<div>b</div>"]) == "<div>a</div><div>b</div>"
    assert "being built or loaded" in render.render_status(loading=True)
    assert render.render_status(loading=False) == ""


# --- answer modes ---------------------------------------------------------------------------------


def test_mode_choices_offer_the_librarys_modes_in_order():
    assert set(render.MODE_LABELS) == set(ANSWER_MODES)
    for available in (None, True, False):
        assert [mode for _, mode in render.mode_choices(available)] == list(ANSWER_MODES)
    labels = dict((mode, label) for label, mode in render.mode_choices(False))
    assert "unavailable" in labels["llm"] and "no LLM" in labels["auto"]
    labels = dict((mode, label) for label, mode in render.mode_choices(None))
    assert "checking" in labels["llm"]


def test_a_dateline_citation_reads_as_the_dateline():
    line = Paragraph("evil.txt", 0, "News | 03 March 2023", 0, 20)
    dated = Article(ARTICLE.doc_id, ARTICLE.title, ARTICLE.date, ARTICLE.paragraphs, ARTICLE.sha256, dateline=line)
    hit = Hit("evil.txt", dated.title, dated.date, 0, line.text, line.start, line.end, 0.5)
    citation = Citation.from_hit(hit, 1, line.text)
    out = render.render_answer(answer("“Title” was published on 3 March 2023 [1].", (citation,)), 4, {"evil.txt": dated})
    assert "dateline · " in out and "paragraph 0" not in out
    assert 'class="rag-cited rag-dateline" id="src-4-1-p0"' in out and "(3 paragraphs, the dateline highlighted)" in out
    assert "<mark>News | 03 March 2023</mark>" in out
    assert ", dateline (`evil.txt`)" in render.answer_markdown("q", answer("x [1].", (citation,)))
    # A paragraph's card still shows the dateline under the title, unmarked.
    plain = render.render_answer(answer("Claim [1]."), 5, {"evil.txt": dated})
    assert '<p class="rag-dateline">News | 03 March 2023</p>' in plain and "¶2 highlighted" in plain
