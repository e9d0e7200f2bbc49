"""The chat UI as a daily tool, in headless Chromium (issue 14): add an article and get a cited
answer from it, stop an LLM answer, New conversation while an answer streams, no loading-banner
flash, the conversation and the controls after a reload, examples that ask, copy, and a phone
(400 px) layout with its screenshot (docs/screenshot-400px.png when RAG_SCREENSHOT is set).

The LLM is a slow fake chat model (tests/ui/slow_llm.py) behind the real knowledge base, so
"LLM mode" runs the real chain without loading a model.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.ui.slow_llm import SlowChatModel
from tests.ui.test_browser import CHROMIUM, CHROMIUM_ARGS, ROOT, TIMEOUT_MS, ask, choose_instant_mode, free_port

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")

NEW_ARTICLE = (
    "Glassblowers open a workshop school\n\n"
    "News | 09 September 2024\n"
    "The Murano glassblowers' workshop school, funded by the Venetian Crafts Foundation, opened in Venice.\n\n"
    "It trains 35 apprentices a year in the guild's furnaces.\n"
)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from rag.knowledge import KnowledgeBase
    from ui.app import build_app, launch

    root = tmp_path_factory.mktemp("ui_daily")
    shutil.copytree(ROOT / "seeds", root / "corpus")
    model = SlowChatModel(words=400, delay=0.04)
    demo = build_app(
        lambda: KnowledgeBase(root / "corpus", root / "index", chat_model=model).ensure_ready(),
        stream_interval=0.1,
    )
    port = free_port()
    launch(demo, "127.0.0.1", port)
    try:
        assert demo.rag_loader.wait(180), "the knowledge base did not load in time"
        assert demo.rag_loader.ready, demo.rag_loader.error
        yield {"url": f"http://127.0.0.1:{port}/", "model": model, "demo": demo, "root": root}
    finally:
        demo.close()


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def open_page(browser, url, width=1280, height=1000, context=None, init_script=None):
    context = context or browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.rag_errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.rag_errors.append(str(exc)))
    if init_script:
        page.add_init_script(init_script)
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("#rag-question textarea")
    return page


def choose_llm_mode(page) -> None:
    page.locator("#rag-mode label", has_text="LLM (generative)").click()
    assert page.locator("#rag-mode input[value='llm']").is_checked()


def test_upload_an_article_ask_about_it_and_get_a_cited_answer(app, browser, tmp_path):
    page = open_page(browser, app["url"])
    page.get_by_role("tab", name="Articles").click()
    page.wait_for_selector("#rag-corpus .rag-row")
    assert page.locator("#rag-corpus .rag-row:not(.rag-row-head)").count() == 5
    assert "up to date" in page.locator("#rag-corpus").inner_text()

    bad = tmp_path / "notes.txt"
    bad.write_bytes("Caf\u00e9 news\n\nA caf\u00e9 opened in Lyon.".encode("latin-1"))  # not UTF-8
    good = tmp_path / "glass.txt"
    good.write_text(NEW_ARTICLE, encoding="utf-8")
    page.set_input_files("#rag-upload input[type=file]", [str(good), str(bad)])
    page.wait_for_selector("#rag-corpus-msg .rag-hint-box")
    message = page.locator("#rag-corpus-msg").inner_text()
    assert "Added glass.txt" in message and "notes.txt" in message and "UTF-8" in message
    assert "Traceback" not in message
    page.wait_for_function(
        "() => { const t = document.querySelector('#rag-corpus').innerText;"
        " return t.includes('Glassblowers open a workshop school') && t.includes('up to date'); }"
    )
    assert not (app["root"] / "corpus" / "notes.txt").exists()
    shot = tmp_path / "screenshot-articles.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    if os.environ.get("RAG_SCREENSHOT"):  # the README's picture of the corpus panel
        shutil.copyfile(shot, ROOT / "docs" / "screenshot-articles.png")

    page.get_by_role("tab", name="Chat").click()
    choose_instant_mode(page)
    ask(page, "Who funds the glassblowers' workshop school?", 0)
    turn = page.locator("#rag-conversation .rag-turn[data-turn='0']")
    turn.locator(".rag-card").first.wait_for()
    assert "Venetian Crafts Foundation" in turn.locator(".rag-answer-text").inner_text()
    card = turn.locator(".rag-card", has_text="glass.txt").first
    assert "Glassblowers open a workshop school" in card.locator(".rag-card-head").inner_text()
    assert "9 September 2024" in card.locator(".rag-card-head").inner_text()
    assert "glass.txt" in card.locator(".rag-origin").inner_text()
    assert turn.locator("a.rag-cite").count() >= 1
    assert not page.rag_errors


def test_stop_an_llm_answer_and_new_conversation_while_streaming(app, browser):
    model = app["model"]
    page = open_page(browser, app["url"])
    choose_llm_mode(page)
    ask_text = "Who funded the country studies and workshops?"

    # Stop: the model stops generating, the partial answer stays, marked as stopped
    model.closed_early.clear()
    page.fill("#rag-question textarea", ask_text)
    page.keyboard.press("Enter")
    page.wait_for_selector("#rag-pending .rag-stage")
    page.wait_for_function("() => document.querySelector('#rag-pending .rag-stage').innerText.includes('Writing')")
    streamed = page.locator("#rag-pending .rag-answer-text").inner_text()
    assert "slowword" in streamed and "[" not in streamed, "unchecked markers are not shown while streaming"
    page.click("#rag-stop")
    stopped = page.locator("#rag-conversation .rag-turn[data-turn='0'] .rag-stopped")
    stopped.wait_for()
    assert "slowword0" in stopped.inner_text() and "slowword399" not in stopped.inner_text()
    assert "stopped" in stopped.inner_text().lower()
    assert model.closed_early.wait(5), "the model stopped generating"
    page.wait_for_selector("#rag-send", state="visible")
    assert page.locator("#rag-pending .rag-turn").count() == 0

    # New conversation while an answer streams: nothing of the old conversation comes back
    model.closed_early.clear()
    page.fill("#rag-question textarea", "And who implemented it?")
    page.keyboard.press("Enter")
    page.wait_for_function("() => (document.querySelector('#rag-pending') || {}).innerText?.includes('slowword')")
    page.click("#rag-clear")
    page.wait_for_selector("#rag-conversation .rag-empty")
    assert model.closed_early.wait(5)
    page.wait_for_selector("#rag-send", state="visible")
    page.wait_for_timeout(1500)
    assert page.locator("#rag-conversation .rag-turn, #rag-pending .rag-turn").count() == 0
    assert not page.rag_errors


def test_no_banner_flash_reload_keeps_conversation_and_controls_examples_ask_and_copy(app, browser):
    seen_banner = """
        window.__ragBannerSeen = false;
        new MutationObserver(() => {
            if (document.querySelector('.rag-loading')) window.__ragBannerSeen = true;
        }).observe(document, {subtree: true, childList: true});
    """
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app["url"].rstrip("/"))
    page = open_page(browser, app["url"], context=context, init_script=seen_banner)
    page.wait_for_timeout(1500)
    assert page.evaluate("window.__ragBannerSeen") is False, "the loading banner flashed on a loaded index"

    # the question box has a label; the mode choice is one radio group (one tab stop)
    assert page.get_by_label("Your question").count() == 1
    names = page.eval_on_selector_all("#rag-mode input[type=radio]", "els => els.map(e => e.name)")
    assert len(names) == 3 and len(set(names)) == 1

    choose_instant_mode(page)
    page.locator("#rag-example-0").click()  # an example question is asked at once
    turn = page.locator("#rag-conversation .rag-turn[data-turn='0']")
    turn.locator(".rag-card").first.wait_for()
    assert "Who funded the country studies" in turn.locator(".rag-bubble").inner_text()

    # source cards are reachable by keyboard
    turn.locator(".rag-card").first.focus()
    assert page.evaluate("document.activeElement.classList.contains('rag-card')")

    # copy as Markdown: the numbered sources come along
    turn.locator("button.rag-copy[data-format='md']").click()
    page.wait_for_function("() => (window.__ragCopied || '').includes('**Sources**')")
    copied = page.evaluate("window.__ragCopied")
    assert "1. *" in copied and "paragraph" in copied and "> " in copied
    # The status is written once the clipboard call returns (after an await): wait for it.
    sync_api.expect(turn.locator(".rag-copied")).to_contain_text("Copied", timeout=5000)

    page.reload(wait_until="domcontentloaded")
    page.wait_for_selector("#rag-conversation .rag-turn[data-turn='0'] .rag-card")
    assert page.locator("#rag-mode input[value='extractive']").is_checked(), "the chosen mode stays chosen"
    assert not page.rag_errors
    context.close()


def test_phone_layout_at_400px(app, browser, tmp_path):
    page = open_page(browser, app["url"], width=400, height=860)
    choose_instant_mode(page)
    ask(page, "Who funded the country studies and workshops?", 0)
    page.locator("#rag-conversation .rag-turn[data-turn='0'] .rag-card").first.wait_for()
    box = page.locator("#rag-question textarea").bounding_box()
    assert box["width"] >= 250, f"the question box is squeezed to {box['width']:.0f} px"
    mode_top = page.locator("#rag-mode").bounding_box()["y"]
    conv_top = page.locator("#rag-conv").bounding_box()["y"]
    assert mode_top < conv_top, "the mode choice sits above the conversation, not far below"
    assert page.evaluate("document.documentElement.scrollWidth") <= 400, "nothing is wider than the screen"
    inner_scroll = page.evaluate(
        "() => [...document.querySelectorAll('#rag-conv, .rag-article-body')]"
        ".filter(e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowY)).length"
    )
    assert inner_scroll == 0, "one scroll area (the page), not nested ones"
    row = page.locator("#rag-ask-row").bounding_box()
    assert row["y"] + row["height"] <= 860 + 1, "the question box stays in reach (it sticks to the bottom)"
    page.evaluate("window.scrollTo(0, 0)")
    shot = tmp_path / "screenshot-400px.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    if os.environ.get("RAG_SCREENSHOT"):
        target = ROOT / "docs" / "screenshot-400px.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
    assert not page.rag_errors
