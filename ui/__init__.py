"""The chat UI: a Gradio app over a :class:`rag.KnowledgeBase` (see ``ui.app``).

It only presents: retrieval and answering are the library's (``kb.search``, ``kb.answer_stream``).
Start it with ``rag serve`` or ``ui.app.serve()``; ``ui.app.build_app(kb)`` returns the Blocks.
"""
