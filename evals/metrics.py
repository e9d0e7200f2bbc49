"""Pure scoring functions for the evaluation (no model, no index, no I/O).

Retrieval is scored at *paragraph* level, in the spirit of sentence-transformers'
``InformationRetrievalEvaluator``:

- a gold quote is located in its file; the gold paragraphs are the paragraphs whose
  ``[start, end)`` contains the quote's span, or, for a quote that crosses a paragraph break,
  the paragraphs holding a substantial share of it (see :func:`relevant_paragraphs`);
- a *ranking* is a list of ranked units, each a set of paragraph ids ``(doc_id, number)``.
  A retrieved paragraph is a one-element set; a chunk of a baseline splitter is the set of
  paragraphs its character span overlaps, and it counts as hitting every gold paragraph in it;
- duplicate units (the same set of paragraphs) are removed, keeping the first.

Answers are scored on the answer text with citation markers removed: must-include accuracy
(every group present, any alternative, case-insensitive, numbers as digits or words), and
SQuAD exact match / token F1 (max over the gold aliases).
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

ParaId = tuple[str, int]  # (doc_id, paragraph number)
Unit = frozenset[ParaId]  # one ranked unit: a paragraph, or the paragraphs a chunk overlaps

#: A quote crossing paragraphs is relevant to each paragraph holding at least this share of it.
SPAN_OVERLAP_SHARE = 0.25


# --- gold paragraphs -----------------------------------------------------------------------


def locate_quote(text: str, quote: str) -> tuple[int, int] | None:
    """``(start, end)`` of the first occurrence of ``quote`` in ``text``; None when absent."""
    if not quote:
        return None
    start = text.find(quote)
    return None if start < 0 else (start, start + len(quote))


def relevant_paragraphs(
    span: tuple[int, int], paragraphs: Iterable[tuple[int, int, int]], min_share: float = SPAN_OVERLAP_SHARE
) -> set[int]:
    """Numbers of the paragraphs ``(number, start, end)`` that a quote span ``[start, end)`` lies in.

    A paragraph containing the whole span is the answer. When none does (the quote crosses a
    paragraph break), every paragraph overlapping at least ``min_share`` of the quote counts, and
    at least the one with the largest overlap. A quote outside every paragraph (the title or the
    dateline) has no gold paragraph: the empty set.
    """
    start, end = span
    paragraphs = list(paragraphs)
    inside = {number for number, p_start, p_end in paragraphs if p_start <= start and end <= p_end}
    if inside:
        return inside
    length = max(end - start, 1)
    overlaps = {number: min(end, p_end) - max(start, p_start) for number, p_start, p_end in paragraphs}
    overlaps = {n: o for n, o in overlaps.items() if o > 0}
    if not overlaps:
        return set()
    chosen = {n for n, o in overlaps.items() if o / length >= min_share}
    chosen.add(max(overlaps, key=lambda n: (overlaps[n], -n)))
    return chosen


def chunk_paragraphs(doc_id: str, chunk_start: int, chunk_end: int, paragraphs: Iterable[tuple[int, int, int]]) -> Unit:
    """The paragraphs ``(number, start, end)`` of ``doc_id`` that a chunk's span overlaps."""
    return frozenset(
        (doc_id, number) for number, p_start, p_end in paragraphs if min(chunk_end, p_end) > max(chunk_start, p_start)
    )


# --- rankings ------------------------------------------------------------------------------


def as_units(ranking: Iterable[ParaId | Iterable[ParaId]]) -> list[Unit]:
    """Normalise a ranking: a paragraph id becomes a one-element unit, a collection a unit."""
    units: list[Unit] = []
    for entry in ranking:
        if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str) and isinstance(entry[1], int):
            units.append(frozenset([entry]))
        else:
            units.append(frozenset(entry))  # type: ignore[arg-type]
    return units


def dedupe(ranking: Iterable[ParaId | Iterable[ParaId]]) -> list[Unit]:
    """Drop repeated units (same paragraph set), keeping the first; empty units are kept.

    An empty unit (a chunk that covers no paragraph, e.g. only the title) still takes a rank.
    """
    seen: set[Unit] = set()
    out: list[Unit] = []
    for unit in as_units(ranking):
        if unit and unit in seen:
            continue
        seen.add(unit)
        out.append(unit)
    return out


def _covered(ranking: Sequence[Unit], k: int) -> set[ParaId]:
    covered: set[ParaId] = set()
    for unit in ranking[:k]:
        covered |= unit
    return covered


def hit_at_k(ranking: Iterable[ParaId | Iterable[ParaId]], gold: Iterable[ParaId], k: int) -> float:
    """1.0 when any of the first ``k`` units holds a gold paragraph, else 0.0."""
    gold = set(gold)
    return 1.0 if gold & _covered(dedupe(ranking), k) else 0.0


def recall_at_k(ranking: Iterable[ParaId | Iterable[ParaId]], gold: Iterable[ParaId], k: int) -> float:
    """Share of the gold paragraphs found in the first ``k`` units (0.0 without gold)."""
    gold = set(gold)
    if not gold:
        return 0.0
    return len(gold & _covered(dedupe(ranking), k)) / len(gold)


def first_relevant_rank(ranking: Iterable[ParaId | Iterable[ParaId]], gold: Iterable[ParaId]) -> int | None:
    """1-based rank of the first unit holding a gold paragraph (after dedupe), or None."""
    gold = set(gold)
    for rank, unit in enumerate(dedupe(ranking), start=1):
        if unit & gold:
            return rank
    return None


def reciprocal_rank(ranking: Iterable[ParaId | Iterable[ParaId]], gold: Iterable[ParaId], k: int = 10) -> float:
    """1/rank of the first relevant unit within the first ``k`` (MRR@k once averaged)."""
    rank = first_relevant_rank(ranking, gold)
    return 1.0 / rank if rank is not None and rank <= k else 0.0


def ndcg_at_k(ranking: Iterable[ParaId | Iterable[ParaId]], gold: Iterable[ParaId], k: int = 10) -> float:
    """nDCG@k with binary gains.

    A unit gains 1 when it holds a gold paragraph not already found higher up (so a paragraph
    is credited once); the ideal DCG puts ``min(k, number of gold paragraphs)`` gains on top.
    """
    gold = set(gold)
    if not gold:
        return 0.0
    found: set[ParaId] = set()
    dcg = 0.0
    for i, unit in enumerate(dedupe(ranking)[:k], start=1):
        new = (unit & gold) - found
        if new:
            dcg += 1.0 / math.log2(i + 1)
            found |= new
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(k, len(gold)) + 1))
    return dcg / ideal


def retrieval_scores(
    ranking: Iterable[ParaId | Iterable[ParaId]], gold: Iterable[ParaId], ks: Sequence[int] = (1, 3, 5, 10)
) -> dict[str, float]:
    """Every retrieval metric of one query: hit@k, recall@k for ``ks``, mrr@10 and ndcg@10."""
    units = dedupe(ranking)
    gold = set(gold)
    scores: dict[str, float] = {}
    for k in ks:
        scores[f"hit@{k}"] = hit_at_k(units, gold, k)
    for k in ks:
        scores[f"recall@{k}"] = recall_at_k(units, gold, k)
    scores["mrr@10"] = reciprocal_rank(units, gold, 10)
    scores["ndcg@10"] = ndcg_at_k(units, gold, 10)
    return scores


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not None; None when there are none."""
    kept = [float(v) for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def mean_scores(rows: Sequence[Mapping[str, float | None]]) -> dict[str, float | None]:
    """Per-key mean over rows (keys of the first row; None values skipped)."""
    if not rows:
        return {}
    return {key: mean(row.get(key) for row in rows) for key in rows[0]}


# --- answer text ---------------------------------------------------------------------------

_MARKER = re.compile(r"\s*\[(?:\d+(?:\s*[,;–-]\s*\d+)*|unsupported)\]", re.I)


def strip_citations(text: str) -> str:
    """The answer text without ``[n]``, ``[1, 2]`` or ``[unsupported]`` markers."""
    return re.sub(r"\s+", " ", _MARKER.sub("", text)).strip()


_UNITS = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ]
    )
}
_TENS = {
    w: 10 * i
    for i, w in enumerate(["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"], start=2)
}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_NUMBER_WORD = r"(?:" + "|".join(sorted([*_UNITS, *_TENS, *_SCALES], key=len, reverse=True)) + r")"
_NUMBER_RUN = re.compile(
    rf"\b{_NUMBER_WORD}(?:(?:\s+and\s+|[\s-]+){_NUMBER_WORD})*\b",
    re.I,
)
_DIGIT_SCALE = re.compile(r"\b(\d+(?:\.\d+)?)\s+(hundred|thousand|million|billion)\b", re.I)
_THOUSANDS = re.compile(r"\b\d{1,3}(?:,\d{3})+\b")


def _words_to_int(words: Sequence[str]) -> int:
    total, current = 0, 0
    for word in words:
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = (current or 1) * 100
        else:  # thousand, million, billion
            total += (current or 1) * _SCALES[word]
            current = 0
    return total + current


def normalize_numbers(text: str) -> str:
    """Lower-case text with numbers as plain digits.

    "six" → "6", "thirty-seven" → "37", "one hundred" → "100", "1,000" → "1000",
    "2 million" → "2000000".
    """
    text = text.lower()
    text = _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), text)

    def words(match: re.Match[str]) -> str:
        parts = [w for w in re.split(r"[\s-]+", match.group(0)) if w and w != "and"]
        return str(_words_to_int(parts))

    def digit_scale(match: re.Match[str]) -> str:
        value = float(match.group(1)) * _SCALES[match.group(2)]
        return str(int(value)) if value.is_integer() else match.group(0)

    text = _DIGIT_SCALE.sub(digit_scale, text)  # "2 million" before "million" alone becomes digits
    return _NUMBER_RUN.sub(words, text)


_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-", "\u00a0": " "})


def _simplify(text: str) -> str:
    return re.sub(r"\s+", " ", text.translate(_QUOTES).lower()).strip()


def _contains(haystack: str, needle: str) -> bool:
    """Case-folded substring match; a needle starting/ending with a digit must not touch more digits.

    So "7" is not found in "2017", but "livelihood" is found in "livelihoods".
    """
    if not needle:
        return False
    pattern = re.escape(needle)
    if needle[0].isdigit():
        pattern = r"(?<!\d)" + pattern
    if needle[-1].isdigit():
        pattern += r"(?!\d)"
    return re.search(pattern, haystack) is not None


def phrase_present(text: str, phrase: str) -> bool:
    """Whether ``phrase`` occurs in ``text``: case-insensitive, numbers as digits or words."""
    text_s, phrase_s = _simplify(text), _simplify(phrase)
    if _contains(text_s, phrase_s):
        return True
    return _contains(normalize_numbers(text_s), normalize_numbers(phrase_s))


def must_include_ok(text: str, groups: Sequence[Sequence[str]]) -> bool:
    """True when every group has at least one alternative present in ``text`` (markers removed).

    No groups means nothing can be checked: False (an unanswerable item has no groups).
    """
    if not groups:
        return False
    clean = strip_citations(text)
    return all(any(phrase_present(clean, alt) for alt in group) for group in groups)


# SQuAD v1.1 normalisation (the official evaluate script): lower, drop punctuation and articles.
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def squad_normalize(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """SQuAD exact match (1.0/0.0), the best over ``answers``; markers removed first."""
    if not answers:
        return 0.0
    pred = squad_normalize(strip_citations(prediction))
    return max(1.0 if pred == squad_normalize(a) else 0.0 for a in answers)


def _f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    if not pred_tokens or not gold_tokens:
        return 1.0 if pred_tokens == gold_tokens else 0.0
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    """SQuAD token F1, the best over ``answers``; markers removed first."""
    if not answers:
        return 0.0
    pred = squad_normalize(strip_citations(prediction)).split()
    return max(_f1(pred, squad_normalize(a).split()) for a in answers)


# --- citations -----------------------------------------------------------------------------


def citation_precision(cited: Iterable[ParaId], gold: Iterable[ParaId]) -> float | None:
    """Share of cited paragraphs that hold a gold quote; None when nothing is cited."""
    cited, gold = set(cited), set(gold)
    return len(cited & gold) / len(cited) if cited else None


def citation_recall(cited: Iterable[ParaId], gold: Iterable[ParaId]) -> float | None:
    """Share of gold paragraphs that are cited; None when there is no gold paragraph."""
    cited, gold = set(cited), set(gold)
    return len(cited & gold) / len(gold) if gold else None


# --- abstention ----------------------------------------------------------------------------


def abstention_scores(records: Iterable[tuple[bool, bool]]) -> dict[str, float | None]:
    """From ``(abstained, answerable)`` pairs.

    - precision: abstained and unanswerable / abstained (None when nothing was abstained on)
    - recall: abstained and unanswerable / unanswerable (None without unanswerable items)
    - coverage: answered / all
    - false_abstention_rate: abstained and answerable / answerable (None without answerable items)
    """
    records = list(records)
    abstained = sum(1 for a, _ in records if a)
    unanswerable = sum(1 for _, ok in records if not ok)
    answerable = len(records) - unanswerable
    correct = sum(1 for a, ok in records if a and not ok)
    false = sum(1 for a, ok in records if a and ok)
    return {
        "precision": correct / abstained if abstained else None,
        "recall": correct / unanswerable if unanswerable else None,
        "coverage": (len(records) - abstained) / len(records) if records else None,
        "false_abstention_rate": false / answerable if answerable else None,
    }


# --- selective answering: confidence ranked against correctness ------------------------------
#
# Each item is ``(confidence, correct_if_answered)``: the system's confidence (None counts as 0)
# and whether its answer would be right if it were given (``evals.records.AnswerRecord``).
# Answering only the most confident items trades coverage for risk.

#: The coverages at which the accuracy of the most confident answers is reported.
SELECTIVE_COVERAGES = (0.8, 0.9)


def risk_coverage_curve(items: Iterable[tuple[float | None, bool]]) -> list[tuple[float, float]]:
    """``(coverage, risk)`` when answering the ``i`` most confident items, for i = 1..n.

    Coverage is i/n; risk is 1 − accuracy among those i. Items are sorted by confidence,
    highest first. Items of equal confidence cannot be told apart by the system, so within a
    tie the curve takes the expected risk over their orders: the tied items' accuracy is spread
    evenly over them (so the curve never depends on the input order).
    """
    scored = sorted(((0.0 if c is None else float(c), bool(ok)) for c, ok in items), key=lambda x: -x[0])
    n = len(scored)
    curve: list[tuple[float, float]] = []
    correct_before, i = 0.0, 0
    while i < n:
        j = i
        while j < n and scored[j][0] == scored[i][0]:
            j += 1
        block_accuracy = sum(ok for _, ok in scored[i:j]) / (j - i)
        for taken in range(i + 1, j + 1):
            correct = correct_before + (taken - i) * block_accuracy
            curve.append((taken / n, 1.0 - correct / taken))
        correct_before += block_accuracy * (j - i)
        i = j
    return curve


def aurc(items: Iterable[tuple[float | None, bool]]) -> float | None:
    """The area under the risk–coverage curve: the mean risk over the n coverage points i/n
    (lower is better; None without items)."""
    curve = risk_coverage_curve(items)
    return mean(risk for _, risk in curve)


def oracle_aurc(items: Iterable[tuple[float | None, bool]]) -> float | None:
    """The AURC of a perfect ranking of the same answers (all right ones first): the floor the
    confidence could reach with these answers."""
    items = list(items)
    return aurc((1.0 if ok else 0.0, ok) for _, ok in items)


def accuracy_at_coverage(items: Iterable[tuple[float | None, bool]], coverage: float) -> float | None:
    """Accuracy of the ``ceil(coverage · n)`` most confident items (ties as in ``risk_coverage_curve``)."""
    if not 0 < coverage <= 1:
        raise ValueError("coverage must be in (0, 1]")
    curve = risk_coverage_curve(items)
    if not curve:
        return None
    taken = max(1, math.ceil(coverage * len(curve) - 1e-9))
    return 1.0 - curve[taken - 1][1]


def selective_scores(
    items: Iterable[tuple[float | None, bool]], coverages: Sequence[float] = SELECTIVE_COVERAGES
) -> dict[str, float | None]:
    """AURC, its oracle floor and the accuracy at each coverage in ``coverages`` (``accuracy@80%``)."""
    items = list(items)
    scores: dict[str, float | None] = {"aurc": aurc(items), "aurc_oracle": oracle_aurc(items)}
    for c in coverages:
        scores[f"accuracy@{round(c * 100)}%"] = accuracy_at_coverage(items, c) if items else None
    return scores


def decision_risk(records: Iterable[tuple[bool, bool]]) -> float | None:
    """The risk at the system's own decisions, from ``(abstained, correct_if_answered)`` pairs:
    the share of the answers it gave that are wrong (None when it answered nothing)."""
    answered = [ok for abstained, ok in records if not abstained]
    return 1.0 - sum(answered) / len(answered) if answered else None


# --- latency -------------------------------------------------------------------------------
# The one latency summary of evals/: the eval's per-stage latencies, evals.bench and
# evals.scale_bench all go through ``percentile`` / ``latency_summary``.


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) with linear interpolation (``numpy.percentile``); None if empty."""
    data = np.asarray([float(v) for v in values], dtype=np.float64)
    if not data.size:
        return None
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    return float(np.percentile(data, q))


def latency_summary(values: Iterable[float]) -> dict[str, float | int | None]:
    """n, p50, p95 and mean of a list of durations (in the values' own unit)."""
    data = [float(v) for v in values]
    return {"n": len(data), "p50": percentile(data, 50), "p95": percentile(data, 95), "mean": mean(data)}


def latency_ms(seconds: Iterable[float], digits: int = 3) -> dict[str, float | int | None]:
    """n, p50_ms, p95_ms, mean_ms and max_ms of durations in seconds, in milliseconds rounded to ``digits``."""
    ms = [float(s) * 1000 for s in seconds]
    summary = latency_summary(ms)

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, digits)

    return {
        "n": summary["n"],
        "p50_ms": rounded(summary["p50"]),
        "p95_ms": rounded(summary["p95"]),
        "mean_ms": rounded(summary["mean"]),
        "max_ms": rounded(max(ms, default=None)),
    }
