"""The corpus: a folder of article files, scanned once and parsed, for the index and for adaptation.

>>> from rag.settings import Settings
>>> corpus = read_corpus("seeds", Settings())
>>> len(corpus.articles), corpus.skipped
(5, {})
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from rag.domain import Article
from rag.errors import CorpusError
from rag.files import inside, is_hidden, sha256_bytes
from rag.parse import parse_file
from rag.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CorpusFile:
    """One article file: its id (path below the corpus folder), where it is, its content hash."""

    doc_id: str
    path: Path
    sha256: str
    size: int


@dataclass
class Corpus:
    """A scanned corpus: every file, the articles parsed from them, and why others were skipped."""

    folder: Path
    files: list[CorpusFile]
    articles: list[Article] = field(default_factory=list)
    #: doc_id → {"sha256", "reason"} for files that are not articles (unparsable, duplicates).
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)

    def hashes(self) -> dict[str, str]:
        return {f.doc_id: f.sha256 for f in self.files}


def _article_paths(corpus_dir: Path, settings: Settings) -> list[Path]:
    if not corpus_dir.exists():
        raise CorpusError(f"corpus folder not found: {corpus_dir}")
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus path is not a folder: {corpus_dir}")
    paths: set[Path] = set()
    for pattern in settings.file_patterns:
        for path in corpus_dir.rglob(pattern):
            # Stay inside the corpus folder: a symlink pointing elsewhere is not an article.
            if path.is_file() and inside(path, corpus_dir) and not is_hidden(path, corpus_dir):
                paths.add(path)
    if not paths:
        patterns = ", ".join(settings.file_patterns)
        raise CorpusError(f"no articles ({patterns}) in corpus folder {corpus_dir}")
    return sorted(paths)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc


def scan_corpus(corpus_dir: str | Path, settings: Settings) -> list[CorpusFile]:
    """The article files of a corpus folder with their hashes, sorted; ``CorpusError`` if none."""
    corpus_dir = Path(corpus_dir)
    files = []
    for path in _article_paths(corpus_dir, settings):
        data = _read(path)
        files.append(CorpusFile(path.relative_to(corpus_dir).as_posix(), path, sha256_bytes(data), len(data)))
    return files


def parse_corpus(corpus_dir: str | Path, files: list[CorpusFile], settings: Settings) -> Corpus:
    """Parse scanned files into articles; duplicates and unusable files are skipped with a reason.

    ``CorpusError`` when no file is a usable article.
    """
    corpus = Corpus(Path(corpus_dir), files)
    seen: dict[str, str] = {}
    for f in files:
        if f.sha256 in seen:
            corpus.skipped[f.doc_id] = {"sha256": f.sha256, "reason": f"duplicate of {seen[f.sha256]}"}
            continue
        try:
            article = parse_file(f.path, f.doc_id, max_bytes=settings.max_file_bytes)
        except CorpusError as exc:
            # The report names the file itself: keep only the reason.
            corpus.skipped[f.doc_id] = {"sha256": f.sha256, "reason": str(exc).removeprefix(f"{f.doc_id}: ")}
            continue
        seen[f.sha256] = f.doc_id
        corpus.articles.append(article)
    return require_articles(corpus)


def require_articles(corpus: Corpus) -> Corpus:
    """Log each skipped file with its reason; raise when no article is usable (every build engine)."""
    for doc_id, skip in corpus.skipped.items():
        log.warning("skipped %s: %s", doc_id, skip["reason"])
    if not corpus.articles:
        raise CorpusError(
            f"no usable articles in {corpus.folder}: "
            + "; ".join(f"{d}: {s['reason']}" for d, s in corpus.skipped.items())
        )
    return corpus


def read_corpus(corpus_dir: str | Path, settings: Settings) -> Corpus:
    """Scan and parse a corpus folder (``scan_corpus`` then ``parse_corpus``)."""
    return parse_corpus(corpus_dir, scan_corpus(corpus_dir, settings), settings)
