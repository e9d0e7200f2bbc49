"""Every docstring example in the library runs, as written, and gives what it shows.

The examples use the relative folders a user has in a checkout (``seeds``, ``index``): they run
in a temporary folder holding the seeds and a copy of the session's seeds index, so nothing in
the repository is written and nothing is embedded twice.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import shutil
from pathlib import Path

import pytest

import rag
from rag.knowledge import KnowledgeBase
from rag.settings import get_settings

MODULES = ["rag", *sorted(f"rag.{m.name}" for m in pkgutil.iter_modules(rag.__path__))]


@pytest.fixture(scope="module")
def checkout_like(tmp_path_factory: pytest.TempPathFactory, seeds_kb: KnowledgeBase) -> Path:
    root = tmp_path_factory.mktemp("doctests")
    shutil.copytree(seeds_kb.corpus_dir, root / "seeds")
    shutil.copytree(seeds_kb.index_dir, root / "index")
    return root


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str, checkout_like: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(checkout_like)
    for var in ("RAG_CORPUS_DIR", "RAG_INDEX_DIR"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    monkeypatch.setattr(rag, "_default_kb", None)
    try:
        module = importlib.import_module(name)
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    finally:
        get_settings.cache_clear()
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_the_examples_exist() -> None:
    """The stages that promise a runnable example have one."""
    finder = doctest.DocTestFinder()
    with_examples = {
        name for name in MODULES if any(t.examples for t in finder.find(importlib.import_module(name)))
    }
    assert {"rag", "rag.knowledge", "rag.parse", "rag.chunk", "rag.index", "rag.answering", "rag.question",
            "rag.lexicon", "rag.settings"} <= with_examples
