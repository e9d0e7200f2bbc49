"""Tests of rag.corpus: one scan, one parse, clear reasons for what is skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.corpus import read_corpus, scan_corpus
from rag.errors import CorpusError
from rag.settings import Settings


def test_read_corpus_parses_and_skips_with_reasons(tiny_corpus, tiny_articles: dict[str, str]) -> None:
    corpus_dir = tiny_corpus({**tiny_articles, "copy.txt": tiny_articles["bees.txt"], "bad.txt": b"\xff\xfe\x00"})
    corpus = read_corpus(corpus_dir, Settings())
    assert [a.doc_id for a in corpus.articles] == ["apples.txt", "bees.txt", "trains.txt"]
    assert corpus.skipped["copy.txt"]["reason"] == "duplicate of bees.txt"
    assert "binary" in corpus.skipped["bad.txt"]["reason"]
    assert set(corpus.hashes()) == {"apples.txt", "bad.txt", "bees.txt", "copy.txt", "trains.txt"}
    assert corpus.hashes() == {f.doc_id: f.sha256 for f in scan_corpus(corpus_dir, Settings())}


def test_too_large_files_are_skipped(tiny_corpus, tiny_articles: dict[str, str]) -> None:
    corpus = read_corpus(tiny_corpus(tiny_articles), Settings(max_file_bytes=300))
    assert all("larger than 300 bytes" in s["reason"] for s in corpus.skipped.values())
    assert {a.doc_id for a in corpus.articles} | set(corpus.skipped) == set(tiny_articles)


def test_no_usable_article_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "empty.txt").write_text("   \n\n")
    with pytest.raises(CorpusError, match=r"no usable articles.*empty\.txt"):
        read_corpus(tmp_path / "c", Settings())
