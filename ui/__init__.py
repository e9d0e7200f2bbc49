"""The chat UI: a Gradio app over a :class:`rag.KnowledgeBase`.

It only presents: retrieval and answering are the library's (``kb.search``, ``kb.answer_stream``).

- ``ui.app``: ``build_app(kb)`` lays out the Blocks and wires them; ``serve()`` is what ``rag serve`` runs.
- ``ui.handlers``: what the events and the ``/ask`` and ``/search`` endpoints do.
- ``ui.render``: pure functions from ``Answer``/``Citation``/``Hit``/``Article`` to escaped HTML.
- ``ui.loader``: loads the knowledge base in a background thread.
- ``ui/static/``: the app's styles (``app.css``) and its components' script (``app.js``).
"""
