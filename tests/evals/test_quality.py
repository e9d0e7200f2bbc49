"""Quality guard: retrieval and extractive answers must not drop below evals/baseline.json.

Runs every gold item through the system's hybrid search and extractive answerer (both fast, no
LLM) and compares the guarded metrics with the committed baseline (measured − tolerance).
After an intended change, re-measure with::

    .venv/bin/python -m evals.run --mode extractive --write-baseline --out /tmp/evalout

Also: the eval command's input checks and outputs on a small run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # allow plain `pytest` as well as `python -m pytest`
    sys.path.insert(0, str(ROOT))

from evals import check_baseline as B  # noqa: E402
from evals.gold import load_gold  # noqa: E402
from evals.run import EvalInputError, evaluate, parse_modes, run_cli  # noqa: E402

GOLD = ROOT / "evals" / "gold.jsonl"
SEEDS = ROOT / "seeds"


@pytest.fixture(scope="module")
def quality_kb(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The shared ``seeds_kb`` (tests/conftest.py) when there is one, else our own over seeds/."""
    try:
        kb = request.getfixturevalue("seeds_kb")
    except pytest.FixtureLookupError:
        kb = None
    if kb is None or Path(kb.corpus_dir).resolve() != SEEDS.resolve():
        from rag.knowledge import load

        kb = load(SEEDS, tmp_path_factory.mktemp("quality-index"))
    return kb


@pytest.fixture(scope="module")
def quality_results(quality_kb) -> dict[str, Any]:
    items = load_gold(GOLD)
    return evaluate(quality_kb, items, corpus_dir=SEEDS, progress=False, **B.QUALITY_PROFILE)


def test_quality_not_below_baseline(quality_results: dict[str, Any]) -> None:
    assert B.BASELINE_PATH.exists(), f"no {B.BASELINE_PATH}: write it with {B.WRITE_COMMAND}"
    baseline = B.load_baseline()
    problems, table = B.compare(quality_results, baseline)
    message = "\n".join(
        ["quality dropped below evals/baseline.json:", *problems, "", *table, "", f"if intended: {B.WRITE_COMMAND}"]
    )
    assert not problems, message


def test_baseline_guards_the_promised_metrics() -> None:
    metrics = B.load_baseline()["metrics"]
    for name in ("retrieval.hybrid.hit@1", "retrieval.hybrid.hit@5", "retrieval.hybrid.mrr@10", "extractive.accuracy"):
        assert name in metrics
        entry = metrics[name]
        assert entry["limit"] <= entry["measured"] - 0.02 + 1e-9


# --- the baseline logic, on synthetic results ------------------------------------------------


def _results(hit1: float, accuracy: float, false_abst: float) -> dict[str, Any]:
    return {
        "config": {"items": 100},
        "retrieval": {"summary": {"hybrid": {"n": 90, "metrics": {"hit@1": hit1, "hit@5": 0.9, "mrr@10": 0.8}}}},
        "answers": {
            "extractive": {
                "metrics": {
                    "accuracy": accuracy,
                    "exact_match": 0.1,
                    "f1": 0.3,
                    "correct": 0.6,
                    "citation_precision": 0.7,
                    "citation_recall": 0.6,
                    "abstention_recall": 0.5,
                    "false_abstention_rate": false_abst,
                },
                "counts": {
                    "items": 100,
                    "answerable": 90,
                    "unanswerable": 10,
                    "with_citation_precision": 80,
                    "with_citation_recall": 80,
                },
            }
        },
    }


def test_baseline_compare() -> None:
    baseline = B.make_baseline(_results(0.8, 0.6, 0.1))
    assert baseline["metrics"]["retrieval.hybrid.hit@1"]["limit"] == pytest.approx(0.78)
    # 10 unanswerable items: one item is 0.1, so the tolerance widens to it
    assert baseline["metrics"]["extractive.abstention_recall"]["tolerance"] == pytest.approx(0.1)
    assert baseline["metrics"]["extractive.false_abstention_rate"]["limit"] == pytest.approx(0.12)
    assert B.compare(_results(0.8, 0.6, 0.1), baseline)[0] == []
    assert B.compare(_results(0.785, 0.59, 0.115), baseline)[0] == []  # within tolerance
    problems, table = B.compare(_results(0.75, 0.6, 0.2), baseline)
    assert len(problems) == 2
    assert any("hit@1" in p and "below" in p for p in problems)
    assert any("false_abstention_rate" in p and "above" in p for p in problems)
    assert any("**FAIL**" in line for line in table)
    other = _results(0.8, 0.6, 0.1)
    other["config"]["items"] = 50
    assert any("regenerate" in p for p in B.compare(other, baseline)[0])


# --- the command -------------------------------------------------------------------------------


def _args(**kw: Any) -> argparse.Namespace:
    base = {
        "gold": GOLD,
        "corpus": SEEDS,
        "index": None,
        "mode": "none",
        "out": None,
        "limit": None,
        "no_baseline": False,
        "write_baseline": False,
        "check_baseline": False,
    }
    base.update(kw)
    return argparse.Namespace(**base)


def test_parse_modes() -> None:
    assert parse_modes("all") == ["extractive", "llm"]
    assert parse_modes("none") == []
    assert parse_modes("extractive, llm,extractive") == ["extractive", "llm"]
    with pytest.raises(EvalInputError, match="unknown --mode"):
        parse_modes("fast")
    with pytest.raises(EvalInputError):
        parse_modes("none,extractive")


def test_bad_gold_file_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "gold.jsonl"
    good = json.loads(GOLD.read_text(encoding="utf-8").splitlines()[0])
    wrong_quote = dict(good, id="x2", sources=[{"file": good["sources"][0]["file"], "quote": "not in the file"}])
    bad.write_text(json.dumps(good) + "\n{broken\n" + json.dumps(wrong_quote) + "\n", encoding="utf-8")
    assert run_cli(_args(gold=bad, out=tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "invalid JSON" in err
    assert "not an exact substring" in err
    assert "2 problem(s)" in err
    assert not (tmp_path / "out").exists()


def test_bad_mode_and_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(_args(mode="quick", out=tmp_path)) == 2
    assert run_cli(_args(limit=0, out=tmp_path)) == 2
    assert "unknown --mode" in capsys.readouterr().err


def test_small_run_writes_report(quality_kb, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = _args(mode="extractive", out=out, limit=4, index=quality_kb.index_dir, corpus=quality_kb.corpus_dir)
    assert run_cli(args) == 0
    printed = capsys.readouterr().out
    assert "hybrid" in printed and "langchain" in printed and "extractive" in printed
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert set(results["retrieval"]["summary"]) == {"hybrid", "dense", "bm25", "langchain"}  # no follow-ups in 4
    assert results["answers"]["extractive"]["counts"]["items"] == 4
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Retrieval" in report and "## Answers: extractive" in report
    assert "counts as a hit for every gold paragraph it overlaps" in report
    for png in ("hit_at_k.png", "retrieval_by_type.png", "accuracy_by_type.png", "latency.png"):
        assert (out / png).stat().st_size > 1000
        assert f"({png})" in report
