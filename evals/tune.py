"""Choose the searcher's fusion weights and the reader's share on several corpora, cross-validated by article.

    python -m evals.tune [--suite gold,squad2] [--rerank 20] [--out evals/results/tune.json]
    python -m evals.tune --gold FILE --corpus DIR --index DIR     (one corpus of your own)

Computes every candidate's signals once per question (``kb.retrieval_candidates``, the reader's
probability for the first stage's best ``--pool`` candidates), then scores weight vectors the way
the searcher ranks: first stage = the hand-written signals' weighted sum; the reader's weighted
probability is added to the first stage's best ``--rerank`` (see ``rag.searcher``).

The target is the eval's own: the gold paragraphs of ``evals.gold_paragraphs`` and hit@k / MRR@10.
What it prints:

- an ablation table, per suite: today's weights, the reader alone over the first stage's best,
  the first stage plus the reader, and that with each hand-written signal dropped (what each one
  still adds once the reader is in);
- cross-validated numbers: weights chosen on every article but one (of every suite), scored on
  the held-out article; an article is never scored by weights chosen on it. The objective
  averages the suites, so a large suite does not outvote a small one;
- the weights chosen on everything (what goes into ``rag/settings.py``).
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evals.gold import DEFAULT_GOLD, GoldItem, load_gold
from evals.gold_paragraphs import map_gold
from evals.suites import Suite, parse_suites
from rag.followup import rewrite_followup
from rag.knowledge import KnowledgeBase, load
from rag.settings import RETRIEVAL_SIGNALS

METRICS = ("hit@1", "hit@5", "mrr@10")
READER = RETRIEVAL_SIGNALS.index("reader")
FIRST_STAGE = [i for i, name in enumerate(RETRIEVAL_SIGNALS) if name != "reader"]


@dataclass
class SuiteData:
    """One suite's scored questions, padded into arrays so a weight vector is scored in one pass."""

    name: str
    features: np.ndarray  # (questions, candidates, signals); padding rows are 0
    valid: np.ndarray  # (questions, candidates) bool
    gold: np.ndarray  # (questions, candidates) bool
    articles: list[str]  # the article each question's gold paragraph is in (the CV unit)

    def __post_init__(self) -> None:
        self.stage = np.ascontiguousarray(self.features[:, :, FIRST_STAGE])

    def subset(self, mask: np.ndarray) -> SuiteData:
        return SuiteData(self.name, self.features[mask], self.valid[mask], self.gold[mask],
                         [a for a, m in zip(self.articles, mask, strict=True) if m])

    def __len__(self) -> int:
        return len(self.articles)


def collect(kb: KnowledgeBase, items: Sequence[GoldItem], corpus_dir: Path, name: str, pool: int) -> SuiteData:
    """The items the eval scores on retrieval, with every candidate's signals (the query ``hybrid`` uses)."""
    gold = map_gold(items, kb, corpus_dir)
    rows = []
    for item in items:
        if not gold.scored(item):
            continue
        cands = kb.retrieval_candidates(rewrite_followup(item.question, item.history), rerank=pool)
        keys = [(doc_id, int(number)) for doc_id, number in cands.keys]
        wanted = set(gold[item.id])
        rows.append((cands.features, [k in wanted for k in keys], sorted(wanted)[0][0]))
    width = max((len(f) for f, _, _ in rows), default=1)
    feats = np.zeros((len(rows), width, len(RETRIEVAL_SIGNALS)), dtype=np.float32)
    valid = np.zeros((len(rows), width), dtype=bool)
    is_gold = np.zeros((len(rows), width), dtype=bool)
    for i, (f, g, _) in enumerate(rows):
        feats[i, : len(f)] = f
        valid[i, : len(f)] = True
        is_gold[i, : len(g)] = g
    return SuiteData(name, feats, valid, is_gold, [a for _, _, a in rows])


def evaluate(data: SuiteData, weights: np.ndarray, rerank: int) -> dict[str, float]:
    """hit@1, hit@5 and MRR@10 of the candidates ranked as the searcher ranks them with ``weights``."""
    if not len(data):
        return dict.fromkeys(METRICS, 0.0)
    first = data.stage @ weights[FIRST_STAGE]
    first = np.where(data.valid, first, -np.inf)
    score = first.copy()
    if weights[READER] > 0:
        n = min(rerank, first.shape[1])
        kth = -np.partition(-first, n - 1, axis=1)[:, n - 1 : n]
        top = (first >= kth) & data.valid
        score = score + np.where(top, weights[READER] * data.features[:, :, READER], 0.0)
    best_gold = np.where(data.gold, score, -np.inf).max(axis=1, keepdims=True)
    # Rank of the best gold paragraph: 1 + candidates scored strictly higher (ties count for it).
    rank = 1 + (score > best_gold).sum(axis=1)
    found = np.isfinite(best_gold[:, 0])
    return {
        "hit@1": float(np.mean(found & (rank <= 1))),
        "hit@5": float(np.mean(found & (rank <= 5))),
        "mrr@10": float(np.mean(np.where(found & (rank <= 10), 1.0 / rank, 0.0))),
    }


def objective(metrics: dict[str, float]) -> float:
    return metrics["hit@1"] + 0.5 * metrics["mrr@10"] + 0.25 * metrics["hit@5"]


#: 3,888 weight vectors: coarse on purpose (fewer distinct choices generalize better, and the
#: leave-one-article-out search runs once per article).
GRID = {
    "dense": [0.5, 1.0, 1.5],
    "dense_sentence": [0.0, 0.5],
    "bm25": [0.0, 0.5, 1.0],
    "bm25_focus": [0.0, 0.5],
    "article": [0.0, 0.75, 1.5],
    "answer_type": [0.0, 0.3, 0.6],
    "sentence_coverage": [0.0, 0.5, 1.0],
    "reader": [0.0, 2.0, 4.0, 8.0],
}


def mean_objective(suites: Sequence[SuiteData], weights: np.ndarray, rerank: int) -> float:
    """The suites' objectives averaged: each corpus counts the same, whatever its size."""
    return float(np.mean([objective(evaluate(s, weights, rerank)) for s in suites if len(s)]))


def search_weights(suites: Sequence[SuiteData], rerank: int, grid: dict[str, list[float]] = GRID) -> np.ndarray:
    best_w, best_o = None, -1.0
    for combo in itertools.product(*(grid[f] for f in RETRIEVAL_SIGNALS)):
        w = np.array(combo, dtype=np.float32)
        if not w[FIRST_STAGE].any():
            continue
        o = mean_objective(suites, w, rerank)
        if o > best_o + 1e-9:
            best_w, best_o = w, o
    assert best_w is not None
    return best_w


def cross_validate(suites: Sequence[SuiteData], rerank: int) -> dict[str, dict[str, float]]:
    """Leave one article out (of any suite): weights chosen on the rest, scored on it."""
    held: dict[str, list[tuple[int, dict[str, float]]]] = {s.name: [] for s in suites}
    for suite in suites:
        for article in sorted(set(suite.articles)):
            mask = np.array([a == article for a in suite.articles])
            train = [s.subset(~mask) if s is suite else s for s in suites]
            w = search_weights(train, rerank)
            m = evaluate(suite.subset(mask), w, rerank)
            held[suite.name].append((int(mask.sum()), m))
            print(f"  held out {suite.name}/{article} ({int(mask.sum())} q): {_fmt(m)} with {_weights(w)}", flush=True)
    out = {}
    for name, parts in held.items():
        total = sum(n for n, _ in parts)
        out[name] = {k: sum(n * m[k] for n, m in parts) / max(total, 1) for k in METRICS}
    return out


def ablation(suites: Sequence[SuiteData], current: np.ndarray, rerank: int) -> list[tuple[str, np.ndarray]]:
    """The configurations of the README's ablation table."""
    first = current.copy()
    first[READER] = 0.0
    reader_weight = current[READER] if current[READER] > 0 else 2.0
    with_reader = first.copy()
    with_reader[READER] = reader_weight
    alone = first * 1e-3  # the first stage only picks the candidates and breaks ties
    alone[READER] = 1.0
    rows = [("first stage only (no reader)", first), ("reader alone over the first stage's best", alone),
            ("first stage + reader", with_reader)]
    for i in FIRST_STAGE:
        if with_reader[i] > 0:
            w = with_reader.copy()
            w[i] = 0.0
            rows.append((f"  without {RETRIEVAL_SIGNALS[i]}", w))
    minimal = np.zeros_like(current)
    minimal[RETRIEVAL_SIGNALS.index("dense")] = 1.0
    minimal[RETRIEVAL_SIGNALS.index("bm25")] = 1.0
    rows.append(("dense + BM25 only", minimal))
    minimal_r = minimal.copy()
    minimal_r[READER] = reader_weight
    rows.append(("dense + BM25, then the reader", minimal_r))
    return rows


def _fmt(m: dict[str, float]) -> str:
    return " ".join(f"{k} {m[k]:.3f}" for k in METRICS)


def _weights(w: np.ndarray) -> str:
    return json.dumps({n: round(float(v), 3) for n, v in zip(RETRIEVAL_SIGNALS, w, strict=True) if v})


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="gold,squad2", help="suites to tune on together (default gold,squad2)")
    parser.add_argument("--gold", type=Path, default=None, help="one gold file of your own instead of --suite")
    parser.add_argument("--corpus", type=Path, default=Path("seeds"))
    parser.add_argument("--index", type=Path, default=Path("index"))
    parser.add_argument("--rerank", type=int, default=None, help="candidates the reader reorders (default: setting)")
    parser.add_argument("--pool", type=int, default=30, help="candidates the reader scores while collecting")
    parser.add_argument("--no-cv", action="store_true", help="skip the (slow) cross-validation")
    parser.add_argument("--out", type=Path, default=None, help="write the numbers as JSON here")
    args = parser.parse_args(argv)
    if args.gold:
        specs = [Suite("custom", args.gold, args.corpus, args.index, str(args.gold))]
    else:
        specs = parse_suites(args.suite)
    suites, kb = [], None
    for spec in specs:
        kb = load(spec.corpus, spec.index)
        suites.append(collect(kb, load_gold(spec.gold or DEFAULT_GOLD), spec.corpus, spec.name, args.pool))
        print(f"{spec.name}: {len(suites[-1])} scored questions, {len(set(suites[-1].articles))} articles", flush=True)
    assert kb is not None
    rerank = args.rerank or kb.settings.rerank_candidates
    current = np.array([getattr(kb.settings, f"weight_{f}") for f in RETRIEVAL_SIGNALS], dtype=np.float32)
    if kb.reader is None:
        print("note: no reader model: the reader column is 0 (train one with `rag train-reader`)")
    report: dict[str, object] = {"rerank": rerank, "current": _weights(current), "ablation": {}}
    print(f"\nablation (rerank {rerank}; today's weights {_weights(current)})")
    print(f"{'configuration':<46}" + "".join(f"{s.name + ' ' + m:>16}" for s in suites for m in METRICS))
    for label, w in ablation(suites, current, rerank):
        ms = [evaluate(s, w, rerank) for s in suites]
        report["ablation"][label.strip()] = {s.name: m for s, m in zip(suites, ms, strict=True)}  # type: ignore[index]
        print(f"{label:<46}" + "".join(f"{m[k]:>16.3f}" for m in ms for k in METRICS))
    if not args.no_cv:
        print("\ncross-validation, one article held out at a time:")
        cv = cross_validate(suites, rerank)
        report["cross_validated"] = cv
        for name, m in cv.items():
            print(f"cross-validated {name}: {_fmt(m)}")
    w = search_weights(suites, rerank)
    report["chosen_on_all"] = {"weights": _weights(w), **{s.name: evaluate(s, w, rerank) for s in suites}}
    print("chosen on all:", _weights(w), {s.name: _fmt(evaluate(s, w, rerank)) for s in suites})
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
