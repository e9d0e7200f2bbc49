"""Tests of rag.index: versioned builds, the manifest, incremental updates, failure safety."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.chunk import ParagraphChunker
from rag.corpus import scan_corpus
from rag.embed import SentenceTransformerEmbeddings, model_fingerprint
from rag.errors import CorpusError, IndexCorruptError
from rag.files import sha256_file
from rag.index import FORMAT_VERSION, IndexStore
from rag.parse import parse_file
from rag.searcher import HybridSearcher
from rag.settings import Settings
from rag.vectorstore import VectorIndex

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAIN_QUERY = "Which city will the night train route reach in December?"


class RecordingEmbedder:
    """Wraps the real embedder and records every text passed to ``encode``.

    ``fail_on_call``: raise on that (1-based) non-empty encode call, to interrupt a build.
    ``fingerprint``: report another model fingerprint (as if the model had been swapped).
    """

    def __init__(self, inner: SentenceTransformerEmbeddings, *, fail_on_call: int | None = None,
                 fingerprint: str | None = None) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []
        self.fail_on_call = fail_on_call
        self.fingerprint = fingerprint

    @property
    def texts(self) -> list[str]:
        return [t for call in self.calls for t in call]

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def describe(self) -> dict[str, Any]:
        meta = self.inner.describe()
        if self.fingerprint is not None:
            meta["fingerprint"] = self.fingerprint
        return meta

    def encode(self, texts: list[str], *, progress: bool | None = None) -> np.ndarray:
        texts = list(texts)
        if texts:
            self.calls.append(texts)
            if self.fail_on_call is not None and len(self.calls) >= self.fail_on_call:
                raise RuntimeError("embedder crashed (simulated)")
        return self.inner.encode(texts, progress=False)

    def reset(self) -> None:
        self.calls.clear()


def make_store(index_dir: Path, embedder: Any, settings: Settings | None = None) -> IndexStore:
    return IndexStore(index_dir, settings or Settings(), embedder)


def search(store: IndexStore, embedder: Any, query: str, k: int = 3) -> list[tuple[str, int]]:
    searcher = HybridSearcher(store.load(), embedder, store.settings)
    return [(h.doc_id, h.paragraph) for h in searcher.search(query, k)]


def expected_chunks(corpus: Path, doc_id: str, settings: Settings | None = None) -> list[str]:
    article = parse_file(corpus / doc_id, doc_id)
    return [c.embed_text for c in ParagraphChunker(settings or Settings()).chunk(article)]


def version_dirs(index_dir: Path) -> tuple[list[str], list[str]]:
    """(finished versions, staging folders) in the index folder."""
    names = sorted(p.name for p in index_dir.iterdir() if p.is_dir())
    return [n for n in names if n.startswith("v-")], [n for n in names if n.startswith(".v-")]


def current_name(index_dir: Path) -> str:
    return (index_dir / "CURRENT").read_text(encoding="utf-8").strip()


# --- one tiny index, built once per module and copied by the tests that damage it --------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, tiny_articles: dict[str, str],
             embedder: SentenceTransformerEmbeddings) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("template")
    corpus = root / "corpus"
    corpus.mkdir()
    for name, text in tiny_articles.items():
        (corpus / name).write_text(text, encoding="utf-8")
    make_store(root / "index", embedder).build(corpus)
    return corpus, root / "index"


@pytest.fixture
def built(template: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the template corpus and its index: (corpus, index_dir)."""
    corpus, index_dir = template
    shutil.copytree(corpus, tmp_path / "corpus")
    shutil.copytree(index_dir, tmp_path / "index")
    return tmp_path / "corpus", tmp_path / "index"


# --- build and load -------------------------------------------------------------------------


def test_build_then_load(tiny_corpus, tmp_path: Path, embedder: SentenceTransformerEmbeddings) -> None:
    corpus = tiny_corpus()
    recorder = RecordingEmbedder(embedder)
    store = make_store(tmp_path / "index", recorder)
    report = store.build(corpus)

    articles = {p.name: parse_file(p) for p in sorted(corpus.glob("*.txt"))}
    chunks = [c for a in articles.values() for c in ParagraphChunker(Settings()).chunk(a)]
    assert report.files == 3
    assert report.paragraphs == sum(len(a.paragraphs) for a in articles.values()) == 9
    assert report.chunks == report.embedded_chunks == len(chunks)
    assert sorted(report.changed_files) == sorted(articles)
    assert report.reused_files == [] and report.skipped == {} and not report.up_to_date
    assert sorted(recorder.texts) == sorted(c.embed_text for c in chunks)
    assert report.version_dir == store.current_version()
    assert "indexed 3 files" in report.summary()

    loaded = store.load()
    assert loaded.articles == articles
    assert loaded.chunks == chunks
    assert loaded.vectors.ntotal == len(chunks)
    assert loaded.vectors.dimension == embedder.dimension == 384
    vectors = loaded.vectors.vectors()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    # Row i is chunk i.
    for row in (0, len(chunks) // 2, len(chunks) - 1):
        direct = embedder.encode([chunks[row].embed_text])[0]
        assert float(vectors[row] @ direct) > 0.999
    # Paragraph offsets survive the round trip through JSON.
    for doc_id, article in loaded.articles.items():
        text = (corpus / doc_id).read_text(encoding="utf-8")
        assert all(text[p.start : p.end] == p.text for p in article.paragraphs)


def test_manifest_contents(built: tuple[Path, Path], embedder: SentenceTransformerEmbeddings) -> None:
    corpus, index_dir = built
    store = make_store(index_dir, embedder)
    manifest = store.read_manifest()
    assert manifest is not None
    settings = Settings()
    assert manifest["format"] == FORMAT_VERSION
    assert manifest["columns"]["kinds"] == sorted({c.kind for c in store.load().chunks})
    assert manifest["embedding"] == {
        "model": settings.embedding_model,
        "backend": "sentence-transformers",
        "fingerprint": model_fingerprint(settings.embedding_model),
        "dimension": 384,
    }
    assert manifest["chunking"] == ParagraphChunker(settings).settings_fingerprint()
    assert manifest["faiss"]["type"] == "flat"
    assert set(manifest["files"]) == {"apples.txt", "bees.txt", "trains.txt"}
    total_chunks = 0
    for doc_id, meta in manifest["files"].items():
        data = (corpus / doc_id).read_bytes()
        article = parse_file(corpus / doc_id)
        assert meta["sha256"] == hashlib.sha256(data).hexdigest()
        assert meta["title"] == article.title
        assert meta["date"] == article.date
        assert meta["paragraphs"] == len(article.paragraphs)
        total_chunks += meta["chunks"]
    assert total_chunks == manifest["faiss"]["ntotal"] == len(store.load().chunks)
    assert manifest["files"]["trains.txt"]["date"] == "2022-06-05"
    assert manifest["skipped"] == {}
    version = store.current_version()
    assert version is not None
    for name, checksum in manifest["checksums"].items():
        assert hashlib.sha256((version / name).read_bytes()).hexdigest() == checksum
    assert set(manifest["checksums"]) == {
        "articles.jsonl", "chunks.jsonl", "vectors.faiss",
        "meta-strings.npy", "meta-articles.npy", "meta-paragraphs.npy", "meta-chunks.npy",
        "lex-arrays.npy", "lex-vocab.json",
    }


def test_unchanged_corpus_is_up_to_date(built: tuple[Path, Path], embedder: SentenceTransformerEmbeddings) -> None:
    corpus, index_dir = built
    recorder = RecordingEmbedder(embedder)
    store = make_store(index_dir, recorder)
    before = store.current_version()
    assert not store.is_stale(corpus)
    report = store.build(corpus)
    assert report.up_to_date
    assert report.version_dir == before == store.current_version()
    assert recorder.texts == []
    assert "up to date" in report.summary()


# --- incremental updates --------------------------------------------------------------------


def test_changed_file_is_the_only_one_reembedded(built: tuple[Path, Path], embedder: SentenceTransformerEmbeddings) -> None:
    corpus, index_dir = built
    recorder = RecordingEmbedder(embedder)
    store = make_store(index_dir, recorder)
    old = store.load()
    old_vectors = old.vectors.vectors()
    assert not any("Copenhagen" in c.text for c in old.chunks)

    path = corpus / "trains.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("Amsterdam", "Copenhagen"), encoding="utf-8")
    assert store.is_stale(corpus)
    report = store.build(corpus)

    assert report.changed_files == ["trains.txt"]
    assert sorted(report.reused_files) == ["apples.txt", "bees.txt"]
    assert recorder.texts == expected_chunks(corpus, "trains.txt")
    assert report.embedded_chunks == len(recorder.texts)
    new = store.load()
    assert new.version_dir != old.version_dir
    # Vectors of unchanged files are carried over bit for bit.
    new_vectors = new.vectors.vectors()
    for doc_id in ("apples.txt", "bees.txt"):
        old_rows = [i for i, c in enumerate(old.chunks) if c.doc_id == doc_id]
        new_rows = [i for i, c in enumerate(new.chunks) if c.doc_id == doc_id]
        assert np.array_equal(old_vectors[old_rows], new_vectors[new_rows])
    # Search sees the change.
    hits = HybridSearcher(new, embedder, store.settings).search("night train to Copenhagen", 1)
    assert hits[0].doc_id == "trains.txt" and "Copenhagen" in hits[0].text


def test_added_file_is_the_only_one_embedded(built: tuple[Path, Path], embedder: SentenceTransformerEmbeddings) -> None:
    corpus, index_dir = built
    recorder = RecordingEmbedder(embedder)
    store = make_store(index_dir, recorder)
    (corpus / "sub").mkdir()
    (corpus / "sub" / "ferry.md").write_text(
        "# Island ferry resumes service\n\nThe island ferry resumed daily crossings on 2 May 2024 after repairs.\n",
        encoding="utf-8",
    )
    report = store.build(corpus)
    assert report.changed_files == ["sub/ferry.md"]
    assert sorted(report.reused_files) == ["apples.txt", "bees.txt", "trains.txt"]
    assert recorder.texts == expected_chunks(corpus, "sub/ferry.md")
    loaded = store.load()
    assert loaded.articles["sub/ferry.md"].title == "Island ferry resumes service"
    hits = HybridSearcher(loaded, embedder, store.settings).search("When did the island ferry resume?", 1)
    assert hits[0].doc_id == "sub/ferry.md"


def test_deleted_file_is_removed_without_embedding(built: tuple[Path, Path], embedder: SentenceTransformerEmbeddings) -> None:
    corpus, index_dir = built
    recorder = RecordingEmbedder(embedder)
    store = make_store(index_dir, recorder)
    (corpus / "bees.txt").unlink()
    report = store.build(corpus)
    assert report.removed_files == ["bees.txt"]
    assert recorder.texts == []
    assert report.embedded_chunks == 0
    loaded = store.load()
    assert set(loaded.articles) == {"apples.txt", "trains.txt"}
    assert all(c.doc_id != "bees.txt" for c in loaded.chunks)
    assert loaded.vectors.ntotal == len(loaded.chunks)
    hits = HybridSearcher(loaded, embedder, store.settings).search("honey bees frost", 5)
    assert all(h.doc_id != "bees.txt" for h in hits)


def test_chunking_change_reembeds_everything(built: tuple[Path, Path], embedder: SentenceTransformerEmbeddings) -> None:
    corpus, index_dir = built
    recorder = RecordingEmbedder(embedder)
    settings = Settings(chunk_title_header=False)
    store = make_store(index_dir, recorder, settings)
    assert store.is_stale(corpus)
    report = store.build(corpus)
    assert report.reused_files == []
    assert sorted(report.changed_files) == ["apples.txt", "bees.txt", "trains.txt"]
    assert report.embedded_chunks == report.chunks == len(recorder.texts)
    manifest = store.read_manifest()
    assert manifest is not None and manifest["chunking"]["title_header"] is False
    assert all(c.embed_text == c.text for c in store.load().chunks)


def test_model_change_reembeds_everything(built: tuple[Path, Path], embedder: SentenceTransformerEmbeddings) -> None:
    corpus, index_dir = built
    recorder = RecordingEmbedder(embedder, fingerprint="another-model")
    store = make_store(index_dir, recorder)
    report = store.build(corpus)
    assert not report.up_to_date
    assert report.reused_files == []
    assert report.embedded_chunks == report.chunks == len(recorder.texts)
    manifest = store.read_manifest()
    assert manifest is not None and manifest["embedding"]["fingerprint"] == "another-model"


def test_rebuild_reembeds_everything(built: tuple[Path, Path], embedder: SentenceTransformerEmbeddings) -> None:
    corpus, index_dir = built
    recorder = RecordingEmbedder(embedder)
    store = make_store(index_dir, recorder)
    before, old_current = search(store, embedder, TRAIN_QUERY), current_name(index_dir)
    report = store.build(corpus, rebuild=True)
    assert report.embedded_chunks == report.chunks == len(recorder.texts)
    assert search(store, embedder, TRAIN_QUERY) == before
    finished, staging = version_dirs(index_dir)
    assert staging == []
    assert sorted(finished) == sorted([old_current, current_name(index_dir)])  # live + the previous one
    assert current_name(index_dir) != old_current
    # A third build drops the oldest version.
    store.build(corpus, rebuild=True)
    assert old_current not in version_dirs(index_dir)[0]
    assert len(version_dirs(index_dir)[0]) == 2


# --- the corpus: bad files, duplicates, hidden files ----------------------------------------


def test_duplicates_and_bad_files_are_skipped_with_reasons(
    tiny_corpus, tiny_articles: dict[str, str], tmp_path: Path, embedder: SentenceTransformerEmbeddings
) -> None:
    files: dict[str, str | bytes] = dict(tiny_articles)
    files.update(
        {
            "copy_of_apples.txt": tiny_articles["apples.txt"],
            "latin1.txt": "Caf\u00e9 news\n\nThe caf\u00e9 opened.".encode("latin-1"),
            "empty.txt": "",
            "blob.txt": b"\x00\x01\x02binary",
            ".hidden.txt": "Hidden\n\nNot an article.",
            "notes.pdf": b"%PDF-1.4",
        }
    )
    corpus = tiny_corpus(files)
    recorder = RecordingEmbedder(embedder)
    store = make_store(tmp_path / "index", recorder)
    report = store.build(corpus)
    assert report.files == 3
    assert set(report.skipped) == {"copy_of_apples.txt", "latin1.txt", "empty.txt", "blob.txt"}
    assert report.skipped["copy_of_apples.txt"] == "duplicate of apples.txt"
    assert "not valid UTF-8" in report.skipped["latin1.txt"]
    assert "no paragraphs" in report.skipped["empty.txt"]
    assert "binary" in report.skipped["blob.txt"]
    loaded = store.load()
    assert set(loaded.articles) == {"apples.txt", "bees.txt", "trains.txt"}
    manifest = store.read_manifest()
    assert manifest is not None and set(manifest["skipped"]) == set(report.skipped)
    # Skipped files are remembered: nothing changed, nothing to do.
    recorder.reset()
    assert store.build(corpus).up_to_date and recorder.texts == []
    # Fixing a bad file makes the index stale, and the fixed file is embedded.
    (corpus / "latin1.txt").write_text("Café news\n\nThe café opened on the square.", encoding="utf-8")
    report = store.build(corpus)
    assert report.changed_files == ["latin1.txt"]
    assert "latin1.txt" in store.load().articles


def test_no_usable_article_is_an_error(tiny_corpus, tmp_path: Path, embedder: SentenceTransformerEmbeddings) -> None:
    corpus = tiny_corpus({"a.txt": "", "b.txt": b"\xff\xfe bad"})
    with pytest.raises(CorpusError, match=r"no usable articles.*a\.txt.*b\.txt"):
        make_store(tmp_path / "index", embedder).build(corpus)


def test_scan_corpus_errors(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="corpus folder not found"):
        scan_corpus(tmp_path / "missing", Settings())
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match=r"no articles \(\*\.txt, \*\.md\)"):
        scan_corpus(tmp_path / "empty", Settings())
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    with pytest.raises(CorpusError, match="not a folder"):
        scan_corpus(tmp_path / "file.txt", Settings())


def test_symlink_outside_corpus_is_ignored(tiny_corpus, tmp_path: Path) -> None:
    corpus = tiny_corpus()
    outside = tmp_path / "outside.txt"
    outside.write_text("Secret\n\nNot part of the corpus.", encoding="utf-8")
    (corpus / "link.txt").symlink_to(outside)
    assert [f.doc_id for f in scan_corpus(corpus, Settings())] == ["apples.txt", "bees.txt", "trains.txt"]


# --- interrupted builds keep the old index ---------------------------------------------------


def _assert_old_index_intact(index_dir: Path, store: IndexStore, embedder: Any, old_current: str,
                             old_hits: list[tuple[str, int]]) -> None:
    assert current_name(index_dir) == old_current
    finished, staging = version_dirs(index_dir)
    assert staging == [], f"staging folders left behind: {staging}"
    assert finished == [old_current], f"partial versions left behind: {finished}"
    assert search(store, embedder, TRAIN_QUERY) == old_hits


def test_embedder_crash_keeps_old_index(built: tuple[Path, Path], embedder: SentenceTransformerEmbeddings) -> None:
    corpus, index_dir = built
    store = make_store(index_dir, embedder)
    old_current, old_hits = current_name(index_dir), search(store, embedder, TRAIN_QUERY)
    (corpus / "trains.txt").write_text("Changed title\n\nA completely different text.", encoding="utf-8")
    crashing = make_store(index_dir, RecordingEmbedder(embedder, fail_on_call=1))
    with pytest.raises(RuntimeError, match="simulated"):
        crashing.build(corpus, rebuild=True)
    _assert_old_index_intact(index_dir, store, embedder, old_current, old_hits)


def _enospc(*_: Any, **__: Any) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("target", ["vectors", "jsonl", "manifest", "current"])
def test_write_error_keeps_old_index(
    target: str, built: tuple[Path, Path], embedder: SentenceTransformerEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.index as index_module

    corpus, index_dir = built
    store = make_store(index_dir, embedder)
    old_current, old_hits = current_name(index_dir), search(store, embedder, TRAIN_QUERY)
    if target == "vectors":
        monkeypatch.setattr(VectorIndex, "write", _enospc)
    elif target == "jsonl":
        monkeypatch.setattr(index_module, "_write_jsonl", _enospc)
    else:
        real_write_text = index_module.write_text_atomic
        failing_name = "manifest.json" if target == "manifest" else "CURRENT"

        def write_text(path: Path, text: str) -> None:
            if path.name == failing_name:
                _enospc()
            real_write_text(path, text)

        monkeypatch.setattr(index_module, "write_text_atomic", write_text)
    bees = corpus / "bees.txt"
    bees.write_text(bees.read_text(encoding="utf-8") + "\n\nVolunteers will count the hives again in May.",
                    encoding="utf-8")
    with pytest.raises(OSError) as excinfo:
        store.build(corpus)
    assert excinfo.value.errno == errno.ENOSPC
    monkeypatch.undo()
    _assert_old_index_intact(index_dir, store, embedder, old_current, old_hits)
    # And the next build works.
    report = store.build(corpus)
    assert report.changed_files == ["bees.txt"]
    assert current_name(index_dir) == report.version_dir.name != old_current
    assert "count the hives" in store.load().articles["bees.txt"].paragraphs[-1].text


_KILL_HOOK = r"""
import os, sys, time
phase, marker = sys.argv[1], sys.argv[2]

def pause():
    open(marker, "w").close()
    time.sleep(600)

if phase == "embedding":
    from rag.embed import SentenceTransformerEmbeddings
    real_encode = SentenceTransformerEmbeddings.encode
    def encode(self, texts, **kwargs):
        if texts:
            pause()
        return real_encode(self, texts, **kwargs)
    SentenceTransformerEmbeddings.encode = encode
else:
    import rag.index as ix
    real_write_jsonl = ix._write_jsonl
    def write_jsonl(path, rows):
        real_write_jsonl(path, rows)
        if path.name == "chunks.jsonl":
            pause()
    ix._write_jsonl = write_jsonl

from rag.cli import main
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["embedding", "writing"])
def test_kill_9_mid_build_keeps_old_index(
    phase: str, built: tuple[Path, Path], tmp_path: Path, embedder: SentenceTransformerEmbeddings
) -> None:
    corpus, index_dir = built
    store = make_store(index_dir, embedder)
    old_current, old_hits = current_name(index_dir), search(store, embedder, TRAIN_QUERY)
    marker = tmp_path / "paused"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_HOOK, phase, str(marker),
         "index", "--rebuild", "--corpus", str(corpus), "--index", str(index_dir)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()[1].decode(errors="replace")
            assert time.monotonic() < deadline, "the build never reached the kill point"
            time.sleep(0.05)
        if phase == "writing":
            assert version_dirs(index_dir)[1], "the staging folder should exist while writing"
    finally:
        proc.kill()  # SIGKILL: no cleanup handlers run
        proc.communicate()
    assert proc.returncode == -9

    assert current_name(index_dir) == old_current
    finished, staging = version_dirs(index_dir)
    assert finished == [old_current]
    assert old_current not in staging
    assert search(store, embedder, TRAIN_QUERY) == old_hits
    # The next build succeeds and becomes current; the killed build's leftovers are never live.
    store.build(corpus, rebuild=True)
    assert current_name(index_dir) not in (old_current, *staging)
    assert not current_name(index_dir).startswith(".")
    assert search(store, embedder, TRAIN_QUERY) == old_hits


# --- damaged indexes ---------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _damage(index_dir: Path, what: str) -> None:
    version = index_dir / current_name(index_dir)
    if what == "truncated vectors":
        _truncate(version / "vectors.faiss")
    elif what == "garbage vectors":
        size = (version / "vectors.faiss").stat().st_size
        (version / "vectors.faiss").write_bytes(b"\x17" * size)
    elif what == "missing vectors":
        (version / "vectors.faiss").unlink()
    elif what == "truncated chunks":
        _truncate(version / "chunks.jsonl")
    elif what == "damaged manifest":
        (version / "manifest.json").write_text('{"format": 1, "embedding": ', encoding="utf-8")
    elif what == "missing manifest":
        (version / "manifest.json").unlink()
    elif what == "foreign manifest":
        (version / "manifest.json").write_text(json.dumps({"format": 99}), encoding="utf-8")
    elif what == "missing version":
        (index_dir / "CURRENT").write_text("v-20000101T000000-gone\n", encoding="utf-8")
    elif what == "deleted version":
        shutil.rmtree(version)
    elif what == "bad CURRENT":
        (index_dir / "CURRENT").write_bytes(b"../../etc\xff")
    else:
        raise AssertionError(what)


DAMAGES = [
    "truncated vectors", "garbage vectors", "missing vectors", "truncated chunks", "damaged manifest",
    "missing manifest", "foreign manifest", "missing version", "deleted version", "bad CURRENT",
]


@pytest.mark.parametrize("what", DAMAGES)
def test_damaged_index_is_reported_and_rebuild_recovers(
    what: str, built: tuple[Path, Path], embedder: SentenceTransformerEmbeddings
) -> None:
    corpus, index_dir = built
    store = make_store(index_dir, embedder)
    good_hits = search(store, embedder, TRAIN_QUERY)
    _damage(index_dir, what)
    with pytest.raises(IndexCorruptError, match=r"rag index --rebuild"):
        store.load()
    store.build(corpus, rebuild=True)
    assert search(store, embedder, TRAIN_QUERY) == good_hits


@pytest.mark.parametrize("what", ["truncated vectors", "garbage vectors"])
def test_damaged_vectors_detected_without_checksums(
    what: str, built: tuple[Path, Path], embedder: SentenceTransformerEmbeddings
) -> None:
    _, index_dir = built
    _damage(index_dir, what)
    with pytest.raises(IndexCorruptError, match=r"rag index --rebuild"):
        make_store(index_dir, embedder).load(verify_checksums=False)


def test_plain_build_also_recovers_from_damage(built: tuple[Path, Path], embedder: SentenceTransformerEmbeddings) -> None:
    corpus, index_dir = built
    store = make_store(index_dir, embedder)
    good_hits = search(store, embedder, TRAIN_QUERY)
    _damage(index_dir, "truncated vectors")
    report = store.build(corpus)
    assert report.embedded_chunks == report.chunks  # nothing trustworthy to reuse
    assert search(store, embedder, TRAIN_QUERY) == good_hits


def test_missing_index_message(tmp_path: Path, embedder: SentenceTransformerEmbeddings) -> None:
    store = make_store(tmp_path / "nothing", embedder)
    assert store.current_version() is None
    assert store.read_manifest() is None
    with pytest.raises(IndexCorruptError, match=r"no index in .*run `rag index`"):
        store.load()


# --- format 2: metadata columns ------------------------------------------------------------


def _as_format_1(version: Path) -> None:
    """Turn a version folder into what a format-1 build wrote: JSONL + FAISS, no columns."""
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    for name in list(manifest["checksums"]):
        if name.startswith("meta-"):
            (version / name).unlink()
            del manifest["checksums"][name]
    manifest["format"] = 1
    del manifest["columns"]
    (version / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.parametrize("mmap", [True, False])
def test_columns_load_the_same_metadata_as_jsonl(
    built: tuple[Path, Path], embedder: SentenceTransformerEmbeddings, tmp_path: Path, mmap: bool
) -> None:
    _, index_dir = built
    store = make_store(index_dir, embedder, Settings(index_mmap=mmap))
    loaded = store.load()
    assert loaded.columns is not None  # format 2: views over the mapped columns
    old_dir = tmp_path / "old"
    shutil.copytree(index_dir, old_dir)
    _as_format_1(old_dir / loaded.version_dir.name)
    old = make_store(old_dir, embedder, Settings(index_mmap=mmap)).load()
    assert old.columns is None and isinstance(old.chunks, list)
    assert loaded.articles == old.articles and dict(loaded.articles) == old.articles
    assert list(loaded.articles) == list(old.articles)
    assert loaded.chunks == old.chunks and list(loaded.chunks) == old.chunks
    assert loaded.chunks[-1] == old.chunks[-1] and loaded.chunks[1:3] == old.chunks[1:3]
    assert list(loaded.paragraph_keys) == old.paragraph_keys
    np.testing.assert_array_equal(loaded.chunk_paragraph, old.chunk_paragraph)
    np.testing.assert_array_equal(loaded.paragraph_doc, old.paragraph_doc)
    np.testing.assert_array_equal(loaded.chunk_mask("paragraph"), old.chunk_mask("paragraph"))
    assert loaded.article_titles() == old.article_titles()
    for row in range(len(old.paragraph_keys)):
        assert loaded.paragraph(row) == old.paragraph(row)
        assert loaded.paragraph_text(row) == old.paragraph(row)[1].text
    assert "apples.txt" in loaded.articles and "nope.txt" not in loaded.articles
    assert loaded.articles.get("nope.txt") is None
    # The searcher over either gives the same hits and scores.
    a = HybridSearcher(loaded, embedder, store.settings).search(TRAIN_QUERY, 5)
    b = HybridSearcher(old, embedder, store.settings).search(TRAIN_QUERY, 5)
    assert a == b


def test_format_1_index_loads_and_the_next_build_rewrites_it(
    built: tuple[Path, Path], embedder: SentenceTransformerEmbeddings
) -> None:
    corpus, index_dir = built
    recorder = RecordingEmbedder(embedder)
    store = make_store(index_dir, recorder)
    before = store.load()
    _as_format_1(before.version_dir)
    old = store.load()  # still loads (parsed onto the heap)
    assert old.columns is None and old.chunks == before.chunks
    assert store.is_stale(corpus)
    report = store.build(corpus)
    assert not report.up_to_date and report.embedded_chunks == 0  # metadata rewritten, vectors reused
    assert recorder.texts == []
    new = store.load()
    assert new.manifest["format"] == FORMAT_VERSION and new.columns is not None
    assert new.chunks == before.chunks
    np.testing.assert_array_equal(new.vectors.vectors(), before.vectors.vectors())
    assert not store.is_stale(corpus)


def test_datelines_survive_the_index(built: tuple[Path, Path], embedder: SentenceTransformerEmbeddings) -> None:
    corpus, index_dir = built
    loaded = make_store(index_dir, embedder).load()
    for doc_id, article in loaded.articles.items():
        parsed = parse_file(corpus / doc_id)
        assert article == parsed  # dateline included
    assert loaded.articles["apples.txt"].dateline is not None
    assert loaded.articles["apples.txt"].dateline.text == "News | 12 March 2023"


def test_format_2_index_loads_without_datelines_and_the_next_build_adds_them(
    built: tuple[Path, Path], embedder: SentenceTransformerEmbeddings
) -> None:
    corpus, index_dir = built
    recorder = RecordingEmbedder(embedder)
    store = make_store(index_dir, recorder)
    version = store.load().version_dir
    apples = parse_file(corpus / "apples.txt")
    # What a format-2 build wrote: the article table without the dateline columns.
    table = np.load(version / "meta-articles.npy")
    np.save(version / "meta-articles.npy", np.ascontiguousarray(table[:, :10]), allow_pickle=False)
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    manifest["format"] = 2
    manifest["checksums"]["meta-articles.npy"] = sha256_file(version / "meta-articles.npy")
    (version / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    old = store.load()
    assert old.articles["apples.txt"].dateline is None
    assert old.articles["apples.txt"].paragraphs == apples.paragraphs and apples.dateline is not None
    assert store.is_stale(corpus)
    report = store.build(corpus)
    assert report.embedded_chunks == 0 and recorder.texts == []  # metadata rewritten, vectors reused
    new = store.load()
    assert new.manifest["format"] == FORMAT_VERSION
    assert new.articles["apples.txt"] == apples


@pytest.mark.parametrize("name", ["meta-strings.npy", "meta-paragraphs.npy", "meta-chunks.npy"])
def test_damaged_columns_are_reported(
    built: tuple[Path, Path], embedder: SentenceTransformerEmbeddings, name: str
) -> None:
    _, index_dir = built
    store = make_store(index_dir, embedder)
    version = store.current_version()
    assert version is not None
    path = version / name
    path.write_bytes(path.read_bytes()[:-9])
    with pytest.raises(IndexCorruptError, match="rebuild"):
        store.load()
    with pytest.raises(IndexCorruptError, match="rebuild"):
        store.load(verify_checksums=False)


def test_columns_hold_no_pickle(built: tuple[Path, Path], embedder: SentenceTransformerEmbeddings) -> None:
    _, index_dir = built
    version = make_store(index_dir, embedder).current_version()
    assert version is not None
    for path in version.glob("meta-*.npy"):
        array = np.load(path, allow_pickle=False)  # raises on an object array
        assert array.dtype in (np.uint8, np.int64)


def _base_is_memmap(array: np.ndarray) -> bool:
    while array is not None and not isinstance(array, np.memmap):
        array = array.base  # type: ignore[assignment]
    return isinstance(array, np.memmap)


@pytest.mark.parametrize("mmap", [True, False])
def test_metadata_and_lexical_tables_are_mapped_not_copied(
    built: tuple[Path, Path], embedder: SentenceTransformerEmbeddings, mmap: bool
) -> None:
    _, index_dir = built
    store = make_store(index_dir, embedder, Settings(index_mmap=mmap))
    loaded = store.load()
    assert loaded.columns is not None and loaded.lexical is not None
    searcher = HybridSearcher(loaded, embedder, store.settings)
    arrays = [
        loaded.columns.paragraphs, loaded.columns.chunks, loaded.chunk_paragraph,
        searcher.paragraph_bm25.saturated.data, searcher.paragraph_bm25.saturated.indices,
        searcher._paragraph_columns.indptr, searcher.article_bm25.idf, searcher.sentence_terms.indices,
        searcher.sentence_offsets,
    ]
    assert all(_base_is_memmap(a) for a in arrays) == mmap
    assert any(_base_is_memmap(a) for a in arrays) == mmap


def test_lexical_tables_of_another_tokenizer_are_not_used(
    built: tuple[Path, Path], embedder: SentenceTransformerEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.bm25
    import rag.index as index_module

    corpus, index_dir = built
    recorder = RecordingEmbedder(embedder)
    store = make_store(index_dir, recorder)
    stored = store.load()
    expected = HybridSearcher(stored, embedder, store.settings).search(TRAIN_QUERY, 5)
    monkeypatch.setattr(index_module, "lexical_fingerprint", lambda: "another-tokenizer")
    monkeypatch.setattr(rag.bm25, "lexical_fingerprint", lambda: "another-tokenizer")
    other = store.load()
    assert other.lexical is None  # not trusted: the searcher makes its own tables
    assert HybridSearcher(other, embedder, store.settings).search(TRAIN_QUERY, 5) == expected
    assert store.is_stale(corpus)
    report = store.build(corpus)
    assert report.embedded_chunks == 0 and recorder.texts == []  # rewritten, vectors reused
    assert store.load().manifest["lexical"]["fingerprint"] == "another-tokenizer"
    assert not store.is_stale(corpus)
