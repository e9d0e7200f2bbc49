"""evals.calibrate_llm: the judgment's fit and LLM mode's decisions, on small made-up data."""

from __future__ import annotations

import numpy as np
import pytest

from evals.calibrate_llm import decisions, fit_offset, run


def test_fit_offset_recovers_a_known_weight_and_bias() -> None:
    rng = np.random.default_rng(0)
    logit = rng.normal(size=4000)
    j = rng.normal(scale=2.0, size=4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-(logit + 0.8 * j - 0.5)))).astype(float)
    w, b = fit_offset(logit, j, y, l2=0.0)
    assert w == pytest.approx(0.8, abs=0.1) and b == pytest.approx(-0.5, abs=0.1)


def _row(n: int, answerable: bool, right: bool, before: float, **extra: object) -> dict[str, object]:
    return {"key": f"s:{n}", "suite": "s", "group": f"s:a{n % 3}", "answerable": answerable, "gated": False,
            "logit": 0.0, "checks": 1.0, "right": right, "cited_gold": right,
            "judgment": {"before": before, "after": 1.0}, **extra}


def test_a_separating_judgment_abstains_on_the_unanswerable_and_keeps_the_answers() -> None:
    rows = [_row(n, True, True, 3.0) for n in range(30)] + [_row(n + 30, False, False, -3.0) for n in range(30)]
    rows += [{"key": "s:g", "suite": "s", "group": "s:a0", "answerable": False, "gated": True}]
    result = run(rows, threshold=0.5)
    plain, judged = result["variants"]["no judgment"]["s"], result["variants"]["before"]["s"]
    assert plain["abstain_unanswerable"] == pytest.approx(1 / 31)  # only the gated one
    assert judged["abstain_unanswerable"] == 1.0 and judged["false_abstention"] == 0.0
    assert result["fitted"]["before"]["weight"] > 0 and result["judgment_auc"]["before"] == 1.0
    # The "after" judgment says yes to everything: no separation, no weight to speak of.
    assert result["judgment_auc"]["after"] == 0.5


def test_the_checks_veto_and_the_fallback_are_kept() -> None:
    vetoed = _row(0, True, True, 5.0, checks=0.0)
    fallback = {"key": "s:f", "suite": "s", "group": "s:a1", "answerable": True, "gated": False,
                "judgment": {"before": 1.0, "after": 1.0},
                "fallback": {"answered": True, "confidence": 0.9, "right": True, "cited_gold": True}}
    d = decisions([vetoed, fallback], "before", {"s:a0": (1.0, 0.0), "s:a1": (1.0, 0.0)}, threshold=0.5)
    assert d.confidence[0] < 0.5 and d.confidence[1] == 0.9
