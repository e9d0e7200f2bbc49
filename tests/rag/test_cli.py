"""Tests of the ``rag`` command: real subprocesses for the main paths, ``main(argv)`` in-process
for the many error cases (same code, without paying the model load each time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.cli import EXIT_ERROR, EXIT_PARTIAL, main

REPO_ROOT = Path(__file__).resolve().parents[2]
HIT_FIELDS = {"doc_id", "title", "date", "paragraph", "text", "start", "end", "score"}


def run_rag(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_error(code: int, out: str, err: str, *needles: str) -> None:
    """Non-zero exit, one line "error: ..." on stderr naming the problem, no traceback anywhere."""
    assert code != 0
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, err)


# --- subprocess: the real command ---------------------------------------------------------------


@pytest.mark.slow
def test_index_then_search_subprocess(tiny_corpus, tmp_path: Path) -> None:
    corpus, index = tiny_corpus(), tmp_path / "index"
    built = run_rag("index", "--corpus", str(corpus), "--index", str(index), cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert "indexed 3 files" in built.stdout
    assert "Traceback" not in built.stderr

    found = run_rag("search", "night train to Brussels", "-k", "2", "--corpus", str(corpus), "--index", str(index),
                    cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert found.stdout.startswith("1. [")
    assert "New night train links Vienna and Brussels, 2022-06-05 — paragraph 1 (trains.txt)" in found.stdout
    assert "2. [" in found.stdout and "3. [" not in found.stdout

    as_json = run_rag("search", "honey crop", "--json", "-k", "3", "--corpus", str(corpus), "--index", str(index),
                      cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    hits = json.loads(as_json.stdout)
    assert len(hits) == 3 and all(set(h) == HIT_FIELDS for h in hits)
    assert hits[0]["doc_id"] == "bees.txt"

    too_long = run_rag("search", "x" * 100_000, "--corpus", str(corpus), "--index", str(index), cwd=tmp_path)
    assert_clean_error(too_long.returncode, too_long.stdout, too_long.stderr, "too long", "100,000")


@pytest.mark.slow
def test_error_subprocess_has_no_traceback(tmp_path: Path) -> None:
    result = run_rag("index", "--corpus", str(tmp_path / "nope"), "--index", str(tmp_path / "index"), cwd=tmp_path)
    assert_clean_error(result.returncode, result.stdout, result.stderr, "corpus folder not found", "nope")


# --- in-process: same code path, shared model ---------------------------------------------------


def test_index_and_search_in_process(tiny_corpus, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus, index = tiny_corpus(), str(tmp_path / "index")
    code, out, err = run_main(capsys, "index", "--corpus", str(corpus), "--index", index)
    assert code == 0 and "indexed 3 files" in out and err == ""
    code, out, _ = run_main(capsys, "index", "--corpus", str(corpus), "--index", index)
    assert code == 0 and "up to date" in out

    code, out, _ = run_main(capsys, "search", "pear trees", "-k", "1", "--corpus", str(corpus), "--index", index)
    assert code == 0
    assert "Orchard cooperative doubles apple harvest, 2023-03-12 — paragraph 3 (apples.txt)" in out
    assert "pear trees next year" in out

    code, out, _ = run_main(capsys, "search", "pear trees", "--json", "--corpus", str(corpus), "--index", index)
    assert code == 0
    hits = json.loads(out)
    assert len(hits) == 5
    assert all(set(h) == HIT_FIELDS for h in hits)
    source = (corpus / hits[0]["doc_id"]).read_text(encoding="utf-8")
    assert source[hits[0]["start"] : hits[0]["end"]] == hits[0]["text"]


def test_missing_corpus_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["index"], ["search", "anything"]):
        code, out, err = run_main(capsys, *command, "--corpus", str(tmp_path / "missing"), "--index", str(tmp_path / "i"))
        assert_clean_error(code, out, err, "corpus folder not found", "missing")
        assert code == EXIT_ERROR


def test_empty_corpus_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    code, out, err = run_main(capsys, "index", "--corpus", str(tmp_path / "empty"), "--index", str(tmp_path / "i"))
    assert_clean_error(code, out, err, "no articles", "empty")


def test_only_bad_files(tiny_corpus, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tiny_corpus({"bad.txt": b"caf\xe9"})
    code, out, err = run_main(capsys, "index", "--corpus", str(corpus), "--index", str(tmp_path / "i"))
    assert_clean_error(code, out, err, "no usable articles", "bad.txt", "UTF-8")


def test_non_utf8_file_is_skipped_and_named(
    tiny_corpus, tiny_articles: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tiny_corpus({**tiny_articles, "latin1.txt": "Caf\u00e9\n\nThe caf\u00e9 opened.".encode("latin-1")})
    index = str(tmp_path / "index")
    code, out, err = run_main(capsys, "index", "--corpus", str(corpus), "--index", index)
    assert code == EXIT_PARTIAL == 1
    assert "indexed 3 files" in out
    assert "Traceback" not in out + err
    assert "skipped latin1.txt: not valid UTF-8" in err and "latin1.txt: latin1.txt" not in err
    # The good files are searchable.
    code, out, _ = run_main(capsys, "search", "sleeper train", "-k", "1", "--json", "--corpus", str(corpus),
                            "--index", index)
    assert code == 0 and json.loads(out)[0]["doc_id"] == "trains.txt"


@pytest.mark.parametrize("query", ["", "   ", "\n"])
def test_empty_query(query: str, tiny_corpus, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tiny_corpus()
    code, out, err = run_main(capsys, "search", query, "--corpus", str(corpus), "--index", str(tmp_path / "i"))
    assert_clean_error(code, out, err, "empty")


def test_over_long_query(tiny_corpus, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tiny_corpus()
    code, out, err = run_main(capsys, "search", "x" * 100_000, "--corpus", str(corpus), "--index", str(tmp_path / "i"))
    assert_clean_error(code, out, err, "too long", "100,000")
    assert len(err) < 300  # the query is not echoed back


@pytest.mark.parametrize("k", ["0", "-3", "101", "100000"])
def test_bad_k(k: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "search", "trains", "-k", k, "--corpus", str(tmp_path / "c"), "--index",
                              str(tmp_path / "i"))
    assert_clean_error(code, out, err, "-k must be between 1 and 100", k)


def test_non_numeric_k(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["search", "trains", "-k", "many"])
    _, err = capsys.readouterr()
    assert excinfo.value.code == 2
    assert "error: argument -k: invalid int value: 'many'" in err
    assert "Traceback" not in err


def test_damaged_index_is_rebuilt_by_search(tiny_corpus, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus, index = tiny_corpus(), tmp_path / "index"
    assert run_main(capsys, "index", "--corpus", str(corpus), "--index", str(index))[0] == 0
    (index / "CURRENT").write_text("v-missing\n", encoding="utf-8")
    code, out, err = run_main(capsys, "search", "honey", "-k", "1", "--corpus", str(corpus), "--index", str(index))
    assert code == 0, err
    assert "bees.txt" in out


def test_disk_full_is_a_clean_error(
    tiny_corpus, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import rag.index

    def no_space(*_: object, **__: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(rag.index, "_write_jsonl", no_space)
    monkeypatch.delenv("RAG_DEBUG", raising=False)
    code, out, err = run_main(capsys, "index", "--corpus", str(tiny_corpus()), "--index", str(tmp_path / "i"))
    assert_clean_error(code, out, err, "No space left on device")
    assert "internal error" not in err


# --- rag ask: how well the answer is supported (issue 13) -----------------------------------------


def _fake_answers():
    from rag.domain import Answer, Citation, Hit

    hit = Hit("a.txt", "An article", "2024-01-02", 3, "The cooperative trained 42 tailors.", 0, 35, 0.9)
    stated = Answer(
        "q", "It trained 42 tailors [1].", (Citation.from_hit(hit, 1, "trained 42 tailors", 0.87),), confidence=0.92
    )
    weak = Answer("q", "Made up [unsupported]", (Citation.from_hit(hit, 1, "42 tailors", 0.3),), confidence=0.31)
    near = Citation.from_hit(hit, 0, "trained 42 tailors", 0.2)
    closest = Answer("q", "The articles don't say.", abstained=True, confidence=0.12, closest=near)
    old = Answer("q", "It trained 42 tailors [1].", (Citation.from_hit(hit, 1, "trained 42 tailors"),))
    return {"stated": stated, "weak": weak, "closest": closest, "old": old}


@pytest.fixture
def fake_kb(monkeypatch: pytest.MonkeyPatch):
    import rag.knowledge

    answers = _fake_answers()

    class FakeKB:
        def answer(self, question, mode=None, k=None):
            return answers[question]

    monkeypatch.setattr(rag.knowledge, "load", lambda corpus=None, index=None: FakeKB())
    return answers


def test_ask_prints_confidence_support_and_grounding(fake_kb, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "ask", "stated")
    assert code == 0
    assert "Confidence: 0.92 (stated)\n" in out and "weakly" not in out
    assert "[1] An article, 2024-01-02 — paragraph 3 (a.txt) · support 0.87" in out
    assert "Closest passage" not in out

    code, out, _ = run_main(capsys, "ask", "weak")
    assert "Confidence: 0.31 (stated) — weakly supported" in out and "· support 0.30" in out


def test_ask_prints_an_abstentions_closest_passage_as_such(fake_kb, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "ask", "closest")
    assert code == 0
    assert out.startswith("The articles don't say.")
    assert "Confidence: 0.12 (closest)" in out and "weakly" not in out
    assert "Closest passage (may not answer your question): An article, 2024-01-02 — paragraph 3 (a.txt)" in out
    assert "“trained 42 tailors”" in out and "Sources:" not in out


def test_ask_without_confidence_prints_as_before_and_json_has_the_fields(
    fake_kb, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_main(capsys, "ask", "old")
    assert code == 0 and "Confidence" not in out and "support" not in out
    code, out, _ = run_main(capsys, "ask", "closest", "--json")
    data = json.loads(out)
    assert data["grounding"] == "closest" and data["confidence"] == 0.12
    assert data["closest"]["quote"] == "trained 42 tailors" and data["closest"]["support"] == 0.2
