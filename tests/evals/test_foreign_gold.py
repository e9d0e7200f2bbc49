"""A gold file written for another system: its own ``type`` labels are accepted and reported.

``type`` is a free label; only "unanswerable" and "followup" carry a checked meaning. The eval
(``rag eval --gold FILE`` → ``evals.run.main``) must run on such a file and break its report down
by the labels the file uses.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # allow plain `pytest` as well as `python -m pytest`
    sys.path.insert(0, str(ROOT))

from evals.gold import GoldFormatError, load_gold, validate_gold  # noqa: E402
from evals.run import main  # noqa: E402

HISTORY = [
    {"role": "user", "content": "Which train links Vienna and Brussels?"},
    {"role": "assistant", "content": "A sleeper train that runs three times a week."},
]


def _item(item_id: str, label: str, question: str, answers: list[str], sources: list[tuple[str, str]], **kw):
    return {
        "id": item_id,
        "question": question,
        "history": kw.get("history", []),
        "answerable": bool(answers),
        "answers": answers,
        "must_include": [[a] for a in answers[:1]],
        "sources": [{"file": f, "quote": q} for f, q in sources],
        "type": label,
    }


FOREIGN_ITEMS = [
    _item("w1", "who", "Who chairs the orchard cooperative?", ["Lena Ortiz"],
          [("apples.txt", "Ms. Lena Ortiz, the cooperative's chair")]),
    _item("m1", "multi-article", "What was built in 2021 and what killed the early blossoms?",
          ["a cold-storage warehouse", "a late frost"],
          [("apples.txt", "a shared cold-storage warehouse built in 2021"),
           ("bees.txt", "A late frost killed many of the early blossoms")]),
    _item("h1", "how much", "How much does a ticket on the night train cost?", ["30 euros"],
          [("trains.txt", "tickets start at 30 euros")]),
    _item("f1", "followup", "How long does the journey take?", ["fourteen hours"],
          [("trains.txt", "The journey takes fourteen hours")], history=HISTORY),
    _item("u1", "unanswerable", "Who won the 2022 football world cup?", [], []),
    _item("o1", "out-of-corpus", "What is the population of Mars?", [], []),
]
LABELS = {"who", "multi-article", "how much", "followup", "unanswerable", "out-of-corpus"}


def _write(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return path


def test_foreign_labels_load_and_validate(tmp_path: Path, tiny_corpus) -> None:
    corpus = tiny_corpus()
    gold = _write(tmp_path / "foreign.jsonl", FOREIGN_ITEMS)
    assert validate_gold(gold, corpus) == []
    assert {i.type for i in load_gold(gold)} == LABELS


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"type": ""}, "'type' must not be empty"),
        ({"type": "   "}, "'type' must not be empty"),
        ({"type": "unanswerable"}, "type 'unanswerable' but 'answerable' is true"),
        ({"type": "followup"}, "'followup' item needs a non-empty 'history'"),
    ],
)
def test_labels_with_a_meaning_are_still_checked(tmp_path: Path, change: dict, needle: str) -> None:
    gold = _write(tmp_path / "bad.jsonl", [dict(FOREIGN_ITEMS[0], **change)])
    with pytest.raises(GoldFormatError, match=needle):
        load_gold(gold)


def test_eval_reports_by_the_files_labels(tmp_path: Path, tiny_corpus, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tiny_corpus()
    gold = _write(tmp_path / "foreign.jsonl", FOREIGN_ITEMS)
    out = tmp_path / "out"
    argv = ["--gold", str(gold), "--corpus", str(corpus), "--index", str(tmp_path / "index"),
            "--mode", "extractive", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))

    answers = results["answers"]["extractive"]
    assert set(answers["by_type"]) == LABELS
    assert answers["by_type"]["multi-article"]["n"] == 1
    assert answers["counts"] == {**answers["counts"], "items": 6, "answerable": 4, "unanswerable": 2}
    retrieved = {"who", "multi-article", "how much", "followup"}  # answerable, with gold paragraphs
    for name in ("hybrid", "hybrid_raw", "dense", "bm25", "langchain"):
        assert set(results["retrieval"]["summary"][name]["by_type"]) == retrieved, name
    assert results["excluded_from_retrieval"] == [] and results["gold_notes"] == {}

    report = (out / "report.md").read_text(encoding="utf-8")
    for label in LABELS:
        assert f"| {label} |" in report, label

    # selective answering, for any gold file: the metrics, the curve, its plot, the report section
    for key in ("aurc", "aurc_oracle", "accuracy@80%", "accuracy@90%", "risk"):
        assert key in answers["metrics"], key
    assert len(answers["risk_coverage"]["coverage"]) == 6 and (out / "risk_coverage.png").is_file()
    assert all("correct_if_answered" in r and "confidence" in r for r in answers["items"])
    assert "### Selective answering: extractive" in report and "risk_coverage.png" in report
