"""The chat UI: API endpoints through gradio_client, rendering, escaping, streaming, loading.

A real knowledge base over a temporary copy of seeds/ (plus one hostile article) serves the
end-to-end checks; small fakes serve the unit pieces. Answers use extractive mode (fast, no LLM).
"""

from __future__ import annotations

import ast
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client

from rag.domain import Answer, Article, Citation, Hit, Paragraph
from rag.errors import CorpusError, QueryError
from rag.knowledge import KnowledgeBase
from rag.settings import Settings, get_settings
from tests.ui.html_checks import assert_no_injection
from ui import app as ui_app
from ui import handlers as ui_handlers
from ui import render

SEEDS = Path(__file__).resolve().parents[2] / "seeds"

EVIL_ARTICLE = """Zorblax cooperative <script>alert(1)</script> trains tailors

News | 03 March 2023
The Zorblax tailoring cooperative in Narnia trained 42 tailors in 2023 <img src=x onerror=alert(2)> with support from the ILO.

A second paragraph mentions <b onmouseover="alert(3)">bold</b> text and a link <a href="javascript:alert(4)">here</a>.
"""

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def handler(demo, name: str):
    """The Python function behind one of the app's (private) UI events."""
    for block_fn in demo.fns.values():
        if block_fn.name == name:
            return block_fn.fn
    raise AssertionError(f"no handler {name}")


def run_respond(demo, question: str, turns: list | None = None, mode: str = "extractive", k: int = 3):
    """All the updates the chat handler yields for one question (question, conversation, pending, turns)."""
    return list(handler(demo, "respond")(question, turns or [], mode, k))


def status_banner(demo) -> str:
    """The banner above the app, as the status handler renders it now."""
    return handler(demo, "status_tick")()[0].value


def final_turns(updates) -> list[ui_handlers.Turn]:
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
    """A stand-in with the part of the ``KnowledgeBase`` surface the UI uses."""

    def __init__(self, tokens: list[str] | None = None, delay: float = 0.0, llm: bool = False) -> None:
        self.settings = get_settings()
        self.tokens = tokens if tokens is not None else ["Answer text ", "[1]"]
        self.delay = delay
        self.llm = llm
        self.calls: list[dict] = []
        self.searches: list[int | None] = []
        para = Paragraph("a.txt", 1, "First paragraph with the quote inside.", 0, 38)
        self.the_article = Article("a.txt", "An article", "2024-01-02", (para,), "0" * 64)
        self.hit = Hit("a.txt", "An article", "2024-01-02", 1, para.text, 0, 38, 1.0)

    def ensure_ready(self):
        return self

    def article(self, doc_id):
        return self.the_article if doc_id == self.the_article.doc_id else None

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
        self.searches.append(k)
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
    assert "being built or loaded" in status_banner(demo)
    conversation = run_respond(demo, "a question")[-1][1]
    assert "still being built or loaded" in conversation and "rag-notice" in conversation
    assert "being built or loaded" in handler(demo, "search_view")("x", 3)
    release.set()
    assert loader.wait(10) and loader.ready
    assert status_banner(demo) == ""
    assert "rag-card" in run_respond(demo, "a question")[-1][1]


def test_load_failure_is_a_plain_message():
    def factory():
        raise CorpusError("no articles (*.txt, *.md) in corpus folder /nowhere")

    demo = ui_app.build_app(factory)
    assert demo.rag_loader.wait(10)
    status = status_banner(demo)
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
    labels = dict((value, label) for label, value in render.mode_choices(False))
    assert "unavailable" in labels["llm"]
    labels = dict((value, label) for label, value in render.mode_choices(True))
    assert "unavailable" not in labels["llm"]
    demo = ui_app.build_app(FakeKB(llm=False))
    assert demo.rag_loader.wait(10)
    _status, radio, timer = handler(demo, "status_tick")()
    assert any("unavailable" in str(label) for label, _ in radio.choices)
    assert timer.active is False


def test_cards_show_the_whole_article_from_the_knowledge_base():
    demo = ui_app.build_app(FakeKB())
    assert demo.rag_loader.wait(10)
    conversation = run_respond(demo, "q")[-1][1]
    assert '<details class="rag-article">' in conversation and 'id="src-0-1-p1"' in conversation
    assert "<details" in handler(demo, "search_view")("x", 3)


def test_a_card_without_its_article_still_shows_the_paragraph():
    class NoArticles(FakeKB):
        def article(self, doc_id):
            raise KeyError(doc_id)

    demo = ui_app.build_app(NoArticles())
    assert demo.rag_loader.wait(10)
    conversation = run_respond(demo, "q")[-1][1]
    assert 'class="rag-card"' in conversation and "<mark>the quote</mark>" in conversation
    assert "<details" not in conversation


def test_api_history_that_is_not_a_list_is_a_plain_error():
    demo = ui_app.build_app(FakeKB())
    assert demo.rag_loader.wait(10)
    ask = handler(demo, "ask")
    with pytest.raises(gr.Error, match="not valid JSON"):
        ask("q", "{")
    with pytest.raises(gr.Error, match="must be a list"):
        ask("q", "3")
    assert ask("q", '[{"role": "user", "content": "a"}]')["citations"][0]["quote"] == "the quote"


def test_settings_give_the_defaults():
    settings = Settings(top_k=7, answer_context_k=3, answer_mode="extractive", ui_stream_interval_s=0.5)
    fake = FakeKB()
    demo = ui_app.build_app(fake, settings=settings)
    assert demo.rag_loader.wait(10)
    search = demo.get_api_info()["named_endpoints"]["/search"]["parameters"][1]
    assert search["parameter_name"] == "k" and search["parameter_default"] == 7
    handler(demo, "search")("q")
    assert fake.searches == [7]
    assert handler(demo, "respond").__self__.stream_interval == 0.5
    config = demo.get_config_file()
    values = {c["props"].get("elem_id"): c["props"].get("value") for c in config["components"]}
    assert values["rag-k"] == 3 and values["rag-mode"] == "extractive"


def test_a_knowledge_base_passed_in_brings_its_settings():
    fake = FakeKB()
    fake.settings = Settings(top_k=3)
    demo = ui_app.build_app(fake)
    assert demo.rag_loader.wait(10)
    assert demo.get_api_info()["named_endpoints"]["/search"]["parameters"][1]["parameter_default"] == 3


def test_static_assets_are_in_the_page():
    static = Path(ui_app.__file__).parent / "static"
    assert (static / "app.css").read_text(encoding="utf-8") in ui_app.HEADER
    demo = ui_app.build_app(FakeKB())
    js = {c["props"].get("elem_id"): c["props"].get("js_on_load") for c in demo.get_config_file()["components"]}
    assert js["rag-conversation"] == js["rag-hits"] == (static / "app.js").read_text(encoding="utf-8")


def test_the_ui_imports_nothing_from_evals():
    for path in Path(ui_app.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n == "evals" or n.startswith("evals.") for n in names), f"{path.name} imports evals"
