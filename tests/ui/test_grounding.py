"""How well an answer is supported, as the user sees it (issue 13, item 5).

Pure render tests on constructed ``Answer`` objects (confidence, per-citation support, an
abstention's closest passage), the state kept by the browser read back (old and new), and the
chat handler and ``/ask`` endpoint over a fake knowledge base whose answers carry those fields.
"""

from __future__ import annotations

import json
import re

from rag.domain import Answer, Article, Citation, Hit, Paragraph
from rag.settings import get_settings
from tests.ui.html_checks import assert_no_injection
from ui import app as ui_app
from ui import handlers as ui_handlers
from ui import render

EVIL = '<script>alert(1)</script> <img src=x onerror="alert(2)"> & "quoted"'
TEXT = f"First paragraph {EVIL} with the quote inside."
PARA = Paragraph("a.txt", 1, TEXT, 0, len(TEXT))
ARTICLE = Article("a.txt", f"An article {EVIL}", "2024-01-02", (PARA,), "0" * 64)
HIT = Hit("a.txt", ARTICLE.title, "2024-01-02", 1, TEXT, 0, len(TEXT), 0.8)


def cite(n: int = 1, support: float | None = 0.87, quote: str = "the quote") -> Citation:
    return Citation.from_hit(HIT, n, quote, support=support)


STATED = Answer("q", "Claim [1].", (cite(),), confidence=0.92)
WEAK = Answer("q", "Claim [1]. Made up [unsupported]", (cite(support=0.3),), mode="llm", confidence=0.31)
CLOSEST = Answer(
    "q", "The articles don't say.", abstained=True, confidence=0.12, closest=cite(0, support=0.2, quote="the quote")
)
NOTHING = Answer("q", "The articles don't say.", abstained=True, confidence=0.02)


def copy_data(html_: str) -> tuple[str, str]:
    """The plain text and Markdown a turn's copy buttons copy (unescaped)."""
    import html

    m = re.search(r'class="rag-copy-data" hidden data-text="([^"]*)" data-md="([^"]*)"', html_)
    assert m, "no copy data"
    return html.unescape(m.group(1)), html.unescape(m.group(2))


# --- rendering ------------------------------------------------------------------------------


def test_a_stated_answer_shows_its_confidence_discreetly_and_each_sources_support():
    out = render.render_answer(STATED, 0, {"a.txt": ARTICLE})
    assert 'data-grounding="stated"' in out
    meta = re.search(r'<div class="rag-meta">(.*?)</div>', out).group(1)
    assert "Supported · 92%" in meta and "answered by" in meta
    assert "rag-weak-answer" not in out and "Weakly supported" not in out
    card_meta = re.search(r'<div class="rag-meta rag-origin">(.*?)</div>', out).group(1)
    assert "support 87%" in card_meta
    assert "rag-closest" not in out
    assert_no_injection(out)


def test_a_weak_answer_gets_a_visible_badge_and_weak_sources_say_so():
    out = render.render_answer(WEAK, 1)
    assert '<div class="rag-weak-answer" role="note">' in out
    badge = re.search(r'<span class="rag-confidence rag-conf-weak"[^>]*>(.*?)</span>', out).group(1)
    assert badge == "Weakly supported · 31%"
    # the badge comes before the answer text, so it is read first
    assert out.index("rag-weak-answer") < out.index("rag-answer-text")
    assert '<span class="rag-weak">weak support</span>' in out and "support 30%" in out
    assert "rag-abstain" not in out


def test_an_abstention_shows_the_closest_passage_unlike_a_source():
    out = render.render_answer(CLOSEST, 2, {"a.txt": ARTICLE})
    assert 'class="rag-a rag-abstain" data-grounding="closest"' in out
    assert "Not in the articles" in out and "The articles don&#x27;t say." in out
    block = out[out.index('<div class="rag-closest"') :]
    assert render.CLOSEST_LABEL in block
    assert '<div class="rag-closest-quote">the quote</div>' in block
    assert "2 January 2024" in block and "paragraph 1" in block and "a.txt" in block
    assert "estimated 12% chance it answers the question" in block
    assert "rag-card" not in out and 'class="rag-n"' not in out and 'class="rag-cite"' not in out, "no number"
    assert "Supported" not in out
    assert "<details" in block, "the whole article is there to read"
    assert_no_injection(out)


def test_an_abstention_with_nothing_close_has_no_closest_block():
    out = render.render_answer(NOTHING, 0)
    assert 'data-grounding="none"' in out and "rag-closest" not in out
    assert "rag-copy" not in out


def test_an_answer_without_confidence_looks_as_before():
    out = render.render_answer(Answer("q", "Claim [1].", (cite(support=None),)), 0)
    assert "rag-confidence" not in out and "support " not in out
    plain, md = copy_data(out)
    assert "Confidence" not in plain and "Confidence" not in md


def test_percentages_never_claim_certainty():
    assert render.percent(0.999) == "99%" and render.percent(0.0) == "0%" and render.percent(0.456) == "46%"
    assert render.percent(None) == ""
    assert render.is_weak(WEAK) and not render.is_weak(STATED) and not render.is_weak(NOTHING)


def test_copied_text_and_markdown_carry_the_confidence_and_the_closest_passage():
    plain, md = copy_data(render.render_answer(STATED, 0))
    assert "Confidence: 92% (supported by the cited passages)" in plain
    assert "[1] " in plain and "(support 87%)" in plain
    assert "*Confidence: 92% (supported by the cited passages)*" in md and "— support 87%" in md
    plain, md = copy_data(render.render_answer(WEAK, 0))
    assert "Confidence: 31% (weakly supported: check the sources)" in plain
    plain, md = copy_data(render.render_answer(CLOSEST, 0))
    assert "Confidence: 12% that the closest passage answers it (the articles do not state it)" in plain
    assert f"{render.CLOSEST_LABEL}:" in plain and '    "the quote"' in plain
    assert "2 January 2024), paragraph 1 — a.txt" in plain
    assert f"**{render.CLOSEST_LABEL}:**" in md and "> the quote" in md
    exported = render.turn_markdown("q", CLOSEST)
    assert render.CLOSEST_LABEL in exported and "Confidence: 12%" in exported
    assert render.confidence_line(NOTHING) == "Confidence: 2% (nothing in the articles comes close)"


# --- state kept by the browser ------------------------------------------------------------------


def test_an_answer_round_trips_through_the_browsers_state():
    for answer in (STATED, WEAK, CLOSEST, NOTHING):
        kept = json.loads(json.dumps(ui_handlers.Turn("q", answer).to_dict()))
        back = ui_handlers.Turn.from_dict(kept).answer
        assert back == answer
        assert back.grounding == answer.grounding


def test_state_kept_before_confidence_existed_still_reads():
    old = STATED.to_dict()
    for key in ("confidence", "closest", "grounding"):
        old.pop(key)
    for c in old["citations"]:
        c.pop("support")
    back = ui_handlers.Turn.from_dict({"question": "q", "answer": old}).answer
    assert back is not None and back.confidence is None and back.closest is None
    assert back.citations[0].support is None and back.citations[0].quote == "the quote"


def test_altered_state_is_read_safely():
    data = CLOSEST.to_dict()
    data["confidence"] = "very"
    data["grounding"] = "stated"  # a property: never read back
    data["closest"]["support"] = 7
    data["closest"]["extra"] = "ignored"
    back = ui_handlers.Turn.from_dict({"question": "q", "answer": data}).answer
    assert back is not None and back.confidence is None and back.closest.support is None
    assert back.grounding == "closest"
    data["closest"] = "nope"
    assert ui_handlers.Turn.from_dict({"question": "q", "answer": data}) is None


# --- through the handlers, with a fake knowledge base --------------------------------------------


class FakeKB:
    """The part of the ``KnowledgeBase`` surface the chat uses; answers with confidence and grounding."""

    def __init__(self, answers: dict[str, Answer]) -> None:
        self.settings = get_settings()
        self.answers = answers

    def ensure_ready(self):
        return self

    def article(self, doc_id):
        return ARTICLE if doc_id == "a.txt" else None

    def answer_stream(self, question, history=None, mode=None, k=None):
        yield "…"
        yield self.answers[question]

    def answer(self, question, history=None, mode=None, k=None):
        return self.answers[question]

    def search(self, query, k=None):
        return [HIT]

    def llm_available(self):
        return False


def build(answers: dict[str, Answer]):
    demo = ui_app.build_app(FakeKB(answers))
    assert demo.rag_loader.wait(10)
    return demo


def respond(demo, question: str, turns=None):
    for block_fn in demo.fns.values():
        if block_fn.name == "respond":
            return list(block_fn.fn(question, turns or [], "extractive", 3))
    raise AssertionError("no respond handler")


def test_the_chat_shows_support_and_the_closest_passage_and_keeps_them():
    demo = build({"stated": STATED, "far": CLOSEST})
    updates = respond(demo, "stated")
    turns = updates[-1][3]
    updates = respond(demo, "far", turns)
    conversation, turns = updates[-1][1], updates[-1][3]
    first, second = conversation.split('data-turn="1"')
    assert "Supported · 92%" in first and "support 87%" in first
    assert render.CLOSEST_LABEL in second and 'id="closest-1"' in second
    assert "<details" in second, "the closest passage's article is looked up too"
    assert_no_injection(conversation)
    kept = json.loads(json.dumps(turns))
    assert kept[1]["answer"]["grounding"] == "closest" and kept[1]["answer"]["closest"]["quote"] == "the quote"
    conversation_again = ui_handlers.conversation_html(ui_handlers.clean_turns(kept), demo.rag_loader.get()[0])
    assert conversation_again == conversation
    exported = demo.rag_handlers.export_markdown(kept)
    assert "Confidence: 92% (supported by the cited passages)" in exported
    assert render.CLOSEST_LABEL in exported and "Confidence: 12% that the closest passage answers it" in exported


def test_the_ask_endpoint_returns_confidence_grounding_closest_and_support():
    demo = build({"stated": STATED, "far": CLOSEST, "none": NOTHING})
    ask = demo.rag_handlers.ask
    stated = ask("stated")
    assert stated["confidence"] == 0.92 and stated["grounding"] == "stated" and stated["closest"] is None
    assert stated["citations"][0]["support"] == 0.87
    far = ask("far")
    assert far["abstained"] is True and far["grounding"] == "closest" and far["confidence"] == 0.12
    assert far["closest"]["quote"] == "the quote" and far["closest"]["support"] == 0.2
    assert far["closest"]["title"] == ARTICLE.title and far["closest"]["paragraph"] == 1
    none = ask("none")
    assert none["grounding"] == "none" and none["closest"] is None
    json.dumps([stated, far, none])  # the endpoint's output is JSON
