"""The public API as a user calls it: in a fresh process, several calls, in every order.

A package attribute can be rebound by the first import of a submodule of the same name (the
bug this guards against: ``rag.answer`` turned into a module after the first answer). So each
case starts a new interpreter, calls the public functions in every order, and checks that every
name in ``rag.__all__`` is still the object it was before any call.
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import rag

REPO_ROOT = Path(__file__).resolve().parents[1]

_SCRIPT = r"""
import itertools, json, sys
import rag

before = {name: getattr(rag, name) for name in rag.__all__}
QUESTION = "Who funded the 2021 workshop?"
CALLS = {
    "search": lambda: rag.search(QUESTION, k=3)[0].doc_id,
    "answer": lambda: rag.answer(QUESTION, mode="extractive").citations[0].doc_id,
    "answer_stream": lambda: [e for e in rag.answer_stream(QUESTION, mode="extractive")][-1].citations[0].doc_id,
    "load": lambda: rag.load().search(QUESTION, k=1)[0].doc_id,
}
first = sys.argv[1]
seen = {first: CALLS[first]()}
for order in itertools.permutations(CALLS):
    for name in order:
        result = CALLS[name]()
        assert result == seen.setdefault(name, result), (name, result, seen[name])
        assert callable(getattr(rag, name)), f"rag.{name} is a {type(getattr(rag, name)).__name__} after use"
# When the article itself came out: its dateline, cited as paragraph 0, through the same API.
published = rag.answer("When did the ILO publish its article about the 2021 workshop?", mode="extractive").to_dict()
assert "31 March 2021" in published["text"], published["text"]
assert [(c["doc_id"], c["paragraph"], c["quote"]) for c in published["citations"]] == [
    ("003_21bb20fa281d6cc8.txt", 0, "News | 31 March 2021")
], published["citations"]
changed = sorted(name for name in rag.__all__ if getattr(rag, name) is not before[name])
print(json.dumps({"results": seen, "changed": changed}))
"""


@pytest.fixture(scope="module")
def api_env(seeds_kb: rag.KnowledgeBase) -> dict[str, str]:
    """The environment of a user's process: the default corpus, an index already built (by seeds_kb)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_INDEX_DIR": str(seeds_kb.index_dir)}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.parametrize("first", ["search", "answer", "answer_stream", "load"])
def test_public_functions_in_every_order_in_a_fresh_process(first: str, api_env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, first], cwd=REPO_ROOT, env=api_env, capture_output=True, text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["changed"] == [], f"rebound by use: {report['changed']}"
    assert set(report["results"].values()) == {"003_21bb20fa281d6cc8.txt"}


def test_no_submodule_shadows_a_public_name() -> None:
    """``rag.X`` for X in ``__all__`` must never be a submodule's name: importing it would rebind it."""
    submodules = {m.name for m in pkgutil.iter_modules(rag.__path__)}
    assert not submodules & set(rag.__all__), submodules & set(rag.__all__)


def test_public_names_are_documented_objects() -> None:
    for name in rag.__all__:
        obj = getattr(rag, name)
        assert not isinstance(obj, type(rag)), f"rag.{name} is a module"
        assert getattr(obj, "__doc__", None), f"rag.{name} has no docstring"

