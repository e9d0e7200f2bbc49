"""evals.calibrate: the fit, the out-of-fold decisions and the threshold, on small made-up data."""

from __future__ import annotations

import numpy as np
import pytest

from evals.calibrate import QuestionCandidates, choose_threshold, decide, fit_logistic, out_of_fold, outcome
from evals.metrics import aurc


def test_aurc_is_the_mean_risk_over_coverage() -> None:
    # Confidence order: right, wrong, right -> risks 0, 1/2, 1/3.
    assert aurc(zip([0.9, 0.5, 0.1], [True, False, True], strict=True)) == pytest.approx((0 + 0.5 + 1 / 3) / 3)


def test_fit_logistic_returns_weights_in_the_features_own_units() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2)) * [10.0, 1.0] + [50.0, 0.0]
    y = (x[:, 0] - 50.0) / 10.0 + rng.normal(scale=0.3, size=400) > 0
    weights, bias = fit_logistic(x, y)
    p = 1 / (1 + np.exp(-(x @ weights + bias)))
    assert ((p > 0.5) == y).mean() > 0.9
    assert abs(weights[0]) > abs(weights[1])


def _question(suite: str, group: str, answerable: bool, reader: float, right: bool) -> QuestionCandidates:
    return QuestionCandidates(
        suite,
        f"{group}-{reader}",
        group,
        answerable,
        np.array([[reader, 0.0]]),
        np.array([right]),
        np.array([right]),
        checks=np.array([1.0]),
    )


def test_threshold_separates_answerable_from_unanswerable_out_of_fold() -> None:
    questions = [
        _question("a", f"g{i % 3}", answerable, reader, answerable)
        for i in range(60)
        for answerable, reader in [(True, 2.0 + (i % 5) * 0.1), (False, -2.0 - (i % 5) * 0.1)]
    ]
    decisions = decide(questions, out_of_fold(questions, [0, 1]))
    threshold = choose_threshold(decisions, ["a"])
    result = outcome(decisions, threshold, "a")
    assert result["accuracy"] == 1.0
    assert result["abstain_unanswerable"] == 1.0 and result["false_abstention"] == 0.0


def test_a_candidate_failing_the_checks_is_never_answered() -> None:
    questions = [
        QuestionCandidates(
            "a",
            f"q{i}",
            f"g{i % 3}",
            True,
            np.array([[3.0, 0.0]]),
            np.array([True]),
            np.array([True]),
            checks=np.array([0.0]),
        )
        for i in range(9)
    ]
    probs = [np.array([0.99]) for _ in questions]
    assert outcome(decide(questions, probs), 0.5, "a")["false_abstention"] == 1.0
    assert outcome(decide(questions, probs, veto=False), 0.5, "a")["false_abstention"] == 0.0
