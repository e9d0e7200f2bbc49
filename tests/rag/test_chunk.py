"""Tests of rag.chunk: every chunk belongs to one paragraph; long paragraphs are fully covered."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from rag.chunk import ParagraphChunker, context_header
from rag.domain import Article
from rag.parse import parse_file, parse_text
from rag.sentences import sentences
from rag.settings import Settings

SEEDS = sorted((Path(__file__).resolve().parents[2] / "seeds").glob("*.txt"))


@pytest.fixture(scope="module")
def seed_articles() -> list[Article]:
    return [parse_file(p) for p in SEEDS]


def covered(text: str, pieces: list[str]) -> bool:
    """Whether the pieces, found left to right in ``text``, cover all of its non-space characters."""
    mask = [ch.isspace() for ch in text]
    search_from = 0
    for piece in pieces:
        at = text.find(piece, search_from)
        if at < 0:
            at = text.find(piece)  # overlapping windows may start before the previous end
        assert at >= 0, f"window is not a substring of the paragraph: {piece[:60]!r}"
        for i in range(at, at + len(piece)):
            mask[i] = True
        search_from = at + 1
    return all(mask)


def test_every_chunk_maps_to_one_paragraph(seed_articles: list[Article]) -> None:
    chunker = ParagraphChunker(Settings())
    for article in seed_articles:
        chunks = chunker.chunk(article)
        assert {c.paragraph for c in chunks} == {p.number for p in article.paragraphs}
        for chunk in chunks:
            assert chunk.doc_id == article.doc_id
            para = article.paragraph(chunk.paragraph)
            assert chunk.text in para.text
            assert chunk.chunk_id.startswith(f"{article.doc_id}#p{para.number}.")
        # Exactly one full-paragraph chunk (or windows) per paragraph, in paragraph order.
        main = [c for c in chunks if c.kind in ("paragraph", "window")]
        assert [c.paragraph for c in main] == sorted(c.paragraph for c in main)


def test_chunk_ids_are_unique(seed_articles: list[Article]) -> None:
    chunks = [c for a in seed_articles for c in ParagraphChunker(Settings()).chunk(a)]
    assert len({c.chunk_id for c in chunks}) == len(chunks)


def test_short_paragraph_is_one_chunk_plus_sentences() -> None:
    article = parse_text("a.txt", "Title\n\nNews | 01 April 2022\nFirst sentence here. Second one here. Third one.")
    chunks = ParagraphChunker(Settings()).chunk(article)
    assert [c.kind for c in chunks] == ["paragraph", "sentence", "sentence", "sentence"]
    assert chunks[0].text == article.paragraphs[0].text
    assert [c.text for c in chunks[1:]] == ["First sentence here.", "Second one here.", "Third one."]


def test_single_sentence_paragraph_has_no_sentence_chunk() -> None:
    article = parse_text("a.txt", "Title\n\nOnly one sentence here.")
    assert [c.kind for c in ParagraphChunker(Settings()).chunk(article)] == ["paragraph"]


def test_sentence_chunks_can_be_off() -> None:
    article = parse_text("a.txt", "Title\n\nFirst sentence here. Second one here.")
    chunks = ParagraphChunker(Settings(sentence_chunks=False)).chunk(article)
    assert [c.kind for c in chunks] == ["paragraph"]


def test_embed_text_has_title_and_date_header() -> None:
    article = parse_text("a.txt", "My Title\n\nNews | 01 April 2022\nBody sentence.")
    chunk = ParagraphChunker(Settings()).chunk(article)[0]
    assert context_header(article) == "My Title (2022-04-01)"
    assert chunk.embed_text == "My Title (2022-04-01)\nBody sentence."
    plain = ParagraphChunker(Settings(chunk_title_header=False)).chunk(article)[0]
    assert plain.embed_text == plain.text == "Body sentence."


def test_header_without_date() -> None:
    article = parse_text("a.txt", "My Title\n\nBody sentence.")
    assert ParagraphChunker(Settings()).chunk(article)[0].embed_text == "My Title\nBody sentence."


# --- long paragraphs -----------------------------------------------------------------------


def _long_paragraph(n_sentences: int = 14) -> str:
    return " ".join(
        f"Sentence number {i} talks about cooperative {'policy ' * (i % 4)}in region {i}." for i in range(n_sentences)
    )


@pytest.mark.parametrize("max_chars", [200, 333, 1200])
def test_long_paragraph_becomes_covering_windows(max_chars: int) -> None:
    paragraph = _long_paragraph(40)
    article = parse_text("long.txt", "Title\n\n" + paragraph)
    chunks = ParagraphChunker(Settings(max_chunk_chars=max_chars)).chunk(article)
    windows = [c for c in chunks if c.kind == "window"]
    assert len(windows) >= 2
    assert not any(c.kind == "paragraph" for c in chunks)
    assert all(len(w.text) <= max_chars for w in windows)
    assert all(w.text in paragraph for w in windows)
    assert covered(paragraph, [w.text for w in windows])
    # Sentence-aligned: every window starts at a sentence start.
    starts = {s for s in sentences(paragraph)}
    assert all(any(w.text.startswith(s) for s in starts) for w in windows)


def test_windows_overlap_by_a_sentence() -> None:
    paragraph = _long_paragraph(20)
    article = parse_text("long.txt", "Title\n\n" + paragraph)
    windows = [c.text for c in ParagraphChunker(Settings(max_chunk_chars=300)).chunk(article) if c.kind == "window"]
    for first, second in itertools.pairwise(windows):
        last_sentence = sentences(first)[-1]
        assert second.startswith(last_sentence) or len(sentences(first)) == 1


def test_over_long_sentence_is_still_covered() -> None:
    # One "sentence" of 1,000 characters without a period, then a short one.
    words = " ".join(f"word{i}" for i in range(160))
    paragraph = words + ". A short end."
    assert len(paragraph) > 900
    article = parse_text("long.txt", "Title\n\n" + paragraph)
    windows = [c.text for c in ParagraphChunker(Settings(max_chunk_chars=200)).chunk(article) if c.kind == "window"]
    assert all(len(w) <= 200 for w in windows)
    assert covered(paragraph, windows)
    # Cut at word boundaries: no window starts or ends inside a word.
    for w in windows:
        assert re.fullmatch(r"\S.*\S", w, re.DOTALL)
        assert paragraph[paragraph.find(w) + len(w) : paragraph.find(w) + len(w) + 1] in ("", " ", ".")


def test_text_without_spaces_is_cut_hard() -> None:
    paragraph = "x" * 650
    article = parse_text("long.txt", "Title\n\n" + paragraph)
    windows = [c.text for c in ParagraphChunker(Settings(max_chunk_chars=200)).chunk(article) if c.kind == "window"]
    assert "".join(windows) == paragraph
    assert all(len(w) <= 200 for w in windows)


def test_sentence_chunks_are_capped() -> None:
    paragraph = _long_paragraph(30)
    article = parse_text("long.txt", "Title\n\n" + paragraph)
    chunks = ParagraphChunker(Settings(max_chunk_chars=200)).chunk(article)
    sentence_chunks = [c for c in chunks if c.kind == "sentence"]
    assert [c.text for c in sentence_chunks] == sentences(paragraph)
    assert all(len(c.text) <= 200 for c in chunks)


# --- fingerprint ---------------------------------------------------------------------------


def test_fingerprint_changes_with_settings() -> None:
    base = ParagraphChunker(Settings()).settings_fingerprint()
    assert base == ParagraphChunker(Settings()).settings_fingerprint()
    for change in ({"max_chunk_chars": 500}, {"chunk_title_header": False}, {"sentence_chunks": False}):
        assert ParagraphChunker(Settings(**change)).settings_fingerprint() != base, change


def test_fingerprint_ignores_unrelated_settings() -> None:
    base = ParagraphChunker(Settings()).settings_fingerprint()
    assert ParagraphChunker(Settings(top_k=9, weight_bm25=0.1)).settings_fingerprint() == base
