"""Tests of evals.suites: named suites, and index folders kept apart per embedding space."""

from __future__ import annotations

import pytest

from evals.suites import SUITES, parse_suites


def test_default_and_onnx_backends_share_the_suites_index_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    for backend in ("sentence-transformers", "onnx"):
        monkeypatch.setenv("RAG_EMBEDDING_BACKEND", backend)
        assert [s.index for s in parse_suites("gold,squad2")] == [SUITES["gold"].index, SUITES["squad2"].index]


def test_another_backend_gets_index_folders_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_EMBEDDING_BACKEND", "gemma")
    gold, squad = parse_suites("gold,squad2")
    assert gold.index.name == "index-gold-gemma" and squad.index.name == "index-squad2-gemma"
    assert gold.index != SUITES["gold"].index and gold.corpus == SUITES["gold"].corpus


def test_unknown_suite_is_refused_with_the_known_names() -> None:
    with pytest.raises(ValueError, match="gold, squad2"):
        parse_suites("gold,bogus")
