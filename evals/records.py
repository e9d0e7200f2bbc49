"""Typed per-item records of an evaluation run.

The eval loops (``evals.retrieval``, ``evals.answers``) build these; ``to_dict()`` gives the
exact dicts ``results.json`` holds (same keys, same order), so a results file written before
this module existed diffs cleanly against one written after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evals import metrics as M


def format_unit(unit: M.Unit) -> str:
    """A ranked unit as results.json shows it: ``doc#n`` (``+``-joined for a chunk), ``-`` if empty."""
    return "+".join(f"{d}#{n}" for d, n in sorted(unit)) or "-"


@dataclass(frozen=True)
class RetrievalScore:
    """How one ranking did against the item's gold paragraphs (only for scored items)."""

    first_gold_rank: int | None
    scores: dict[str, float]  # hit@k, recall@k, mrr@10, ndcg@10 (``evals.metrics.retrieval_scores``)
    hit_curve: list[float]  # hit@1 .. hit@K


@dataclass(frozen=True)
class RetrievalRecord:
    """One retriever on one gold item."""

    id: str
    type: str
    query: str
    seconds: float
    ranking: list[str]  # ``format_unit`` of each ranked unit, best first
    context_chars_at_5: int
    paragraphs_at_5: int
    score: RetrievalScore | None = None  # None: not scored (unanswerable, or no gold paragraph)

    @property
    def scored(self) -> bool:
        return self.score is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "query": self.query,
            "seconds": self.seconds,
            "ranking": list(self.ranking),
            "context_chars@5": self.context_chars_at_5,
            "paragraphs@5": self.paragraphs_at_5,
            "scored": self.scored,
        }
        if self.score is not None:
            out["first_gold_rank"] = self.score.first_gold_rank
            out["scores"] = dict(self.score.scores)
            out["hit_curve"] = list(self.score.hit_curve)
        return out


@dataclass(frozen=True)
class AnswerRecord:
    """One gold item answered in one mode, and how the answer scored."""

    id: str
    type: str
    question: str
    history: list[dict[str, str]]
    standalone: str | None  # the question as the system rewrote it (None when it raised)
    answerable: bool
    abstained: bool
    answer: str  # the full answer text ("" when it raised)
    gold_answers: list[str]
    must_include: list[list[str]]
    must_include_ok: bool
    missing_groups: list[list[str]]
    exact_match: float | None  # None for unanswerable items
    f1: float | None
    cited: list[M.ParaId]  # sorted, distinct
    quotes: list[str]
    gold_paragraphs: list[M.ParaId]  # sorted
    timings: dict[str, float]
    wall: float
    error: str | None
    citation_precision: float | None = None  # None unless answered, answerable, with gold paragraphs
    citation_recall: float | None = None
    confidence: float | None = None  # Answer.confidence (None: the system gave none; ranked as 0)
    supports: list[float | None] = field(default_factory=list)  # each citation's support, in order
    grounding: str | None = None  # Answer.grounding: stated, closest, none (None when it raised)
    closest_quote: str | None = None  # on an abstention: the closest passage's quote
    closest_cited: M.ParaId | None = None  # and its paragraph
    correct: bool = field(init=False)
    correct_if_answered: bool = field(init=False)

    def __post_init__(self) -> None:
        correct = bool(self.must_include_ok) if self.answerable else bool(self.abstained)
        object.__setattr__(self, "correct", correct)
        object.__setattr__(self, "correct_if_answered", self._correct_if_answered())

    def _correct_if_answered(self) -> bool:
        """Whether the answer would be right if the system gave it: an answer given, as graded;
        an abstention's closest quote graded as the answer (must-include); answering an
        unanswerable question, an error, or an abstention with nothing close: wrong."""
        if self.error or not self.answerable:
            return False
        if not self.abstained:
            return bool(self.must_include_ok)
        return bool(self.closest_quote) and M.must_include_ok(self.closest_quote or "", self.must_include)

    @property
    def ranked_confidence(self) -> float:
        """The confidence the selective metrics rank by: a missing one counts as 0."""
        return 0.0 if self.confidence is None else float(self.confidence)

    @property
    def answered(self) -> bool:
        return not self.abstained and not self.error

    def failure_reason(self) -> str:
        if self.error:
            return f"error: {self.error}"
        if not self.answerable:
            return "answered an unanswerable question"
        if self.abstained:
            return "abstained on an answerable question"
        return "missing: " + "; ".join(" | ".join(g) for g in self.missing_groups)

    def failure(self) -> dict[str, Any]:
        """The failure entry of results.json (for an item that is not ``correct``)."""
        return {
            "id": self.id,
            "type": self.type,
            "reason": self.failure_reason(),
            "question": self.question,
            "standalone": self.standalone,
            "answer": self.answer,
            "gold_answers": self.gold_answers,
            "cited": [list(p) for p in self.cited],
            "gold_paragraphs": [list(p) for p in self.gold_paragraphs],
            "confidence": self.confidence,
            "closest_quote": self.closest_quote,
            "correct_if_answered": self.correct_if_answered,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "question": self.question,
            "history": self.history,
            "standalone": self.standalone,
            "answerable": self.answerable,
            "abstained": self.abstained,
            "answer": self.answer,
            "gold_answers": self.gold_answers,
            "must_include": self.must_include,
            "must_include_ok": self.must_include_ok,
            "missing_groups": self.missing_groups,
            "exact_match": self.exact_match,
            "f1": self.f1,
            "cited": [list(p) for p in self.cited],
            "quotes": self.quotes,
            "gold_paragraphs": [list(p) for p in self.gold_paragraphs],
            "timings": dict(self.timings),
            "wall": self.wall,
            "error": self.error,
            "citation_precision": self.citation_precision,
            "citation_recall": self.citation_recall,
            "correct": self.correct,
            "confidence": self.confidence,
            "supports": list(self.supports),
            "grounding": self.grounding,
            "closest_quote": self.closest_quote,
            "closest_cited": list(self.closest_cited) if self.closest_cited is not None else None,
            "correct_if_answered": self.correct_if_answered,
        }
