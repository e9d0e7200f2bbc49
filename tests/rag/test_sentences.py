"""Tests of rag.sentences: sentence spans with exact offsets."""

from __future__ import annotations

import itertools

import pytest

from rag.sentences import is_list_item, sentence_spans, sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ms. Simel Esim spoke first. Dr. Kim replied.", ["Ms. Simel Esim spoke first.", "Dr. Kim replied."]),
        ("Mr. Benjamin Quiñones, regional consultant, presented.", ["Mr. Benjamin Quiñones, regional consultant, presented."]),
        ("They agreed, i.e. the plan works. Next one.", ["They agreed, i.e. the plan works.", "Next one."]),
        ("See e.g. the annex. Done.", ["See e.g. the annex.", "Done."]),
        ("J. R. Smith arrived. He left.", ["J. R. Smith arrived.", "He left."]),
        ("The U.S. delegation met. Others came.", ["The U.S. delegation met.", "Others came."]),
        ("Held on Oct. 6 in town. Good.", ["Held on Oct. 6 in town.", "Good."]),
        ("The project is in Phase 2. It covers five countries.", ["The project is in Phase 2.", "It covers five countries."]),
        ("Rate was 3.5 percent. Why? Because!", ["Rate was 3.5 percent.", "Why?", "Because!"]),
        ("He said “yes.” Then he left.", ["He said “yes.”", "Then he left."]),
        ("No final period", ["No final period"]),
    ],
)
def test_sentences(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_list_items_are_sentences() -> None:
    text = "The aims were to:\n  • Strengthen understanding of SSE\n  • Share knowledge\n- Plan actions\n1. Report back"
    assert sentences(text) == [
        "The aims were to:",
        "Strengthen understanding of SSE",
        "Share knowledge",
        "- Plan actions",
        "1. Report back",
    ]


def test_spans_are_exact_and_trimmed() -> None:
    text = "  First one.   Second one!\n\n\u00a0Third one?  "
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["First one.", "Second one!", "Third one?"]
    assert all(0 <= s < e <= len(text) for s, e in spans)
    assert spans == sorted(spans)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "...", "• • •"])
def test_no_sentences(text: str) -> None:
    assert sentence_spans(text) == []


def test_is_list_item() -> None:
    assert is_list_item("• item")
    assert is_list_item("  - item")
    assert is_list_item("12) item")
    assert is_list_item("3. item")
    assert not is_list_item("2022 was a good year")
    assert not is_list_item("-dash without space")
