"""The chat UI: API endpoints through gradio_client, rendering, escaping, streaming, loading.

A real knowledge base over a temporary copy of seeds/ (plus one hostile article) serves the
end-to-end checks; small fakes serve the unit pieces. Answers use extractive mode (fast, no LLM).
"""

from __future__ import annotations

import html
import re
import shutil
import socket
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from gradio_client import Client

from rag.errors import CorpusError, QueryError
from rag.knowledge import KnowledgeBase
from rag.domain import Answer, Article, Citation, Hit, Paragraph
from ui import app as ui_app

SEEDS = Path(__file__).resolve().parents[2] / "seeds"

EVIL_ARTICLE = """Zorblax cooperative <script>alert(1)</script> trains tailors

News | 03 March 2023
The Zorblax tailoring cooperative in Narnia trained 42 tailors in 2023 <img src=x onerror=alert(2)> with support from the ILO.

A second paragraph mentions <b onmouseover="alert(3)">bold</b> text and a link <a href="javascript:alert(4)">here</a>.
"""

ALLOWED_TAGS = {"div", "span", "a", "mark", "details", "summary", "p", "h4"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TagCollector(HTMLParser):
    """Every tag and attribute the browser would build from a piece of HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


def parse_tags(markup: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = TagCollector()
    parser.feed(markup)
    parser.close()
    return parser.tags


def assert_no_injection(markup: str) -> None:
    for tag, attrs in parse_tags(markup):
        assert tag in ALLOWED_TAGS, f"unexpected tag <{tag}> in rendered HTML"
        for name, value in attrs:
            assert not name.startswith("on"), f"event handler attribute {name} in rendered HTML"
            if name == "href":
                assert value is not None and value.startswith("#"), f"non-anchor link {value!r}"


def handler(demo, name: str):
    """The Python function behind one of the app's (private) UI events."""
    for block_fn in demo.fns.values():
        if block_fn.name == name:
            return block_fn.fn
    raise AssertionError(f"no handler {name}")


def run_respond(demo, question: str, turns: list | None = None, mode: str = "extractive", k: int = 3):
    """All the updates the chat handler yields for one question (question, conversation, pending, turns)."""
    return list(handler(demo, "respond")(question, turns or [], mode, k))


def final_turns(updates) -> list[dict]:
    return updates[-1][3]


# --------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kb(tmp_path_factory) -> KnowledgeBase:
    root = tmp_path_factory.mktemp("ui_kb")
    corpus = root / "corpus"
    shutil.copytree(SEEDS, corpus)
    (corpus / "900_evil.txt").write_text(EVIL_ARTICLE, encoding="utf-8")
    return KnowledgeBase(corpus, root / "index").ensure_ready()


@pytest.fixture(scope="module")
def served(kb):
    demo = ui_app.build_app(kb)
    assert demo.rag_loader.wait(120), "the knowledge base did not load in time"
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        yield demo, client
    finally:
        demo.close()


class FakeKB:
    """A stand-in with the library's surface: answer_stream, answer, search, llm_available."""

    def __init__(self, tokens: list[str] | None = None, delay: float = 0.0, llm: bool = False) -> None:
        self.tokens = tokens if tokens is not None else ["Answer text ", "[1]"]
        self.delay = delay
        self.llm = llm
        self.calls: list[dict] = []
        para = Paragraph("a.txt", 1, "First paragraph with the quote inside.", 0, 38)
        self.article = Article("a.txt", "An article", "2024-01-02", (para,), "0" * 64)
        self.hit = Hit("a.txt", "An article", "2024-01-02", 1, para.text, 0, 38, 1.0)

    def answer_stream(self, question, history=None, mode=None, k=None):
        if not question.strip():
            raise QueryError("the question is empty: type a question about the articles")
        self.calls.append({"question": question, "history": history, "mode": mode, "k": k})
        text = ""
        for token in self.tokens:
            if self.delay:
                time.sleep(self.delay)
            text += token
            yield token
        yield Answer(question, text, (Citation.from_hit(self.hit, 1, "the quote"),), mode=mode or "extractive")

    def answer(self, question, history=None, mode=None, k=None):
        *_, final = self.answer_stream(question, history, mode, k)
        return final

    def search(self, query, k=None):
        return [self.hit]

    def llm_available(self):
        return self.llm


# --------------------------------------------------------------------------------------
# the API endpoints, through gradio_client, over the real knowledge base
# --------------------------------------------------------------------------------------

CITATION_FIELDS = {"n", "doc_id", "title", "date", "paragraph", "text", "start", "end", "score", "quote"}


def test_named_endpoints_are_listed(served):
    _, client = served
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/ask", "/search"} <= set(endpoints)


def test_ask_returns_text_and_citations(served):
    _, client = served
    result = client.predict("Who funded the country studies and workshops?", None, "extractive", 3, api_name="/ask")
    assert result["abstained"] is False
    assert "Korea" in result["text"]
    assert re.search(r"\[1\]", result["text"])
    assert result["citations"], "an answer must cite its sources"
    for c in result["citations"]:
        assert set(c) >= CITATION_FIELDS
        assert c["quote"] and c["quote"] in c["text"]
        assert isinstance(c["paragraph"], int) and c["paragraph"] >= 1
        assert c["title"]


def test_ask_follow_up_uses_history(served):
    _, client = served
    first = client.predict("Who funded the country studies and workshops?", None, "extractive", 3, api_name="/ask")
    history = [
        {"role": "user", "content": "Who funded the country studies and workshops?"},
        {"role": "assistant", "content": first["text"]},
    ]
    follow = client.predict("How many participants attended it?", history, "extractive", 3, api_name="/ask")
    assert "100 participants" in follow["text"]
    assert follow["citations"]


def test_ask_history_may_be_json_text(served):
    _, client = served
    result = client.predict("Who funded the country studies and workshops?", "[]", "extractive", 3, api_name="/ask")
    assert result["citations"]


def test_search_lists_paragraphs(served):
    _, client = served
    hits = client.predict("phase 2 countries mapping study", 3, api_name="/search")
    assert 1 <= len(hits) <= 3
    for h in hits:
        assert {"doc_id", "title", "date", "paragraph", "text", "score"} <= set(h)
    assert any("Kyrgyzstan" in h["text"] for h in hits)


def test_empty_question_is_a_plain_error(served):
    _, client = served
    with pytest.raises(Exception) as info:
        client.predict("", None, "extractive", 3, api_name="/ask")
    message = str(info.value)
    assert "question is empty" in message
    assert "Traceback" not in message


# --------------------------------------------------------------------------------------
# the chat handler over the real knowledge base: rendering, escaping, abstention, errors
# --------------------------------------------------------------------------------------


def test_chat_answer_has_source_cards_and_marker_links(served):
    demo, _ = served
    updates = run_respond(demo, "Who funded the country studies and workshops?")
    first = updates[0]
    assert first[0] == "", "the question box is cleared when the question is sent"
    assert "Searching the articles" in first[2]
    conversation = updates[-1][1]
    assert 'id="src-0-1"' in conversation
    assert '<a class="rag-cite" href="#src-0-1"' in conversation
    assert "<mark>" in conversation
    assert "paragraph 4" in conversation
    assert "<details" in conversation and 'class="rag-cited" id="src-0-1-p4"' in conversation
    assert updates[-1][2] == "", "the pending turn is cleared when the answer is done"
    assert_no_injection(conversation)


def test_follow_up_in_the_same_conversation(served):
    demo, _ = served
    turns = final_turns(run_respond(demo, "Who funded the country studies and workshops?"))
    updates = run_respond(demo, "How many participants attended it?", turns)
    turns = final_turns(updates)
    assert len(turns) == 2
    conversation = updates[-1][1]
    assert "100 participants" in conversation
    # ids are unique per answer: the second answer's cards do not reuse the first one's
    assert 'id="src-0-1"' in conversation and 'id="src-1-1"' in conversation
    ids = re.findall(r'\bid="([^"]+)"', conversation)
    assert len(ids) == len(set(ids))


def test_article_and_question_html_is_escaped(served):
    demo, _client = served
    question = (
        'How many tailors did the Zorblax cooperative train? <img src=x onerror="alert(5)"><script>alert(6)</script>'
    )
    updates = run_respond(demo, question)
    conversation = updates[-1][1]
    assert "Zorblax" in conversation
    assert "<script" not in conversation and "<img" not in conversation
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in conversation  # the title, as text
    assert "&lt;img src=x onerror=alert(2)&gt;" in conversation  # the paragraph, as text
    assert "&lt;script&gt;alert(6)&lt;/script&gt;" in conversation  # the question, as text
    assert_no_injection(conversation)
    for update in updates:
        if isinstance(update[2], str):  # the streamed (pending) turn
            assert_no_injection(update[2])
    # the search view escapes too
    hits_html = handler(demo, "search_view")("Zorblax tailors", 5)
    assert "Zorblax" in hits_html
    assert_no_injection(hits_html)


def test_abstention_looks_different(served):
    demo, _ = served
    abstained = run_respond(demo, "What is the capital of France?")[-1][1]
    answered = run_respond(demo, "Who funded the country studies and workshops?")[-1][1]
    assert "rag-abstain" in abstained and "Not in the articles" in abstained
    assert "rag-card" not in abstained
    assert "rag-abstain" not in answered and "Not in the articles" not in answered


def test_empty_and_too_long_questions_are_plain_messages(served):
    demo, _ = served
    for question, expected in [("", "question is empty"), ("why " * 1000, "too long")]:
        conversation = run_respond(demo, question)[-1][1]
        assert "rag-notice" in conversation
        assert expected in conversation
        assert "Traceback" not in conversation and "File " not in conversation


def test_search_view_lists_paragraphs_without_answering(served):
    demo, _ = served
    out = handler(demo, "search_view")("phase 2 countries mapping study", 4)
    assert out.count('class="rag-card"') == 4
    assert "score" in out and "paragraph" in out
    assert "rag-answered" not in out
    assert "rag-notice" in handler(demo, "search_view")("", 4)


# --------------------------------------------------------------------------------------
# unit pieces, with fakes
# --------------------------------------------------------------------------------------


def test_highlight_escapes_and_marks_the_quote():
    out = ui_app.highlight("a <b>x</b> the quote & more", "the quote & more")
    assert out == "a &lt;b&gt;x&lt;/b&gt; <mark>the quote &amp; more</mark>"
    assert ui_app.highlight("<i>", "missing") == "&lt;i&gt;"


def test_marker_links_only_for_known_sources():
    out = ui_app.render_answer_text("A <x> [1] B [2] C [9]", "src-4", [1, 2])
    assert '<a class="rag-cite" href="#src-4-1"' in out
    assert '<a class="rag-cite" href="#src-4-2"' in out
    assert "[9]" in out and 'href="#src-4-9"' not in out
    assert "&lt;x&gt;" in out


def test_abstention_rendering_differs_from_an_answer():
    fake = FakeKB()
    answered = ui_app.render_answer(fake.answer("q"), 0)
    abstained = ui_app.render_answer(Answer("q", "The articles don't say.", abstained=True), 0)
    assert "rag-answered" in answered and "rag-card" in answered
    assert "rag-abstain" in abstained and "Not in the articles" in abstained and "rag-card" not in abstained


def test_streaming_is_throttled_and_history_is_passed():
    fake = FakeKB(tokens=[f"w{i} " for i in range(150)] + ["[1]"], delay=0.002)
    demo = ui_app.build_app(fake, stream_interval=0.1)
    assert demo.rag_loader.wait(10)
    started = time.monotonic()
    updates = run_respond(demo, "first question")
    elapsed = time.monotonic() - started
    streamed = [u for u in updates[1:-1]]
    assert len(streamed) <= elapsed / 0.1 + 2, f"{len(streamed)} re-renders in {elapsed:.2f}s: not throttled"
    assert len(streamed) < 150 / 4
    assert all("rag-streaming" in u[2] for u in streamed)
    turns = final_turns(updates)
    assert "w149" in updates[-1][1]
    assert fake.calls[0]["history"] is None
    run_respond(demo, "second question", turns)
    assert fake.calls[1]["history"] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "".join(fake.tokens)},
    ]


def test_loading_message_until_the_kb_is_ready():
    release = threading.Event()
    fake = FakeKB()

    def factory():
        assert release.wait(10)
        return fake

    demo = ui_app.build_app(factory)
    loader = demo.rag_loader
    assert "being built or loaded" in ui_app.render_status(loader)
    conversation = run_respond(demo, "a question")[-1][1]
    assert "still being built or loaded" in conversation and "rag-notice" in conversation
    assert "being built or loaded" in handler(demo, "search_view")("x", 3)
    release.set()
    assert loader.wait(10) and loader.ready
    assert ui_app.render_status(loader) == ""
    assert "rag-card" in run_respond(demo, "a question")[-1][1]


def test_load_failure_is_a_plain_message():
    def factory():
        raise CorpusError("no articles (*.txt, *.md) in corpus folder /nowhere")

    demo = ui_app.build_app(factory)
    assert demo.rag_loader.wait(10)
    status = ui_app.render_status(demo.rag_loader)
    assert "no articles" in status and "rag-failed" in status
    assert "no articles" in run_respond(demo, "q")[-1][1]


def test_unexpected_errors_do_not_show_a_traceback(caplog):
    class Broken(FakeKB):
        def answer_stream(self, *args, **kwargs):
            raise RuntimeError("boom at line 3")

    demo = ui_app.build_app(Broken())
    assert demo.rag_loader.wait(10)
    conversation = run_respond(demo, "q")[-1][1]
    assert "Something went wrong (RuntimeError)" in conversation
    assert "Traceback" not in conversation and "boom" not in conversation


def test_llm_mode_is_labelled_unavailable_without_a_model():
    labels = dict((value, label) for label, value in ui_app.mode_choices(False))
    assert "unavailable" in labels["llm"]
    labels = dict((value, label) for label, value in ui_app.mode_choices(True))
    assert "unavailable" not in labels["llm"]
    demo = ui_app.build_app(FakeKB(llm=False))
    assert demo.rag_loader.wait(10)
    _status, radio, timer = handler(demo, "status_tick")()
    assert any("unavailable" in str(label) for label, _ in radio.choices)
    assert timer.active is False


def test_escape_helper_covers_attributes():
    assert ui_app.esc('"><img src=x>') == html.escape('"><img src=x>', quote=True)
