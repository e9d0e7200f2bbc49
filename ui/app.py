"""The chat UI: cited, streamed answers over the indexed articles, and a search view.

``build_app(kb_or_factory)`` returns the ``gr.Blocks``; ``serve(...)`` (what ``rag serve`` runs)
builds it and listens on ``settings.ui_host`` (127.0.0.1) by default, without a share link. The
knowledge base is loaded in a background thread (``ui.loader``), so the page is up at once and
says "the index is being loaded" until then.

This module only lays the components out and wires them to ``ui.handlers``; the HTML comes from
``ui.render``, the styles and the components' script from ``ui/static/``.

Named API endpoints for ``gradio_client``:

- ``/ask`` (question, history, mode, k) → ``Answer.to_dict()``: text, citations (each with its
  ``support``), ``abstained``, ``confidence``, ``grounding`` ("stated", "closest", "none") and,
  on an abstention, ``closest`` (the nearest passage, which may not answer the question)
- ``/search`` (query, k) → a list of ``Hit.to_dict()``

Nothing else is listed: every UI event is private. ``launch()`` limits uploads to
``rag.corpus_files.MAX_UPLOAD_BYTES`` and closes Gradio's file-serving routes, so an upload is
never served back; the upload handler moves the file into the corpus folder (after its checks)
and deletes Gradio's temporary copy.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse

from rag.corpus_files import MAX_UPLOAD_BYTES, UPLOAD_SUFFIXES
from rag.settings import Settings, get_settings
from ui.handlers import MAX_ANSWER_K, MAX_SEARCH_K, Handlers, conversation_html, with_defaults
from ui.loader import KBLoader
from ui.render import EXPORT_HEADING, EXPORT_SEPARATOR, mode_choices

if TYPE_CHECKING:
    from rag.knowledge import KnowledgeBase

STATIC = Path(__file__).parent / "static"
#: The app's styles, in a ``<style>`` of the header so the app looks the same however it is launched.
CSS = (STATIC / "app.css").read_text(encoding="utf-8")
#: Runs once per HTML component (``element`` is the component's root): marker links, article scrolling.
JS_ON_LOAD = (STATIC / "app.js").read_text(encoding="utf-8")

HEADER = (
    f"<style>{CSS}</style>"
    '<div class="rag-header"><h1>Ask the ILO news articles</h1>'
    "<p>Answers come only from the indexed articles, each claim with its numbered source. "
    "Nothing leaves this machine.</p></div>"
)

#: Runs once, on the header: the answer-mode radios become one group (one tab stop, arrow keys
#: move the choice), which Gradio's Radio does not do (it names each input apart).
A11Y_JS = """
const group = () => document.querySelectorAll('#rag-mode input[type=radio]').forEach((input) => {
  if (input.name !== 'rag-mode') input.name = 'rag-mode';
});
group();
new MutationObserver(group).observe(document.body, {subtree: true, childList: true, attributes: true,
  attributeFilter: ['name']});
"""

DEFAULT_EXAMPLES = (
    "Who funded the country studies and workshops?",
    "Which countries were part of the mapping study in phase 2?",
    "When was the research orientation held?",
    "What did Benjamin Velasco present at the webinar?",
)


def _process_settings() -> Settings:
    """The process's settings; their defaults when a ``RAG_*`` variable is bad (loading will say what)."""
    try:
        return get_settings()
    except Exception:
        return Settings.model_construct()


def _examples_row(examples: Sequence[str]) -> list[tuple[gr.Button, str]]:
    """One button an example question: clicking it asks it."""
    buttons = []
    if not examples:
        return buttons
    gr.HTML('<div class="rag-label" id="rag-examples-label">Example questions (click to ask)</div>', js_on_load=None)
    with gr.Row(elem_id="rag-examples"):
        for n, example in enumerate(examples):
            button = gr.Button(example, size="sm", variant="secondary", elem_classes=["rag-example"],
                               elem_id=f"rag-example-{n}")
            buttons.append((button, example))
    return buttons


def _fill(text: str) -> Callable[[], str]:
    def fill_question() -> str:
        return text

    return fill_question


#: Exports the conversation as a Markdown file, built from the turns' ``data-md`` (``ui.render``).
EXPORT_JS = (
    f"() => {{ const HEADING = {json.dumps(EXPORT_HEADING)}, SEPARATOR = {json.dumps(EXPORT_SEPARATOR)};"
    """
  const turns = [...document.querySelectorAll('#rag-conversation .rag-turn[data-md]')];
  if (!turns.length) return;
  const md = HEADING + '\\n\\n' + turns.map(t => t.dataset.md).join(SEPARATOR) + '\\n';
  const url = URL.createObjectURL(new Blob([md], {type: 'text/markdown'}));
  const a = document.createElement('a');
  a.href = url; a.download = 'conversation.md'; document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}"""
)


def build_app(
    kb_or_factory: KnowledgeBase | Callable[[], KnowledgeBase],
    *,
    examples: Sequence[str] = DEFAULT_EXAMPLES,
    stream_interval: float | None = None,
    title: str = "Ask the ILO news articles",
    settings: Settings | None = None,
) -> gr.Blocks:
    """The Gradio app over a knowledge base (or a function that loads one, run in the background).

    ``settings`` default to the knowledge base's (the process's for a factory); ``stream_interval``
    to ``settings.ui_stream_interval_s``. Launch it with ``launch()`` (it closes Gradio's file
    routes and limits uploads).
    """
    if settings is None:
        settings = _process_settings() if callable(kb_or_factory) else kb_or_factory.settings
    loader = KBLoader(kb_or_factory)
    handlers = Handlers(loader, settings, stream_interval=stream_interval)
    defaults = handlers.defaults

    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        gr.HTML(HEADER, js_on_load=A11Y_JS)
        # Empty at first: the load event fills it in while the index loads (no banner flash once it has).
        status = gr.HTML("", js_on_load=None, elem_id="rag-status")
        # Kept in the browser (localStorage): the conversation and the chosen mode and k survive a reload.
        turns_state = gr.BrowserState([], storage_key="rag-conversation")
        prefs_state = gr.BrowserState({}, storage_key="rag-prefs")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"), gr.Row(equal_height=False, elem_id="rag-chat-row"):
                with gr.Column(scale=3, elem_id="rag-main"):
                    with gr.Column(elem_id="rag-conv"):
                        conversation = gr.HTML(
                            conversation_html([]), elem_id="rag-conversation", js_on_load=JS_ON_LOAD
                        )
                        pending = gr.HTML("", elem_id="rag-pending", js_on_load=JS_ON_LOAD)
                    with gr.Row(elem_id="rag-ask-row"):
                        question = gr.Textbox(
                            label="Your question",
                            placeholder="Ask about the articles… (Enter to send)",
                            show_label=False,
                            lines=1,
                            max_lines=4,
                            scale=5,
                            elem_id="rag-question",
                            autofocus=True,
                        )
                        send = gr.Button("Ask", variant="primary", scale=1, min_width=64, elem_id="rag-send")
                        stop = gr.Button("Stop", variant="stop", scale=1, min_width=64, visible=False,
                                         elem_id="rag-stop")
                    hint = gr.HTML("", elem_id="rag-hint", js_on_load=None)
                    example_buttons = _examples_row(examples)
                with gr.Column(scale=1, min_width=240, elem_id="rag-side"):
                    mode = gr.Radio(
                        choices=mode_choices(loader.llm_available if loader.ready else None),
                        value=defaults.mode,
                        label="Answer mode",
                        info="Instant quotes the best sentences; the LLM writes an answer (slower on a CPU).",
                        elem_id="rag-mode",
                    )
                    k = gr.Slider(
                        1, MAX_ANSWER_K, value=defaults.k, step=1, label="Sources to read (k)", elem_id="rag-k"
                    )
                    with gr.Row(elem_id="rag-conv-actions"):
                        clear_btn = gr.Button("New conversation", variant="secondary", elem_id="rag-clear")
                        export_btn = gr.Button("Export conversation", variant="secondary", elem_id="rag-export")
            with gr.Tab("Search", id="search"):
                with gr.Row():
                    query = gr.Textbox(
                        label="Search words",
                        placeholder="Words or a question: lists matching paragraphs, without answering",
                        show_label=False,
                        scale=5,
                        elem_id="rag-query",
                    )
                    search_k = gr.Slider(
                        1, MAX_SEARCH_K, value=defaults.search_k, step=1, label="Paragraphs", scale=2
                    )
                    search_btn = gr.Button("Search", variant="primary", scale=1, elem_id="rag-search")
                hits_html = gr.HTML("", elem_id="rag-hits", js_on_load=JS_ON_LOAD)
            with gr.Tab("Articles", id="articles") as articles_tab:
                corpus_panel = gr.HTML("", elem_id="rag-corpus", js_on_load=None)
                with gr.Row(equal_height=False):
                    upload = gr.File(
                        label=f"Add articles: .txt or .md files, at most {MAX_UPLOAD_BYTES // 1000:,} kB each",
                        file_count="multiple",
                        file_types=list(UPLOAD_SUFFIXES),
                        type="filepath",
                        elem_id="rag-upload",
                        scale=2,
                    )
                    with gr.Column(scale=1, min_width=240):
                        remove_choice = gr.Dropdown(
                            choices=[], value=None, label="Remove an article (its file)", elem_id="rag-remove-choice"
                        )
                        remove_btn = gr.Button("Remove", variant="stop", elem_id="rag-remove")
                corpus_msg = gr.HTML("", elem_id="rag-corpus-msg", js_on_load=None)
                corpus_timer = gr.Timer(1.0, active=False)

        chat_io = {
            "fn": handlers.respond,
            "inputs": [question, turns_state, mode, k],
            "outputs": [question, conversation, pending, turns_state, hint, send, stop],
            "api_visibility": "private",
            "concurrency_id": "answer",
            "concurrency_limit": 2,
            "show_progress": "hidden",
        }
        question.submit(**chat_io)
        send.click(**chat_io)
        for button, example in example_buttons:
            button.click(_fill(example), None, question, queue=False, api_visibility="private").then(**chat_io)
        stop.click(handlers.stop, None, None, queue=False, api_visibility="private")
        clear_btn.click(
            handlers.clear,
            None,
            [question, conversation, pending, turns_state, hint],
            api_visibility="private",
            queue=False,
        )
        export_btn.click(None, None, None, js=EXPORT_JS, api_visibility="private", queue=False)
        mode.input(handlers.save_prefs, [mode, k], prefs_state, api_visibility="private", queue=False)
        k.release(handlers.save_prefs, [mode, k], prefs_state, api_visibility="private", queue=False)
        demo.load(
            handlers.restore,
            [turns_state, prefs_state],
            [conversation, turns_state, mode, k],
            api_visibility="private",
            show_progress="hidden",
        )

        search_io = {
            "fn": handlers.search_view,
            "inputs": [query, search_k],
            "outputs": [hits_html],
            "api_visibility": "private",
            "concurrency_id": "search",
            "concurrency_limit": 4,
        }
        query.submit(**search_io)
        search_btn.click(**search_io)

        corpus_io = {
            "fn": handlers.corpus_view,
            "inputs": None,
            "outputs": [corpus_panel, remove_choice, corpus_timer],
            "api_visibility": "private",
            "show_progress": "hidden",
        }
        articles_tab.select(**corpus_io)
        corpus_timer.tick(**corpus_io)
        upload.upload(
            handlers.upload,
            [upload],
            [corpus_msg, corpus_panel, remove_choice, corpus_timer, upload],
            api_visibility="private",
            concurrency_id="corpus",
            concurrency_limit=1,
        )
        remove_btn.click(
            handlers.remove,
            [remove_choice],
            [corpus_msg, corpus_panel, remove_choice, corpus_timer],
            api_visibility="private",
            concurrency_id="corpus",
            concurrency_limit=1,
        )

        timer = gr.Timer(1.0)
        status_io = {
            "fn": handlers.status_tick,
            "inputs": None,
            "outputs": [status, mode, timer],
            "api_visibility": "private",
            "show_progress": "hidden",
        }
        timer.tick(**status_io)
        demo.load(**status_io)

        gr.api(handlers.ask, api_name="ask", concurrency_id="answer", concurrency_limit=2)
        gr.api(
            with_defaults(handlers.search, k=defaults.search_k),
            api_name="search",
            concurrency_id="search",
            concurrency_limit=4,
        )

    demo.rag_loader = loader  # type: ignore[attr-defined]  # for tests and serve()
    demo.rag_handlers = handlers  # type: ignore[attr-defined]
    return demo


#: Gradio routes the app does not use and that would serve files back (``/file=``, ``/file/``,
#: ``/proxy=``): uploads go into the corpus folder through the upload handler, nothing else.
_CLOSED_ROUTES = re.compile(r"^(?:/gradio_api)?/(?:file[=/]|proxy=)")


class CloseUnusedRoutes:
    """ASGI middleware: the closed routes answer 404, everything else passes through."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and _CLOSED_ROUTES.match(scope.get("path") or ""):
            await PlainTextResponse("Not found", status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def launch(
    demo: gr.Blocks,
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    block: bool = False,
    quiet: bool = True,
) -> gr.Blocks:
    """Listen on ``host:port`` (127.0.0.1 by default, never a share link), with uploads limited to
    ``rag.corpus_files.MAX_UPLOAD_BYTES`` and Gradio's file-serving routes closed."""
    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        show_error=False,
        ssr_mode=False,
        prevent_thread_lock=not block,
        quiet=quiet,
        max_file_size=MAX_UPLOAD_BYTES,
        app_kwargs={"middleware": [Middleware(CloseUnusedRoutes)]},
    )
    return demo


def serve(
    corpus_dir: str | Path | None = None,
    index_dir: str | Path | None = None,
    host: str | None = None,
    port: int | None = None,
    *,
    block: bool = True,
) -> gr.Blocks:
    """Start the UI (what ``rag serve`` runs): ``settings.ui_host``/``ui_port`` by default
    (127.0.0.1:7860, localhost only), never a share link."""
    from rag.knowledge import load

    settings = _process_settings()
    host = host or settings.ui_host
    port = port or settings.ui_port
    demo = build_app(functools.partial(load, corpus_dir, index_dir), settings=settings)
    print(f"Loading the knowledge base in the background; the UI is at http://{host}:{port}", flush=True)
    demo.queue(default_concurrency_limit=2)
    return launch(demo, host, port, block=block, quiet=False)
