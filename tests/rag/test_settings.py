"""Tests of rag.settings: one typed object, every default described, grouped, overridable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rag.settings import ANSWER_MODES, RETRIEVAL_SIGNALS, SECTIONS, Settings


def test_every_field_has_a_section_and_a_description() -> None:
    for name, info in Settings.model_fields.items():
        assert info.description, f"{name} has no description"
        assert isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("section") in SECTIONS, name


def test_sections_list_every_field_once_in_order() -> None:
    sections = Settings.sections()
    assert list(sections) == list(SECTIONS)
    listed = [name for names in sections.values() for name in names]
    assert sorted(listed) == sorted(Settings.model_fields) and len(listed) == len(set(listed))


def test_every_retrieval_signal_has_a_weight() -> None:
    settings = Settings()
    assert all(getattr(settings, f"weight_{name}") >= 0 for name in RETRIEVAL_SIGNALS)


def test_environment_overrides_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_TOP_K", "8")
    monkeypatch.setenv("RAG_WEIGHT_DENSE", "0.25")
    monkeypatch.setenv("RAG_UI_PORT", "8080")
    settings = Settings()
    assert (settings.top_k, settings.weight_dense, settings.ui_port) == (8, 0.25, 8080)
    monkeypatch.setenv("RAG_TOP_K", "0")
    with pytest.raises(ValidationError, match="top_k"):
        Settings()


def test_answer_modes() -> None:
    assert ANSWER_MODES == ("auto", "extractive", "llm")
    with pytest.raises(ValidationError):
        Settings(answer_mode="chatty")


def test_choosing_an_embedder_chooses_its_fitted_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.settings import EMBEDDER_PROFILES

    profile = EMBEDDER_PROFILES["gemma"]
    assert set(profile) <= set(Settings.model_fields)  # every name is a setting
    gemma = Settings(embedding_backend="gemma")
    assert all(getattr(gemma, name) == value for name, value in profile.items())
    assert Settings().weight_dense_sentence != profile["weight_dense_sentence"]  # the default profile is MiniLM's
    # A value set explicitly wins, as an argument or as its environment variable.
    assert Settings(embedding_backend="gemma", weight_bm25=0.7).weight_bm25 == 0.7
    assert Settings(embedding_backend="gemma", weight_dense_sentence=0.0).weight_dense_sentence == 0.0
    monkeypatch.setenv("RAG_EMBEDDING_BACKEND", "gemma")
    monkeypatch.setenv("RAG_WEIGHT_DENSE_SENTENCE", "0.25")
    from_env = Settings()
    assert from_env.weight_dense_sentence == 0.25
    assert from_env.weight_sentence_coverage == profile["weight_sentence_coverage"]
    assert from_env.confidence_bias == profile["confidence_bias"] != Settings.model_fields["confidence_bias"].default
