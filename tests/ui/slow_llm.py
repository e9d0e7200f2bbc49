"""A chat model for UI tests: streams a long answer slowly and stops, as the local model does,
when the UI asks it to (``rag.llm.generation_stop_requested``); records that it stopped early."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from rag.llm import GenerationStopped, generation_stop_requested


class SlowChatModel(BaseChatModel):
    words: int = 300
    delay: float = 0.05
    started: Any = None
    closed_early: Any = None

    def model_post_init(self, __context: Any) -> None:
        self.started = threading.Event()
        self.closed_early = threading.Event()

    @property
    def _llm_type(self) -> str:
        return "slow-fake"

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
                ) -> Iterator[ChatGenerationChunk]:
        self.started.set()
        finished = False
        try:
            for i in range(self.words):
                time.sleep(self.delay)
                if generation_stop_requested():
                    raise GenerationStopped("the answer was stopped")
                marker = f" [{i % 3 + 1}]" if i % 10 == 9 else ""
                yield ChatGenerationChunk(message=AIMessageChunk(content=f"slowword{i}{marker} "))
            finished = True
        finally:
            if not finished:
                self.closed_early.set()

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
                  ) -> ChatResult:
        text = "".join(c.message.content for c in self._stream(messages, stop, run_manager, **kwargs))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])
