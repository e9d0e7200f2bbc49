"""One calibrated confidence per answer: the probability that it is right.

The answer stage describes its candidate answer by a few numbers (``AnswerFeatures``): how well the
reader model says each cited quote answers the question, how the sentence scored, how strong the
retrieval was, whether the hand-written answerability checks pass. A logistic model maps them to
one probability. Its weights are fitted on dev data, the project's gold set and the shared SQuAD
2.0 articles together, cross-validated by article (``python -m evals.calibrate``), and live in
``Settings.confidence_weights``; the answer abstains when the probability is under
``Settings.answer_threshold``, chosen on the same data from the risk-coverage curve.

>>> model = ConfidenceModel({"reader": 1.0}, bias=0.0)
>>> round(model.probability(AnswerFeatures(reader=0.0)), 2), round(model.probability(AnswerFeatures(reader=2.0)), 2)
(0.5, 0.88)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True, slots=True)
class AnswerFeatures:
    """What the confidence is computed from, for one candidate answer."""

    #: The reader's logit for the weakest cited quote (the answer is as good as its worst claim).
    reader: float = 0.0
    #: The reader's logit for the best cited quote.
    reader_best: float = 0.0
    #: The extractive sentence score of the answer's first sentence (``Answerer._sentence_scores``).
    sentence: float = 0.0
    #: The retrieval confidence: best sentence similarity and the question's term coverage.
    retrieval: float = 0.0
    #: 1 when the hand-written answerability checks pass (``rag.answerability``), else 0.
    checks: float = 1.0
    #: The fused score margin between the first and second hit (a clear winner or a tie).
    hit_margin: float = 0.0
    #: The probability that the answer holds the kind of thing asked for (a person for "who
    #: presented", a city for "which city"), from the answer's named entities
    #: (``rag.entities.AnswerTypeModel``); 1 (no evidence against) without the model.
    answer_type: float = 1.0
    #: LLM mode: the model's own log-odds of "yes" to "does a paragraph state your answer?"
    #: (``rag.llm.yes_log_odds``); 0 (no opinion) for extractive candidates.
    judgment: float = 0.0

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class ConfidenceModel:
    """``P(right) = sigmoid(bias + sum(weight[name] * feature[name]))``; unknown names are refused."""

    def __init__(self, weights: Mapping[str, float], bias: float) -> None:
        unknown = set(weights) - set(AnswerFeatures.names())
        if unknown:
            raise ValueError(f"unknown confidence features {sorted(unknown)}: use {', '.join(AnswerFeatures.names())}")
        self.weights = dict(weights)
        self.bias = float(bias)

    def logit(self, features: AnswerFeatures) -> float:
        values = features.as_dict()
        return self.bias + sum(w * values[name] for name, w in self.weights.items())

    def probability(self, features: AnswerFeatures) -> float:
        return sigmoid(self.logit(features))


def sigmoid(x: float) -> float:
    """The logistic function (0 far below zero, where ``exp`` would overflow)."""
    return 1.0 / (1.0 + math.exp(-x)) if x > -50 else 0.0
