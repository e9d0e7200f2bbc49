"""Tests of rag.files: a write is all or nothing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from rag.files import atomic_writer, inside, is_hidden, replace_dir, sha256_file, write_text_atomic


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


def test_a_hash_list_catches_a_missing_or_altered_file_and_ignores_other_records(tmp_path: Path) -> None:
    from rag.files import HASH_LIST, hash_list_problems, write_hash_list

    (tmp_path / "sub").mkdir()
    (tmp_path / "weights.bin").write_bytes(b"abc")
    (tmp_path / "sub" / "config.json").write_text("{}", encoding="utf-8")
    (tmp_path / "README.md").write_text("card", encoding="utf-8")
    hashes = write_hash_list(tmp_path)
    assert set(hashes) == {"weights.bin", "sub/config.json"}  # the card and the list itself are not listed
    assert hash_list_problems(tmp_path) == []
    (tmp_path / "README.md").write_text("edited card", encoding="utf-8")
    assert hash_list_problems(tmp_path) == []
    (tmp_path / "weights.bin").write_bytes(b"abd")
    (tmp_path / "sub" / "config.json").unlink()
    problems = hash_list_problems(tmp_path)
    assert any("weights.bin does not match" in p for p in problems) and any("config.json is missing" in p for p in problems)
    # Another record under the same name (EmbeddingGemma's assembly record) is not a list to check.
    (tmp_path / HASH_LIST).write_text('{"source": "pip", "files": {"a": "b"}}', encoding="utf-8")
    assert hash_list_problems(tmp_path) == []
    assert hash_list_problems(tmp_path / "sub") == []  # no list: nothing to check


def test_replace_dir_swaps_a_complete_folder_in_and_keeps_the_old_one_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, new = tmp_path / "models" / "m", tmp_path / ".m.new"
    new.mkdir()
    (new / "a.txt").write_text("1", encoding="utf-8")
    replace_dir(new, target)  # no previous folder; the parent is made
    assert (target / "a.txt").read_text(encoding="utf-8") == "1" and not new.exists()
    new.mkdir()
    (new / "b.txt").write_text("2", encoding="utf-8")
    replace_dir(new, target)
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert [p.name for p in target.parent.iterdir()] == ["m"]  # the moved-aside folder is removed

    real_replace = os.replace
    def failing(src: object, dst: object) -> None:
        if Path(str(src)) == new:
            raise OSError("disk full")
        real_replace(src, dst)
    new.mkdir()
    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="disk full"):
        replace_dir(new, target)
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]  # the old folder is back
