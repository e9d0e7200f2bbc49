"""Choose the hybrid searcher's fusion weights from a gold set, with cross-validation.

    python -m evals.tune [--gold evals/gold.jsonl] [--corpus seeds] [--index index] [--folds 5]

Computes every candidate's signals once per question (``kb.retrieval_candidates``), then searches
weight vectors. The target is the eval's own: the gold paragraphs of ``evals.gold_paragraphs``
(the same items are scored as in ``python -m evals.run``: answerable, with a gold paragraph) and
hit@k / MRR@10 of ``evals.metrics`` over the candidates ranked by the weighted sum. The number
that matters is the cross-validated one (weights chosen on 4/5 of the questions, scored on the
held-out 1/5): that is what to expect on questions the weights never saw. Prints both, and the
weights chosen on all questions (what goes into ``rag/settings.py``).
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evals import metrics as M
from evals.gold import DEFAULT_GOLD, GoldItem, load_gold
from evals.gold_paragraphs import map_gold
from evals.retrieval import K
from rag.followup import rewrite_followup
from rag.knowledge import KnowledgeBase, load
from rag.settings import RETRIEVAL_SIGNALS

METRICS = ("hit@1", "hit@5", "mrr@10")


@dataclass(frozen=True)
class Example:
    """One scored gold item: its candidates' signals (one column per signal) and gold paragraphs."""

    id: str
    type: str
    features: np.ndarray
    keys: list[M.ParaId]  # row i of ``features`` is paragraph ``keys[i]``
    gold: frozenset[M.ParaId]


def collect(kb: KnowledgeBase, items: Sequence[GoldItem], corpus_dir: Path) -> list[Example]:
    """The items the eval scores on retrieval, with every candidate's signals for the query ``hybrid`` uses."""
    gold = map_gold(items, kb, corpus_dir)
    data = []
    for item in items:
        if not gold.scored(item):
            continue
        cands = kb.retrieval_candidates(rewrite_followup(item.question, item.history))
        keys = [(doc_id, int(number)) for doc_id, number in cands.keys]
        data.append(Example(item.id, item.type, cands.features, keys, frozenset(gold[item.id])))
    return data


def evaluate(data: Sequence[Example], weights: np.ndarray) -> dict[str, float]:
    """hit@1, hit@5 and MRR@10 of the candidates ranked by ``features @ weights`` (ties: index order)."""
    hit1 = hit5 = rr = 0.0
    for ex in data:
        order = np.argsort(-(ex.features @ weights), kind="stable")[:K].tolist()
        ranking = [ex.keys[i] for i in order]  # distinct paragraphs: a prefix is the ranking's top k
        hit1 += M.hit_at_k(ranking[:1], ex.gold, 1)
        hit5 += M.hit_at_k(ranking[:5], ex.gold, 5)
        rr += M.reciprocal_rank(ranking, ex.gold, K)
    n = max(len(data), 1)
    return {"hit@1": hit1 / n, "hit@5": hit5 / n, "mrr@10": rr / n}


def objective(metrics: dict[str, float]) -> float:
    return metrics["hit@1"] + 0.5 * metrics["mrr@10"] + 0.25 * metrics["hit@5"]


GRID = {
    "dense": [0.0, 0.5, 1.0, 1.5],
    "dense_sentence": [0.0, 0.5, 1.0],
    "bm25": [0.0, 0.5, 1.0, 1.5],
    "bm25_focus": [0.0, 0.5, 1.0],
    "article": [0.0, 0.5, 1.0, 1.5],
    "answer_type": [0.0, 0.3, 0.6],
    "sentence_coverage": [0.0, 0.5, 1.0],
}


def search_weights(data: Sequence[Example]) -> tuple[np.ndarray, dict[str, float]]:
    best_w, best_m, best_o = None, None, -1.0
    for combo in itertools.product(*(GRID[f] for f in RETRIEVAL_SIGNALS)):
        w = np.array(combo, dtype=np.float32)
        if not w.any():
            continue
        m = evaluate(data, w)
        o = objective(m)
        if o > best_o + 1e-9:
            best_w, best_m, best_o = w, m, o
    assert best_w is not None and best_m is not None
    return best_w, best_m


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gold", type=Path, default=DEFAULT_GOLD)
    parser.add_argument("--corpus", type=Path, default=Path("seeds"))
    parser.add_argument("--index", type=Path, default=Path("index"))
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args(argv)
    kb = load(args.corpus, args.index)
    data = collect(kb, load_gold(args.gold), args.corpus)
    current = np.array([getattr(kb.settings, f"weight_{f}") for f in RETRIEVAL_SIGNALS], dtype=np.float32)
    print(f"{len(data)} scored questions; current weights {dict(zip(RETRIEVAL_SIGNALS, current.tolist(), strict=True))}")
    print("current:", evaluate(data, current))
    for name in RETRIEVAL_SIGNALS:  # each signal alone
        w = np.array([1.0 if f == name else 0.0 for f in RETRIEVAL_SIGNALS], dtype=np.float32)
        print(f"only {name}:", evaluate(data, w))

    rng = np.random.default_rng(0)
    folds = np.array_split(rng.permutation(len(data)), args.folds)
    held_out = []
    for i, test_idx in enumerate(folds):
        test_rows = set(test_idx.tolist())
        train = [data[j] for j in range(len(data)) if j not in test_rows]
        test = [data[j] for j in test_idx]
        w, _ = search_weights(train)
        m = evaluate(test, w)
        held_out.append((len(test), m))
        print(f"fold {i}: weights {w.tolist()} held-out {m}")
    total = sum(n for n, _ in held_out)
    cv = {k: sum(n * m[k] for n, m in held_out) / total for k in METRICS}
    print("cross-validated:", cv)
    w, m = search_weights(data)
    print("chosen on all:", json.dumps(dict(zip(RETRIEVAL_SIGNALS, w.tolist(), strict=True))), m)


if __name__ == "__main__":
    main()
