"""Selective answering in the eval (issue 13, item 6): each answer's confidence and
``correct_if_answered`` on the record, the metrics of a mode, results.json, the report, the plot.

Answers are built by hand (``rag.domain``), never by a model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # allow plain `pytest` as well as `python -m pytest`
    sys.path.insert(0, str(ROOT))

from evals.answers import AnswerResult, answer_metrics, score_answer  # noqa: E402
from evals.gold import GoldItem  # noqa: E402
from evals.report import render_report, summary_table  # noqa: E402
from rag.domain import Answer, Citation, Hit  # noqa: E402

GOLD = {("a.txt", 1)}
HIT = Hit("a.txt", "An article", "2024-01-02", 1, "The cooperative trained 42 tailors in Narnia.", 0, 45, 0.9)
OTHER = Hit("a.txt", "An article", "2024-01-02", 2, "It plans to train more next year.", 46, 80, 0.5)


def item(n: int, answerable: bool = True) -> GoldItem:
    if not answerable:
        return GoldItem(f"u{n}", "What is the capital of France?", [], False, [], [], [], "unanswerable")
    return GoldItem(f"q{n}", "How many tailors were trained?", [], True, ["42"], [["42"]], [], "fact")


def cite(hit: Hit, quote: str, n: int = 1, support: float | None = None) -> Citation:
    return Citation.from_hit(hit, n, quote, support)


def answered(text: str, confidence: float | None, hit: Hit = HIT, quote: str = "trained 42 tailors") -> Answer:
    return Answer("q", f"{text} [1].", (cite(hit, quote, support=0.8),), confidence=confidence)


def abstained(confidence: float | None, closest: Citation | None) -> Answer:
    return Answer("q", "The articles don't say.", abstained=True, confidence=confidence, closest=closest)


def score(gold_item: GoldItem, answer: Answer | None, error: str | None = None):
    return score_answer(gold_item, answer, GOLD, 0.01, error)


# --- the record ---------------------------------------------------------------------------------


def test_an_answer_given_is_graded_as_before():
    right = score(item(1), answered("It trained 42 tailors", 0.9))
    assert right.correct and right.correct_if_answered
    assert right.confidence == 0.9 and right.supports == [0.8] and right.grounding == "stated"
    assert right.closest_quote is None
    wrong = score(item(2), answered("It trained some tailors", 0.7, quote="trained"))
    assert not wrong.correct and not wrong.correct_if_answered


def test_an_abstentions_closest_quote_is_graded_as_the_would_be_answer():
    near = score(item(3), abstained(0.3, cite(HIT, "trained 42 tailors", 0)))
    assert not near.correct, "abstaining on an answerable question is still wrong"
    assert near.correct_if_answered, "its closest passage states the answer"
    assert near.closest_quote == "trained 42 tailors" and near.closest_cited == ("a.txt", 1)
    assert near.grounding == "closest"
    far = score(item(4), abstained(0.1, cite(OTHER, "train more next year", 0)))
    assert not far.correct_if_answered
    nothing = score(item(5), abstained(0.05, None))
    assert not nothing.correct_if_answered and nothing.grounding == "none"


def test_unanswerable_questions_are_never_right_to_answer():
    declined = score(item(1, False), abstained(0.2, cite(HIT, "trained 42 tailors", 0)))
    assert declined.correct and not declined.correct_if_answered
    answered_anyway = score(item(2, False), answered("Paris", 0.6))
    assert not answered_anyway.correct and not answered_anyway.correct_if_answered


def test_an_error_is_wrong_and_has_no_confidence():
    failed = score(item(1), None, error="RuntimeError: boom")
    assert not failed.correct_if_answered and failed.confidence is None and failed.ranked_confidence == 0.0
    assert failed.grounding is None and failed.supports == []


def test_the_record_carries_the_new_fields_into_results_json():
    record = score(item(3), abstained(0.3, cite(HIT, "trained 42 tailors", 0)))
    data = record.to_dict()
    keys = list(data)
    assert keys[: keys.index("correct") + 1][-1] == "correct", "the old keys keep their order"
    assert keys[keys.index("correct") + 1 :] == [
        "confidence",
        "supports",
        "grounding",
        "closest_quote",
        "closest_cited",
        "correct_if_answered",
    ]
    assert data["closest_cited"] == ["a.txt", 1] and data["correct_if_answered"] is True
    failure = record.failure()
    assert failure["confidence"] == 0.3 and failure["closest_quote"] == "trained 42 tailors"


# --- a mode's metrics, by hand ------------------------------------------------------------------


def five_records():
    """Sorted by confidence: right (0.9), right (0.8), wrong (0.7), abstained with the answer
    close (0.4), unanswerable declined (0.2): correct_if_answered T T F T F."""
    return [
        score(item(1), answered("It trained 42 tailors", 0.9)),
        score(item(2), answered("It trained 42 tailors", 0.8)),
        score(item(3), answered("It trained some tailors", 0.7, quote="trained")),
        score(item(4), abstained(0.4, cite(HIT, "trained 42 tailors", 0))),
        score(item(5, False), abstained(0.2, None)),
    ]


def test_selective_metrics_of_a_mode_by_hand():
    m = answer_metrics(five_records())
    # risks at coverage 1/5..5/5: 0, 0, 1/3, 1/4, 2/5
    assert m["aurc"] == pytest.approx((0 + 0 + 1 / 3 + 1 / 4 + 2 / 5) / 5)
    # perfect ranking T T T F F: 0, 0, 0, 1/4, 2/5
    assert m["aurc_oracle"] == pytest.approx((1 / 4 + 2 / 5) / 5)
    assert m["accuracy@80%"] == pytest.approx(3 / 4) and m["accuracy@90%"] == pytest.approx(3 / 5)
    # the system's own decisions: 3 answered, 1 of them wrong; 2 abstentions, 1 on an unanswerable
    assert m["coverage"] == pytest.approx(3 / 5) and m["risk"] == pytest.approx(1 / 3)
    assert m["abstention_precision"] == pytest.approx(1 / 2) and m["abstention_recall"] == 1.0
    assert m["false_abstention_rate"] == pytest.approx(1 / 4)


def test_results_json_report_and_plot(tmp_path: Path):
    from evals.plots import make_plots

    result = AnswerResult("extractive", five_records()).to_dict()
    rc = result["risk_coverage"]
    assert rc["coverage"] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert rc["risk"] == pytest.approx([0.0, 0.0, 1 / 3, 1 / 4, 2 / 5])
    assert rc["operating_point"] == pytest.approx({"coverage": 0.6, "risk": 1 / 3})
    assert result["counts"]["with_confidence"] == 5 and result["counts"]["abstained_with_closest"] == 1
    results = {
        "created": "now",
        "git": "x",
        "config": {"items": 5, "answerable": 4, "modes": ["extractive"], "retrievers": [], "seconds": 1.0},
        "gold_notes": [],
        "excluded_from_retrieval": [],
        "retrieval": {"summary": {}, "items": {}},
        "answers": {"extractive": result},
    }
    results = json.loads(json.dumps(results))
    plots = make_plots(results, tmp_path)
    assert plots["risk_coverage"] == "risk_coverage.png" and (tmp_path / "risk_coverage.png").stat().st_size > 0
    report = render_report(results, plots)
    assert "### Selective answering: extractive" in report and "![risk–coverage](risk_coverage.png)" in report
    assert "| aurc | aurc_oracle | accuracy@80% | accuracy@90% | coverage | risk |" in report
    assert "**AURC**" in report and "correct_if_answered" in report
    table = summary_table(results)
    assert "AURC" in table and "acc@80" in table
    line = next(row for row in table.splitlines() if row.startswith("extractive") and "0.197" in row)
    assert "0.750" in line and "0.600" in line


def test_a_results_file_written_before_the_selective_metrics_still_renders():
    result = AnswerResult("extractive", five_records()).to_dict()
    for key in ("aurc", "aurc_oracle", "accuracy@80%", "accuracy@90%", "risk"):
        result["metrics"].pop(key)
    result.pop("risk_coverage")
    results = {
        "created": "now",
        "git": "x",
        "config": {"items": 5, "answerable": 4, "modes": ["extractive"], "retrievers": [], "seconds": 1.0},
        "gold_notes": [],
        "excluded_from_retrieval": [],
        "retrieval": {"summary": {}, "items": {}},
        "answers": {"extractive": result},
    }
    assert "Selective answering: extractive" not in render_report(results, {})
    assert "AURC" not in summary_table(results)
