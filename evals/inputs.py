"""What an evaluation run is measured on, checked up front: answer modes, gold file, corpus, limit.

Bad input raises :class:`EvalInputError`, reported in one clear message with exit status 2.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from evals.answers import ANSWER_MODES
from evals.gold import DEFAULT_CORPUS, DEFAULT_GOLD, REPO_ROOT, GoldItem, load_gold, validate_gold

EXIT_OK, EXIT_BELOW_BASELINE, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_OUT = Path("evals/results")


class EvalInputError(ValueError):
    """Bad evaluation input (modes, gold file, corpus): reported in one clear message, exit 2."""


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


@dataclass
class EvalInputs:
    """The checked inputs of one run (from ``python -m evals.run`` or ``rag eval`` arguments)."""

    gold_path: Path
    corpus: Path
    items: list[GoldItem]
    modes: list[str]
    limit: int | None
    out: Path
    write_baseline: bool
    check_baseline: bool

    @property
    def comparable(self) -> bool:
        """Whether the run measures what ``evals/baseline.json`` does (full committed gold set, seeds/)."""
        return (
            self.limit is None
            and self.gold_path.resolve() == DEFAULT_GOLD.resolve()
            and self.corpus.resolve() == DEFAULT_CORPUS.resolve()
        )


def read_inputs(args: argparse.Namespace) -> EvalInputs:
    """Check the arguments, the gold file and its sources against the corpus; raise EvalInputError."""
    gold_path = Path(getattr(args, "gold", None) or DEFAULT_GOLD)
    limit = getattr(args, "limit", None)
    out = Path(getattr(args, "out", None) or DEFAULT_OUT)
    write_baseline = bool(getattr(args, "write_baseline", False))
    modes = parse_modes(getattr(args, "mode", "all"))
    if limit is not None and limit < 1:
        raise EvalInputError(f"--limit must be at least 1 (got {limit})")
    from rag.settings import get_settings

    corpus = Path(args.corpus) if getattr(args, "corpus", None) else Path(get_settings().corpus_dir)
    if not corpus.is_dir() and getattr(args, "corpus", None) is None and DEFAULT_CORPUS.is_dir():
        corpus = DEFAULT_CORPUS
    if write_baseline and (gold_path.resolve() != DEFAULT_GOLD.resolve() or corpus.resolve() != DEFAULT_CORPUS.resolve()):
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
        print("note: --write-baseline uses the quality test's profile (full gold set, extractive mode)", file=sys.stderr)
    return EvalInputs(
        gold_path=gold_path,
        corpus=corpus,
        items=items,
        modes=modes,
        limit=limit,
        out=out,
        write_baseline=write_baseline,
        check_baseline=bool(getattr(args, "check_baseline", False)),
    )


def git_revision() -> str | None:
    """``git describe --always --dirty`` of the repository (what code was measured), or None."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
