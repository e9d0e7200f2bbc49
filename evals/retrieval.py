"""The retrieval eval loop: every retriever on every gold item, scored at paragraph level.

Retrievers (see ``evals.run``'s module doc): ``hybrid`` (``kb.search`` on the question as the
system sees it, follow-ups rewritten), ``hybrid_raw`` (the same search on the raw question),
``dense`` / ``bm25`` (single-signal rankings) and ``langchain`` (``evals.langchain_baseline``).
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from evals import metrics as M
from evals.gold import GoldItem
from evals.gold_paragraphs import GoldParagraphs
from evals.records import RetrievalRecord, RetrievalScore, format_unit

if TYPE_CHECKING:
    from evals.langchain_baseline import BaselineChunk, LangChainBaseline
    from rag.domain import Hit
    from rag.knowledge import KnowledgeBase

K = 10  # depth of every retrieved list (MRR@10, nDCG@10)
KS = (1, 3, 5, 10)
RETRIEVERS = ("hybrid", "hybrid_raw", "dense", "bm25", "langchain")
RETRIEVER_LABELS = {
    "hybrid": "hybrid (kb.search, follow-ups rewritten)",
    "hybrid_raw": "hybrid, raw question (no rewrite)",
    "dense": "dense only (raw question)",
    "bm25": "BM25 only (raw question)",
    "langchain": "LangChain stock: 1000/200 chunks + FAISS (raw question)",
}

#: One retriever: gold item -> (the query it searched with, ranked units, text length of each unit).
Retriever = Callable[[GoldItem], tuple[str, list[M.Unit], list[int]]]


def _paragraphs(hits: Sequence[Hit]) -> tuple[list[M.Unit], list[int]]:
    return [frozenset([(h.doc_id, h.paragraph)]) for h in hits], [len(h.text) for h in hits]


def _chunks(found: Sequence[BaselineChunk]) -> tuple[list[M.Unit], list[int]]:
    return [c.paragraphs for c in found], [len(c.text) for c in found]


def retrieval_functions(
    kb: KnowledgeBase, retrievers: Sequence[str], baseline: LangChainBaseline | None
) -> dict[str, Retriever]:
    """The wanted retrievers that can run (``langchain`` needs ``baseline``), in ``retrievers`` order."""
    from rag.followup import rewrite_followup

    funcs: dict[str, Retriever] = {
        "hybrid": lambda it: (q := rewrite_followup(it.question, it.history), *_paragraphs(kb.search(q, K))),
        "hybrid_raw": lambda it: (it.question, *_paragraphs(kb.search(it.question, K))),
        "dense": lambda it: (it.question, *_paragraphs(kb.dense_search(it.question, K))),
        "bm25": lambda it: (it.question, *_paragraphs(kb.bm25_search(it.question, K))),
    }
    if baseline is not None:
        funcs["langchain"] = lambda it: (it.question, *_chunks(baseline.search(it.question, K)))
    return {name: funcs[name] for name in retrievers if name in funcs}


def score_ranking(units: Sequence[M.Unit], gold: set[M.ParaId]) -> RetrievalScore:
    """Every retrieval metric of one deduplicated ranking against the gold paragraphs."""
    return RetrievalScore(
        first_gold_rank=M.first_relevant_rank(units, gold),
        scores=M.retrieval_scores(units, gold, KS),
        hit_curve=[M.hit_at_k(units, gold, k) for k in range(1, K + 1)],
    )


def retrieve_item(func: Retriever, item: GoldItem, gold: GoldParagraphs) -> RetrievalRecord:
    """Run one retriever on one item, timed, and score it when the item is scored."""
    t0 = time.perf_counter()
    query, units, chars = func(item)
    seconds = time.perf_counter() - t0
    units = M.dedupe(units)
    return RetrievalRecord(
        id=item.id,
        type=item.type,
        query=query,
        seconds=seconds,
        ranking=[format_unit(u) for u in units],
        context_chars_at_5=sum(chars[:5]),
        paragraphs_at_5=len(set().union(*units[:5])) if units else 0,
        score=score_ranking(units, gold[item.id]) if gold.scored(item) else None,
    )


def summarize_retriever(name: str, records: Sequence[RetrievalRecord]) -> dict[str, Any]:
    """Mean metrics over the scored items, hit curve, breakdown by type label, latency, context size."""
    scores = [r.score for r in records if r.score is not None]
    by_type: dict[str, list[dict[str, float]]] = defaultdict(list)
    for r in records:
        if r.score is not None:
            by_type[r.type].append(r.score.scores)
    return {
        "label": RETRIEVER_LABELS[name],
        "n": len(scores),
        "metrics": M.mean_scores([s.scores for s in scores]),
        "hit_curve": [M.mean(s.hit_curve[k] for s in scores) for k in range(K)],
        "by_type": {t: {"n": len(rows), **M.mean_scores(rows)} for t, rows in sorted(by_type.items())},
        "latency": M.latency_summary(r.seconds for r in records),
        "mean_context_chars@5": M.mean(r.context_chars_at_5 for r in records),
        "mean_paragraphs@5": M.mean(r.paragraphs_at_5 for r in records),
    }


@dataclass
class RetrievalResult:
    """Per retriever: its summary and its per-item records (``to_dict`` → results.json's ``retrieval``)."""

    summary: dict[str, dict[str, Any]]
    items: dict[str, list[RetrievalRecord]]

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "items": {n: [r.to_dict() for r in rs] for n, rs in self.items.items()}}


def evaluate_retrieval(
    kb: KnowledgeBase,
    items: Sequence[GoldItem],
    gold: GoldParagraphs,
    retrievers: Sequence[str],
    baseline: LangChainBaseline | None = None,
    progress: bool = True,
) -> RetrievalResult:
    """Per retriever: mean metrics over items with gold paragraphs, by type, latency, per item."""
    funcs = retrieval_functions(kb, retrievers, baseline)
    per_item: dict[str, list[RetrievalRecord]] = {name: [] for name in funcs}
    for func in funcs.values():  # warm up (first query loads/compiles things; keep it out of the latency)
        func(items[0])
    bar = tqdm(items, desc="retrieval", unit="q", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    for item in bar:
        for name, func in funcs.items():
            if name == "hybrid_raw" and not item.history and per_item.get("hybrid"):
                # without history nothing is rewritten: the same query as hybrid, so reuse its ranking
                per_item[name].append(per_item["hybrid"][-1])
                continue
            per_item[name].append(retrieve_item(func, item, gold))
    summary = {name: summarize_retriever(name, records) for name, records in per_item.items()}
    return RetrievalResult(summary, per_item)
