"""The calibrated confidence: a logistic model over named answer features."""

from __future__ import annotations

import math

import pytest

from rag.confidence import AnswerFeatures, ConfidenceModel
from rag.settings import Settings


def test_probability_is_the_logistic_of_the_weighted_features() -> None:
    model = ConfidenceModel({"reader": 0.5, "checks": 2.0}, bias=-1.0)
    features = AnswerFeatures(reader=2.0, checks=1.0)
    assert model.probability(features) == pytest.approx(1 / (1 + math.exp(-(-1.0 + 1.0 + 2.0))))
    assert model.probability(AnswerFeatures(reader=-200.0, checks=0.0)) == 0.0


def test_unknown_feature_names_are_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown confidence features.*reader"):
        ConfidenceModel({"readr": 1.0}, bias=0.0)


def test_the_shipped_weights_name_real_features_and_rank_a_supported_quote_higher() -> None:
    settings = Settings()
    model = ConfidenceModel(settings.confidence_weights, settings.confidence_bias)
    weak = AnswerFeatures(reader=-6.0, reader_best=-6.0, sentence=0.3, retrieval=0.3, checks=0.0)
    strong = AnswerFeatures(reader=4.0, reader_best=4.0, sentence=1.4, retrieval=0.7, checks=1.0, hit_margin=0.3)
    assert model.probability(weak) < settings.answer_threshold <= model.probability(strong)


def test_environment_overrides_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_ANSWER_THRESHOLD", "0.9")
    assert Settings().answer_threshold == 0.9
