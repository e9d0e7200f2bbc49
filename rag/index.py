"""The persisted index: FAISS vectors + JSON metadata + a manifest, updated incrementally.

Layout of ``index_dir``::

    CURRENT              name of the live version folder (replaced atomically)
    v-<stamp>/           one complete, immutable build
        manifest.json    model, settings, per-file content hashes, checksums of the files below
        articles.jsonl   one parsed article per line (title, date, paragraphs with offsets)
        chunks.jsonl     one chunk per line; row i of the vectors is chunk i
        vectors.faiss    faiss.write_index output (never pickle)
    .lock                serializes builders

A build writes a new version folder, fsyncs it, then replaces ``CURRENT``: a reader always sees
a complete index, and a build that fails or is killed leaves the previous one in place.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.chunk import ParagraphChunker
from rag.corpus import Corpus, CorpusFile, parse_corpus, scan_corpus
from rag.domain import Article, Chunk, Paragraph
from rag.embed import make_embedder
from rag.embed_base import VectorEmbeddings
from rag.errors import IndexCorruptError
from rag.files import fsync_dir, sha256_file, write_lines_durable, write_text_atomic
from rag.settings import Settings
from rag.vectorstore import VectorIndex, choose_index_type

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_CURRENT = "CURRENT"
_FILES = ("articles.jsonl", "chunks.jsonl", "vectors.faiss")
_KEEP_OLD_VERSIONS = 1  # the previous build stays for readers that still have it open


# --- the loaded index --------------------------------------------------------------------


@dataclass
class LoadedIndex:
    """An index version in memory: what retrieval reads."""

    version_dir: Path
    manifest: dict[str, Any]
    articles: dict[str, Article]
    chunks: list[Chunk]
    vectors: VectorIndex
    paragraph_keys: list[tuple[str, int]] = field(init=False)
    chunk_paragraph: np.ndarray = field(init=False)  # chunk row -> paragraph row

    def __post_init__(self) -> None:
        self.paragraph_keys = [
            (doc_id, p.number) for doc_id, art in self.articles.items() for p in art.paragraphs
        ]
        row_of = {key: i for i, key in enumerate(self.paragraph_keys)}
        self.chunk_paragraph = np.array(
            [row_of[(c.doc_id, c.paragraph)] for c in self.chunks], dtype=np.int64
        )

    def paragraph(self, row: int) -> tuple[Article, Paragraph]:
        doc_id, number = self.paragraph_keys[row]
        article = self.articles[doc_id]
        return article, article.paragraph(number)


# --- build report ------------------------------------------------------------------------


@dataclass
class BuildReport:
    version_dir: Path | None
    files: int = 0
    paragraphs: int = 0
    chunks: int = 0
    embedded_chunks: int = 0  # newly embedded (the rest were reused)
    reused_files: list[str] = field(default_factory=list)
    changed_files: list[str] = field(default_factory=list)
    removed_files: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # doc_id -> reason
    seconds: float = 0.0
    up_to_date: bool = False

    def summary(self) -> str:
        if self.up_to_date:
            return f"index is up to date ({self.files} files, {self.paragraphs} paragraphs, {self.chunks} chunks)"
        parts = [
            f"indexed {self.files} files: {self.paragraphs} paragraphs, {self.chunks} chunks",
            f"embedded {self.embedded_chunks} new chunks, reused {len(self.reused_files)} unchanged files",
        ]
        if self.removed_files:
            parts.append(f"removed {len(self.removed_files)} files")
        parts.append(f"{self.seconds:.1f}s")
        return "; ".join(parts)


# --- build engines -----------------------------------------------------------------------


class BuildEngine(Protocol):
    """Where a build's heavy stages run: parsing and chunking the files, and embedding chunk texts.

    The store does the rest itself (which files changed, reuse of unchanged vectors, the FAISS
    index, the manifest, the atomic swap), so every engine writes the same index format.
    """

    def parse_and_chunk(
        self, corpus_dir: Path, files: list[CorpusFile], settings: Settings, chunker: ParagraphChunker
    ) -> tuple[Corpus, dict[str, list[Chunk]]]: ...

    def encode(self, embedder: VectorEmbeddings, texts: list[str], progress: bool | None) -> np.ndarray: ...


class LocalEngine:
    """This process: ``parse_corpus`` then the chunker, and the store's embedder in one batch."""

    def parse_and_chunk(
        self, corpus_dir: Path, files: list[CorpusFile], settings: Settings, chunker: ParagraphChunker
    ) -> tuple[Corpus, dict[str, list[Chunk]]]:
        corpus = parse_corpus(corpus_dir, files, settings)
        return corpus, {a.doc_id: chunker.chunk(a) for a in corpus.articles}

    def encode(self, embedder: VectorEmbeddings, texts: list[str], progress: bool | None) -> np.ndarray:
        return embedder.encode(texts, progress=progress)


# --- the store ---------------------------------------------------------------------------


class IndexStore:
    """Reads and writes versions of the index in one folder.

    >>> from rag.settings import Settings
    >>> store = IndexStore("index", Settings())
    >>> report = store.build("seeds")                # incremental: unchanged files are reused
    >>> index = store.load()
    """

    def __init__(self, index_dir: str | Path, settings: Settings, embedder: VectorEmbeddings | None = None) -> None:
        self.index_dir = Path(index_dir)
        self.settings = settings
        self._embedder = embedder
        self.chunker = ParagraphChunker(settings)

    @property
    def embedder(self) -> VectorEmbeddings:
        if self._embedder is None:
            self._embedder = make_embedder(self.settings)
        return self._embedder

    # --- reading ---------------------------------------------------------------------

    def current_version(self) -> Path | None:
        pointer = self.index_dir / _CURRENT
        try:
            name = pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise IndexCorruptError(f"{pointer} is unreadable ({exc}); run `rag index --rebuild`") from exc
        if not name.startswith("v-") or "/" in name or not (self.index_dir / name).is_dir():
            raise IndexCorruptError(
                f"{pointer} names a missing index version {name!r}; run `rag index --rebuild`"
            )
        return self.index_dir / name

    def read_manifest(self, version_dir: Path | None = None) -> dict[str, Any] | None:
        version_dir = version_dir or self.current_version()
        if version_dir is None:
            return None
        path = version_dir / "manifest.json"
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise IndexCorruptError(f"{path} is missing; run `rag index --rebuild`") from exc
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"{path} is damaged ({exc}); run `rag index --rebuild`") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
            raise IndexCorruptError(
                f"{path} is not an index manifest of format {FORMAT_VERSION}; run `rag index --rebuild`"
            )
        return manifest

    def load(self, verify_checksums: bool = True) -> LoadedIndex:
        """Load the live version, checking it is complete and undamaged."""
        version_dir = self.current_version()
        if version_dir is None:
            raise IndexCorruptError(f"no index in {self.index_dir}; run `rag index`")
        manifest = self.read_manifest(version_dir)
        assert manifest is not None
        try:
            if verify_checksums:
                for name, expected in manifest["checksums"].items():
                    if sha256_file(version_dir / name) != expected:
                        raise IndexCorruptError(
                            f"{version_dir / name} does not match its checksum (damaged or truncated); "
                            "run `rag index --rebuild`"
                        )
            articles = {a.doc_id: a for a in map(_article_from_json, _read_jsonl(version_dir / "articles.jsonl"))}
            chunks = [_chunk_from_json(d, articles) for d in _read_jsonl(version_dir / "chunks.jsonl")]
            vectors = VectorIndex.read(
                version_dir / "vectors.faiss", manifest["faiss"]["type"], mmap=self.settings.index_mmap
            )
        except IndexCorruptError:
            raise
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise IndexCorruptError(
                f"index in {version_dir} is damaged ({type(exc).__name__}: {exc}); run `rag index --rebuild`"
            ) from exc
        if vectors.ntotal != len(chunks) or vectors.dimension != manifest["embedding"]["dimension"]:
            raise IndexCorruptError(
                f"index in {version_dir} is inconsistent ({vectors.ntotal} vectors for {len(chunks)} chunks); "
                "run `rag index --rebuild`"
            )
        return LoadedIndex(version_dir, manifest, articles, chunks, vectors)

    # --- staleness -------------------------------------------------------------------

    def settings_fingerprint(self) -> dict[str, Any]:
        return {
            "chunking": self.chunker.settings_fingerprint(),
            "model": self.settings.embedding_model,
            "backend": self.settings.embedding_backend,
        }

    def is_stale(self, corpus_dir: str | Path) -> bool:
        """True when the corpus or the settings differ from what the live index was built from."""
        try:
            manifest = self.read_manifest()
        except IndexCorruptError:
            return True
        return manifest is None or not self._matches(manifest, scan_corpus(Path(corpus_dir), self.settings))

    def _matches(self, manifest: dict[str, Any], files: list[CorpusFile]) -> bool:
        """Whether the index of ``manifest`` was built from these files with these settings."""
        if manifest.get("chunking") != self.chunker.settings_fingerprint():
            return False
        if manifest["embedding"].get("model") != self.settings.embedding_model:
            return False
        # Two backends can share a dimension: a stale index would answer wrongly without an error.
        if manifest["embedding"].get("backend", "sentence-transformers") != self.settings.embedding_backend:
            return False
        recorded = {doc_id: meta["sha256"] for doc_id, meta in manifest["files"].items()}
        recorded.update({doc_id: meta["sha256"] for doc_id, meta in manifest.get("skipped", {}).items()})
        return {f.doc_id: f.sha256 for f in files} == recorded

    # --- writing ---------------------------------------------------------------------

    def build(
        self,
        corpus_dir: str | Path,
        *,
        rebuild: bool = False,
        progress: bool | None = None,
        on_stage: Callable[[str], None] | None = None,
        engine: BuildEngine | None = None,
    ) -> BuildReport:
        """Bring the index up to date with the corpus; re-embed only files that changed.

        Under the builders' lock: scan the corpus (each file hashed once), stop there if the
        live index already matches it, else parse, reuse the vectors of unchanged files, embed
        the rest, and write a new version that replaces the live one atomically. ``engine``
        runs parsing, chunking and embedding elsewhere (``rag.ray_build.RayEngine``); the
        index written is the same.
        """
        engine = engine or LocalEngine()
        started = time.perf_counter()
        corpus_dir = Path(corpus_dir)
        self.index_dir.mkdir(parents=True, exist_ok=True)
        stage = on_stage or (lambda _name: None)
        with self._lock():
            files = scan_corpus(corpus_dir, self.settings)
            previous = None if rebuild else self._try_load_previous()
            embedding_meta = self.embedder.describe()
            reuse = previous if previous is not None and self._can_reuse(previous, embedding_meta) else None
            if reuse is not None and self._matches(reuse.manifest, files):
                return BuildReport(
                    version_dir=reuse.version_dir, files=len(reuse.articles), paragraphs=len(reuse.paragraph_keys),
                    chunks=len(reuse.chunks), up_to_date=True,
                )
            stage("parsing")
            corpus, chunked = engine.parse_and_chunk(corpus_dir, files, self.settings, self.chunker)
            report = BuildReport(version_dir=None, skipped={d: s["reason"] for d, s in corpus.skipped.items()})
            chunks_per_doc, matrix = self._embed(
                corpus, chunked, reuse, report, embedding_meta["dimension"], progress, stage,
                lambda texts: engine.encode(self.embedder, texts, progress),
            )
            stage("writing index")
            all_chunks = [c for a in corpus.articles for c in chunks_per_doc[a.doc_id]]
            report.version_dir = self._write_version(corpus.articles, all_chunks, matrix, embedding_meta, corpus.skipped)
            report.files = len(corpus.articles)
            report.paragraphs = sum(len(a.paragraphs) for a in corpus.articles)
            report.chunks = len(all_chunks)
            report.seconds = time.perf_counter() - started
            return report

    def _embed(
        self,
        corpus: Corpus,
        chunked: dict[str, list[Chunk]],
        previous: LoadedIndex | None,
        report: BuildReport,
        dimension: int,
        progress: bool | None,
        stage: Callable[[str], None],
        encode: Callable[[list[str]], np.ndarray],
    ) -> tuple[dict[str, list[Chunk]], np.ndarray]:
        """Reuse the vectors of files whose chunks are unchanged, embed the rest in one batch (the
        fast path). Returns the chunks per article and the vector matrix in article order."""
        old_chunks: dict[str, list[int]] = {}  # doc_id -> chunk rows of the previous index
        old_hashes: dict[str, str] = {}
        if previous is not None:
            for row, chunk in enumerate(previous.chunks):
                old_chunks.setdefault(chunk.doc_id, []).append(row)
            old_hashes = {d: m["sha256"] for d, m in previous.manifest["files"].items()}
            report.removed_files = sorted(set(old_hashes) - {f.doc_id for f in corpus.files})
        chunks_per_doc: dict[str, list[Chunk]] = {}
        reused_rows: dict[str, list[int]] = {}
        to_embed: list[Chunk] = []
        for article in corpus.articles:
            chunks = chunked[article.doc_id]
            chunks_per_doc[article.doc_id] = chunks
            rows = old_chunks.get(article.doc_id, [])
            same = old_hashes.get(article.doc_id) == article.sha256 and [
                previous.chunks[r].embed_text for r in rows  # type: ignore[union-attr]
            ] == [c.embed_text for c in chunks]
            if same:
                reused_rows[article.doc_id] = rows
                report.reused_files.append(article.doc_id)
            else:
                to_embed.extend(chunks)
                report.changed_files.append(article.doc_id)
        stage(f"embedding {len(to_embed)} chunks")
        new_vectors = encode([c.embed_text for c in to_embed])
        report.embedded_chunks = len(to_embed)
        old_vectors = previous.vectors.vectors() if previous is not None and reused_rows else None
        parts: list[np.ndarray] = []
        offset = 0
        for article in corpus.articles:
            if article.doc_id in reused_rows:
                parts.append(old_vectors[reused_rows[article.doc_id]])  # type: ignore[index]
            else:
                n = len(chunks_per_doc[article.doc_id])
                parts.append(new_vectors[offset : offset + n])
                offset += n
        matrix = np.concatenate(parts) if parts else np.zeros((0, dimension), np.float32)
        return chunks_per_doc, matrix

    def _try_load_previous(self) -> LoadedIndex | None:
        try:
            if self.current_version() is None:
                return None
            return self.load()
        except IndexCorruptError as exc:
            log.warning("ignoring the previous index: %s", exc)
            return None

    def _can_reuse(self, previous: LoadedIndex, embedding_meta: dict[str, Any]) -> bool:
        recorded = previous.manifest["embedding"]
        return (
            recorded.get("fingerprint") == embedding_meta["fingerprint"]
            and recorded.get("dimension") == embedding_meta["dimension"]
        )

    def _write_version(
        self,
        articles: list[Article],
        chunks: list[Chunk],
        matrix: np.ndarray,
        embedding_meta: dict[str, Any],
        skipped: dict[str, dict[str, str]],
    ) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        staging = Path(tempfile.mkdtemp(prefix=f".v-{stamp}-", dir=self.index_dir))
        final: Path | None = None
        try:
            _write_jsonl(staging / "articles.jsonl", (_article_to_json(a) for a in articles))
            _write_jsonl(staging / "chunks.jsonl", (_chunk_to_json(c) for c in chunks))
            vectors = VectorIndex.build(matrix, choose_index_type(len(matrix)))
            vectors.write(staging / "vectors.faiss")
            manifest = {
                "format": FORMAT_VERSION,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "embedding": {
                    "model": self.settings.embedding_model,
                    "backend": embedding_meta.get("backend", "sentence-transformers"),
                    "fingerprint": embedding_meta["fingerprint"],
                    "dimension": embedding_meta["dimension"],
                },
                "chunking": self.chunker.settings_fingerprint(),
                "faiss": {"type": vectors.kind, "ntotal": vectors.ntotal},
                "files": {
                    a.doc_id: {
                        "sha256": a.sha256,
                        "title": a.title,
                        "date": a.date,
                        "paragraphs": len(a.paragraphs),
                        "chunks": sum(1 for c in chunks if c.doc_id == a.doc_id),
                    }
                    for a in articles
                },
                "skipped": skipped,
                "checksums": {name: sha256_file(staging / name) for name in _FILES},
            }
            write_text_atomic(staging / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
            fsync_dir(staging)
            final = self.index_dir / staging.name[1:]  # drop the leading dot: now a candidate version
            os.rename(staging, final)
            # The atomic step: readers see either the old version or the complete new one.
            write_text_atomic(self.index_dir / _CURRENT, final.name + "\n")
            fsync_dir(self.index_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            # Renamed but never made live (CURRENT could not be written): not a version to keep.
            if final is not None and not self._is_current(final):
                shutil.rmtree(final, ignore_errors=True)
            raise
        self._remove_old_versions(keep=final)
        return final

    def _is_current(self, version_dir: Path) -> bool:
        try:
            return (self.index_dir / _CURRENT).read_text(encoding="utf-8").strip() == version_dir.name
        except FileNotFoundError:
            return False
        except (OSError, UnicodeDecodeError):
            return True  # cannot tell: keep it

    def _remove_old_versions(self, keep: Path) -> None:
        versions = sorted(
            (p for p in self.index_dir.iterdir() if p.is_dir() and p.name.startswith(("v-", ".v-")) and p != keep),
            key=lambda p: p.stat().st_mtime,
        )
        finished = [p for p in versions if p.name.startswith("v-")]
        stale = finished[: max(0, len(finished) - _KEEP_OLD_VERSIONS)]
        # Staging folders left by killed builds (older than a minute, so not a live build).
        stale += [p for p in versions if p.name.startswith(".v-") and time.time() - p.stat().st_mtime > 60]
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.index_dir / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


# --- serialization helpers -----------------------------------------------------------


def _article_to_json(article: Article) -> dict[str, Any]:
    return {
        "doc_id": article.doc_id,
        "title": article.title,
        "date": article.date,
        "sha256": article.sha256,
        "paragraphs": [[p.number, p.start, p.end, p.text] for p in article.paragraphs],
    }


def _article_from_json(data: dict[str, Any]) -> Article:
    doc_id = data["doc_id"]
    paragraphs = tuple(
        Paragraph(doc_id=doc_id, number=int(n), start=int(s), end=int(e), text=str(t))
        for n, s, e, t in data["paragraphs"]
    )
    return Article(doc_id=doc_id, title=data["title"], date=data["date"], paragraphs=paragraphs, sha256=data["sha256"])


def _chunk_to_json(chunk: Chunk) -> dict[str, Any]:
    return {"id": chunk.chunk_id, "doc": chunk.doc_id, "p": chunk.paragraph, "kind": chunk.kind,
            "text": chunk.text, "embed": chunk.embed_text}


def _chunk_from_json(data: dict[str, Any], articles: dict[str, Article]) -> Chunk:
    if data["doc"] not in articles:
        raise ValueError(f"chunk {data['id']} refers to unknown article {data['doc']}")
    return Chunk(chunk_id=data["id"], doc_id=data["doc"], paragraph=int(data["p"]), kind=data["kind"],
                 text=data["text"], embed_text=data["embed"])


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _write_jsonl(path: Path, rows: Iterator[dict[str, Any]]) -> None:
    write_lines_durable(path, (json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
