"""Tests for the gold Q&A set (evals/gold.jsonl) and its loader/validator (evals/gold.py)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # allow plain `pytest` as well as `python -m pytest`
    sys.path.insert(0, str(ROOT))

from evals.gold import (  # noqa: E402
    ITEM_TYPES,
    GoldFormatError,
    GoldItem,
    GoldSource,
    load_gold,
    main,
    validate_gold,
)

GOLD = ROOT / "evals" / "gold.jsonl"
SEEDS = ROOT / "seeds"

CORPUS_TEXT = "The ILO’s “SSE” workshop met on 2 November 2022 in Phnom Penh.\n\nIt was a\u00a0hybrid event.\n"


# ---------------------------------------------------------------- the committed gold file


@pytest.fixture(scope="module")
def gold_items() -> list[GoldItem]:
    return load_gold(GOLD)


def test_committed_gold_validates_against_seeds() -> None:
    assert validate_gold(GOLD, SEEDS) == []


def test_committed_gold_counts(gold_items: list[GoldItem]) -> None:
    ids = [item.id for item in gold_items]
    assert len(gold_items) >= 100
    assert len(set(ids)) == len(ids)
    assert ids == [f"q{n:03d}" for n in range(1, len(ids) + 1)]
    assert sum(not item.answerable for item in gold_items) >= 12
    followups = [item for item in gold_items if item.type == "followup" and item.history]
    assert len(followups) >= 8
    by_type = Counter(item.type for item in gold_items)
    assert set(by_type) == ITEM_TYPES  # every type is represented


def test_committed_gold_item_shapes(gold_items: list[GoldItem]) -> None:
    for item in gold_items:
        assert all(isinstance(s, GoldSource) for s in item.sources)
        if item.answerable:
            assert item.answers and item.sources and item.must_include, item.id
        else:
            assert not (item.answers or item.must_include or item.sources), item.id
        if item.history:
            assert item.history[0]["role"] == "user", item.id
            assert item.history[-1]["role"] == "assistant", item.id


def test_committed_gold_covers_every_article(gold_items: list[GoldItem]) -> None:
    cited = {src.file for item in gold_items for src in item.sources}
    assert cited == {p.name for p in SEEDS.glob("*.txt")}


# ---------------------------------------------------------------- the validator on small files


def _item(**overrides: object) -> dict:
    item = {
        "id": "q001",
        "question": "Where was the workshop held?",
        "history": [],
        "answerable": True,
        "answers": ["Phnom Penh"],
        "must_include": [["Phnom Penh"]],
        "sources": [{"file": "doc.txt", "quote": "met on 2 November 2022 in Phnom Penh"}],
        "type": "factoid",
    }
    item.update(overrides)
    return item


def _unanswerable(**overrides: object) -> dict:
    base = _item(id="q002", answerable=False, answers=[], must_include=[], sources=[], type="unanswerable")
    base.update(overrides)
    return base


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "doc.txt").write_text(CORPUS_TEXT, encoding="utf-8")
    return folder


def _write(tmp_path: Path, lines: list[object]) -> Path:
    path = tmp_path / "gold.jsonl"
    text = "\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def test_valid_small_file_passes(tmp_path: Path, corpus: Path) -> None:
    followup = _item(
        id="q003",
        question="And was it online?",
        history=[
            {"role": "user", "content": "Where was the workshop held?"},
            {"role": "assistant", "content": "In Phnom Penh."},
        ],
        answers=["It was hybrid"],
        must_include=[["hybrid"]],
        sources=[{"file": "doc.txt", "quote": "It was a\u00a0hybrid event."}],  # non-breaking space
        type="followup",
    )
    curly = _item(id="q004", sources=[{"file": "doc.txt", "quote": "The ILO’s “SSE” workshop"}])
    path = _write(tmp_path, [_item(), _unanswerable(), followup, curly])
    assert validate_gold(path, corpus) == []
    items = load_gold(path)
    assert [i.id for i in items] == ["q001", "q002", "q003", "q004"]
    assert items[0].sources == [GoldSource("doc.txt", "met on 2 November 2022 in Phnom Penh")]
    assert items[2].history[1] == {"role": "assistant", "content": "In Phnom Penh."}
    assert items[1].answerable is False and items[1].line == 2


BAD_FORMAT_CASES = {
    "bad_json": (['{"id": "q002", "question": '], "invalid JSON"),
    "not_object": (["[1, 2]"], "expected a JSON object"),
    "missing_key": ([{k: v for k, v in _item(id="q002").items() if k != "answers"}], "missing key"),
    "extra_key": ([_item(id="q002", notes="x")], "unexpected key"),
    "wrong_type_answerable": ([_item(id="q002", answerable="yes")], "'answerable' must be a boolean"),
    "wrong_type_answers": ([_item(id="q002", answers="Phnom Penh")], "'answers' must be a list"),
    "empty_item_type": ([_item(id="q002", type="")], "'type' must not be empty"),
    "blank_item_type": ([_item(id="q002", type="  ")], "'type' must not be empty"),
    "unanswerable_type_answerable": ([_item(id="q002", type="unanswerable")], "type 'unanswerable' but"),
    "duplicate_id": ([_item(id="q001")], "duplicate id"),
    "unanswerable_with_sources": (
        [_unanswerable(sources=[{"file": "doc.txt", "quote": "Phnom Penh"}])],
        "unanswerable item must have empty sources",
    ),
    "unanswerable_with_answers": ([_unanswerable(answers=["x"])], "unanswerable item must have empty answers"),
    "answerable_without_answers": ([_item(id="q002", answers=[])], "empty 'answers'"),
    "answerable_without_sources": ([_item(id="q002", sources=[])], "empty 'sources'"),
    "bad_history_role": (
        [_item(id="q002", history=[{"role": "system", "content": "hi"}], type="followup")],
        "bad role",
    ),
    "followup_without_history": ([_item(id="q002", type="followup")], "needs a non-empty 'history'"),
    "empty_must_include_group": ([_item(id="q002", must_include=[[]])], "must_include[0]"),
    "source_missing_quote": ([_item(id="q002", sources=[{"file": "doc.txt"}])], "sources[0]"),
}


@pytest.mark.parametrize("case", sorted(BAD_FORMAT_CASES))
def test_format_errors_are_caught(case: str, tmp_path: Path, corpus: Path) -> None:
    bad_lines, needle = BAD_FORMAT_CASES[case]
    path = _write(tmp_path, [_item(), *bad_lines])  # the bad item is always on line 2

    with pytest.raises(GoldFormatError) as info:
        load_gold(path)
    assert info.value.line == 2
    assert "line 2" in str(info.value)
    assert needle in str(info.value)
    assert isinstance(info.value, ValueError)

    problems = validate_gold(path, corpus)
    assert len(problems) == 1
    assert "line 2" in problems[0] and needle in problems[0]


def test_type_is_a_free_label(tmp_path: Path, corpus: Path) -> None:
    path = _write(tmp_path, [_item(type="trivia"), _item(id="q002", type="multi-article"), _unanswerable(id="q003", type="who")])
    assert validate_gold(path, corpus) == []
    assert [i.type for i in load_gold(path)] == ["trivia", "multi-article", "who"]


def test_quote_not_in_file_is_reported(tmp_path: Path, corpus: Path) -> None:
    # straight apostrophe where the corpus has a curly one: must not match
    path = _write(tmp_path, [_item(sources=[{"file": "doc.txt", "quote": "The ILO's workshop"}])])
    load_gold(path)  # the format itself is fine
    problems = validate_gold(path, corpus)
    assert len(problems) == 1
    assert "not an exact substring" in problems[0] and "q001" in problems[0]


def test_missing_source_file_is_reported(tmp_path: Path, corpus: Path) -> None:
    path = _write(tmp_path, [_item(sources=[{"file": "nope.txt", "quote": "Phnom Penh"}])])
    problems = validate_gold(path, corpus)
    assert len(problems) == 1
    assert "nope.txt" in problems[0] and "not found" in problems[0]


def test_source_outside_corpus_is_rejected(tmp_path: Path, corpus: Path) -> None:
    (tmp_path / "outside.txt").write_text("Phnom Penh", encoding="utf-8")
    path = _write(tmp_path, [_item(sources=[{"file": "../outside.txt", "quote": "Phnom Penh"}])])
    assert any("not found" in p for p in validate_gold(path, corpus))


def test_all_problems_are_collected(tmp_path: Path, corpus: Path) -> None:
    path = _write(
        tmp_path,
        [
            _item(),
            "not json",
            _item(id="q001"),
            _item(id="q003", sources=[{"file": "doc.txt", "quote": "Bangkok"}]),
        ],
    )
    problems = validate_gold(path, corpus)
    assert len(problems) == 3
    assert "line 2" in problems[0] and "line 3" in problems[1] and "line 4" in problems[2]
    with pytest.raises(GoldFormatError, match=r"line 2: invalid JSON.*1 more problem"):
        load_gold(path)


def test_missing_gold_file_and_empty_file(tmp_path: Path, corpus: Path) -> None:
    with pytest.raises(GoldFormatError, match="not found"):
        load_gold(tmp_path / "absent.jsonl")
    assert validate_gold(tmp_path / "absent.jsonl", corpus)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(GoldFormatError, match="no items"):
        load_gold(empty)


def test_main_exit_codes(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path, [_item(), _unanswerable()])
    assert main(["--gold", str(good), "--corpus", str(corpus)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: 2 items") and "unanswerable" in out and "factoid" in out

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_item(sources=[{"file": "doc.txt", "quote": "Bangkok"}])) + "\n", encoding="utf-8")
    assert main(["--gold", str(bad), "--corpus", str(corpus)]) != 0
    assert "not an exact substring" in capsys.readouterr().out
