"""The answer eval loop: ``kb.answer`` on every gold item in one mode, scored and summarized.

Answers are scored on the answer text with ``[n]`` markers removed (``evals.metrics``):
must-include accuracy, SQuAD EM / token F1 over answerable items; ``correct`` = must-include for
answerable items, abstention for unanswerable ones; citation precision/recall over answered,
answerable items with gold paragraphs; abstention precision/recall and coverage over all items.

Selective answering (``selective_metrics``): every record's ``correct_if_answered`` (an answer as
graded; an abstention's closest quote graded as if it were the answer) is ranked by the answer's
confidence: the risk–coverage curve, AURC, accuracy at 80% and 90% coverage, and the risk at the
system's own decisions.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from evals import metrics as M
from evals.gold import GoldItem
from evals.gold_paragraphs import GoldParagraphs
from evals.records import AnswerRecord

if TYPE_CHECKING:
    from rag.domain import Answer
    from rag.knowledge import KnowledgeBase

ANSWER_MODES = ("extractive", "llm")
STAGES = ("rewrite", "retrieve", "score_sentences", "answer", "llm_first_token", "llm", "verify", "total", "wall")


def _stage_order(stage: str) -> tuple[int, str]:
    """Pipeline order for the known stages (``wall`` = measured around ``kb.answer``), others after."""
    return (STAGES.index(stage) if stage in STAGES else len(STAGES) - 2, stage)


def score_answer(
    item: GoldItem, answer: Answer | None, gold: set[M.ParaId], wall: float, error: str | None
) -> AnswerRecord:
    """One answer (None when ``kb.answer`` raised ``error``) scored against the gold item."""
    abstained = bool(answer.abstained) if answer else False
    text = answer.text if answer and not abstained else ""
    cited = sorted({(c.doc_id, c.paragraph) for c in answer.citations}) if answer else []
    clean = M.strip_citations(text)
    has_gold = item.answerable and bool(gold)
    answered = not abstained and error is None
    closest = answer.closest if answer and abstained else None
    return AnswerRecord(
        id=item.id,
        type=item.type,
        question=item.question,
        history=item.history,
        standalone=answer.standalone_question if answer else None,
        answerable=item.answerable,
        abstained=abstained,
        answer=answer.text if answer else "",
        gold_answers=item.answers,
        must_include=item.must_include,
        must_include_ok=bool(item.answerable and text and M.must_include_ok(text, item.must_include)),
        missing_groups=[g for g in item.must_include if not any(M.phrase_present(clean, a) for a in g)],
        exact_match=M.exact_match(text, item.answers) if item.answerable else None,
        f1=M.token_f1(text, item.answers) if item.answerable else None,
        cited=cited,
        quotes=[c.quote for c in answer.citations] if answer else [],
        gold_paragraphs=sorted(gold),
        timings=dict(answer.timings) if answer else {},
        wall=wall,
        error=error,
        citation_precision=M.citation_precision(cited, gold) if has_gold and answered else None,
        citation_recall=M.citation_recall(cited, gold) if has_gold and answered else None,
        confidence=answer.confidence if answer else None,
        supports=[c.support for c in answer.citations] if answer else [],
        grounding=answer.grounding if answer else None,
        closest_quote=closest.quote if closest is not None else None,
        closest_cited=(closest.doc_id, closest.paragraph) if closest is not None else None,
    )


def answer_item(kb: KnowledgeBase, item: GoldItem, gold: set[M.ParaId], mode: str) -> AnswerRecord:
    """Answer one item in ``mode``, timed; an exception becomes the record's ``error``."""
    t0 = time.perf_counter()
    answer: Answer | None = None
    error = None
    try:
        answer = kb.answer(item.question, item.history or None, mode=mode)
    except Exception as exc:  # one bad item must not hide the other 200
        error = f"{type(exc).__name__}: {exc}"
    return score_answer(item, answer, gold, time.perf_counter() - t0, error)


def answer_metrics(records: Sequence[AnswerRecord]) -> dict[str, float | None]:
    answerable = [r for r in records if r.answerable]
    answered_answerable = [r for r in answerable if r.answered]
    abst = M.abstention_scores((r.abstained, r.answerable) for r in records)
    return {
        "accuracy": M.mean(float(r.must_include_ok) for r in answerable),
        "accuracy_when_answered": M.mean(float(r.must_include_ok) for r in answered_answerable),
        "exact_match": M.mean(r.exact_match for r in answerable),
        "f1": M.mean(r.f1 for r in answerable),
        "correct": M.mean(float(r.correct) for r in records),
        "citation_precision": M.mean(r.citation_precision for r in records),
        "citation_recall": M.mean(r.citation_recall for r in records),
        "abstention_precision": abst["precision"],
        "abstention_recall": abst["recall"],
        "coverage": abst["coverage"],
        "false_abstention_rate": abst["false_abstention_rate"],
        **selective_metrics(records),
    }


def selective_metrics(records: Sequence[AnswerRecord]) -> dict[str, float | None]:
    """How well the confidence ranks the answers (``evals.metrics.selective_scores`` on
    ``(confidence, correct_if_answered)``: AURC, its oracle floor, accuracy at 80% / 90% coverage)
    and the risk at the system's own decisions (wrong answers / answers given)."""
    ranked = [(r.ranked_confidence, r.correct_if_answered) for r in records]
    return {
        **M.selective_scores(ranked),
        "risk": M.decision_risk((r.abstained, r.correct_if_answered) for r in records),
    }


def risk_coverage(records: Sequence[AnswerRecord]) -> dict[str, Any]:
    """The risk–coverage curve of results.json (``answers[mode]["risk_coverage"]``), for the plot,
    with the system's own operating point (its coverage and risk)."""
    curve = M.risk_coverage_curve((r.ranked_confidence, r.correct_if_answered) for r in records)
    abst = M.abstention_scores((r.abstained, r.answerable) for r in records)
    return {
        "coverage": [c for c, _ in curve],
        "risk": [risk for _, risk in curve],
        "operating_point": {
            "coverage": abst["coverage"],
            "risk": M.decision_risk((r.abstained, r.correct_if_answered) for r in records),
        },
    }


def answer_counts(records: Sequence[AnswerRecord]) -> dict[str, int]:
    answerable = [r for r in records if r.answerable]
    return {
        "items": len(records),
        "answerable": len(answerable),
        "unanswerable": len(records) - len(answerable),
        "answered_answerable": sum(r.answered for r in answerable),
        "with_citation_precision": sum(r.citation_precision is not None for r in records),
        "with_citation_recall": sum(r.citation_recall is not None for r in records),
        "abstained": sum(r.abstained for r in records),
        "errors": sum(bool(r.error) for r in records),
        "with_confidence": sum(r.confidence is not None for r in records),
        "abstained_with_closest": sum(r.abstained and r.closest_quote is not None for r in records),
    }


def answers_by_type(records: Sequence[AnswerRecord]) -> dict[str, dict[str, Any]]:
    """The breakdown by the gold file's ``type`` labels, whatever they are, sorted by label."""
    by_type: dict[str, dict[str, Any]] = {}
    for t in sorted({r.type for r in records}):
        rows = [r for r in records if r.type == t]
        ans_rows = [r for r in rows if r.answerable]
        by_type[t] = {
            "n": len(rows),
            "correct": M.mean(float(r.correct) for r in rows),
            "accuracy": M.mean(float(r.must_include_ok) for r in ans_rows),
            "f1": M.mean(r.f1 for r in ans_rows),
            "abstained": M.mean(float(r.abstained) for r in rows),
            "citation_precision": M.mean(r.citation_precision for r in rows),
        }
    return by_type


def stage_latency(records: Sequence[AnswerRecord]) -> dict[str, dict[str, float | int | None]]:
    """Latency summary per pipeline stage (the answer's own timings) and ``wall`` (around ``kb.answer``)."""
    stages: dict[str, list[float]] = defaultdict(list)
    for r in records:
        for stage, seconds in r.timings.items():
            stages[stage].append(seconds)
        stages["wall"].append(r.wall)
    return {stage: M.latency_summary(stages[stage]) for stage in sorted(stages, key=_stage_order)}


@dataclass
class AnswerResult:
    """One mode's answers: summaries and per-item records (``to_dict`` → results.json's ``answers[mode]``)."""

    mode: str
    items: list[AnswerRecord]

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "metrics": answer_metrics(self.items),
            "counts": answer_counts(self.items),
            "latency": stage_latency(self.items),
            "by_type": answers_by_type(self.items),
            "risk_coverage": risk_coverage(self.items),
            "failures": [r.failure() for r in self.items if not r.correct],
            "items": [r.to_dict() for r in self.items],
        }


def evaluate_answers(
    kb: KnowledgeBase,
    items: Sequence[GoldItem],
    gold: GoldParagraphs,
    mode: str,
    progress: bool = True,
) -> AnswerResult:
    """Answer every item in ``mode`` and score it; the summary, breakdown by type, failures, items."""
    bar = tqdm(items, desc=f"answers/{mode}", unit="q", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    return AnswerResult(mode, [answer_item(kb, item, gold[item.id], mode) for item in bar])
