"""Tests of rag.files: a write is all or nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from rag.files import atomic_writer, inside, is_hidden, sha256_file, write_text_atomic


def test_write_text_atomic_replaces_whole_files(tmp_path: Path) -> None:
    path = tmp_path / "CURRENT"
    write_text_atomic(path, "v-1\n")
    write_text_atomic(path, "v-2\n")
    assert path.read_text() == "v-2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["CURRENT"]  # no temporary file left behind


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    write_text_atomic(path, "old")
    with pytest.raises(RuntimeError), atomic_writer(path) as handle:
        handle.write("half of the new")
        raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    data = b"x" * (9 * 1024 * 1024 + 7)  # more than one read block
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_hidden_and_inside(tmp_path: Path) -> None:
    (tmp_path / "corpus" / ".git").mkdir(parents=True)
    (tmp_path / "elsewhere.txt").write_text("x")
    (tmp_path / "corpus" / "link.txt").symlink_to(tmp_path / "elsewhere.txt")
    corpus = tmp_path / "corpus"
    assert is_hidden(corpus / ".git" / "config", corpus)
    assert not is_hidden(corpus / "a.txt", corpus)
    assert not inside(corpus / "link.txt", corpus)
    assert inside(corpus / "a.txt", corpus)
