"""File safety: atomic writes, fsync, content hashes. One home for the helpers every writer uses.

A reader must see a file (or folder) either as it was or as it is now, never half-written: a
write goes to a temporary name in the same folder, is flushed and fsynced, then renamed over
the old one, and the folder is fsynced so the rename survives a crash.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
>>> write_text_atomic(path, "hello")
>>> sha256_file(path)[:12]
'2cf24dba5fb0'
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

_BLOCK = 8 * 1024 * 1024


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, read in blocks (a 1 GB model never sits in memory)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (a rename, a new file) durable; a no-op where unsupported."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_file(handle: IO[str] | IO[bytes]) -> None:
    handle.flush()
    os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_writer(path: Path, mode: str = "w") -> Iterator[IO]:
    """A file handle whose content replaces ``path`` only once the block ends without error."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    encoding = None if "b" in mode else "utf-8"
    try:
        with tmp.open(mode, encoding=encoding) as handle:
            yield handle
            fsync_file(handle)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` so the file is either old or new, never partial."""
    with atomic_writer(path) as handle:
        handle.write(text)


def replace_dir(new: Path, target: Path) -> None:
    """Put the complete folder ``new`` at ``target`` by renames: the previous folder is moved
    aside first (and put back if the rename fails), then removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    try:
        os.replace(new, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_lines_durable(path: Path, lines: Iterable[str]) -> None:
    """Write lines to a new file (inside a staging folder) and fsync it."""
    with Path(path).open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line)
        fsync_file(handle)


def is_hidden(path: Path, root: Path) -> bool:
    """Whether any part of ``path`` below ``root`` starts with a dot (".git", ".draft.md")."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` resolves to a place inside ``root`` (a symlink out of it does not)."""
    return path.resolve().is_relative_to(root.resolve())


#: The file inside a model folder that lists its other files' sha256 (the model card is not listed).
HASH_LIST = "sha256.json"


def write_hash_list(folder: Path, skip: Iterable[str] = ("README.md",)) -> dict[str, str]:
    """Write ``folder/sha256.json``: every file below the folder (paths relative, sorted) and its sha256."""
    import json

    skipped = {HASH_LIST, *skip}
    hashes = {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).as_posix() not in skipped
    }
    write_text_atomic(folder / HASH_LIST, json.dumps(hashes, indent=2) + "\n")
    return hashes


def is_hash_list(data: object) -> bool:
    """Whether parsed JSON is a hash list: a non-empty map of file names to sha256 hex digests."""
    return isinstance(data, dict) and bool(data) and all(isinstance(d, str) and len(d) == 64 for d in data.values())


def hash_list_problems(folder: Path) -> list[str]:
    """What does not match ``folder/sha256.json`` (a missing or altered file), or [] when all match.
    A folder without the list (or whose ``sha256.json`` is not a name -> sha256 map) has nothing to check."""
    import json

    listing = folder / HASH_LIST
    if not listing.is_file():
        return []
    try:
        hashes = json.loads(listing.read_text(encoding="utf-8"))
    except ValueError as exc:
        return [f"{listing} is not valid JSON: {exc}"]
    if not is_hash_list(hashes):
        # Another record under the same name (EmbeddingGemma's assembly record, checked when it is
        # assembled): not a list of files to check at load.
        return []
    problems = []
    for name, digest in hashes.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif sha256_file(path) != digest:
            problems.append(f"{path} does not match its sha256")
    return problems
