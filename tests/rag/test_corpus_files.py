"""Adding and removing articles in a corpus folder (rag.corpus_files): checks first, atomic writes,
never outside the folder; a bad file raises a plain CorpusError and changes nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.corpus_files import MAX_UPLOAD_BYTES, add_article, check_name, list_files, remove_article
from rag.errors import CorpusError

ARTICLE = b"Beekeepers form a cooperative\n\nNews | 04 May 2024\nForty beekeepers in Tarn formed a honey cooperative.\n"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "old.txt").write_bytes(b"An old article\n\nNews | 01 January 2020\nSomething happened in 2020.\n")
    return folder


def test_a_good_article_is_written_atomically_inside_the_folder(corpus):
    assert add_article(corpus, "bees.md", ARTICLE) == "bees.md"
    assert (corpus / "bees.md").read_bytes() == ARTICLE
    assert [f.doc_id for f in list_files(corpus)] == ["bees.md", "old.txt"]
    assert not [p for p in corpus.iterdir() if p.name.startswith(".")], "no temporary file is left"


@pytest.mark.parametrize(
    "name",
    ["../up.txt", "sub/x.txt", "..\\win.txt", "/etc/passwd.txt", ".hidden.txt", "a.exe", "a.txt.exe", "noext",
     "a\x00.txt", "x" * 200 + ".txt", "<b>.txt", "..", "", "   "],
)
def test_path_tricks_and_wrong_names_are_refused(corpus, tmp_path, name):
    before = snapshot(tmp_path)
    with pytest.raises(CorpusError):
        add_article(corpus, name, ARTICLE)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty"),
        (b"   \n\n ", "empty"),
        (b"\xff\xfe bad bytes", "UTF-8"),
        (b"PK\x03\x04\x00\x00binary", "binary"),
        (b"x" * (MAX_UPLOAD_BYTES + 1), "limit"),
    ],
)
def test_bad_content_is_a_plain_message_and_changes_nothing(corpus, data, says):
    before = snapshot(corpus)
    with pytest.raises(CorpusError, match=says):
        add_article(corpus, "new.txt", data)
    assert snapshot(corpus) == before


def test_no_overwrite_and_no_duplicate(corpus):
    add_article(corpus, "bees.txt", ARTICLE)
    with pytest.raises(CorpusError, match="already in the corpus"):
        add_article(corpus, "bees.txt", ARTICLE + b"More.\n")
    with pytest.raises(CorpusError, match="same text"):
        add_article(corpus, "bees-copy.txt", ARTICLE)
    assert (corpus / "bees.txt").read_bytes() == ARTICLE


def test_a_symlink_in_the_folder_is_not_followed(corpus, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep me")
    os.symlink(outside, corpus / "link.txt")
    with pytest.raises(CorpusError, match="already in the corpus"):
        add_article(corpus, "link.txt", ARTICLE)
    with pytest.raises(CorpusError, match="not an article"):
        remove_article(corpus, "link.txt")
    assert outside.read_bytes() == b"keep me"


def test_remove_only_articles_inside_and_never_the_last(corpus, tmp_path):
    outside = tmp_path / "victim.txt"
    outside.write_bytes(b"keep me")
    for doc_id in ["../victim.txt", str(outside), "nope.txt", "", "sub/../../victim.txt"]:
        with pytest.raises(CorpusError):
            remove_article(corpus, doc_id)
    assert outside.exists()
    with pytest.raises(CorpusError, match="at least one"):
        remove_article(corpus, "old.txt")
    add_article(corpus, "bees.txt", ARTICLE)
    remove_article(corpus, "old.txt")
    assert [f.doc_id for f in list_files(corpus)] == ["bees.txt"]


def test_check_name_keeps_ordinary_names():
    assert check_name(" Report (2024), part 1.md ") == "Report (2024), part 1.md"
