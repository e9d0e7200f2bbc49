"""Fit the LLM mode's own judgment into the answer confidence, cross-validated by article.

    python -m evals.calibrate_llm [--suite gold,squad2] [--minutes 60] [--fit-only]

LLM mode answers, then asks the model one short yes/no question in the same conversation ("does a
paragraph state your answer?", ``rag.prompts.JUDGE_AFTER_PROMPT``; or, before answering, "does a
paragraph state the answer?", ``JUDGE_BEFORE_PROMPT``) and reads the log-odds of "yes" from its
token probabilities (``rag.llm.yes_log_odds``). The answer's confidence becomes

    sigmoid(confidence logit + llm_judge_weight x judgment + llm_judge_bias)

This script, for a balanced sample of questions of every suite (answerable and not, taken in turn,
so that a run stopped by ``--minutes`` is still balanced):

- runs LLM mode's steps once per question (the gate, the answer, both judgments) and caches them
  in ``evals/results/tmp/llm-judgments.jsonl`` (a re-run continues where it stopped);
- fits the weight and the bias with one article held out at a time (an article is never scored by
  a fit that saw it; unanswerable gold questions, which have no article, in five groups);
- reports, at the one answer threshold, LLM mode's accuracy, abstention on unanswerable questions,
  false abstentions, citation precision and AURC on each suite: without the judgment, with the
  judgment asked after the answer, and asked before;
- prints the weight and bias fitted on everything, for ``rag/settings.py``.

The LLM's answers depend on the machine only through time: the model runs at temperature 0 with a
fixed seed.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evals import metrics as M
from evals.calibrate import UNSOURCED_GROUPS, Decisions, choose_threshold, outcome, squad_articles
from evals.gold import load_gold
from evals.gold_paragraphs import map_gold
from evals.suites import Suite, parse_suites
from rag.confidence import ConfidenceModel, sigmoid
from rag.files import write_text_atomic
from rag.knowledge import load
from rag.settings import get_settings

DEFAULT_CACHE = Path("evals/results/tmp/llm-judgments.jsonl")
DEFAULT_OUT = Path("evals/results/calibration-llm.json")
JUDGES = ("before", "after")


def sample_order(suite: Suite, per_stratum: int, seed: int = 0) -> list[Any]:
    """The suite's items, answerable and unanswerable alternating, in a seeded order."""
    items = load_gold(suite.gold)
    rng = random.Random(seed)
    strata = [[i for i in items if not i.answerable], [i for i in items if i.answerable]]
    for s in strata:
        rng.shuffle(s)
    strata = [s[:per_stratum] for s in strata]
    out = []
    for n in range(max(len(s) for s in strata)):
        out += [s[n] for s in strata if n < len(s)]
    return out


def collect_one(kb: Any, item: Any, gold_paragraphs: set[tuple[str, int]], model: ConfidenceModel) -> dict[str, Any]:
    """LLM mode's steps for one question, with everything the fit needs (no threshold applied)."""
    trial = kb.llm_trial(item.question, item.history or None, judges=("after", "before"))
    row: dict[str, Any] = {"gated": trial.gated}
    if trial.gated:
        return row
    row.update(llm_s=trial.seconds["llm"], judge_s=trial.seconds["judge"], judgment=trial.judgments, raw=trial.raw)
    cand = trial.candidate
    if cand is None:  # a refusal, or no sentence verified: the extractive fallback's answer stands
        final = trial.final
        row["fallback"] = {
            "answered": not final.abstained, "confidence": final.confidence or 0.0,
            **_labels(final, item, gold_paragraphs),
        }
        return row
    row["logit"] = model.logit(cand.features)
    row["checks"] = cand.features.checks
    row.update(_labels(cand.answer, item, gold_paragraphs))
    return row


def _labels(answer: Any, item: Any, gold_paragraphs: set[tuple[str, int]]) -> dict[str, bool]:
    text = M.strip_citations(answer.text)
    cited = {(c.doc_id, c.paragraph) for c in answer.citations}
    return {
        "right": bool(item.answerable and gold_paragraphs is not None and M.must_include_ok(text, item.must_include)),
        "cited_gold": bool(cited) and cited <= gold_paragraphs,
    }


def collect(suites: Sequence[Suite], cache: Path, per_stratum: int, minutes: float) -> list[dict[str, Any]]:
    done = {}
    if cache.is_file():
        for line in cache.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            done[row["key"]] = row
    articles = squad_articles()
    plans = []
    for suite in suites:
        kb = load(suite.corpus, suite.index)
        items = sample_order(suite, per_stratum)
        gold = map_gold(items, kb, suite.corpus)
        plans.append((suite, kb, items, gold, ConfidenceModel(kb.settings.confidence_weights, kb.settings.confidence_bias)))
    deadline = time.monotonic() + minutes * 60
    cache.parent.mkdir(parents=True, exist_ok=True)
    # Suites in turn too, so a stopped run has some of each.
    queue = []
    for n in range(max(len(p[2]) for p in plans)):
        queue += [(p, p[2][n]) for p in plans if n < len(p[2])]
    with cache.open("a", encoding="utf-8") as out:
        for (suite, kb, _items, gold, model), item in queue:
            key = f"{suite.name}:{item.id}"
            if key in done:
                continue
            if time.monotonic() > deadline:
                print(f"time is up ({minutes:.0f} min): {len(done)} collected", file=sys.stderr)
                break
            row = collect_one(kb, item, gold.paragraphs.get(item.id, set()) if item.answerable else set(), model)
            article = articles.get(item.id) or (item.sources[0].file if item.sources else None)
            row.update(
                key=key, suite=suite.name, answerable=item.answerable,
                group=f"{suite.name}:{article}" if article
                else f"{suite.name}:unsourced{zlib.crc32(item.id.encode()) % UNSOURCED_GROUPS}",
            )
            out.write(json.dumps(row) + "\n")
            out.flush()
            done[key] = row
            if len(done) % 10 == 0:
                print(f"  {len(done)} collected", file=sys.stderr, flush=True)
    keys = {f"{p[0].name}:{i.id}" for p in plans for i in p[2]}
    return [r for k, r in done.items() if k in keys]


def fit_offset(logit: np.ndarray, j: np.ndarray, y: np.ndarray, l2: float = 1.0) -> tuple[float, float]:
    """Weight and bias of sigmoid(logit + w j + b) by Newton's method (a little L2 on w and b)."""
    w = b = 0.0
    x = np.stack([j, np.ones_like(j)], axis=1)
    for _ in range(50):
        p = 1 / (1 + np.exp(-(logit + w * j + b)))
        grad = x.T @ (p - y) + l2 * np.array([w, b])
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w, b = w - step[0], b - step[1]
        if np.abs(step).max() < 1e-8:
            break
    return float(w), float(b)


def _judged(rows: Sequence[dict[str, Any]], when: str) -> np.ndarray:
    return np.array([(r.get("judgment") or {}).get(when) or 0.0 for r in rows])


def decisions(rows: Sequence[dict[str, Any]], when: str | None, params: dict[str, tuple[float, float]],
              threshold: float) -> Decisions:
    """What LLM mode does for each question with the judgment weighted by the row's fold's params."""
    conf, right, cited = [], [], []
    for r in rows:
        if r["gated"]:
            c, ok, cg = 0.0, False, False
        elif "fallback" in r:
            f = r["fallback"]
            c, ok, cg = (f["confidence"] if f["answered"] else 0.0), f["right"], f["cited_gold"]
        else:
            w, b = params[r["group"]] if when else (0.0, 0.0)
            j = ((r.get("judgment") or {}).get(when) if when else None)
            c = sigmoid(r["logit"] + (w * j + b if j is not None else 0.0))
            if r["checks"] < 1.0:  # the checks' veto
                c = min(c, max(0.0, threshold - 0.01))
            ok, cg = r["right"], r["cited_gold"]
        conf.append(c)
        right.append(ok)
        cited.append(cg)
    return Decisions(np.array(conf), np.array(right), np.array(cited),
                     np.array([r["answerable"] for r in rows]), np.array([r["suite"] for r in rows]))


def run(rows: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    scored = [r for r in rows if not r["gated"] and "fallback" not in r]
    suites = sorted({r["suite"] for r in rows})
    result: dict[str, Any] = {
        "threshold": threshold, "questions": {s: sum(r["suite"] == s for r in rows) for s in suites},
        "asked": {s: sum(r["suite"] == s and not r["gated"] for r in rows) for s in suites},
        "variants": {},
    }
    y = np.array([r["right"] for r in scored], dtype=float)
    logit = np.array([r["logit"] for r in scored])
    groups = sorted({r["group"] for r in rows})
    for when in (None, *JUDGES):
        params: dict[str, tuple[float, float]] = {}
        if when:
            j = _judged(scored, when)
            for g in groups:
                m = np.array([r["group"] != g for r in scored])
                params[g] = fit_offset(logit[m], j[m], y[m]) if m.any() else (0.0, 0.0)
            everything = fit_offset(logit, j, y)
            if len(scored):
                result.setdefault("fitted", {})[when] = {"weight": everything[0], "bias": everything[1]}
                a = np.array([r["answerable"] and r["right"] for r in scored])
                result.setdefault("judgment_auc", {})[when] = _auc(j[a], j[~a])
        d = decisions(rows, when, params, threshold)
        result["variants"][when or "no judgment"] = {s: outcome(d, threshold, s) for s in suites}
        # LLM mode's own threshold by the same rule as the shared one (the highest whose false
        # abstentions stay within budget on every suite), read off these out-of-fold decisions.
        own = choose_threshold(d, suites)
        result.setdefault("own_threshold", {})[when or "no judgment"] = own
        d_own = decisions(rows, when, params, own)
        result["variants"][f"{when or 'no judgment'}, own threshold {own:.2f}"] = {
            s: outcome(d_own, own, s) for s in suites
        }
    return result


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    if not len(pos) or not len(neg):
        return float("nan")
    return float(((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean())


def table(result: dict[str, Any]) -> str:
    suites = list(result["questions"])
    cols = ("accuracy", "abstain_unanswerable", "false_abstention", "citation_precision", "aurc")
    head = "| variant | " + " | ".join(f"{s} {c}" for s in suites for c in cols) + " |"
    lines = [head, "|" + "---|" * (1 + len(suites) * len(cols))]
    for name, per in result["variants"].items():
        vals = [per[s][c] for s in suites for c in cols]
        lines.append(f"| {name} | " + " | ".join("—" if math.isnan(v) else f"{v:.3f}" for v in vals) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evals.calibrate_llm", description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default="gold,squad2")
    ap.add_argument("--per-stratum", type=int, default=60, help="answerable and unanswerable questions per suite")
    ap.add_argument("--minutes", type=float, default=60.0, help="stop collecting after this long (resumable)")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--fit-only", action="store_true", help="fit on what the cache holds; run no model")
    args = ap.parse_args(argv)
    try:
        suites = parse_suites(args.suite)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = get_settings()
    minutes = 0.0 if args.fit_only else args.minutes
    rows = collect(suites, args.cache, args.per_stratum, minutes)
    if not rows:
        print("error: nothing collected yet (run without --fit-only)", file=sys.stderr)
        return 1
    result = run(rows, settings.answer_threshold)
    write_text_atomic(args.out, json.dumps(result, indent=2) + "\n")
    print(table(result))
    for when, fit in (result.get("fitted") or {}).items():
        auc = result["judgment_auc"][when]
        print(f"judge {when}: weight {fit['weight']:.4f} bias {fit['bias']:.4f} (AUC right vs not {auc:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
