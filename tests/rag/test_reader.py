"""The reader in the search: it reorders the first stage's best, and the shipped model is checked."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from rag.knowledge import KnowledgeBase
from rag.reader import Reader, reader_passage, verify_reader
from rag.searcher import HybridSearcher
from rag.settings import READER_DIR, Settings


class KeywordReader:
    """Stands in for the cross-encoder: a passage that holds the keyword answers the question."""

    def __init__(self, keyword: str) -> None:
        self.keyword = keyword
        self.calls: list[int] = []

    def probability(self, question: str, passages: Sequence[str]) -> np.ndarray:
        self.calls.append(len(passages))
        return np.array([0.99 if self.keyword in p else 0.01 for p in passages], dtype=np.float32)


def _searcher(kb: KnowledgeBase, reader: object, **overrides: object) -> HybridSearcher:
    settings = kb.settings.model_copy(update=overrides)
    return HybridSearcher(kb.searcher.index, kb.embedder, settings, reader)  # type: ignore[arg-type]


def test_the_reader_reorders_the_first_stages_best(seeds_kb: KnowledgeBase) -> None:
    question = "What did the participants discuss?"
    plain = _searcher(seeds_kb, None, weight_reader=0.0).search(question, k=10)
    # The fifth paragraph of the first stage, made the reader's favourite by its own words.
    target = plain[4]
    keyword = target.text[:80]
    reader = KeywordReader(keyword)
    reranked = _searcher(seeds_kb, reader, weight_reader=20.0, rerank_candidates=8).search(question, k=10)
    assert (reranked[0].doc_id, reranked[0].paragraph) == (target.doc_id, target.paragraph)
    assert reader.calls == [8]  # only the first stage's best are read


def test_a_paragraph_outside_the_rerank_window_is_not_read(seeds_kb: KnowledgeBase) -> None:
    question = "What did the participants discuss?"
    plain = _searcher(seeds_kb, None, weight_reader=0.0).search(question, k=20)
    outside = plain[15]
    reader = KeywordReader(outside.text[:80])
    reranked = _searcher(seeds_kb, reader, weight_reader=20.0, rerank_candidates=5).search(question, k=5)
    assert (outside.doc_id, outside.paragraph) not in {(h.doc_id, h.paragraph) for h in reranked}


def test_weight_zero_means_no_reader_call(seeds_kb: KnowledgeBase) -> None:
    reader = KeywordReader("x")
    _searcher(seeds_kb, reader, weight_reader=0.0).search("cooperatives", k=3)
    assert reader.calls == []


def test_the_shipped_reader_is_present_and_matches_its_hashes() -> None:
    hashes = verify_reader(READER_DIR)
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(hashes)
    size = (READER_DIR / "model.safetensors").stat().st_size
    assert size < 50 * 1024 * 1024  # committed to the repository: fp16 and small
    assert Settings().reader_model == str(READER_DIR)


def test_the_shipped_reader_prefers_the_answering_paragraph(seeds_kb: KnowledgeBase) -> None:
    reader = Reader(READER_DIR)
    question = "Which countries took part in phase 2 of the project?"
    hits = seeds_kb.search(question, k=10)
    passages = [reader_passage(h.title, h.text) for h in hits]
    probs = reader.probability(question, passages)
    assert probs.shape == (len(hits),) and ((probs >= 0) & (probs <= 1)).all()
    best = hits[int(np.argmax(probs))]
    assert "Mongolia" in best.text and "Cambodia" in best.text
    # A passage about something else entirely scores low.
    assert reader.probability(question, ["Weather\nIt rained all day in the mountains."])[0] < 0.5


def test_reader_scores_keep_the_input_order() -> None:
    reader = Reader(READER_DIR)
    passages = ["Ferries\nThe ferry to the island resumed on 3 May.", "x", "Ferries\nThe ferry " + "long " * 80]
    one_by_one = [float(reader.score("When did the ferry resume?", [p])[0]) for p in passages]
    together = reader.score("When did the ferry resume?", passages)
    assert np.allclose(one_by_one, together, atol=1e-3)


@pytest.mark.parametrize("bad", ["", "  "])
def test_an_empty_reader_setting_means_no_reader(bad: str, tmp_path) -> None:
    kb = KnowledgeBase(tmp_path / "c", tmp_path / "i", Settings(reader_model=bad.strip()))
    assert kb.reader is None
