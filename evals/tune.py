"""Choose the searcher's fusion weights and the reader's share on several corpora, cross-validated by article.

    python -m evals.tune [--suite gold,squad2] [--rerank 20] [--out evals/results/tune.json]
    python -m evals.tune --gold FILE --corpus DIR --index DIR     (one corpus of your own)
    python -m evals.tune --compare-readers models/reader,models/reader-next [--auc]   (readers side by side)

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

``--compare-readers A,B`` collects the first stage's candidates once (without a reader) and fills
the reader column with each reader in turn (``reader_column``, the searcher's own rule: the first
stage's best ``--pool`` by today's weights), so the readers are compared on identical candidates;
it prints the reader rows of the ablation for each, the reader's time per question, and with
``--auc`` the separation of unanswerable from answerable questions (``separation_auc``).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evals.gold import DEFAULT_GOLD, GoldItem, load_gold
from evals.gold_paragraphs import map_gold
from evals.suites import Suite, parse_suites
from rag.followup import rewrite_followup
from rag.knowledge import KnowledgeBase, load
from rag.question import analyze_question
from rag.reader import Reader, reader_passage
from rag.sentences import sentence_spans
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
    questions: list[str] = dataclasses.field(default_factory=list)  # the query each row was searched with
    keys: list[list[tuple[str, int]]] = dataclasses.field(default_factory=list)  # each row's candidates

    def __post_init__(self) -> None:
        self.stage = np.ascontiguousarray(self.features[:, :, FIRST_STAGE])

    def subset(self, mask: np.ndarray) -> SuiteData:
        pick = np.flatnonzero(mask).tolist()
        return SuiteData(self.name, self.features[mask], self.valid[mask], self.gold[mask],
                         [self.articles[i] for i in pick], [self.questions[i] for i in pick if self.questions],
                         [self.keys[i] for i in pick if self.keys])

    def __len__(self) -> int:
        return len(self.articles)


def collect(kb: KnowledgeBase, items: Sequence[GoldItem], corpus_dir: Path, name: str, pool: int) -> SuiteData:
    """The items the eval scores on retrieval, with every candidate's signals (the query ``hybrid`` uses)."""
    gold = map_gold(items, kb, corpus_dir)
    rows = []
    for item in items:
        if not gold.scored(item):
            continue
        query = rewrite_followup(item.question, item.history)
        cands = kb.retrieval_candidates(query, rerank=pool)
        keys = [(doc_id, int(number)) for doc_id, number in cands.keys]
        wanted = set(gold[item.id])
        rows.append((cands.features, [k in wanted for k in keys], sorted(wanted)[0][0], query, keys))
    width = max((len(r[0]) for r in rows), default=1)
    feats = np.zeros((len(rows), width, len(RETRIEVAL_SIGNALS)), dtype=np.float32)
    valid = np.zeros((len(rows), width), dtype=bool)
    is_gold = np.zeros((len(rows), width), dtype=bool)
    for i, (f, g, *_) in enumerate(rows):
        feats[i, : len(f)] = f
        valid[i, : len(f)] = True
        is_gold[i, : len(g)] = g
    return SuiteData(name, feats, valid, is_gold, [r[2] for r in rows], [r[3] for r in rows], [r[4] for r in rows])


def reader_column(kb: KnowledgeBase, data: SuiteData, reader: Reader, weights: np.ndarray, pool: int) -> list[float]:
    """Fill ``data``'s reader column with ``reader``'s probability for each question's first-stage
    best ``pool`` (ranked by ``weights``, as ``HybridSearcher._reader_column`` does); returns the
    seconds the reader took per question."""
    seconds = []
    stage = data.stage @ weights[FIRST_STAGE]
    for i, (query, keys) in enumerate(zip(data.questions, data.keys, strict=True)):
        n = len(keys)
        top = np.argsort(-stage[i, :n], kind="stable")[:pool]
        passages = []
        for j in top.tolist():
            article = kb.article(keys[j][0])
            assert article is not None
            passages.append(reader_passage(article.title, article.paragraph(keys[j][1]).text))
        t0 = time.perf_counter()
        probs = reader.probability(analyze_question(query.strip()).text, passages)
        seconds.append(time.perf_counter() - t0)
        data.features[i, :, READER] = 0.0
        data.features[i, top, READER] = probs
    return seconds


def auc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """P(a positive scores above a negative), ties counted half (the Mann-Whitney AUC).

    >>> auc([3, 2], [1, 2])
    0.875
    """
    pos, neg = np.asarray(positive, dtype=np.float64), np.asarray(negative, dtype=np.float64)
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)


def best_quote_passages(kb: KnowledgeBase, items: Sequence[GoldItem], hits: int = 3) -> list[tuple[str, bool, list[str]]]:
    """Per question without a history: (query, answerable, the sentences of the first stage's best
    ``hits`` paragraphs as the reader reads a quote): the best-quote logit's inputs."""
    out = []
    for item in items:
        if item.history:
            continue
        query = analyze_question(item.question.strip()).text
        sentences = []
        for hit in kb.search(item.question, k=hits):
            for a, b in sentence_spans(hit.text):
                if b - a > 20:
                    sentences.append(reader_passage(hit.title, hit.text[a:b]))
        out.append((query, item.answerable, sentences))
    return out


def separation_auc(reader: Reader, inputs: Sequence[tuple[str, bool, list[str]]]) -> dict[str, float]:
    """How well the reader's best-quote logit (the highest over the sentences of the first stage's
    best paragraphs) separates answerable from unanswerable questions: AUC 0.5 is chance."""
    best = {True: [], False: []}  # type: dict[bool, list[float]]
    for query, answerable, sentences in inputs:
        if sentences:
            best[answerable].append(float(reader.score(query, sentences).max()))
    return {"auc": auc(best[True], best[False]), "answerable": len(best[True]), "unanswerable": len(best[False])}


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
    parser.add_argument("--compare-readers", default="", help="comma-separated reader folders: compare them on "
                        "the same first-stage candidates (reader rows, time per question), then stop")
    parser.add_argument("--sample", default="", help="with --compare-readers: SUITE=N[,SUITE=N] keeps every Nth "
                        "question of that suite (a deterministic subsample, when time is short)")
    parser.add_argument("--auc", action="store_true", help="with --compare-readers: also the best-quote logit's "
                        "separation of unanswerable from answerable questions")
    args = parser.parse_args(argv)
    if args.gold:
        specs = [Suite("custom", args.gold, args.corpus, args.index, str(args.gold))]
    else:
        specs = parse_suites(args.suite)
    if args.compare_readers:
        compare_readers(specs, [Path(p) for p in args.compare_readers.split(",") if p], args)
        return
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


def compare_readers(specs: Sequence[Suite], readers: Sequence[Path], args: argparse.Namespace) -> dict[str, object]:
    """The reader rows of the ablation, the reader's time per question and (``--auc``) the
    separation AUC, for each reader, on the same candidates (collected once, without a reader)."""
    from rag.settings import get_settings

    base = get_settings().model_copy(update={"reader_model": ""})
    report: dict[str, object] = {"pool": args.pool, "suites": {}}
    rows = ("first stage only (no reader)", "reader alone over the first stage's best", "first stage + reader")
    every = {name.strip(): int(n) for name, n in (part.split("=") for part in args.sample.split(",") if part)}
    for spec in specs:
        kb = load(spec.corpus, spec.index, settings=base)
        items = load_gold(spec.gold or DEFAULT_GOLD)[:: every.get(spec.name, 1)]
        data = collect(kb, items, spec.corpus, spec.name, args.pool)
        current = np.array([getattr(kb.settings, f"weight_{f}") for f in RETRIEVAL_SIGNALS], dtype=np.float32)
        rerank = args.rerank or kb.settings.rerank_candidates
        quotes = best_quote_passages(kb, items) if args.auc else []
        suite_report: dict[str, object] = {"questions": len(data), "weights": _weights(current), "rerank": rerank,
                                           "every": every.get(spec.name, 1)}
        print(f"\n{spec.name}: {len(data)} scored questions; first-stage weights {_weights(current)}, rerank {rerank}")
        for path in readers:
            reader = Reader(path, max_length=kb.settings.reader_max_length)
            seconds = reader_column(kb, data, reader, current, args.pool)
            table = {label: evaluate(data, w, rerank) for label, w in ablation([data], current, rerank)
                     if label.strip() in rows}
            entry: dict[str, object] = {
                "ablation": table,
                "reader_seconds_p50": float(np.percentile(seconds, 50)),
                "reader_seconds_p95": float(np.percentile(seconds, 95)),
            }
            if quotes:
                entry["separation"] = separation_auc(reader, quotes)
            suite_report[str(path)] = entry
            print(f"  reader {path} (p50 {entry['reader_seconds_p50'] * 1000:.0f} ms per question over {args.pool})")
            for label, m in table.items():
                print(f"    {label:<44}{_fmt(m)}")
            if quotes:
                sep = entry["separation"]
                assert isinstance(sep, dict)
                print(f"    best-quote separation AUC {sep['auc']:.3f} ({sep['answerable']} answerable, "
                      f"{sep['unanswerable']} unanswerable)")
        report["suites"][spec.name] = suite_report  # type: ignore[index]
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
