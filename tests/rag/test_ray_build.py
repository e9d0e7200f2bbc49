"""Tests of rag.ray_build: the Ray build writes the local build's index; incremental on Ray too.

One local Ray runtime (1 embedding actor, 2 CPUs) serves the whole module; the corpus is the three tiny articles plus
a duplicate and an unusable file, so the skip decisions are compared as well.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rag.index import IndexStore
from rag.settings import Settings

ray = pytest.importorskip("ray", reason='Ray is not installed (pip install -e ".[ray]")')

from rag.ray_build import RayEngine  # noqa: E402


@pytest.fixture(scope="module")
def engine() -> Iterator[RayEngine]:
    eng = RayEngine(workers=1, settings=Settings())
    yield eng
    eng.shutdown()


def _corpus(folder: Path, articles: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in articles.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _comparable(manifest: dict) -> dict:
    return {k: v for k, v in manifest.items() if k not in ("created", "checksums")}


def test_ray_build_equals_local_build(tmp_path: Path, tiny_articles: dict[str, str], engine: RayEngine) -> None:
    articles = dict(tiny_articles)
    articles["copy.txt"] = articles["apples.txt"]  # skipped as a duplicate
    articles["empty.txt"] = "   \n"  # skipped as unusable
    corpus = _corpus(tmp_path / "corpus", articles)
    settings = Settings()
    local = IndexStore(tmp_path / "local", settings)
    local.build(corpus, progress=False)
    on_ray = IndexStore(tmp_path / "ray", settings)
    report = on_ray.build(corpus, progress=False, engine=engine)
    a, b = local.load(), on_ray.load()
    assert b.chunks == a.chunks
    assert b.articles == a.articles
    assert _comparable(b.manifest) == _comparable(a.manifest)
    assert set(report.skipped) == {"copy.txt", "empty.txt"}
    assert (b.version_dir / "articles.jsonl").read_bytes() == (a.version_dir / "articles.jsonl").read_bytes()
    assert (b.version_dir / "chunks.jsonl").read_bytes() == (a.version_dir / "chunks.jsonl").read_bytes()
    np.testing.assert_allclose(b.vectors.vectors(), a.vectors.vectors(), atol=1e-5)
    assert json.loads((b.version_dir / "manifest.json").read_text())["format"] == a.manifest["format"]


def test_incremental_ray_build_embeds_only_changed_files(
    tmp_path: Path, tiny_articles: dict[str, str], engine: RayEngine
) -> None:
    corpus = _corpus(tmp_path / "corpus", tiny_articles)
    store = IndexStore(tmp_path / "index", Settings())
    first = store.build(corpus, progress=False, engine=engine)
    assert first.embedded_chunks == first.chunks
    assert store.build(corpus, progress=False, engine=engine).up_to_date
    changed = tiny_articles["trains.txt"] + "\n\nA second sleeper route to Prague opens in May."
    (corpus / "trains.txt").write_text(changed, encoding="utf-8")
    second = store.build(corpus, progress=False, engine=engine)
    assert second.changed_files == ["trains.txt"]
    assert sorted(second.reused_files) == ["apples.txt", "bees.txt"]
    loaded = store.load()
    assert second.embedded_chunks == sum(1 for c in loaded.chunks if c.doc_id == "trains.txt")


def test_rag_index_engine_ray_is_a_command(tmp_path: Path) -> None:
    """`rag index --engine ray` builds the project's own index format, which `rag search` then serves."""
    import shutil
    import subprocess
    import sys

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in sorted(p.name for p in Path("seeds").glob("*.txt"))[:2]:
        shutil.copy(Path("seeds") / name, corpus / name)
    index = tmp_path / "index"
    cli = [sys.executable, "-m", "rag.cli"]
    built = subprocess.run([*cli, "index", "--corpus", str(corpus), "--index", str(index), "--engine", "ray",
                            "--workers", "1"], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    assert (index / "CURRENT").is_file()
    found = subprocess.run([*cli, "search", "workshop", "--corpus", str(corpus), "--index", str(index), "--json"],
                           capture_output=True, text=True, timeout=300)
    assert found.returncode == 0 and '"doc_id"' in found.stdout, found.stderr[-2000:]
