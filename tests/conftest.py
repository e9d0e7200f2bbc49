"""Shared fixtures for the whole test suite.

- ``seeds_kb``: one ``KnowledgeBase`` over the repository's ``seeds/`` with its index in a
  temporary folder, built once per session (the embedding model loads once per process).
- ``tiny_corpus``: a factory that writes a few small articles into a temporary folder.
- ``settings``: a fresh ``Settings`` whose index folder is temporary.
- ``embedder``: the shared sentence-transformers embedder.

Everything runs offline: the hub is never contacted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SEEDS_DIR = REPO_ROOT / "seeds"

# Offline, quiet and importable from a plain checkout (``pytest`` without ``pip install -e .``).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from rag.embed import SentenceTransformerEmbeddings  # noqa: E402
from rag.knowledge import KnowledgeBase  # noqa: E402
from rag.settings import Settings  # noqa: E402

#: Three small articles on distinct subjects: fast to embed, easy to search.
TINY_ARTICLES: dict[str, str] = {
    "apples.txt": (
        "Orchard cooperative doubles apple harvest\n\n"
        "News | 12 March 2023\n"
        "The Green Valley orchard cooperative harvested 400 tonnes of apples this season.\n\n"
        "Its 52 member farmers credit a shared cold-storage warehouse built in 2021.\n\n"
        "Ms. Lena Ortiz, the cooperative's chair, said the group will plant pear trees next year."
    ),
    "trains.txt": (
        "New night train links Vienna and Brussels\n\n"
        "News | 05 June 2022\n"
        "A sleeper train now runs three times a week between Vienna and Brussels.\n\n"
        "The journey takes fourteen hours and tickets start at 30 euros.\n\n"
        "The rail operator plans to add a route to Amsterdam in December."
    ),
    "bees.txt": (
        "Beekeepers count a smaller honey crop after a cold spring\n\n"
        "Beekeepers in the northern hills reported on 3 August 2021 that honey output fell by a third.\n\n"
        "A late frost killed many of the early blossoms the bees depend on.\n\n"
        "The beekeepers' association asked the ministry for emergency feeding support."
    ),
}

TinyCorpus = Callable[..., Path]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    return SEEDS_DIR


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbeddings:
    """The packaged all-MiniLM-L6-v2 behind the project's embedder (model shared per process)."""
    return SentenceTransformerEmbeddings(settings=Settings())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings, with the index in a temporary folder and the corpus at seeds/."""
    return Settings(corpus_dir=SEEDS_DIR, index_dir=tmp_path / "index")


@pytest.fixture(scope="session")
def seeds_kb(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbeddings) -> KnowledgeBase:
    """A ready knowledge base over the repo's seeds/, its index in a session temp folder.

    Treat it as read-only: tests that change a corpus or an index build their own.
    """
    index_dir = tmp_path_factory.mktemp("seeds-index") / "index"
    settings = Settings(corpus_dir=SEEDS_DIR, index_dir=index_dir)
    return KnowledgeBase(SEEDS_DIR, index_dir, settings=settings, embedder=embedder).ensure_ready()


@pytest.fixture(scope="session")
def tiny_articles() -> dict[str, str]:
    """The default articles of ``tiny_corpus`` (file name → text); a copy, free to modify."""
    return dict(TINY_ARTICLES)


def write_corpus(folder: Path, articles: Mapping[str, str | bytes]) -> Path:
    """Write ``articles`` (file name → text or bytes) into ``folder``; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, content in articles.items():
        path = folder / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def corpus_writer() -> Callable[[Path, Mapping[str, str | bytes]], Path]:
    """``write_corpus`` for fixtures of any scope (module-scoped corpora included)."""
    return write_corpus


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> TinyCorpus:
    """Factory: ``tiny_corpus()`` writes ``TINY_ARTICLES``; ``tiny_corpus({"a.txt": "..."}, name=...)``
    writes the given files (str → UTF-8, bytes as they are). Returns the folder."""

    def make(articles: Mapping[str, str | bytes] | None = None, name: str = "corpus") -> Path:
        return write_corpus(tmp_path / name, TINY_ARTICLES if articles is None else articles)

    return make
