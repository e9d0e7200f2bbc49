"""Run the system on a gold Q&A file and score retrieval, answers, citations, abstention, latency.

    python -m evals.run [--suite gold,squad2] [--gold FILE] [--corpus DIR] [--index DIR]
                        [--mode all|extractive|llm|none]
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
answerer and is not scored on answers. Every mode is also scored on selective answering (its
answers ranked by their confidence: AURC, accuracy at 80% / 90% coverage, the risk at its own
decisions; ``evals.answers.selective_metrics``). Writes ``results.json``, ``report.md`` and PNG
plots (``risk_coverage.png`` among them) to ``--out`` and prints a summary table. Exit status: 0 ok, 1 below the committed baseline (with
``--check-baseline``), 2 bad input (gold file, corpus, mode).

The work is split by job: ``evals.inputs`` (arguments and the gold file, checked),
``evals.gold_paragraphs`` (quote → gold paragraphs, shared with ``evals.tune``),
``evals.langchain_baseline``, ``evals.retrieval`` and ``evals.answers`` (the two eval loops, on the
typed records of ``evals.records``), ``evals.plots`` and ``evals.report``. This module composes them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.answers import evaluate_answers
from evals.gold import DEFAULT_GOLD, GoldItem, load_gold
from evals.gold_paragraphs import map_gold
from evals.inputs import (
    DEFAULT_OUT,
    EXIT_BAD_INPUT,
    EXIT_BELOW_BASELINE,
    EXIT_OK,
    EvalInputError,
    git_revision,
    parse_modes,
    read_inputs,
)
from evals.langchain_baseline import LangChainBaseline
from evals.plots import make_plots
from evals.report import render_report, summary_table
from evals.retrieval import RETRIEVERS, K, RetrievalResult, evaluate_retrieval

if TYPE_CHECKING:
    from rag.knowledge import KnowledgeBase

__all__ = ["EvalInputError", "build_parser", "evaluate", "main", "parse_modes", "run_cli"]


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
    gold = map_gold(items, kb, corpus_dir)
    retrievers = [r for r in retrievers if r != "hybrid_raw" or any(i.history for i in items)]
    baseline = LangChainBaseline(kb, corpus_dir) if "langchain" in retrievers else None
    started = time.perf_counter()
    retrieval = (
        evaluate_retrieval(kb, items, gold, retrievers, baseline, progress) if retrievers else RetrievalResult({}, {})
    )
    answers = {mode: evaluate_answers(kb, items, gold, mode, progress) for mode in modes}
    settings = kb.settings.model_dump(mode="json", exclude={"llm_api_key"})
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": git_revision(),
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
        "gold_notes": gold.notes,
        "excluded_from_retrieval": gold.excluded(items),
        "retrieval": retrieval.to_dict(),
        "answers": {mode: result.to_dict() for mode, result in answers.items()},
    }


# --- command line --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m evals.run", description="Score retrieval and answers on a gold Q&A file."
    )
    p.add_argument(
        "--suite", default=None,
        help="named suites instead of --gold/--corpus/--index, comma-separated: gold, squad2 or all "
        "(each writes to OUT/<suite>/; a table of both at the end)",
    )
    p.add_argument("--gold", type=Path, default=DEFAULT_GOLD, help="gold JSONL (default evals/gold.jsonl)")
    p.add_argument(
        "--corpus", type=Path, default=None, help="folder of articles (default: the settings' corpus, seeds/)"
    )
    p.add_argument("--index", type=Path, default=None, help="index folder (default: the settings' index, index/)")
    p.add_argument("--mode", default="all", help="answer modes: all, extractive, llm, none (comma-separated)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default evals/results)")
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


def run_suites(args: argparse.Namespace) -> int:
    """``--suite a,b``: one run per suite (its own gold, corpus, index, output folder), then both side by side."""
    from evals.suites import parse_suites

    try:
        suites = parse_suites(args.suite)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if getattr(args, "write_baseline", False) or getattr(args, "check_baseline", False):
        print("error: --write-baseline/--check-baseline work on the default gold set, not with --suite", file=sys.stderr)
        return EXIT_BAD_INPUT
    status, tables = EXIT_OK, []
    for suite in suites:
        print(f"\n=== suite {suite.name}: {suite.description}", flush=True)
        one = argparse.Namespace(**{**vars(args), "suite": None, "gold": suite.gold, "corpus": suite.corpus,
                                    "index": suite.index, "out": Path(args.out) / suite.name})
        status = max(status, run_cli(one))
        results_path = Path(one.out) / "results.json"
        if results_path.is_file():
            tables.append(f"--- {suite.name} ({suite.description})\n"
                          + summary_table(json.loads(results_path.read_text(encoding="utf-8"))))
    print("\n\n".join(["", "=== all suites", *tables]))
    return status


def run_cli(args: argparse.Namespace) -> int:
    """Run the evaluation for parsed arguments (from ``python -m evals.run`` or ``rag eval``)."""
    from evals import check_baseline as B

    if getattr(args, "suite", None):
        return run_suites(args)

    try:
        inputs = read_inputs(args)
    except EvalInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    modes, limit, corpus = inputs.modes, inputs.limit, inputs.corpus

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
    results = evaluate(kb, inputs.items, corpus_dir=corpus, modes=modes, retrievers=retrievers, progress=True)
    results["config"].update(
        gold=str(inputs.gold_path), corpus=str(corpus), index=str(kb.index_dir), limit=limit, notes=notes
    )

    status = EXIT_OK
    baseline_lines: list[str] = []
    if inputs.write_baseline:
        quality = results
        if modes != ["extractive"] or limit:
            full = load_gold(inputs.gold_path)
            quality = evaluate(kb, full, corpus_dir=corpus, **B.QUALITY_PROFILE, progress=True)
        path = B.write_baseline(quality)
        print(f"wrote {path}")
    if B.BASELINE_PATH.exists() and inputs.comparable:
        problems, baseline_lines = B.compare(results, B.load_baseline())
        if inputs.check_baseline and problems:
            status = EXIT_BELOW_BASELINE
            for problem in problems:
                print(f"below baseline: {problem}", file=sys.stderr)
    elif inputs.check_baseline:
        print(
            "error: --check-baseline needs the default gold file, no --limit, and evals/baseline.json", file=sys.stderr
        )
        status = EXIT_BAD_INPUT

    out = inputs.out
    out.mkdir(parents=True, exist_ok=True)
    plots = make_plots(results, out)
    (out / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    (out / "report.md").write_text(render_report(results, plots, baseline_lines), encoding="utf-8")
    print(summary_table(results))
    print(f"\nreport: {out / 'report.md'}  results: {out / 'results.json'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
