"""The corpus panel: the articles of the index, uploads and removals, the index updated in the
background while questions keep being answered from the old one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rag.knowledge import KnowledgeBase
from rag.settings import Settings
from tests.conftest import TINY_ARTICLES
from ui import app as ui_app

NEW_ARTICLE = (
    "Glassblowers open a workshop school\n\n"
    "News | 09 September 2024\n"
    "The Murano glassblowers' guild opened a workshop school for 35 apprentices in Venice.\n\n"
    "The school is funded by the Venetian Crafts Foundation for three years.\n"
)


@pytest.fixture
def panel(tmp_path, corpus_writer, embedder):
    corpus = corpus_writer(tmp_path / "corpus", TINY_ARTICLES)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", answer_mode="extractive")
    kb = KnowledgeBase(corpus, tmp_path / "index", settings=settings, embedder=embedder).ensure_ready()
    demo = ui_app.build_app(kb)
    assert demo.rag_loader.wait(60)
    return kb, demo.rag_handlers, corpus


def upload_file(tmp_path: Path, name: str, data: bytes | str) -> str:
    folder = tmp_path / "uploads"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return str(path)


def test_panel_lists_the_articles_and_says_the_index_is_fresh(panel):
    _kb, handlers, _ = panel
    html, choices, timer = handlers.corpus_view()
    for title in ("Orchard cooperative doubles apple harvest", "New night train links Vienna and Brussels"):
        assert title in html
    assert "12 March 2023" in html and "apples.txt" in html
    assert "up to date" in html and "index built" in html
    assert sorted(v for _, v in choices.choices) == ["apples.txt", "bees.txt", "trains.txt"]
    assert timer.active is False


def test_upload_updates_the_index_in_the_background_and_the_answer_cites_it(panel, tmp_path):
    kb, handlers, corpus = panel
    before = kb.index_info().version_dir
    message, html, _choices, timer, file_box = handlers.upload([upload_file(tmp_path, "glass.txt", NEW_ARTICLE)])
    assert "Added glass.txt" in message and file_box is None
    assert (corpus / "glass.txt").read_text(encoding="utf-8") == NEW_ARTICLE
    if handlers.indexer.running:
        assert timer.active is True and "Updating the index" in html
        # questions are answered from the old index meanwhile
        assert kb.search("night train Vienna", 1)[0].doc_id == "trains.txt"
    assert handlers.indexer.wait(120)
    assert kb.index_info().version_dir != before
    html, _choices, timer = handlers.corpus_view()
    assert "Glassblowers open a workshop school" in html and "up to date" in html and timer.active is False
    updates = list(handlers.respond("Who funds the glassblowers' workshop school?", [], "extractive", 3))
    conversation = updates[-1][1]
    assert "Venetian Crafts Foundation" in conversation and "glass.txt" in conversation and "rag-card" in conversation


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("evil.exe", NEW_ARTICLE, "only .txt and .md"),
        ("binary.txt", b"\x00\x01\x02\x03" * 10, "binary"),
        ("latin1.txt", "Caf\u00e9 news\n\nA caf\u00e9 opened.".encode("latin-1"), "UTF-8"),
        ("apples.txt", NEW_ARTICLE, "already in the corpus"),
        ("copy.txt", TINY_ARTICLES["bees.txt"], "same text"),
        ("empty.md", b"", "empty"),
    ],
)
def test_a_bad_file_gets_a_plain_message_and_changes_nothing(panel, tmp_path, name, data, says):
    kb, handlers, corpus = panel
    before = {p.name: p.read_bytes() for p in corpus.iterdir()}
    version = kb.index_info().version_dir
    message, *_ = handlers.upload([upload_file(tmp_path, name, data)])
    assert says in message and "rag-upload-problem" in message
    assert "Traceback" not in message
    assert {p.name: p.read_bytes() for p in corpus.iterdir()} == before
    assert not handlers.indexer.running and kb.index_info().version_dir == version


def test_one_bad_file_does_not_stop_the_good_ones(panel, tmp_path):
    kb, handlers, _corpus = panel
    message, *_ = handlers.upload(
        [upload_file(tmp_path, "bad.pdf", b"%PDF-1.4"), upload_file(tmp_path, "glass.md", NEW_ARTICLE)]
    )
    assert "Added glass.md" in message and "bad.pdf" in message
    assert handlers.indexer.wait(120)
    assert "glass.md" in {a.doc_id for a in kb.articles()}


def test_remove_an_article_and_refuse_path_tricks(panel, tmp_path):
    kb, handlers, corpus = panel
    outside = tmp_path / "secret.txt"
    outside.write_text("keep", encoding="utf-8")
    for doc_id in ("../secret.txt", str(outside), "missing.txt"):
        message, *_ = handlers.remove(doc_id)
        assert "not an article of the corpus" in message
    assert outside.exists()
    message, *_ = handlers.remove("bees.txt")
    assert "Removed bees.txt" in message and not (corpus / "bees.txt").exists()
    assert handlers.indexer.wait(120)
    deadline = time.monotonic() + 5
    while "bees.txt" in {a.doc_id for a in kb.articles()} and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "bees.txt" not in {a.doc_id for a in kb.articles()}
