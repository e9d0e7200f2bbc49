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


def final_turns(updates) -> list[dict]:
    return updates[-1][3]


def is_skip(update) -> bool:
    return isinstance(update, dict) and update == {"__type__": "update"}


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
    ui_app.launch(demo, "127.0.0.1", port)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        client.rag_url = f"http://127.0.0.1:{port}"
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
        assert set(c) >= CITATION_FIELDS | {"support"}
        assert c["quote"] and c["quote"] in c["text"]
        assert isinstance(c["paragraph"], int) and c["paragraph"] >= 1
        assert c["title"]
    assert {"confidence", "grounding", "closest"} <= set(result)
    assert result["grounding"] == "stated" and result["closest"] is None


def test_ask_says_how_an_abstention_is_grounded(served):
    _, client = served
    result = client.predict("What is the capital of France?", None, "extractive", 3, api_name="/ask")
    assert result["abstained"] is True and result["citations"] == []
    assert result["grounding"] in {"closest", "none"}
    assert (result["closest"] is not None) == (result["grounding"] == "closest")
    if result["closest"] is not None:
        assert set(result["closest"]) >= CITATION_FIELDS and result["closest"]["quote"] in result["closest"]["text"]


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
    assert "rag-card" not in abstained, "an abstention cites nothing"
    if "rag-closest" in abstained:  # the closest passage found, labelled as such
        assert render.CLOSEST_LABEL in abstained
    assert "rag-abstain" not in answered and "Not in the articles" not in answered


def test_empty_or_too_long_question_stays_in_the_box_and_adds_no_turn(served):
    """Bug: an empty question added an empty bubble and a red Problem box; a too-long one was
    cleared from the box, so it could not be shortened and sent again."""
    demo, _ = served
    for question, expected in [("", "Type a question"), ("   ", "Type a question"), ("why " * 1000, "too long")]:
        updates = run_respond(demo, question)
        assert len(updates) == 1
        box, conversation, _pending, turns, hint = updates[0][:5]
        assert is_skip(box), "the question stays in the box"
        assert is_skip(conversation) and is_skip(turns), "nothing is added to the conversation"
        assert expected in hint and "rag-notice" not in hint
        assert "Traceback" not in hint and "File " not in hint


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
    updates = run_respond(demo, "a question")
    assert "still being built or loaded" in updates[-1][4], "a hint under the question box"
    assert is_skip(updates[-1][0]) and is_skip(updates[-1][1]), "the question stays; no turn is added"
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
    assert "no articles" in run_respond(demo, "q")[-1][4]


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


# --------------------------------------------------------------------------------------
# issue 14: the bugs a user hit, and the daily-tool features (handler level)
# --------------------------------------------------------------------------------------


class Session:
    """What Gradio passes as ``gr.Request``: the handlers only read the browser session's id."""

    def __init__(self, session_hash: str) -> None:
        self.session_hash = session_hash


class ClosableFake(FakeKB):
    """A fake whose stream records whether it was closed before it finished (the model stopping)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.closed_early = threading.Event()
        self.finished = threading.Event()

    def answer_stream(self, question, history=None, mode=None, k=None):
        inner = super().answer_stream(question, history, mode, k)
        finished = False
        try:
            yield from inner
            finished = True
            self.finished.set()
        finally:
            if not finished:
                self.closed_early.set()


def test_new_conversation_while_an_answer_streams_does_not_bring_the_old_one_back():
    """Bug: "New conversation" pressed while an answer streamed; the old conversation came back."""
    fake = ClosableFake(tokens=[f"w{i} " for i in range(200)] + ["[1]"], delay=0.01)
    demo = ui_app.build_app(fake, stream_interval=0.05)
    assert demo.rag_loader.wait(10)
    respond, clear = handler(demo, "respond"), handler(demo, "clear")
    earlier = final_turns(run_respond(demo, "an earlier question"))
    me = Session("browser-1")
    updates = respond("a question", earlier, "extractive", 3, me)
    first = next(updates)
    assert "rag-pending" in first[2]
    time.sleep(0.2)
    cleared = clear(me)
    assert "rag-empty" in cleared[1] and cleared[3] == []
    rest = list(updates)
    for update in rest:
        for value in update[:4]:
            assert not (isinstance(value, str) and "an earlier question" in value), "the old conversation came back"
            assert not (isinstance(value, list) and value), "the old turns came back"
    assert rest[-1][2] == "", "the pending turn is gone"
    assert fake.closed_early.wait(5), "the answer stops being written"


def test_stop_keeps_the_partial_answer_marked_as_stopped_and_stops_the_stream():
    fake = ClosableFake(tokens=[f"word{i} " for i in range(400)], delay=0.01)
    demo = ui_app.build_app(fake, stream_interval=0.05)
    assert demo.rag_loader.wait(10)
    me = Session("browser-2")
    updates = handler(demo, "respond")("a question", [], "llm", 3, me)
    first = next(updates)
    assert first[5].visible is False and first[6].visible is True, "Stop replaces Ask"
    seen = ""
    while "word5" not in seen:
        seen = next(updates)[2] or seen
    assert "Writing the answer" in seen, "the stage is shown"
    handler(demo, "stop")(me)
    final = list(updates)[-1]
    assert fake.closed_early.wait(5), "the model stops generating"
    assert "rag-stopped" in final[1] and "Stopped" in final[1] and "word5" in final[1]
    assert "word399" not in final[1]
    turn = final[3][-1]
    assert turn["stopped"] and turn["answer"] is None
    assert final[5].visible is True and final[6].visible is False
    # a stopped turn is not history for the next question
    assert ui_handlers.history_of(ui_handlers.clean_turns(final[3])) == []


def test_stop_from_another_session_stops_nothing():
    fake = ClosableFake(tokens=["a ", "b ", "c ", "[1]"], delay=0.05)
    demo = ui_app.build_app(fake, stream_interval=0.01)
    assert demo.rag_loader.wait(10)
    updates = handler(demo, "respond")("q", [], "extractive", 3, Session("mine"))
    next(updates)
    handler(demo, "stop")(Session("someone-else"))
    final = list(updates)[-1]
    assert "rag-answered" in final[1]


def test_streamed_citation_markers_are_not_shown_until_they_are_checked():
    """Bug: markers streamed as [2]/[3] (the model's context numbers) and became [1] at the end."""
    fake = FakeKB(tokens=["The ministry funded it [2]", "[", "3]. More", " text [4", "] here."], delay=0.05)
    demo = ui_app.build_app(fake, stream_interval=0.0)
    assert demo.rag_loader.wait(10)
    updates = run_respond(demo, "q")
    streamed = [u[2] for u in updates[1:-1] if isinstance(u[2], str) and "rag-streaming" in u[2]]
    assert any("funded it" in s for s in streamed)
    for pending in streamed:
        assert not re.search(r"\[\d*\]?", pending.split("rag-bubble")[-1].split("</div>", 1)[-1])
    assert render.strip_markers("a [2] b [3][4]. c [1") == "a b. c"
    assert "rag-card" in updates[-1][1], "the final answer comes with its checked sources"


def test_ask_with_malformed_history_is_the_intended_plain_error(served):
    """Bug: /ask with history "not json" said "Something went wrong (Error)" and logged a traceback."""
    _, client = served
    with pytest.raises(Exception) as info:
        client.predict("Who funded the workshops?", "not json", "extractive", 3, api_name="/ask")
    message = str(info.value)
    assert "history is not valid JSON" in message
    assert "Something went wrong" not in message and "Traceback" not in message


def test_only_the_product_endpoints_are_listed(served):
    """Bug: a stray /lambda endpoint was listed in the API."""
    _, client = served
    endpoints = client.view_api(return_format="dict", print_info=False)
    assert set(endpoints["named_endpoints"]) == {"/ask", "/search"}
    assert not endpoints["unnamed_endpoints"]


def test_no_loading_banner_in_the_page_once_the_index_is_loaded():
    """Bug: the "index is being loaded" banner flashed on every page load (it was in the page's config)."""
    demo = ui_app.build_app(FakeKB())
    assert demo.rag_loader.wait(10)
    status = next(c for c in demo.get_config_file()["components"] if c["props"].get("elem_id") == "rag-status")
    assert status["props"]["value"] in ("", None)


def test_gradio_file_routes_are_closed_and_uploads_are_size_limited(served, tmp_path):
    """Bug: Gradio's anonymous upload route served the uploaded file back, with no size limit."""
    import httpx

    from rag.corpus_files import MAX_UPLOAD_BYTES

    _, client = served
    base = client.rag_url
    small = tmp_path / "note.txt"
    small.write_text("hello", encoding="utf-8")
    with small.open("rb") as f:
        response = httpx.post(f"{base}/gradio_api/upload", files={"files": ("note.txt", f)})
    assert response.status_code == 200
    uploaded = response.json()[0]
    for url in (f"{base}/gradio_api/file={uploaded}", f"{base}/gradio_api/file/{uploaded}", f"{base}/file={uploaded}"):
        assert httpx.get(url).status_code == 404, url
    big = b"x" * (MAX_UPLOAD_BYTES + 10)
    response = httpx.post(f"{base}/gradio_api/upload", files={"files": ("big.txt", big)})
    assert response.status_code == 413
    assert httpx.get(f"{base}/").status_code == 200, "the page itself is still served"


def test_search_card_has_no_blank_gap_before_a_bullet_list(served):
    """Bug: a card showed a large blank gap (a line of a no-break space) before a bullet list."""
    assert render.display_text("intro:\n\n\u00a0\n\n  • one\n  • two") == "intro:\n• one\n• two"
    demo, _ = served
    out = handler(demo, "search_view")("objectives strengthen understanding promote knowledge sharing action plans", 5)
    cards = re.findall(r'<div class="rag-para">(.*?)</div>', out, flags=re.S)
    bullets = [c for c in cards if "•" in c]
    assert bullets, "a paragraph with a bullet list is among the hits"
    for card in bullets:
        assert "\n\n" not in card and "\u00a0" not in card


def test_nonsense_search_words_say_the_matches_are_weak(served):
    demo, _ = served
    weak = handler(demo, "search_view")("qwxzv blorptang", 5)
    assert render.WEAK_MATCH_NOTICE in weak and "none of your words" in weak
    real = handler(demo, "search_view")("phase 2 countries mapping study", 5)
    assert render.WEAK_MATCH_NOTICE not in real


def test_the_conversation_and_the_controls_come_back_after_a_reload():
    fake = FakeKB()
    demo = ui_app.build_app(fake)
    assert demo.rag_loader.wait(10)
    kept = final_turns(run_respond(demo, "first question"))
    import json

    kept = json.loads(json.dumps(kept))  # what localStorage gives back
    conversation, turns, mode, k = handler(demo, "restore")(kept, {"mode": "extractive", "k": 7})
    assert "first question" in conversation and 'id="src-0-1"' in conversation
    assert turns == kept
    assert mode.value == "extractive" and k.value == 7
    # a value that is not a conversation (old format, altered by hand) is left out, never an error
    conversation, turns, mode, k = handler(demo, "restore")(
        [{"question": "x", "answer": {"citations": "nope"}}, 5, "<b>", None], {"mode": "bogus", "k": 999}
    )
    assert turns == [] and "rag-empty" in conversation
    assert is_skip(mode) and is_skip(k)
    assert handler(demo, "save_prefs")("llm", 4.0) == {"mode": "llm", "k": 4}


def test_an_answer_can_be_taken_away_as_text_or_markdown():
    fake = FakeKB()
    demo = ui_app.build_app(fake)
    assert demo.rag_loader.wait(10)
    updates = run_respond(demo, "What is *in* it?")
    conversation = updates[-1][1]
    assert conversation.count('class="rag-copy"') == 2
    answer = ui_handlers.clean_turns(updates[-1][3])[0].answer
    plain = render.answer_plain_text("What is *in* it?", answer)
    assert "[1] An article (2 January 2024), paragraph 1 — a.txt" in plain and '"the quote"' in plain
    md = render.answer_markdown("What is *in* it?", answer)
    assert "What is \\*in\\* it?" in md and "1. *An article* (2 January 2024), paragraph 1 (`a.txt`)" in md
    assert "> the quote" in md
    assert render.esc(plain) in conversation and render.esc(md) in conversation
    exported = demo.rag_handlers.export_markdown(updates[-1][3])
    assert exported.startswith(render.EXPORT_HEADING) and md in exported
    assert_no_injection(conversation)


def test_cards_put_title_and_date_first_and_are_reachable_by_keyboard():
    demo = ui_app.build_app(FakeKB())
    assert demo.rag_loader.wait(10)
    conversation = run_respond(demo, "q")[-1][1]
    head = re.search(r'<div class="rag-card-head">(.*?)</div>', conversation).group(1)
    assert "An article" in head and "2 January 2024" in head and "a.txt" not in head
    assert 'tabindex="0"' in conversation and 'aria-label="Source 1: An article, 2 January 2024"' in conversation
    assert '<span class="rag-doc">a.txt</span>' in conversation
