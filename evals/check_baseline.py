"""The committed quality baseline: which metrics are guarded, how it is written and checked.

``evals/baseline.json`` holds, per guarded metric, the value measured on the full gold set
(hybrid retrieval + extractive answers, the fast profile ``tests/evals/test_quality.py`` runs)
and the limit a later run must meet: measured − tolerance (or + tolerance for a metric where
lower is better). The tolerance is ``max(0.02, 1/n)``: one question changing never fails.

Re-measure after an intended change (retrieval tuning, new gold items)::

    .venv/bin/python -m evals.run --mode extractive --write-baseline --out /tmp/evalout

Check a finished run: ``python -m evals.check_baseline evals/results/results.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BASELINE_PATH = Path(__file__).resolve().parent / "baseline.json"
TOLERANCE = 0.02
WRITE_COMMAND = ".venv/bin/python -m evals.run --mode extractive --write-baseline --out /tmp/evalout"

#: What the quality test runs (and what the baseline is measured with): fast, every gold item.
QUALITY_PROFILE: dict[str, Any] = {"modes": ("extractive",), "retrievers": ("hybrid",)}

# name -> (path to the value in results.json, path to its denominator, "higher" | "lower" is better)
_R = ("retrieval", "summary", "hybrid")
_A = ("answers", "extractive")
GUARDED: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "retrieval.hybrid.hit@1": ((*_R, "metrics", "hit@1"), (*_R, "n"), "higher"),
    "retrieval.hybrid.hit@5": ((*_R, "metrics", "hit@5"), (*_R, "n"), "higher"),
    "retrieval.hybrid.mrr@10": ((*_R, "metrics", "mrr@10"), (*_R, "n"), "higher"),
    "extractive.accuracy": ((*_A, "metrics", "accuracy"), (*_A, "counts", "answerable"), "higher"),
    "extractive.exact_match": ((*_A, "metrics", "exact_match"), (*_A, "counts", "answerable"), "higher"),
    "extractive.f1": ((*_A, "metrics", "f1"), (*_A, "counts", "answerable"), "higher"),
    "extractive.correct": ((*_A, "metrics", "correct"), (*_A, "counts", "items"), "higher"),
    "extractive.citation_precision": (
        (*_A, "metrics", "citation_precision"),
        (*_A, "counts", "with_citation_precision"),
        "higher",
    ),
    "extractive.citation_recall": (
        (*_A, "metrics", "citation_recall"),
        (*_A, "counts", "with_citation_recall"),
        "higher",
    ),
    "extractive.abstention_recall": ((*_A, "metrics", "abstention_recall"), (*_A, "counts", "unanswerable"), "higher"),
    "extractive.false_abstention_rate": (
        (*_A, "metrics", "false_abstention_rate"),
        (*_A, "counts", "answerable"),
        "lower",
    ),
}


def _get(data: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def guarded_values(results: dict[str, Any]) -> dict[str, tuple[float | None, int]]:
    """``{name: (value, n)}`` of every guarded metric found in a results dict."""
    out: dict[str, tuple[float | None, int]] = {}
    for name, (value_path, n_path, _) in GUARDED.items():
        value = _get(results, value_path)
        out[name] = (None if value is None else float(value), int(_get(results, n_path) or 0))
    return out


def tolerance_for(n: int, tolerance: float = TOLERANCE) -> float:
    """``max(tolerance, 1/n)``, rounded up to 4 decimals: a single question flipping never fails."""
    return math.ceil(max(tolerance, 1.0 / n if n else 0.0) * 10_000) / 10_000


def make_baseline(results: dict[str, Any], tolerance: float = TOLERANCE) -> dict[str, Any]:
    cfg = results.get("config", {})
    metrics: dict[str, Any] = {}
    for name, (value, n) in guarded_values(results).items():
        if value is None:
            continue
        direction = GUARDED[name][2]
        tol = tolerance_for(n, tolerance)
        limit = max(value - tol, 0.0) if direction == "higher" else min(value + tol, 1.0)
        metrics[name] = {
            "measured": round(value, 4),
            "n": n,
            "better": direction,
            "tolerance": tol,
            "limit": round(limit, 4),
        }
    return {
        "about": "Quality floor checked by tests/evals/test_quality.py (hybrid retrieval + extractive answers, "
        f"every gold item). Regenerate after an intended change: {WRITE_COMMAND}",
        "created": results.get("created") or datetime.now(UTC).isoformat(timespec="seconds"),
        "git": results.get("git"),
        "items": cfg.get("items"),
        "profile": {k: list(v) for k, v in QUALITY_PROFILE.items()},
        "metrics": metrics,
    }


def write_baseline(results: dict[str, Any], path: Path = BASELINE_PATH, tolerance: float = TOLERANCE) -> Path:
    path.write_text(json.dumps(make_baseline(results, tolerance), indent=2) + "\n", encoding="utf-8")
    return path


def load_baseline(path: Path = BASELINE_PATH) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def compare(results: dict[str, Any], baseline: dict[str, Any]) -> tuple[list[str], list[str]]:
    """``(problems, markdown table lines)``: a problem per guarded metric worse than its limit."""
    values = guarded_values(results)
    problems: list[str] = []
    table = ["| metric | baseline | limit | now | |", "|---|---|---|---|---|"]
    if baseline.get("items") is not None and results.get("config", {}).get("items") != baseline["items"]:
        problems.append(
            f"the run has {results.get('config', {}).get('items')} items, the baseline {baseline['items']}: "
            f"regenerate it ({WRITE_COMMAND})"
        )
    for name, entry in baseline.get("metrics", {}).items():
        now, _ = values.get(name, (None, 0))
        limit = float(entry["limit"])
        if now is None:
            ok = False
            problems.append(f"{name}: missing from the results (baseline {entry['measured']})")
        else:
            ok = now >= limit - 1e-9 if entry["better"] == "higher" else now <= limit + 1e-9
            if not ok:
                word = "below" if entry["better"] == "higher" else "above"
                problems.append(
                    f"{name} = {now:.4f} is {word} the limit {limit:.4f} (baseline {entry['measured']:.4f})"
                )
        shown = "–" if now is None else f"{now:.3f}"
        sign = "≥" if entry["better"] == "higher" else "≤"
        table.append(
            f"| {name} | {entry['measured']:.3f} | {sign} {limit:.3f} | {shown} | {'ok' if ok else '**FAIL**'} |"
        )
    return problems, table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.check_baseline", description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, help="a results.json written by evals.run (full gold set)")
    parser.add_argument("--baseline", type=Path, default=BASELINE_PATH)
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text(encoding="utf-8"))
    problems, table = compare(results, load_baseline(args.baseline))
    print("\n".join(table))
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
