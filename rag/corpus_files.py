"""Adding and removing article files in a corpus folder, safely (what the UI's corpus panel calls).

An added file is checked before anything is written: a plain file name ending in ``.txt`` or
``.md`` (no folder, no ``..``, no hidden or odd characters), at most ``MAX_UPLOAD_BYTES``,
UTF-8 text that parses into an article with paragraphs, and not a copy of an article already
there. Only then is it written, atomically (``rag.files.atomic_writer``: a hidden temporary
name, fsync, rename), and only inside the corpus folder. A file that fails a check changes
nothing and raises ``CorpusError`` with a message meant for people.

Nothing here touches the index: the caller refreshes it (``KnowledgeBase.refresh``), which
re-embeds only what changed.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> add_article(folder, "note.md", b"# A note\\n\\nThe cooperative met on 2 May 2024.")
'note.md'
>>> add_article(folder, "../escape.txt", b"Some text")
Traceback (most recent call last):
    ...
rag.errors.CorpusError: "../escape.txt": a file name only, without folders
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from rag.errors import CorpusError
from rag.files import atomic_writer, fsync_dir, inside, is_hidden, sha256_bytes, sha256_file
from rag.parse import parse_bytes
from rag.settings import Settings

#: The largest article file that may be uploaded, in bytes (the default lives in ``Settings``).
MAX_UPLOAD_BYTES: int = Settings.model_fields["max_upload_bytes"].default
#: The file kinds that may be uploaded (what the corpus scan reads: ``Settings.file_patterns``).
UPLOAD_SUFFIXES = (".txt", ".md")
#: The longest file name accepted.
MAX_NAME_CHARS: int = Settings.model_fields["max_upload_name_chars"].default

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()+,-]*$")
_WRITE_LOCK = threading.Lock()


@dataclass(frozen=True)
class CorpusFileInfo:
    """One article file on disk: its doc_id (path below the corpus folder), size and hash."""

    doc_id: str
    size: int
    sha256: str


def check_name(name: str) -> str:
    """The file name as it will be stored, or ``CorpusError`` saying what is wrong with it."""
    shown = f'"{name}"' if isinstance(name, str) else repr(name)
    if not isinstance(name, str) or not name.strip():
        raise CorpusError("the file has no name")
    name = unicodedata.normalize("NFC", name.strip())
    if "/" in name or "\\" in name or name in (".", ".."):
        raise CorpusError(f"{shown}: a file name only, without folders")
    if name.startswith("."):
        raise CorpusError(f"{shown}: hidden files (starting with a dot) are not read as articles")
    if not name.lower().endswith(UPLOAD_SUFFIXES):
        raise CorpusError(f"{shown}: only {' and '.join(UPLOAD_SUFFIXES)} files can be added")
    if len(name) > MAX_NAME_CHARS:
        raise CorpusError(f"{shown}: the file name is longer than {MAX_NAME_CHARS} characters")
    if not _NAME.match(name) or ".." in name:
        raise CorpusError(
            f"{shown}: use letters, digits, spaces and . _ - ( ) + , in the file name"
        )
    return name


def _folder(corpus_dir: str | Path) -> Path:
    folder = Path(corpus_dir)
    if not folder.is_dir():
        raise CorpusError(f"corpus folder not found: {folder}")
    return folder.resolve()


def list_files(corpus_dir: str | Path) -> list[CorpusFileInfo]:
    """The article files of the folder (as the corpus scan sees them: no hidden files, no symlinks out)."""
    folder = _folder(corpus_dir)
    found = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in UPLOAD_SUFFIXES:
            continue
        if is_hidden(path, folder) or not inside(path, folder):
            continue
        try:
            found.append(CorpusFileInfo(path.relative_to(folder).as_posix(), path.stat().st_size, sha256_file(path)))
        except OSError:
            continue
    return found


def add_article(corpus_dir: str | Path, name: str, data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES) -> str:
    """Check ``data`` as an article called ``name`` and write it into the corpus folder; its doc_id.

    ``CorpusError`` (nothing written) when the name, the size, the encoding or the content is
    not a usable article, when a file of that name exists, or when the same text is already there.
    """
    name = check_name(name)
    if not isinstance(data, bytes):
        raise CorpusError(f'"{name}": the upload is not a file')
    if len(data) > max_bytes:
        raise CorpusError(f'"{name}" is {len(data):,} bytes; the limit is {max_bytes:,} bytes')
    if not data.strip():
        raise CorpusError(f'"{name}" is empty')
    article = parse_bytes(name, data)  # CorpusError: binary, not UTF-8, no paragraphs
    if not article.paragraphs:
        raise CorpusError(f'"{name}": no paragraphs found')
    folder = _folder(corpus_dir)
    target = folder / name
    digest = sha256_bytes(data)
    with _WRITE_LOCK:
        if target.exists() or target.is_symlink():
            raise CorpusError(f'"{name}" is already in the corpus: remove it first to replace it')
        if target.parent != folder or not inside(target, folder):
            raise CorpusError(f'"{name}": a file name only, without folders')
        same = next((f.doc_id for f in list_files(folder) if f.sha256 == digest), None)
        if same is not None:
            raise CorpusError(f'"{name}" has the same text as "{same}", which is already in the corpus')
        with atomic_writer(target, "wb") as handle:
            handle.write(data)
    return name


def remove_article(corpus_dir: str | Path, doc_id: str) -> None:
    """Delete one article file of the corpus folder (never anything outside it, never the last one)."""
    folder = _folder(corpus_dir)
    if not isinstance(doc_id, str) or not doc_id or "\x00" in doc_id:
        raise CorpusError("no article chosen")
    shown = f'"{doc_id}"'
    relative = Path(doc_id)
    if relative.is_absolute() or ".." in relative.parts or doc_id.startswith(("/", "\\")) or "\\" in doc_id:
        raise CorpusError(f"{shown} is not an article of the corpus")
    target = folder / relative
    with _WRITE_LOCK:
        if target.is_symlink() or not target.is_file() or not inside(target, folder) or is_hidden(target, folder):
            raise CorpusError(f"{shown} is not an article of the corpus")
        if target.suffix.lower() not in UPLOAD_SUFFIXES:
            raise CorpusError(f"{shown} is not an article of the corpus")
        if len(list_files(folder)) <= 1:
            raise CorpusError("the corpus must keep at least one article")
        target.unlink()
        fsync_dir(target.parent)
