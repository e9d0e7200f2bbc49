"""Concurrency: many users at once, and an index update while questions are in flight.

1. ``test_index_update_while_answering``: a thread pool asks questions through the
   ``KnowledgeBase`` while another thread adds an article and calls ``kb.refresh()``. No
   question may fail; every answer must equal the single-user answer from before or from after
   the update (an update changes BM25 statistics, so both are legitimate); questions started
   after the update finished must get the "after" answer; the new article becomes searchable.
2. ``test_soak_20_clients``: the chat service (``ui.app.serve`` on 127.0.0.1) under 20
   concurrent ``gradio_client`` clients for ``RAG_SOAK_SECONDS`` (default 120) or
   ``RAG_SOAK_MAX_REQUESTS`` (default 2000) requests, whichever comes first, extractive mode:
   no errors (except the deliberately empty question, which must be refused with a message),
   every answer and search result identical to the single-user one. Latency percentiles are
   printed, and written as JSON to ``RAG_SOAK_OUT`` when that is set.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.domain import Answer
from rag.embed import SentenceTransformerEmbeddings
from rag.knowledge import KnowledgeBase
from rag.settings import Settings

SOAK_SECONDS = float(os.environ.get("RAG_SOAK_SECONDS", "120"))
SOAK_MAX_REQUESTS = int(os.environ.get("RAG_SOAK_MAX_REQUESTS", "2000"))
SOAK_CLIENTS = 20
REQUEST_TIMEOUT = 180.0  # one request, queued behind the others included

TINY_QUESTIONS = [
    "How many tonnes of apples did the orchard cooperative harvest?",
    "How long does the night train journey take?",
    "Why did the honey output fall?",
    "Where will the rail operator add a route in December?",
    "Who is the chair of the orchard cooperative?",
]
NEW_ARTICLE = (
    "Island ferry resumes daily crossings\n\n"
    "News | 4 July 2022\n"
    "The island ferry resumed daily crossings to Port Elsa after a two-year pause.\n\n"
    "Adult tickets cost 12 euros and children travel free on the night train connection."
)
NEW_QUESTION = "How much does an adult ticket for the island ferry cost?"

SEED_QUESTIONS = [
    "Who funded the country studies and workshops?",
    "Which countries were part of the mapping study in phase 2?",
    "When was the research orientation held?",
    "What did Benjamin Velasco present at the webinar?",
    "What is the social and solidarity economy?",
    "How many participants attended the workshop?",
]
SEED_SEARCHES = ["home-based workers Cambodia", "digital colonialism webinar", "cooperatives in Korea"]


def comparable(answer: Answer | dict[str, Any]) -> dict[str, Any]:
    """An answer without its timings (which differ from run to run), as plain JSON data."""
    data = answer.to_dict() if isinstance(answer, Answer) else dict(answer)
    data.pop("timings", None)
    return json.loads(json.dumps(data))


def latency_summary(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {"n": 0}
    ms = np.array(seconds) * 1000
    return {"n": len(ms), **{f"p{p}_ms": round(float(np.percentile(ms, p)), 1) for p in (50, 90, 95, 99)},
            "max_ms": round(float(ms.max()), 1)}


# --- 1. an index update while answering ---------------------------------------------------------


@dataclass
class Outcome:
    question: int
    started: float
    finished: float
    answer: dict[str, Any] | None = None
    error: BaseException | None = None


def test_index_update_while_answering(tmp_path: Path, tiny_corpus, embedder: SentenceTransformerEmbeddings) -> None:
    corpus = tiny_corpus()
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", answer_mode="extractive")
    kb = KnowledgeBase(corpus, tmp_path / "index", settings=settings, embedder=embedder).ensure_ready()
    before = [comparable(kb.answer(q)) for q in TINY_QUESTIONS]
    old_version = kb.searcher.index.version_dir

    outcomes: list[Outcome] = []
    lock = threading.Lock()
    refreshed = threading.Event()
    refresh_window: list[float] = []
    deadline = time.monotonic() + 90
    max_requests, after_refresh = 150, 12

    def refresher() -> None:
        time.sleep(0.5)  # let questions get going first
        refresh_window.append(time.monotonic())
        (corpus / "ferry.txt").write_text(NEW_ARTICLE, encoding="utf-8")
        kb.refresh()
        refresh_window.append(time.monotonic())
        refreshed.set()

    def worker(worker_id: int) -> None:
        i = 0
        while time.monotonic() < deadline:
            with lock:
                done_after = sum(1 for o in outcomes if refresh_window[1:] and o.started > refresh_window[1])
                if len(outcomes) >= max_requests or done_after >= after_refresh:
                    return
            q = (worker_id + i) % len(TINY_QUESTIONS)
            i += 1
            outcome = Outcome(q, time.monotonic(), 0.0)
            try:
                outcome.answer = comparable(kb.answer(TINY_QUESTIONS[q]))
            except BaseException as exc:
                outcome.error = exc
            outcome.finished = time.monotonic()
            with lock:
                outcomes.append(outcome)

    with ThreadPoolExecutor(max_workers=9) as pool:
        futures = [pool.submit(worker, w) for w in range(8)] + [pool.submit(refresher)]
        for future in futures:
            future.result(timeout=180)

    assert refreshed.is_set() and kb.searcher.index.version_dir != old_version
    after = [comparable(kb.answer(q)) for q in TINY_QUESTIONS]
    errors = [f"{TINY_QUESTIONS[o.question]!r}: {o.error!r}" for o in outcomes if o.error is not None]
    assert errors == []
    start, end = refresh_window
    overlapping = [o for o in outcomes if o.started < end and o.finished > start]
    assert overlapping, "no question was in flight during the update"
    for o in outcomes:
        assert o.answer in (before[o.question], after[o.question]), f"unexpected answer to {TINY_QUESTIONS[o.question]!r}"
        if o.started > end:
            assert o.answer == after[o.question], "a question asked after the update got the old index"
    assert kb.search(NEW_QUESTION, k=1)[0].doc_id == "ferry.txt"
    print(f"\n{len(outcomes)} answers, {len(overlapping)} in flight during the update ({end - start:.1f}s)")


# --- 2. the chat service under 20 clients --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def service(seeds_kb: KnowledgeBase) -> Iterator[str]:
    """``ui.app.serve`` (the real entry point, default host) over the seeds index; yields its URL."""
    from ui import app

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    port = _free_port()
    demo = app.serve(corpus_dir=seeds_kb.corpus_dir, index_dir=seeds_kb.index_dir, port=port, block=False)
    try:
        assert demo.rag_loader.wait(120), "the knowledge base did not load"
        assert demo.rag_loader.error is None, demo.rag_loader.error
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close(verbose=False)


@dataclass
class Call:
    endpoint: str
    item: int
    seconds: float
    result: Any = None
    error: str | None = None


@dataclass
class SoakLog:
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, call: Call) -> int:
        with self.lock:
            self.calls.append(call)
            return len(self.calls)


def _requests(client_id: int) -> Iterator[tuple[str, int]]:
    """A deterministic mix: mostly questions, some searches, an empty question now and then.

    Each client starts at another point of the pattern, so even a short run has every kind.
    """
    i = client_id
    while True:
        if i % 10 == 9:
            yield "empty", 0
        elif i % 5 == 4:
            yield "search", i % len(SEED_SEARCHES)
        else:
            yield "ask", i % len(SEED_QUESTIONS)
        i += 1


@pytest.mark.slow
def test_soak_20_clients(service: str, seeds_kb: KnowledgeBase) -> None:
    from gradio_client import Client

    single = Client(service, verbose=False)
    calls: dict[str, Callable[[Client, int], Any]] = {
        "ask": lambda c, i: c.submit(SEED_QUESTIONS[i], None, "extractive", None, api_name="/ask"),
        "search": lambda c, i: c.submit(SEED_SEARCHES[i], 5, api_name="/search"),
        "empty": lambda c, i: c.submit("   ", None, "extractive", None, api_name="/ask"),
    }
    # The single-user answers, through the same API, one at a time.
    expected = {
        "ask": [comparable(calls["ask"](single, i).result(timeout=REQUEST_TIMEOUT)) for i in range(len(SEED_QUESTIONS))],
        "search": [calls["search"](single, i).result(timeout=REQUEST_TIMEOUT) for i in range(len(SEED_SEARCHES))],
    }
    for i, question in enumerate(SEED_QUESTIONS):  # and the same as the library gives
        assert expected["ask"][i] == comparable(seeds_kb.answer(question, mode="extractive"))
    assert any(not a["abstained"] for a in expected["ask"])

    log = SoakLog()
    started = time.monotonic()
    deadline = started + SOAK_SECONDS

    def run_client(client_id: int) -> None:
        client = Client(service, verbose=False)
        for endpoint, item in _requests(client_id):
            if time.monotonic() >= deadline:
                return
            t0 = time.monotonic()
            call = Call(endpoint, item, 0.0)
            try:
                call.result = calls[endpoint](client, item).result(timeout=REQUEST_TIMEOUT)
            except Exception as exc:
                call.error = f"{type(exc).__name__}: {exc}"
            call.seconds = time.monotonic() - t0
            if log.add(call) >= SOAK_MAX_REQUESTS:
                return

    with ThreadPoolExecutor(max_workers=SOAK_CLIENTS) as pool:
        futures = [pool.submit(run_client, c) for c in range(SOAK_CLIENTS)]
        for future in futures:
            future.result(timeout=SOAK_SECONDS + 2 * REQUEST_TIMEOUT)
    elapsed = time.monotonic() - started

    by_endpoint = {e: [c for c in log.calls if c.endpoint == e] for e in calls}
    report = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "test": "tests/robustness/test_concurrency.py::test_soak_20_clients",
        "mode": "extractive",
        "corpus": "seeds/",
        "cpus": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "clients": SOAK_CLIENTS,
        "seconds": round(elapsed, 1),
        "requests": len(log.calls),
        "throughput_per_s": round(len(log.calls) / elapsed, 2),
        "latency": {e: latency_summary([c.seconds for c in cs]) for e, cs in by_endpoint.items()},
    }
    print("\nsoak:", json.dumps(report, indent=2))
    if os.environ.get("RAG_SOAK_OUT"):
        Path(os.environ["RAG_SOAK_OUT"]).parent.mkdir(parents=True, exist_ok=True)
        Path(os.environ["RAG_SOAK_OUT"]).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    assert len(by_endpoint["ask"]) >= SOAK_CLIENTS, "too few questions were answered to say anything"
    problems = [f"{c.endpoint}[{c.item}]: {c.error}" for c in log.calls if c.endpoint != "empty" and c.error]
    assert problems == []
    for c in by_endpoint["empty"]:
        assert c.error and "empty" in c.error, f"an empty question was not refused clearly: {c.error or c.result}"
    for c in by_endpoint["ask"]:
        assert comparable(c.result) == expected["ask"][c.item], f"answer to {SEED_QUESTIONS[c.item]!r} differs under load"
    for c in by_endpoint["search"]:
        assert c.result == expected["search"][c.item], f"search {SEED_SEARCHES[c.item]!r} differs under load"
