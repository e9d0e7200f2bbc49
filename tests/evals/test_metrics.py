"""Unit tests for evals/metrics.py: every metric on small hand-computed cases."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # allow plain `pytest` as well as `python -m pytest`
    sys.path.insert(0, str(ROOT))

from evals import metrics as M  # noqa: E402

A1, A2, A3, A4, A5 = (("a.txt", n) for n in range(1, 6))
B1 = ("b.txt", 1)
L2, L3, L4, L5 = (1 / math.log2(i) for i in range(3, 7))  # discounts of ranks 2..5


# --- gold paragraphs -------------------------------------------------------------------


def test_locate_quote() -> None:
    assert M.locate_quote("Hello wide world", "wide") == (6, 10)
    assert M.locate_quote("Hello wide world", "narrow") is None
    assert M.locate_quote("Hello", "") is None


PARAS = [(1, 0, 100), (2, 102, 200), (3, 202, 300)]  # (number, start, end); gaps are blank lines


def test_relevant_paragraph_contains_the_quote() -> None:
    assert M.relevant_paragraphs((110, 150), PARAS) == {2}
    assert M.relevant_paragraphs((102, 200), PARAS) == {2}  # the whole paragraph, edges included


def test_quote_spanning_two_paragraphs() -> None:
    # 60 chars in paragraph 1, 40 in paragraph 2 (+2 in the gap): both hold >= 25%
    assert M.relevant_paragraphs((40, 142), PARAS) == {1, 2}
    # 90 chars in paragraph 1, 8 in paragraph 2: only the substantial one
    assert M.relevant_paragraphs((10, 110), PARAS) == {1}
    # 10 / 10 is a tie below the share: the larger (here: the first) still counts
    assert M.relevant_paragraphs((90, 112), PARAS, min_share=0.9) == {1}


def test_quote_outside_every_paragraph() -> None:
    assert M.relevant_paragraphs((100, 102), PARAS) == set()  # the gap
    assert M.relevant_paragraphs((400, 420), PARAS) == set()


def test_chunk_paragraphs_overlap_is_half_open() -> None:
    assert M.chunk_paragraphs("a.txt", 50, 150, PARAS) == {A1, A2}
    assert M.chunk_paragraphs("a.txt", 100, 102, PARAS) == frozenset()  # touches, does not overlap
    assert M.chunk_paragraphs("a.txt", 0, 1000, PARAS) == {A1, A2, A3}


# --- rankings --------------------------------------------------------------------------


def test_dedupe_keeps_first_and_keeps_empty_units() -> None:
    assert M.dedupe([A1, A2, A1, A3, A2]) == [frozenset([A1]), frozenset([A2]), frozenset([A3])]
    assert M.dedupe([{A1, A2}, {A2, A1}, {A2}]) == [frozenset([A1, A2]), frozenset([A2])]
    assert M.dedupe([set(), set(), {A1}]) == [frozenset(), frozenset(), frozenset([A1])]


def test_hit_at_k() -> None:
    ranking = [A1, A2, A3]
    assert M.hit_at_k(ranking, {A2}, 1) == 0.0
    assert M.hit_at_k(ranking, {A2}, 2) == 1.0
    assert M.hit_at_k(ranking, {B1}, 3) == 0.0
    assert M.hit_at_k([], {A1}, 5) == 0.0


def test_duplicates_do_not_take_a_rank() -> None:
    ranking = [A1, A1, A1, A2]
    assert M.hit_at_k(ranking, {A2}, 2) == 1.0
    assert M.first_relevant_rank(ranking, {A2}) == 2
    assert M.reciprocal_rank(ranking, {A2}) == 0.5


def test_recall_at_k() -> None:
    ranking = [A2, A3, A5]
    assert M.recall_at_k(ranking, {A2, A5}, 1) == 0.5
    assert M.recall_at_k(ranking, {A2, A5}, 2) == 0.5
    assert M.recall_at_k(ranking, {A2, A5}, 3) == 1.0
    assert M.recall_at_k(ranking, set(), 3) == 0.0


def test_reciprocal_rank_cutoff() -> None:
    ranking = [("x.txt", n) for n in range(1, 11)] + [A1]
    assert M.first_relevant_rank(ranking, {A1}) == 11
    assert M.reciprocal_rank(ranking, {A1}, k=10) == 0.0
    assert M.reciprocal_rank(ranking, {A1}, k=11) == pytest.approx(1 / 11)
    assert M.reciprocal_rank([A3, A1], {A1, A3}) == 1.0


def test_ndcg_binary_gains() -> None:
    # gold at ranks 2 and 4; three gold paragraphs: ideal = 1 + 1/log2(3) + 1/log2(4)
    ranking = [B1, A1, ("x.txt", 1), A2]
    expected = (L2 + L4) / (1 + L2 + L3)
    assert M.ndcg_at_k(ranking, {A1, A2, A3}, 10) == pytest.approx(expected)
    assert expected == pytest.approx(0.498189, abs=1e-6)
    assert M.ndcg_at_k([A1, A2], {A1, A2}, 10) == pytest.approx(1.0)
    assert M.ndcg_at_k([B1], {A1}, 10) == 0.0
    assert M.ndcg_at_k([A1], set(), 10) == 0.0


def test_ndcg_ideal_uses_min_k_and_gold_count() -> None:
    # five gold paragraphs but k=2: the ideal list is two hits long, so two hits score 1.0
    assert M.ndcg_at_k([A1, A2, B1], {A1, A2, A3, A4, A5}, k=2) == pytest.approx(1.0)
    assert M.ndcg_at_k([A1], {A1, A2, A3}, k=1) == pytest.approx(1.0)
    # one gold paragraph at rank 2 of 10: 1/log2(3) over an ideal of 1
    assert M.ndcg_at_k([B1, A1], {A1}, k=10) == pytest.approx(L2)


def test_ndcg_duplicates_removed_before_scoring() -> None:
    # [A1, A1, A2] is scored as [A1, A2]: a perfect ranking of two gold paragraphs
    assert M.ndcg_at_k([A1, A1, A2], {A1, A2}, 10) == pytest.approx(1.0)
    # without dedupe A2 would sit at rank 3: (1 + 1/log2(4)) / (1 + 1/log2(3))
    assert M.ndcg_at_k([A1, B1, A2], {A1, A2}, 10) == pytest.approx((1 + L3) / (1 + L2))


def test_chunk_units_hit_every_gold_paragraph_they_overlap() -> None:
    ranking = [{A1, A2}, {A3}]
    gold = {A2, A3}
    assert M.hit_at_k(ranking, gold, 1) == 1.0
    assert M.recall_at_k(ranking, gold, 1) == 0.5
    assert M.recall_at_k(ranking, gold, 2) == 1.0
    assert M.ndcg_at_k(ranking, gold, 10) == pytest.approx(1.0)
    # one chunk holding both gold paragraphs is one ranked unit: binary gain 1 at rank 1
    assert M.ndcg_at_k([{A1, A2, A3}], gold, 10) == pytest.approx(1 / (1 + L2))
    # a later chunk repeating an already found gold paragraph gains nothing
    assert M.ndcg_at_k([{A2}, {A2, A1}, {A3}], gold, 10) == pytest.approx((1 + L3) / (1 + L2))


def test_empty_units_take_a_rank() -> None:
    assert M.reciprocal_rank([set(), set(), {A1}], {A1}) == pytest.approx(1 / 3)


def test_retrieval_scores_and_means() -> None:
    scores = M.retrieval_scores([B1, A1, A2], {A1, A2}, ks=(1, 3))
    assert scores == {
        "hit@1": 0.0,
        "hit@3": 1.0,
        "recall@1": 0.0,
        "recall@3": 1.0,
        "mrr@10": 0.5,
        "ndcg@10": pytest.approx((L2 + L3) / (1 + L2)),
    }
    assert M.mean([1.0, None, 0.0]) == 0.5
    assert M.mean([None]) is None
    assert M.mean_scores([{"x": 1.0, "y": None}, {"x": 0.0, "y": 1.0}]) == {"x": 0.5, "y": 1.0}
    assert M.mean_scores([]) == {}


# --- answers ---------------------------------------------------------------------------


def test_strip_citations() -> None:
    assert M.strip_citations("Paris [1]. Rome [2, 3] and Oslo [4][5].") == "Paris. Rome and Oslo."
    assert M.strip_citations("A claim [unsupported] here [1-2].") == "A claim here."
    assert M.strip_citations("the [a] list") == "the [a] list"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("six", "6"),
        ("Six member countries", "6 member countries"),
        ("thirty-seven", "37"),
        ("thirty seven", "37"),
        ("one hundred", "100"),
        ("one hundred and five", "105"),
        ("two thousand three hundred", "2300"),
        ("1,000 workers", "1000 workers"),
        ("two million", "2000000"),
        ("2 million", "2000000"),
        ("a seven-year plan", "a 7-year plan"),
        ("someone often", "someone often"),  # no number words inside other words
        ("tent", "tent"),
    ],
)
def test_normalize_numbers(text: str, expected: str) -> None:
    assert M.normalize_numbers(text) == expected


def test_phrase_present_numbers_both_ways() -> None:
    assert M.phrase_present("translated into seven languages", "7")
    assert M.phrase_present("translated into 7 languages", "seven")
    assert M.phrase_present("over one hundred people", "100")
    assert M.phrase_present("over 100 people", "one hundred")
    assert M.phrase_present("thirty-seven countries", "37")
    assert M.phrase_present("37 countries", "thirty-seven")
    assert not M.phrase_present("in 2017", "7")  # digits do not match inside a longer number
    assert not M.phrase_present("120 people", "12")


def test_phrase_present_text() -> None:
    assert M.phrase_present("The AROSP webinar", "arosp")
    assert M.phrase_present("their livelihoods", "livelihood")  # alternatives may be word stems
    assert M.phrase_present("the ILO’s programme", "ILO's programme")  # curly quotes
    assert M.phrase_present("18–19 June", "18-19 June")
    assert not M.phrase_present("Phnom Penh", "Bangkok")


def test_must_include() -> None:
    groups = [["Asian Roundtable", "AROSP"], ["2022"]]
    assert M.must_include_ok("Held by AROSP [1] in March 2022 [2].", groups)
    assert not M.must_include_ok("Held by AROSP [1].", groups)  # a group missing
    assert not M.must_include_ok("In 2022.", groups)
    assert M.must_include_ok("Six [1]", [["6", "six"]])
    assert not M.must_include_ok("Anything", [])  # nothing to check: not counted as correct
    # a marker is not content: "[1]" must not satisfy a "1"
    assert not M.must_include_ok("On the first day [1].", [["1"]])


def test_squad_normalize() -> None:
    assert M.squad_normalize("The  Cat, sat!") == "cat sat"
    assert M.squad_normalize("An apple a day") == "apple day"


def test_exact_match() -> None:
    assert M.exact_match("The Asian Roundtable [1].", ["AROSP", "Asian Roundtable"]) == 1.0
    assert M.exact_match("Asian Roundtable for Social Protection", ["AROSP"]) == 0.0
    assert M.exact_match("", ["x"]) == 0.0
    assert M.exact_match("x", []) == 0.0


def test_token_f1() -> None:
    # pred {cat, sat} vs gold {cat, sat, down}: P = 1, R = 2/3, F1 = 0.8
    assert M.token_f1("The cat sat [1]", ["cat sat down"]) == pytest.approx(0.8)
    assert M.token_f1("The cat sat", ["dog", "cat sat down"]) == pytest.approx(0.8)  # max over aliases
    assert M.token_f1("the cat cat", ["cat"]) == pytest.approx(2 * 0.5 * 1 / 1.5)  # counts matter
    assert M.token_f1("", ["cat"]) == 0.0
    assert M.token_f1("dog", ["cat"]) == 0.0
    assert M.token_f1("cat", []) == 0.0


# --- citations and abstention ------------------------------------------------------------


def test_citation_precision_and_recall() -> None:
    assert M.citation_precision([A1, A2], {A2, A3}) == 0.5
    assert M.citation_recall([A1, A2], {A2, A3}) == 0.5
    assert M.citation_precision([A2], {A2, A3}) == 1.0
    assert M.citation_recall([A2, A3, A1], {A2, A3}) == 1.0
    assert M.citation_precision([], {A1}) is None  # nothing cited
    assert M.citation_recall([A1], set()) is None  # no gold paragraph


def test_abstention_scores() -> None:
    # (abstained, answerable)
    records = [(True, False), (True, True), (False, True), (False, False)]
    assert M.abstention_scores(records) == {
        "precision": 0.5,
        "recall": 0.5,
        "coverage": 0.5,
        "false_abstention_rate": 0.5,
    }


def test_abstention_edge_cases() -> None:
    never = M.abstention_scores([(False, True), (False, False)])
    assert never == {"precision": None, "recall": 0.0, "coverage": 1.0, "false_abstention_rate": 0.0}
    all_answerable = M.abstention_scores([(False, True), (True, True)])
    assert all_answerable["recall"] is None
    assert all_answerable["precision"] == 0.0
    assert all_answerable["false_abstention_rate"] == 0.5
    none_answerable = M.abstention_scores([(True, False)])
    assert none_answerable == {"precision": 1.0, "recall": 1.0, "coverage": 0.0, "false_abstention_rate": None}
    assert M.abstention_scores([]) == {
        "precision": None,
        "recall": None,
        "coverage": None,
        "false_abstention_rate": None,
    }


# --- selective answering ---------------------------------------------------------------------

# (confidence, correct_if_answered), shuffled: sorted by confidence it is T T F T F.
FIVE = [(0.7, False), (0.9, True), (0.5, False), (0.8, True), (0.6, True)]


def test_risk_coverage_curve_by_hand() -> None:
    curve = M.risk_coverage_curve(FIVE)
    assert [c for c, _ in curve] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    # top 1: 0 wrong; top 2: 0; top 3: 1 of 3; top 4: 1 of 4; all: 2 of 5
    assert [r for _, r in curve] == pytest.approx([0.0, 0.0, 1 / 3, 1 / 4, 2 / 5])


def test_aurc_by_hand() -> None:
    # (0 + 0 + 1/3 + 1/4 + 2/5) / 5 = (59/60) / 5
    assert M.aurc(FIVE) == pytest.approx(59 / 300)
    # the same answers ranked perfectly, T T T F F: (0 + 0 + 0 + 1/4 + 2/5) / 5
    assert M.oracle_aurc(FIVE) == pytest.approx(13 / 100)
    # a confidence that ranks every wrong answer first: F F T T T: (1 + 1 + 2/3 + 1/2 + 2/5) / 5
    worst = [(1 - c, ok) for c, ok in [(0.1, False), (0.2, False), (0.3, True), (0.4, True), (0.5, True)]]
    assert M.aurc(worst) == pytest.approx((1 + 1 + 2 / 3 + 1 / 2 + 2 / 5) / 5)
    assert M.aurc([]) is None and M.oracle_aurc([]) is None


def test_accuracy_at_coverage_by_hand() -> None:
    assert M.accuracy_at_coverage(FIVE, 0.8) == pytest.approx(3 / 4)  # the top 4
    assert M.accuracy_at_coverage(FIVE, 0.9) == pytest.approx(3 / 5)  # ceil(4.5) = all 5
    assert M.accuracy_at_coverage(FIVE, 0.2) == 1.0
    assert M.accuracy_at_coverage(FIVE, 0.01) == 1.0  # at least one item
    assert M.accuracy_at_coverage([], 0.8) is None
    with pytest.raises(ValueError):
        M.accuracy_at_coverage(FIVE, 0.0)


def test_ties_take_the_expected_risk_and_none_counts_as_zero() -> None:
    items = [(0.5, False), (None, False), (0.9, True), (0.5, True)]
    # 0.9 T; then 0.5 {T, F} worth half a right answer each; then None (0) F
    curve = M.risk_coverage_curve(items)
    assert [r for _, r in curve] == pytest.approx([0.0, 1 - 1.5 / 2, 1 - 2 / 3, 1 - 2 / 4])
    assert M.aurc(items) == pytest.approx((0 + 0.25 + 1 / 3 + 0.5) / 4)  # 13/48
    assert M.aurc(list(reversed(items))) == M.aurc(items), "the input order never matters"
    # no confidence at all: every order is as likely, the curve is flat at the overall risk
    flat = M.risk_coverage_curve([(None, True), (None, False), (None, False), (None, True)])
    assert [r for _, r in flat] == pytest.approx([0.5] * 4)


def test_selective_scores() -> None:
    scores = M.selective_scores(FIVE)
    assert scores == pytest.approx(
        {"aurc": 59 / 300, "aurc_oracle": 13 / 100, "accuracy@80%": 3 / 4, "accuracy@90%": 3 / 5}
    )
    assert M.selective_scores([]) == {"aurc": None, "aurc_oracle": None, "accuracy@80%": None, "accuracy@90%": None}


def test_decision_risk() -> None:
    # (abstained, correct_if_answered): two answers given, one wrong
    assert M.decision_risk([(False, True), (False, False), (True, False), (True, True)]) == 0.5
    assert M.decision_risk([(False, True)]) == 0.0
    assert M.decision_risk([(True, True)]) is None


# --- latency ---------------------------------------------------------------------------


def test_percentile_matches_numpy() -> None:
    data = [0.3, 0.1, 0.4, 0.2]
    assert M.percentile(data, 50) == pytest.approx(0.25)
    assert M.percentile(data, 95) == pytest.approx(0.385)
    rng = np.random.default_rng(0)
    values = rng.exponential(size=37).tolist()
    for q in (0, 5, 50, 95, 100):
        assert M.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert M.percentile([7.0], 95) == 7.0
    assert M.percentile([], 50) is None
    with pytest.raises(ValueError):
        M.percentile([1.0], 101)


def test_latency_summary() -> None:
    summary = M.latency_summary([1.0, 2.0, 3.0])
    assert summary == {"n": 3, "p50": 2.0, "p95": pytest.approx(2.9), "mean": 2.0}
    assert M.latency_summary([]) == {"n": 0, "p50": None, "p95": None, "mean": None}


def test_latency_ms_is_what_the_benchmarks_wrote() -> None:
    """evals.bench and evals.scale_bench summarise through ``latency_ms``: numpy's percentiles of the
    durations in milliseconds, rounded (what their inline ``np.percentile`` calls used to write)."""
    seconds = np.random.default_rng(1).exponential(0.05, size=41).tolist()
    ms = np.array(seconds) * 1000
    assert M.latency_ms(seconds, digits=2) == {
        "n": 41,
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "mean_ms": pytest.approx(round(float(ms.mean()), 2), abs=0.011),
        "max_ms": round(float(ms.max()), 2),
    }
    assert M.latency_ms([]) == {"n": 0, "p50_ms": None, "p95_ms": None, "mean_ms": None, "max_ms": None}
