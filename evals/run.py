"""Run the system on a gold Q&A file and score retrieval, answers, citations, abstention, latency.

    python -m evals.run [--gold FILE] [--corpus DIR] [--index DIR] [--mode all|extractive|llm|none]
                        [--out DIR] [--limit N] [--no-baseline] [--write-baseline] [--check-baseline]
    rag eval ...        (the same, through the project's CLI)

Retrievers compared (all scored at paragraph level, see ``evals.metrics``):

- ``hybrid``: the project's search (``kb.search``) on the question as the system sees it:
  follow-ups are first rewritten with ``rag.followup.rewrite_followup`` (what ``kb.answer`` does);
- ``hybrid_raw``: the same search on the raw question (only when the gold set has follow-ups),
  to separate the rewrite's effect from the fusion's;
- ``dense`` / ``bm25``: the searcher's single-signal rankings, on the raw question;
- ``langchain``: the stock pipeline a user would otherwise build: each file's full text split by
  ``RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True)``,
  embedded by the same embedder, searched in a ``faiss.IndexFlatIP`` over normalized vectors,
  on the raw question. A chunk is mapped to every paragraph its character span overlaps and
  counts as hitting each gold paragraph among them (k counts chunks, not paragraphs).

Answers: ``kb.answer(question, history, mode)`` for each mode; the LangChain baseline has no
answerer and is not scored on answers. Writes ``results.json``, ``report.md`` and PNG plots to
``--out`` and prints a summary table. Exit status: 0 ok, 1 below the committed baseline (with
``--check-baseline``), 2 bad input (gold file, corpus, mode).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from evals import metrics as M
from evals.gold import DEFAULT_CORPUS, DEFAULT_GOLD, REPO_ROOT, GoldItem, load_gold, validate_gold

if TYPE_CHECKING:
    from rag.knowledge import KnowledgeBase

K = 10  # depth of every retrieved list (MRR@10, nDCG@10)
KS = (1, 3, 5, 10)
ANSWER_MODES = ("extractive", "llm")
RETRIEVERS = ("hybrid", "hybrid_raw", "dense", "bm25", "langchain")
RETRIEVER_LABELS = {
    "hybrid": "hybrid (kb.search, follow-ups rewritten)",
    "hybrid_raw": "hybrid, raw question (no rewrite)",
    "dense": "dense only (raw question)",
    "bm25": "BM25 only (raw question)",
    "langchain": "LangChain stock: 1000/200 chunks + FAISS (raw question)",
}
EXIT_OK, EXIT_BELOW_BASELINE, EXIT_BAD_INPUT = 0, 1, 2


class EvalInputError(ValueError):
    """Bad evaluation input (modes, gold file, corpus): reported in one clear message, exit 2."""


# --- gold paragraphs -----------------------------------------------------------------------


def read_source(path: Path) -> str:
    """A corpus file decoded the way the parser does (UTF-8, newlines untouched), so offsets agree."""
    return path.read_bytes().decode("utf-8")


def gold_paragraphs(
    item: GoldItem, kb: KnowledgeBase, corpus_dir: Path, cache: dict[str, str]
) -> tuple[set[M.ParaId], list[str]]:
    """The item's gold paragraphs and notes on quotes that map to no paragraph."""
    articles = kb.searcher.index.articles
    gold: set[M.ParaId] = set()
    notes: list[str] = []
    for src in item.sources:
        article = articles.get(src.file)
        if article is None:
            notes.append(f"{src.file}: not in the index")
            continue
        if src.file not in cache:
            cache[src.file] = read_source(corpus_dir / src.file)
        span = M.locate_quote(cache[src.file], src.quote)
        paragraphs = [(p.number, p.start, p.end) for p in article.paragraphs]
        if span is None:  # e.g. CRLF files: fall back to the paragraph texts
            found = {p.number for p in article.paragraphs if src.quote in p.text}
            if not found:
                notes.append(f"{src.file}: quote not found: {src.quote[:60]!r}")
            gold |= {(src.file, n) for n in found}
            continue
        numbers = M.relevant_paragraphs(span, paragraphs)
        if not numbers:
            notes.append(f"{src.file}: quote outside every paragraph (title/dateline): {src.quote[:60]!r}")
        gold |= {(src.file, n) for n in numbers}
    return gold, notes


# --- the stock LangChain baseline ----------------------------------------------------------


@dataclass(frozen=True)
class BaselineChunk:
    doc_id: str
    start: int
    end: int
    text: str
    paragraphs: M.Unit


class LangChainBaseline:
    """What users would build with stock parts: recursive 1000/200 chunks, FAISS inner product.

    Same embedder as the system; chunks come from each indexed file's full text; a chunk maps to
    every paragraph (of the system's parse) its ``[start_index, start_index + len)`` span overlaps.
    """

    chunk_size = 1000
    chunk_overlap = 200

    def __init__(self, kb: KnowledgeBase, corpus_dir: Path) -> None:
        import faiss
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(
            chunk_size=self.chunk_size, chunk_overlap=self.chunk_overlap, add_start_index=True
        )
        self.chunks: list[BaselineChunk] = []
        for doc_id, article in kb.searcher.index.articles.items():
            text = read_source(corpus_dir / doc_id)
            paragraphs = [(p.number, p.start, p.end) for p in article.paragraphs]
            for doc in splitter.create_documents([text], metadatas=[{"source": doc_id}]):
                start = int(doc.metadata.get("start_index", -1))
                if start < 0:
                    start = max(text.find(doc.page_content), 0)
                end = start + len(doc.page_content)
                unit = M.chunk_paragraphs(doc_id, start, end, paragraphs)
                self.chunks.append(BaselineChunk(doc_id, start, end, doc.page_content, unit))
        self.embedder = kb.embedder
        vectors = np.asarray(self.embedder.embed_documents([c.text for c in self.chunks]), dtype=np.float32)
        faiss.normalize_L2(vectors)
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)

    def search(self, query: str, k: int) -> list[BaselineChunk]:
        import faiss

        vec = np.asarray([self.embedder.embed_query(query)], dtype=np.float32)
        faiss.normalize_L2(vec)
        _, ids = self.index.search(vec, min(k, len(self.chunks)))
        return [self.chunks[i] for i in ids[0] if i >= 0]

    def describe(self) -> dict[str, Any]:
        sizes = [len(c.paragraphs) for c in self.chunks]
        return {
            "chunks": len(self.chunks),
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "mean_chars_per_chunk": float(np.mean([len(c.text) for c in self.chunks])) if self.chunks else 0.0,
            "mean_paragraphs_per_chunk": float(np.mean(sizes)) if sizes else 0.0,
        }


# --- evaluation ----------------------------------------------------------------------------


def parse_modes(spec: str | None) -> list[str]:
    """``all`` → extractive + llm; ``none`` → nothing; else a comma-separated list."""
    parts = [p.strip().lower() for p in (spec or "all").split(",") if p.strip()]
    modes: list[str] = []
    for part in parts:
        if part == "all":
            modes += [m for m in ANSWER_MODES if m not in modes]
        elif part == "none":
            continue
        elif part in ANSWER_MODES:
            if part not in modes:
                modes.append(part)
        else:
            raise EvalInputError(f"unknown --mode {part!r}: use all, extractive, llm or none (comma-separated)")
    if "none" in parts and modes:
        raise EvalInputError("--mode none cannot be combined with answer modes")
    return modes


def _retrieval_functions(kb: KnowledgeBase, retrievers: Sequence[str], baseline: LangChainBaseline | None):
    from rag.followup import rewrite_followup

    def paragraphs(hits) -> tuple[list[M.Unit], list[int]]:
        return [frozenset([(h.doc_id, h.paragraph)]) for h in hits], [len(h.text) for h in hits]

    def chunks(found: list[BaselineChunk]) -> tuple[list[M.Unit], list[int]]:
        return [c.paragraphs for c in found], [len(c.text) for c in found]

    funcs: dict[str, Callable[[GoldItem], tuple[str, list[M.Unit], list[int]]]] = {
        "hybrid": lambda it: (q := rewrite_followup(it.question, it.history), *paragraphs(kb.search(q, K))),
        "hybrid_raw": lambda it: (it.question, *paragraphs(kb.search(it.question, K))),
        "dense": lambda it: (it.question, *paragraphs(kb.searcher.dense_search(it.question, K))),
        "bm25": lambda it: (it.question, *paragraphs(kb.searcher.bm25_search(it.question, K))),
    }
    if baseline is not None:
        funcs["langchain"] = lambda it: (it.question, *chunks(baseline.search(it.question, K)))
    return {name: funcs[name] for name in retrievers if name in funcs}


def evaluate_retrieval(
    kb: KnowledgeBase,
    items: Sequence[GoldItem],
    gold: dict[str, set[M.ParaId]],
    retrievers: Sequence[str],
    baseline: LangChainBaseline | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Per retriever: mean metrics over items with gold paragraphs, by type, latency, per item."""
    funcs = _retrieval_functions(kb, retrievers, baseline)
    per_item: dict[str, list[dict[str, Any]]] = {name: [] for name in funcs}
    for name in funcs:  # warm up (first query loads/compiles things; keep it out of the latency)
        funcs[name](items[0])
    bar = tqdm(items, desc="retrieval", unit="q", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    for item in bar:
        scored = bool(gold[item.id]) and item.answerable
        for name, func in funcs.items():
            if name == "hybrid_raw" and not item.history and per_item.get("hybrid"):
                # without history nothing is rewritten: the same query as hybrid, so reuse its ranking
                per_item[name].append(dict(per_item["hybrid"][-1]))
                continue
            t0 = time.perf_counter()
            query, units, chars = func(item)
            seconds = time.perf_counter() - t0
            units = M.dedupe(units)
            record: dict[str, Any] = {
                "id": item.id,
                "type": item.type,
                "query": query,
                "seconds": seconds,
                "ranking": ["+".join(f"{d}#{n}" for d, n in sorted(u)) or "-" for u in units],
                "context_chars@5": sum(chars[:5]),
                "paragraphs@5": len(set().union(*units[:5])) if units else 0,
                "scored": scored,
            }
            if scored:
                record["first_gold_rank"] = M.first_relevant_rank(units, gold[item.id])
                record["scores"] = M.retrieval_scores(units, gold[item.id], KS)
                record["hit_curve"] = [M.hit_at_k(units, gold[item.id], k) for k in range(1, K + 1)]
            per_item[name].append(record)

    summary: dict[str, Any] = {}
    for name, records in per_item.items():
        scored = [r for r in records if r["scored"]]
        by_type: dict[str, list[dict[str, float]]] = defaultdict(list)
        for r in scored:
            by_type[r["type"]].append(r["scores"])
        summary[name] = {
            "label": RETRIEVER_LABELS[name],
            "n": len(scored),
            "metrics": M.mean_scores([r["scores"] for r in scored]),
            "hit_curve": [M.mean(r["hit_curve"][k] for r in scored) for k in range(K)],
            "by_type": {t: {"n": len(rows), **M.mean_scores(rows)} for t, rows in sorted(by_type.items())},
            "latency": M.latency_summary(r["seconds"] for r in records),
            "mean_context_chars@5": M.mean(r["context_chars@5"] for r in records),
            "mean_paragraphs@5": M.mean(r["paragraphs@5"] for r in records),
        }
    return {"summary": summary, "items": per_item}


STAGES = ("rewrite", "retrieve", "score_sentences", "answer", "llm_first_token", "llm", "verify", "total", "wall")


def _stage_order(stage: str) -> tuple[int, str]:
    """Pipeline order for the known stages (``wall`` = measured around ``kb.answer``), others after."""
    return (STAGES.index(stage) if stage in STAGES else len(STAGES) - 2, stage)


def _is_correct(rec: dict[str, Any]) -> bool:
    if rec["answerable"]:
        return bool(rec["must_include_ok"])
    return bool(rec["abstained"])


def _failure_reason(rec: dict[str, Any]) -> str:
    if rec.get("error"):
        return f"error: {rec['error']}"
    if not rec["answerable"]:
        return "answered an unanswerable question"
    if rec["abstained"]:
        return "abstained on an answerable question"
    return "missing: " + "; ".join(" | ".join(g) for g in rec["missing_groups"])


def evaluate_answers(
    kb: KnowledgeBase,
    items: Sequence[GoldItem],
    gold: dict[str, set[M.ParaId]],
    mode: str,
    progress: bool = True,
) -> dict[str, Any]:
    """Answer every item in ``mode`` and score it; the summary, breakdown by type, failures, items."""
    records: list[dict[str, Any]] = []
    bar = tqdm(items, desc=f"answers/{mode}", unit="q", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    for item in bar:
        t0 = time.perf_counter()
        error = None
        try:
            answer = kb.answer(item.question, item.history or None, mode=mode)
        except Exception as exc:  # one bad item must not hide the other 200
            answer, error = None, f"{type(exc).__name__}: {exc}"
        wall = time.perf_counter() - t0
        abstained = bool(answer.abstained) if answer else False
        text = answer.text if answer and not abstained else ""
        cited = sorted({(c.doc_id, c.paragraph) for c in answer.citations}) if answer else []
        gold_par = gold[item.id]
        groups_missing = [
            g for g in item.must_include if not any(M.phrase_present(M.strip_citations(text), a) for a in g)
        ]
        rec: dict[str, Any] = {
            "id": item.id,
            "type": item.type,
            "question": item.question,
            "history": item.history,
            "standalone": answer.standalone_question if answer else None,
            "answerable": item.answerable,
            "abstained": abstained,
            "answer": answer.text if answer else "",
            "gold_answers": item.answers,
            "must_include": item.must_include,
            "must_include_ok": bool(item.answerable and text and M.must_include_ok(text, item.must_include)),
            "missing_groups": groups_missing,
            "exact_match": M.exact_match(text, item.answers) if item.answerable else None,
            "f1": M.token_f1(text, item.answers) if item.answerable else None,
            "cited": [list(p) for p in cited],
            "quotes": [c.quote for c in answer.citations] if answer else [],
            "gold_paragraphs": sorted([d, n] for d, n in gold_par),
            "timings": dict(answer.timings) if answer else {},
            "wall": wall,
            "error": error,
        }
        has_gold = item.answerable and bool(gold_par)
        answered = not abstained and error is None
        rec["citation_precision"] = M.citation_precision(cited, gold_par) if has_gold and answered else None
        rec["citation_recall"] = M.citation_recall(cited, gold_par) if has_gold and answered else None
        rec["correct"] = _is_correct(rec)
        records.append(rec)

    answerable = [r for r in records if r["answerable"]]
    answered_answerable = [r for r in answerable if not r["abstained"] and not r["error"]]
    abst = M.abstention_scores((r["abstained"], r["answerable"]) for r in records)
    stages: dict[str, list[float]] = defaultdict(list)
    for r in records:
        for stage, seconds in r["timings"].items():
            stages[stage].append(seconds)
        stages["wall"].append(r["wall"])
    metrics = {
        "accuracy": M.mean(float(r["must_include_ok"]) for r in answerable),
        "accuracy_when_answered": M.mean(float(r["must_include_ok"]) for r in answered_answerable),
        "exact_match": M.mean(r["exact_match"] for r in answerable),
        "f1": M.mean(r["f1"] for r in answerable),
        "correct": M.mean(float(r["correct"]) for r in records),
        "citation_precision": M.mean(r["citation_precision"] for r in records),
        "citation_recall": M.mean(r["citation_recall"] for r in records),
        "abstention_precision": abst["precision"],
        "abstention_recall": abst["recall"],
        "coverage": abst["coverage"],
        "false_abstention_rate": abst["false_abstention_rate"],
    }
    counts = {
        "items": len(records),
        "answerable": len(answerable),
        "unanswerable": len(records) - len(answerable),
        "answered_answerable": len(answered_answerable),
        "with_citation_precision": sum(r["citation_precision"] is not None for r in records),
        "with_citation_recall": sum(r["citation_recall"] is not None for r in records),
        "abstained": sum(r["abstained"] for r in records),
        "errors": sum(bool(r["error"]) for r in records),
    }
    by_type: dict[str, dict[str, Any]] = {}
    for t in sorted({r["type"] for r in records}):
        rows = [r for r in records if r["type"] == t]
        ans_rows = [r for r in rows if r["answerable"]]
        by_type[t] = {
            "n": len(rows),
            "correct": M.mean(float(r["correct"]) for r in rows),
            "accuracy": M.mean(float(r["must_include_ok"]) for r in ans_rows),
            "f1": M.mean(r["f1"] for r in ans_rows),
            "abstained": M.mean(float(r["abstained"]) for r in rows),
            "citation_precision": M.mean(r["citation_precision"] for r in rows),
        }
    failures = [
        {
            "id": r["id"],
            "type": r["type"],
            "reason": _failure_reason(r),
            "question": r["question"],
            "standalone": r["standalone"],
            "answer": r["answer"],
            "gold_answers": r["gold_answers"],
            "cited": r["cited"],
            "gold_paragraphs": r["gold_paragraphs"],
        }
        for r in records
        if not r["correct"]
    ]
    return {
        "mode": mode,
        "metrics": metrics,
        "counts": counts,
        "latency": {stage: M.latency_summary(stages[stage]) for stage in sorted(stages, key=_stage_order)},
        "by_type": by_type,
        "failures": failures,
        "items": records,
    }


def evaluate(
    kb: KnowledgeBase,
    items: Sequence[GoldItem],
    *,
    corpus_dir: Path,
    modes: Sequence[str] = ("extractive",),
    retrievers: Sequence[str] = RETRIEVERS,
    progress: bool = True,
) -> dict[str, Any]:
    """The whole evaluation as one JSON-able dict (what ``results.json`` holds)."""
    if not items:
        raise EvalInputError("no gold items to evaluate")
    cache: dict[str, str] = {}
    gold: dict[str, set[M.ParaId]] = {}
    notes: dict[str, list[str]] = {}
    for item in items:
        gold[item.id], item_notes = gold_paragraphs(item, kb, corpus_dir, cache)
        if item_notes:
            notes[item.id] = item_notes
    excluded = sorted(i.id for i in items if i.answerable and not gold[i.id])
    retrievers = [r for r in retrievers if r != "hybrid_raw" or any(i.history for i in items)]
    baseline = LangChainBaseline(kb, corpus_dir) if "langchain" in retrievers else None
    started = time.perf_counter()
    retrieval = (
        evaluate_retrieval(kb, items, gold, retrievers, baseline, progress)
        if retrievers
        else {"summary": {}, "items": {}}
    )
    answers = {mode: evaluate_answers(kb, items, gold, mode, progress) for mode in modes}
    settings = kb.settings.model_dump(mode="json", exclude={"llm_api_key"})
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": _git_revision(),
        "config": {
            "items": len(items),
            "answerable": sum(i.answerable for i in items),
            "modes": list(modes),
            "retrievers": list(retrievers),
            "k": K,
            "settings": settings,
            "langchain_baseline": baseline.describe() if baseline else None,
            "seconds": time.perf_counter() - started,
        },
        "gold_notes": notes,
        "excluded_from_retrieval": excluded,
        "retrieval": retrieval,
        "answers": answers,
    }


def _git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


# --- report --------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.0f}"


def make_plots(results: dict[str, Any], out: Path) -> dict[str, str]:
    """PNG plots in ``out``; returns {name: file name}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files: dict[str, str] = {}
    summary = results["retrieval"]["summary"]
    if summary:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for name, s in summary.items():
            ax.plot(range(1, K + 1), s["hit_curve"], marker="o", label=name)
        ax.set_xlabel("k (paragraphs; chunks for langchain)")
        ax.set_ylabel("hit@k")
        ax.set_ylim(0, 1.02)
        ax.set_xticks(range(1, K + 1))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title("Retrieval: share of questions with a gold paragraph in the top k")
        fig.tight_layout()
        fig.savefig(out / "hit_at_k.png", dpi=110)
        plt.close(fig)
        files["hit_at_k"] = "hit_at_k.png"

        types = sorted({t for s in summary.values() for t in s["by_type"]})
        fig, ax = plt.subplots(figsize=(8, 4.2))
        width = 0.8 / max(len(summary), 1)
        for i, (name, s) in enumerate(summary.items()):
            values = [(s["by_type"].get(t) or {}).get("hit@5") or 0.0 for t in types]
            ax.bar(np.arange(len(types)) + i * width, values, width, label=name)
        ax.set_xticks(np.arange(len(types)) + width * (len(summary) - 1) / 2, types, rotation=20)
        ax.set_ylabel("hit@5")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7)
        ax.set_title("Retrieval hit@5 by question type")
        fig.tight_layout()
        fig.savefig(out / "retrieval_by_type.png", dpi=110)
        plt.close(fig)
        files["retrieval_by_type"] = "retrieval_by_type.png"

    answers = results["answers"]
    if answers:
        types = sorted({t for a in answers.values() for t in a["by_type"]})
        fig, ax = plt.subplots(figsize=(8, 4.2))
        width = 0.8 / len(answers)
        for i, (mode, a) in enumerate(answers.items()):
            values = [a["by_type"][t]["correct"] or 0.0 if t in a["by_type"] else 0.0 for t in types]
            ax.bar(np.arange(len(types)) + i * width, values, width, label=mode)
        ax.set_xticks(np.arange(len(types)) + width * (len(answers) - 1) / 2, types, rotation=20)
        ax.set_ylabel("correct (must-include; abstention for unanswerable)")
        ax.set_ylim(0, 1.05)
        ax.legend()
        ax.set_title("Answers: share correct by question type")
        fig.tight_layout()
        fig.savefig(out / "accuracy_by_type.png", dpi=110)
        plt.close(fig)
        files["accuracy_by_type"] = "accuracy_by_type.png"

    series: dict[str, list[float]] = {}
    for mode, a in answers.items():
        series[f"answer/{mode} total"] = [r["timings"].get("total", r["wall"]) * 1000 for r in a["items"]]
    for name, records in results["retrieval"]["items"].items():
        if name in ("hybrid", "dense", "bm25", "langchain"):
            series[f"retrieve/{name}"] = [r["seconds"] * 1000 for r in records]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    values = [v for vs in series.values() for v in vs]
    if values:
        bins = np.linspace(0, max(values) * 1.001 + 1e-9, 40)
        for label, vs in series.items():
            ax.hist(vs, bins=bins, alpha=0.5, label=label, histtype="stepfilled")
        ax.set_xlabel("milliseconds")
        ax.set_ylabel("questions")
        ax.legend(fontsize=8)
        ax.set_title("Latency per question")
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=110)
        files["latency"] = "latency.png"
    plt.close(fig)
    return files


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return lines


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


RETRIEVAL_COLUMNS = ("hit@1", "hit@3", "hit@5", "hit@10", "recall@5", "mrr@10", "ndcg@10")
ANSWER_COLUMNS = (
    "accuracy",
    "exact_match",
    "f1",
    "correct",
    "citation_precision",
    "citation_recall",
    "abstention_precision",
    "abstention_recall",
    "coverage",
    "false_abstention_rate",
)


def render_report(results: dict[str, Any], plots: dict[str, str], baseline_lines: Sequence[str] = ()) -> str:
    cfg = results["config"]
    lines = [
        "# RAG evaluation report",
        "",
        f"- created {results['created']}, git `{results['git']}`; gold `{cfg.get('gold')}` "
        f"({cfg['items']} items, {cfg['answerable']} answerable), corpus `{cfg.get('corpus')}`",
        f"- answer modes: {', '.join(cfg['modes']) or 'none (retrieval only)'}; retrievers: {', '.join(cfg['retrievers'])}",
        f"- run time {cfg['seconds']:.0f} s (latencies are wall-clock on this machine; a shared machine inflates them)",
    ]
    if cfg.get("notes"):
        lines += [f"- {note}" for note in cfg["notes"]]
    lines += [
        "",
        "## How it is scored",
        "",
        "- **Relevance is paragraph-level.** Each gold quote is located in its file; the gold paragraphs are those "
        "whose `[start, end)` contains the quote (a quote crossing a paragraph break: each paragraph holding ≥25% "
        "of it). Hit@k / recall@k / MRR@10 / nDCG@10 (binary gains, ideal DCG over min(k, #gold paragraphs), "
        "repeated paragraphs in a ranking dropped, keeping the first).",
        "- **Queries.** `hybrid` is the system's own search on the question as the system sees it: follow-ups "
        "are rewritten first with `rag.followup.rewrite_followup` (as `kb.answer` does). `dense`, `bm25` and "
        "`langchain` get the raw question (a stock pipeline has no rewrite); `hybrid_raw` is the system's search "
        "on the raw question, to separate the rewrite's effect.",
    ]
    lc = cfg.get("langchain_baseline")
    if lc:
        lines.append(
            f"- **LangChain baseline mapping.** `RecursiveCharacterTextSplitter(chunk_size={lc['chunk_size']}, "
            f"chunk_overlap={lc['chunk_overlap']}, add_start_index=True)` over each file's full text "
            f"({lc['chunks']} chunks, {lc['mean_chars_per_chunk']:.0f} chars and "
            f"{lc['mean_paragraphs_per_chunk']:.1f} paragraphs per chunk on average), same embedder, "
            "`faiss.IndexFlatIP` on normalized vectors. A chunk is mapped to every paragraph its "
            "`[start_index, start_index+len)` span overlaps and **counts as a hit for every gold paragraph it "
            "overlaps**; k counts chunks. This is generous to the baseline: its top 5 carries more text "
            "(see the context columns)."
        )
    excluded = results["excluded_from_retrieval"]
    if excluded:
        lines.append(
            f"- {len(excluded)} answerable item(s) have no gold paragraph (their quotes sit in a title or dateline, "
            f"which is article metadata, not a paragraph) and are left out of retrieval and citation scores: "
            + ", ".join(excluded)
            + "."
        )
    lines.append(
        "- **Answers** are scored on the answer text with `[n]` markers removed: must-include accuracy (every group, "
        "any alternative, case-insensitive, numbers as digits or words), SQuAD EM / token F1 (max over aliases) — "
        "over answerable items, an abstention scores 0. `correct` = must-include for answerable items, abstention "
        "for unanswerable ones, over all items. Citation precision/recall: over answered, answerable items with "
        "gold paragraphs. Abstention precision/recall as usual; coverage = answered / all; false abstention rate "
        "over answerable items."
    )

    summary = results["retrieval"]["summary"]
    if summary:
        lines += ["", "## Retrieval", ""]
        header = ["retriever", "n", *RETRIEVAL_COLUMNS, "ctx chars@5", "paras@5", "p50 ms", "p95 ms"]
        rows = [
            [
                name,
                s["n"],
                *[s["metrics"].get(c) for c in RETRIEVAL_COLUMNS],
                round(s["mean_context_chars@5"] or 0),
                _fmt(s["mean_paragraphs@5"], 1),
                _ms(s["latency"]["p50"]),
                _ms(s["latency"]["p95"]),
            ]
            for name, s in summary.items()
        ]
        lines += _md_table(header, rows)
        lines += ["", *[f"- `{name}`: {s['label']}" for name, s in summary.items()]]
        for key, title in (("hit_at_k", "hit@k"), ("retrieval_by_type", "hit@5 by type")):
            if key in plots:
                lines += ["", f"![{title}]({plots[key]})"]
        types = sorted({t for s in summary.values() for t in s["by_type"]})
        lines += ["", "hit@5 by type:", ""]
        lines += _md_table(
            ["type", *summary],
            [[t, *[(s["by_type"].get(t) or {}).get("hit@5") for s in summary.values()]] for t in types],
        )

    for mode, a in results["answers"].items():
        m, c = a["metrics"], a["counts"]
        lines += ["", f"## Answers: {mode}", ""]
        lines += _md_table(list(ANSWER_COLUMNS), [[m[k] for k in ANSWER_COLUMNS]])
        lines += [
            "",
            f"{c['items']} items ({c['answerable']} answerable, {c['unanswerable']} unanswerable); abstained on "
            f"{c['abstained']}; errors {c['errors']}; accuracy when answered {_fmt(m['accuracy_when_answered'])}; "
            f"citation precision over {c['with_citation_precision']} items.",
            "",
            "Latency per stage (ms):",
            "",
        ]
        lines += _md_table(
            ["stage", "n", "p50", "p95", "mean"],
            [[s, v["n"], _ms(v["p50"]), _ms(v["p95"]), _ms(v["mean"])] for s, v in a["latency"].items()],
        )
        lines += ["", "By type:", ""]
        lines += _md_table(
            ["type", "n", "correct", "accuracy", "f1", "abstained", "citation precision"],
            [
                [t, v["n"], v["correct"], v["accuracy"], v["f1"], v["abstained"], v["citation_precision"]]
                for t, v in a["by_type"].items()
            ],
        )
        lines += ["", f"### Failures ({len(a['failures'])})", ""]
        for f in a["failures"]:
            standalone = f" (rewritten: “{_one_line(f['standalone'])}”)" if f.get("standalone") else ""
            lines += [
                f"- **{f['id']}** [{f['type']}] {f['reason']}",
                f"  - Q: {_one_line(f['question'])}{standalone}",
                f"  - A: {_one_line(f['answer'])}",
                f"  - gold: {_one_line(' / '.join(f['gold_answers']) or '(unanswerable)')}",
                f"  - cited: {', '.join(f'{d}#{n}' for d, n in f['cited']) or '–'}; gold paragraphs: "
                f"{', '.join(f'{d}#{n}' for d, n in f['gold_paragraphs']) or '–'}",
            ]
    if results["answers"]:
        for key, title in (("accuracy_by_type", "correct by type"), ("latency", "latency")):
            if key in plots:
                lines += ["", f"![{title}]({plots[key]})"]
    elif "latency" in plots:
        lines += ["", f"![latency]({plots['latency']})"]
    if baseline_lines:
        lines += ["", "## Against the committed baseline (evals/baseline.json)", "", *baseline_lines]
    return "\n".join(lines) + "\n"


def summary_table(results: dict[str, Any]) -> str:
    """The compact table printed at the end of a run."""
    out: list[str] = []
    summary = results["retrieval"]["summary"]
    if summary:
        out.append(
            f"{'retriever':<12}{'n':>5}"
            + "".join(f"{c:>9}" for c in ("hit@1", "hit@3", "hit@5", "recall@5", "mrr@10", "ndcg@10", "p50 ms"))
        )
        for name, s in summary.items():
            m = s["metrics"]
            cells = [
                m.get("hit@1"),
                m.get("hit@3"),
                m.get("hit@5"),
                m.get("recall@5"),
                m.get("mrr@10"),
                m.get("ndcg@10"),
            ]
            out.append(
                f"{name:<12}{s['n']:>5}" + "".join(f"{_fmt(v):>9}" for v in cells) + f"{_ms(s['latency']['p50']):>9}"
            )
    for mode, a in results["answers"].items():
        m = a["metrics"]
        if not out or not out[-1].startswith("mode"):
            out.append("")
            out.append(
                f"{'mode':<12}"
                + "".join(
                    f"{c:>9}"
                    for c in (
                        "acc",
                        "EM",
                        "F1",
                        "correct",
                        "cit-P",
                        "cit-R",
                        "abst-P",
                        "abst-R",
                        "cover",
                        "p50 ms",
                        "p95 ms",
                    )
                )
            )
        lat = a["latency"].get("total") or a["latency"]["wall"]
        cells = [
            m["accuracy"],
            m["exact_match"],
            m["f1"],
            m["correct"],
            m["citation_precision"],
            m["citation_recall"],
            m["abstention_precision"],
            m["abstention_recall"],
            m["coverage"],
        ]
        out.append(
            f"{mode:<12}" + "".join(f"{_fmt(v):>9}" for v in cells) + f"{_ms(lat['p50']):>9}{_ms(lat['p95']):>9}"
        )
    return "\n".join(out)


# --- command line --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m evals.run", description="Score retrieval and answers on a gold Q&A file."
    )
    p.add_argument("--gold", type=Path, default=DEFAULT_GOLD, help="gold JSONL (default evals/gold.jsonl)")
    p.add_argument(
        "--corpus", type=Path, default=None, help="folder of articles (default: the settings' corpus, seeds/)"
    )
    p.add_argument("--index", type=Path, default=None, help="index folder (default: the settings' index, index/)")
    p.add_argument("--mode", default="all", help="answer modes: all, extractive, llm, none (comma-separated)")
    p.add_argument("--out", type=Path, default=Path("evals/results"), help="output folder (default evals/results)")
    p.add_argument("--limit", type=int, default=None, help="only the first N items (a quick run)")
    p.add_argument("--no-baseline", action="store_true", help="skip the stock LangChain retrieval baseline")
    p.add_argument(
        "--write-baseline", action="store_true", help="write evals/baseline.json from this run (full gold set)"
    )
    p.add_argument(
        "--check-baseline", action="store_true", help="exit 1 when a guarded metric is below evals/baseline.json"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build_parser().parse_args(argv))


def run_cli(args: argparse.Namespace) -> int:
    """Run the evaluation for parsed arguments (from ``python -m evals.run`` or ``rag eval``)."""
    from evals import check_baseline as B

    gold_path = Path(getattr(args, "gold", None) or DEFAULT_GOLD)
    limit = getattr(args, "limit", None)
    out = Path(getattr(args, "out", None) or "evals/results")
    write_baseline = bool(getattr(args, "write_baseline", False))
    check = bool(getattr(args, "check_baseline", False))
    try:
        modes = parse_modes(getattr(args, "mode", "all"))
        if limit is not None and limit < 1:
            raise EvalInputError(f"--limit must be at least 1 (got {limit})")
        from rag.settings import get_settings

        corpus = Path(args.corpus) if getattr(args, "corpus", None) else Path(get_settings().corpus_dir)
        if not corpus.is_dir() and getattr(args, "corpus", None) is None and DEFAULT_CORPUS.is_dir():
            corpus = DEFAULT_CORPUS
        if write_baseline and (
            gold_path.resolve() != DEFAULT_GOLD.resolve() or corpus.resolve() != DEFAULT_CORPUS.resolve()
        ):
            raise EvalInputError("--write-baseline measures the committed gold set on seeds/: drop --gold/--corpus")
        problems = validate_gold(gold_path, corpus)
        if problems:
            for problem in problems:
                print(f"gold: {problem}", file=sys.stderr)
            raise EvalInputError(f"{gold_path} has {len(problems)} problem(s) against corpus {corpus}; fix them first")
        items = load_gold(gold_path)
        if limit:
            items = items[:limit]
        if write_baseline and (limit or modes != ["extractive"]):
            print(
                "note: --write-baseline uses the quality test's profile (full gold set, extractive mode)",
                file=sys.stderr,
            )
    except EvalInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    from rag.knowledge import load

    kb = load(corpus, getattr(args, "index", None))
    notes: list[str] = []
    if "llm" in modes and not kb.llm_available():
        if "all" in str(getattr(args, "mode", "")).lower():
            modes.remove("llm")
            notes.append("llm mode skipped: no local model or server is available")
            print("note: llm mode skipped (no local model or server available)", file=sys.stderr)
        else:
            print("error: --mode llm needs the local model (`make model`) or RAG_LLM_BASE_URL", file=sys.stderr)
            return EXIT_BAD_INPUT
    retrievers = [r for r in RETRIEVERS if not (r == "langchain" and getattr(args, "no_baseline", False))]
    results = evaluate(kb, items, corpus_dir=corpus, modes=modes, retrievers=retrievers, progress=True)
    results["config"].update(gold=str(gold_path), corpus=str(corpus), index=str(kb.index_dir), limit=limit, notes=notes)

    status = EXIT_OK
    baseline_lines: list[str] = []
    comparable = (
        limit is None and gold_path.resolve() == DEFAULT_GOLD.resolve() and corpus.resolve() == DEFAULT_CORPUS.resolve()
    )
    if write_baseline:
        quality = results
        if modes != ["extractive"] or limit:
            full = load_gold(gold_path)
            quality = evaluate(kb, full, corpus_dir=corpus, **B.QUALITY_PROFILE, progress=True)
        path = B.write_baseline(quality)
        print(f"wrote {path}")
    if B.BASELINE_PATH.exists() and comparable:
        baseline = B.load_baseline()
        problems, table = B.compare(results, baseline)
        baseline_lines = table
        if check and problems:
            status = EXIT_BELOW_BASELINE
            for problem in problems:
                print(f"below baseline: {problem}", file=sys.stderr)
    elif check:
        print(
            "error: --check-baseline needs the default gold file, no --limit, and evals/baseline.json", file=sys.stderr
        )
        status = EXIT_BAD_INPUT

    out.mkdir(parents=True, exist_ok=True)
    plots = make_plots(results, out)
    (out / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    (out / "report.md").write_text(render_report(results, plots, baseline_lines), encoding="utf-8")
    print(summary_table(results))
    print(f"\nreport: {out / 'report.md'}  results: {out / 'results.json'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
