"""The chat UI: cited, streamed answers over the indexed articles, and a search view.

``build_app(kb_or_factory)`` returns the ``gr.Blocks``; ``serve(...)`` (what ``rag serve`` runs)
builds it and listens on ``settings.ui_host`` (127.0.0.1) by default, without a share link. The
knowledge base is loaded in a background thread (``ui.loader``), so the page is up at once and
says "the index is being loaded" until then.

This module only lays the components out and wires them to ``ui.handlers``; the HTML comes from
``ui.render``, the styles and the components' script from ``ui/static/``.

Named API endpoints for ``gradio_client``:

- ``/ask`` (question, history, mode, k) → ``Answer.to_dict()``
- ``/search`` (query, k) → a list of ``Hit.to_dict()``
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from rag.settings import Settings, get_settings
from ui.handlers import MAX_ANSWER_K, MAX_SEARCH_K, Handlers, conversation_html, with_defaults
from ui.loader import KBLoader
from ui.render import mode_choices

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
    to ``settings.ui_stream_interval_s``.
    """
    if settings is None:
        settings = _process_settings() if callable(kb_or_factory) else kb_or_factory.settings
    loader = KBLoader(kb_or_factory)
    handlers = Handlers(loader, settings, stream_interval=stream_interval)
    defaults = handlers.defaults

    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        gr.HTML(HEADER, js_on_load=None)
        # A callable value is computed on every page load: no stale "loading" banner after a reload.
        # (Gradio names the load event after the function: a lambda keeps it "/lambda", as it has been.)
        status = gr.HTML(lambda: handlers.status_html(), js_on_load=None, elem_id="rag-status")
        turns_state = gr.State([])
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"), gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    with gr.Column(elem_id="rag-conv"):
                        conversation = gr.HTML(
                            conversation_html([]), elem_id="rag-conversation", js_on_load=JS_ON_LOAD
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
                    k = gr.Slider(
                        1, MAX_ANSWER_K, value=defaults.k, step=1, label="Sources to read (k)", elem_id="rag-k"
                    )
                    clear_btn = gr.Button("New conversation", variant="secondary", elem_id="rag-clear")
            with gr.Tab("Search", id="search"):
                with gr.Row():
                    query = gr.Textbox(
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

        chat_io = {
            "fn": handlers.respond,
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
            handlers.clear, None, [question, conversation, pending, turns_state], api_visibility="private", queue=False
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
