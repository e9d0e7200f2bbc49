"""Gold question-answer set: typed loader and validator.

The gold file is JSON Lines, one item per line::

    {"id": "q001", "question": "...", "history": [], "answerable": true,
     "answers": ["short gold answer", "an alias"],
     "must_include": [["alt a", "alt b"], ["x"]],
     "sources": [{"file": "000_....txt", "quote": "exact substring of that file"}],
     "type": "factoid"}

``type`` is a free label (any non-empty string: "factoid", "who", "multi-article", ...): the
report breaks every score down by the labels the file uses. Two labels have a meaning that is
checked: ``"unanswerable"`` items must not be answerable, ``"followup"`` items need a history.

``load_gold`` checks the format and raises :class:`GoldFormatError` (naming the line) on the
first problem; ``validate_gold`` also checks every source against the corpus and returns all
problems as strings. Run ``python -m evals.gold [--gold FILE] [--corpus DIR]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GOLD = Path(__file__).resolve().parent / "gold.jsonl"
DEFAULT_CORPUS = REPO_ROOT / "seeds"

#: The labels the committed gold set uses; other gold files may use any labels (see the module doc).
ITEM_TYPES: frozenset[str] = frozenset(
    {"factoid", "list", "paraphrase", "multihop", "date", "number", "unanswerable", "followup"}
)
#: The labels whose meaning ``parse_item`` checks.
UNANSWERABLE_TYPE = "unanswerable"
FOLLOWUP_TYPE = "followup"
ROLES: frozenset[str] = frozenset({"user", "assistant"})

# key -> (expected python type, human-readable name)
_ITEM_KEYS: dict[str, tuple[type, str]] = {
    "id": (str, "string"),
    "question": (str, "string"),
    "history": (list, "list"),
    "answerable": (bool, "boolean"),
    "answers": (list, "list"),
    "must_include": (list, "list"),
    "sources": (list, "list"),
    "type": (str, "string"),
}
_SOURCE_KEYS = frozenset({"file", "quote"})
_TURN_KEYS = frozenset({"role", "content"})


class GoldFormatError(ValueError):
    """A gold file is malformed; ``line`` is the 1-based line number (None for file-level)."""

    def __init__(self, message: str, line: int | None = None, path: str | Path | None = None):
        self.line = line
        self.path = str(path) if path is not None else None
        self.problem = message
        where = f"{self.path}:" if self.path else ""
        where += f"line {line}: " if line is not None else (" " if self.path else "")
        super().__init__(f"{where}{message}")


@dataclass(frozen=True, slots=True)
class GoldSource:
    """A supporting passage: ``quote`` must be an exact substring of corpus file ``file``."""

    file: str
    quote: str


@dataclass(frozen=True, slots=True)
class GoldItem:
    """One gold question with its expected answer and evidence."""

    id: str
    question: str
    history: list[dict[str, str]]  # [{"role": "user"|"assistant", "content": str}], oldest first
    answerable: bool
    answers: list[str]
    must_include: list[list[str]]  # every group must match; any alternative within a group
    sources: list[GoldSource]
    type: str
    line: int = field(default=0, compare=False)  # 1-based line in the gold file (0 if built in code)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def parse_item(obj: Any, line: int = 0) -> GoldItem:
    """Check one decoded JSON value and build a :class:`GoldItem`; raise GoldFormatError."""

    def fail(msg: str) -> GoldFormatError:
        return GoldFormatError(msg, line=line or None)

    if not isinstance(obj, dict):
        raise fail(f"expected a JSON object, got {_type_name(obj)}")
    missing = [k for k in _ITEM_KEYS if k not in obj]
    if missing:
        raise fail(f"missing key(s): {', '.join(missing)}")
    extra = sorted(k for k in obj if k not in _ITEM_KEYS)
    if extra:
        raise fail(f"unexpected key(s): {', '.join(extra)}")
    for key, (typ, name) in _ITEM_KEYS.items():
        value = obj[key]
        # bool is a subclass of int, never the other way round, so isinstance is enough here
        if not isinstance(value, typ):
            raise fail(f"key {key!r} must be a {name}, got {_type_name(value)}")

    item_id: str = obj["id"]
    if not item_id.strip():
        raise fail("'id' must not be empty")
    where = f"item {item_id!r}: "
    if not obj["question"].strip():
        raise fail(where + "'question' must not be empty")
    if not obj["type"].strip():
        raise fail(where + "'type' must not be empty (any label will do, e.g. 'factoid')")

    history: list[dict[str, str]] = []
    for i, turn in enumerate(obj["history"]):
        if not isinstance(turn, dict) or set(turn) != _TURN_KEYS:
            raise fail(where + f"history[{i}] must be an object with exactly 'role' and 'content'")
        if turn["role"] not in ROLES:
            raise fail(where + f"history[{i}] has bad role {turn['role']!r} (use 'user' or 'assistant')")
        if not isinstance(turn["content"], str) or not turn["content"].strip():
            raise fail(where + f"history[{i}].content must be a non-empty string")
        history.append({"role": turn["role"], "content": turn["content"]})

    if not _is_str_list(obj["answers"]):
        raise fail(where + "'answers' must be a list of non-empty strings")
    groups = obj["must_include"]
    for i, group in enumerate(groups):
        if not group or not _is_str_list(group):
            raise fail(where + f"must_include[{i}] must be a non-empty list of non-empty strings")

    sources: list[GoldSource] = []
    for i, src in enumerate(obj["sources"]):
        if not isinstance(src, dict) or set(src) != _SOURCE_KEYS:
            raise fail(where + f"sources[{i}] must be an object with exactly 'file' and 'quote'")
        if not all(isinstance(src[k], str) and src[k].strip() for k in _SOURCE_KEYS):
            raise fail(where + f"sources[{i}].file and .quote must be non-empty strings")
        sources.append(GoldSource(file=src["file"], quote=src["quote"]))

    answerable: bool = obj["answerable"]
    if answerable:
        if not obj["answers"]:
            raise fail(where + "answerable item has empty 'answers'")
        if not sources:
            raise fail(where + "answerable item has empty 'sources'")
        if obj["type"] == UNANSWERABLE_TYPE:
            raise fail(where + f"type {UNANSWERABLE_TYPE!r} but 'answerable' is true")
    else:
        nonempty = [k for k in ("answers", "must_include", "sources") if obj[k]]
        if nonempty:
            raise fail(where + f"unanswerable item must have empty {', '.join(nonempty)}")
    if obj["type"] == FOLLOWUP_TYPE and not history:
        raise fail(where + f"{FOLLOWUP_TYPE!r} item needs a non-empty 'history'")

    return GoldItem(
        id=item_id,
        question=obj["question"],
        history=history,
        answerable=answerable,
        answers=list(obj["answers"]),
        must_include=[list(g) for g in groups],
        sources=sources,
        type=obj["type"],
        line=line,
    )


def _parse_text(text: str, path: str | Path | None) -> tuple[list[GoldItem], list[GoldFormatError]]:
    """Parse every line, collecting all format errors instead of stopping at the first."""
    items: list[GoldItem] = []
    errors: list[GoldFormatError] = []
    first_line: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue  # blank lines (e.g. a trailing newline) are allowed
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            errors.append(GoldFormatError(f"invalid JSON: {exc.msg} (column {exc.colno})", lineno, path))
            continue
        try:
            item = parse_item(obj, lineno)
        except GoldFormatError as exc:
            errors.append(GoldFormatError(exc.problem, lineno, path))
            continue
        if item.id in first_line:
            errors.append(
                GoldFormatError(f"duplicate id {item.id!r} (first used on line {first_line[item.id]})", lineno, path)
            )
            continue
        first_line[item.id] = lineno
        items.append(item)
    if not items and not errors:
        errors.append(GoldFormatError("gold file has no items", None, path))
    return items, errors


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GoldFormatError("gold file not found", None, path) from None
    except UnicodeDecodeError as exc:
        raise GoldFormatError(f"gold file is not valid UTF-8: {exc}", None, path) from None


def load_gold(path: str | Path = DEFAULT_GOLD) -> list[GoldItem]:
    """Load and format-check a gold file; raise GoldFormatError on the first problem."""
    path = Path(path)
    items, errors = _parse_text(_read(path), path)
    if errors:
        first = errors[0]
        if len(errors) > 1:
            more = GoldFormatError(f"{first.problem} (and {len(errors) - 1} more problem(s))", first.line, path)
            raise more
        raise first
    return items


def check_sources(items: Sequence[GoldItem], corpus_dir: str | Path) -> list[str]:
    """Problems with sources: missing corpus files and quotes that are not exact substrings."""
    corpus = Path(corpus_dir)
    if not corpus.is_dir():
        return [f"corpus directory not found: {corpus}"]
    cache: dict[str, str | None] = {}
    problems: list[str] = []
    for item in items:
        for i, src in enumerate(item.sources):
            if src.file not in cache:
                candidate = corpus / src.file
                # only files inside the corpus folder count (no "../" escapes)
                inside = candidate.resolve().is_relative_to(corpus.resolve())
                try:
                    cache[src.file] = candidate.read_text(encoding="utf-8") if inside else None
                except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError):
                    cache[src.file] = None
            text = cache[src.file]
            loc = f"line {item.line}: item {item.id!r}: sources[{i}]"
            if text is None:
                problems.append(f"{loc}: file {src.file!r} not found in {corpus}")
            elif src.quote not in text:
                problems.append(f"{loc}: quote is not an exact substring of {src.file}: {src.quote[:80]!r}")
    return problems


def validate_gold(path: str | Path = DEFAULT_GOLD, corpus_dir: str | Path = DEFAULT_CORPUS) -> list[str]:
    """Every problem with the gold file (format and sources); an empty list means valid."""
    path = Path(path)
    try:
        text = _read(path)
    except GoldFormatError as exc:
        return [str(exc)]
    items, errors = _parse_text(text, path)
    return [str(e) for e in errors] + check_sources(items, corpus_dir)


def summarize(items: Sequence[GoldItem]) -> str:
    """Counts by type and answerability, one line each."""
    by_type = Counter(item.type for item in items)
    unanswerable = sum(not item.answerable for item in items)
    with_history = sum(bool(item.history) for item in items)
    lines = [
        f"OK: {len(items)} items ({len(items) - unanswerable} answerable, {unanswerable} unanswerable, "
        f"{with_history} with history)"
    ]
    lines += [f"  {t:<13}{by_type[t]:>4}" for t in sorted(by_type, key=lambda t: (-by_type[t], t))]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.gold", description="Validate the gold Q&A set.")
    parser.add_argument("--gold", type=Path, default=DEFAULT_GOLD, help=f"gold JSONL (default {DEFAULT_GOLD})")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help=f"corpus dir (default {DEFAULT_CORPUS})")
    args = parser.parse_args(argv)
    problems = validate_gold(args.gold, args.corpus)
    if problems:
        for problem in problems:
            print(problem)
        print(f"FAILED: {len(problems)} problem(s) in {args.gold}")
        return 1
    print(summarize(load_gold(args.gold)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
