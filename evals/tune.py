"""Choose the hybrid searcher's fusion weights from a gold set, with cross-validation.

    python -m evals.tune [--gold evals/gold.jsonl] [--corpus seeds] [--folds 5]

Computes every candidate's signals once per question, then searches weight vectors. The number
that matters is the cross-validated one (weights chosen on 4/5 of the questions, scored on the
held-out 1/5): that is what to expect on questions the weights never saw. Prints both, and the
weights chosen on all questions (what goes into ``rag/settings.py``).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from evals.gold import load_gold
from rag.knowledge import load
from rag.searcher import FEATURES
from rag.followup import rewrite_followup


def gold_rows(kb, item) -> set[int]:
    """Paragraph rows of the index that contain one of the item's gold quotes."""
    index = kb.searcher.index
    rows = set()
    for source in item.sources:
        article = index.articles.get(source.file)
        if article is None:
            continue
        text = (kb.corpus_dir / source.file).read_text(encoding="utf-8")
        at = text.find(source.quote)
        for p in article.paragraphs:
            if at >= 0 and p.start <= at < p.end:
                rows.add(index.paragraph_keys.index((article.doc_id, p.number)))
    return rows


def collect(kb, items):
    data = []
    for item in items:
        if not item.answerable:
            continue
        relevant = gold_rows(kb, item)
        if not relevant:
            continue
        query = rewrite_followup(item.question, item.history)
        cands = kb.searcher.candidates(query)
        labels = np.array([r in relevant for r in cands.rows.tolist()])
        data.append((cands.features, labels, item.type))
    return data


def evaluate(data, weights: np.ndarray) -> dict[str, float]:
    hit1 = hit5 = rr = 0.0
    for features, labels, _ in data:
        scores = features @ weights
        order = np.argsort(-scores, kind="stable")
        ranked = labels[order]
        first = int(np.argmax(ranked)) if ranked.any() else 10**6
        hit1 += first == 0
        hit5 += first < 5
        rr += 1.0 / (first + 1) if first < 10 else 0.0
    n = max(len(data), 1)
    return {"hit@1": hit1 / n, "hit@5": hit5 / n, "mrr": rr / n}


def objective(metrics: dict[str, float]) -> float:
    return metrics["hit@1"] + 0.5 * metrics["mrr"] + 0.25 * metrics["hit@5"]


GRID = {
    "dense": [0.0, 0.5, 1.0, 1.5],
    "dense_sentence": [0.0, 0.5, 1.0],
    "bm25": [0.0, 0.5, 1.0, 1.5],
    "bm25_focus": [0.0, 0.5, 1.0],
    "article": [0.0, 0.5, 1.0, 1.5],
    "answer_type": [0.0, 0.3, 0.6],
    "sentence_coverage": [0.0, 0.5, 1.0],
}


def search_weights(data) -> tuple[np.ndarray, dict[str, float]]:
    best_w, best_m, best_o = None, None, -1.0
    for combo in itertools.product(*(GRID[f] for f in FEATURES)):
        w = np.array(combo, dtype=np.float32)
        if not w.any():
            continue
        m = evaluate(data, w)
        o = objective(m)
        if o > best_o + 1e-9:
            best_w, best_m, best_o = w, m, o
    assert best_w is not None and best_m is not None
    return best_w, best_m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gold", type=Path, default=Path("evals/gold.jsonl"))
    parser.add_argument("--corpus", type=Path, default=Path("seeds"))
    parser.add_argument("--index", type=Path, default=Path("index"))
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    kb = load(args.corpus, args.index)
    data = collect(kb, load_gold(args.gold))
    current = np.array([getattr(kb.settings, f"weight_{f}") for f in FEATURES], dtype=np.float32)
    print(f"{len(data)} answerable questions; current weights {dict(zip(FEATURES, current.tolist(), strict=True))}")
    print("current:", evaluate(data, current))
    for name in FEATURES:  # each signal alone
        w = np.array([1.0 if f == name else 0.0 for f in FEATURES], dtype=np.float32)
        print(f"only {name}:", evaluate(data, w))

    rng = np.random.default_rng(0)
    folds = np.array_split(rng.permutation(len(data)), args.folds)
    held_out = []
    for i, test_idx in enumerate(folds):
        train = [data[j] for j in range(len(data)) if j not in set(test_idx.tolist())]
        test = [data[j] for j in test_idx]
        w, _ = search_weights(train)
        m = evaluate(test, w)
        held_out.append((len(test), m))
        print(f"fold {i}: weights {w.tolist()} held-out {m}")
    total = sum(n for n, _ in held_out)
    cv = {k: sum(n * m[k] for n, m in held_out) / total for k in ("hit@1", "hit@5", "mrr")}
    print("cross-validated:", cv)
    w, m = search_weights(data)
    print("chosen on all:", json.dumps(dict(zip(FEATURES, w.tolist(), strict=True))), m)


if __name__ == "__main__":
    main()
