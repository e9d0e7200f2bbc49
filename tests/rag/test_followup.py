"""Follow-up rewriting: only when needed, and without an LLM."""

from __future__ import annotations

import pytest

from rag.followup import needs_rewrite, rewrite_followup

HOMENET = [
    {"role": "user", "content": "When was the HomeNet workshop held?"},
    {"role": "assistant", "content": "On 2 November 2022 [1]."},
]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("And who funded it?", "Who funded the HomeNet workshop?"),
        ("Where was it?", "Where was the HomeNet workshop?"),
        ("What about its participants?", "What about the HomeNet workshop's participants?"),
    ],
)
def test_elliptical_followups_are_resolved(question: str, expected: str) -> None:
    assert rewrite_followup(question, HOMENET) == expected


def test_standalone_question_is_left_untouched() -> None:
    question = "Who funded the 2021 workshop on SSE policy?"
    assert not needs_rewrite(question, HOMENET)
    assert rewrite_followup(question, HOMENET) == question


def test_no_history_means_no_rewrite() -> None:
    assert rewrite_followup("And who funded it?", None) == "And who funded it?"
    assert rewrite_followup("And who funded it?", []) == "And who funded it?"


def test_only_assistant_turns_do_not_count() -> None:
    history = [{"role": "assistant", "content": "Hello"}]
    assert rewrite_followup("Who funded it?", history) == "Who funded it?"


def test_what_about_swaps_the_topic() -> None:
    history = [{"role": "user", "content": "Who organized the 2021 workshop?"}]
    assert rewrite_followup("What about the 2024 workshop?", history) == "Who organized the 2024 workshop?"


def test_short_followup_without_topic_carries_previous_question() -> None:
    history = [{"role": "user", "content": "Who funded the country studies?"}]
    rewritten = rewrite_followup("How many?", history)
    assert "country studies" in rewritten and "How many" in rewritten
