"""Tests of rag.lexicon: tokens, stems, numbers and names."""

from __future__ import annotations

import pytest

from rag.lexicon import HOLDS_TIME, MONTH_NUMBERS, normalize, numbers_in, proper_names, stem, tokenize, without_dates


def test_tokenize_drops_stopwords_and_stems() -> None:
    assert tokenize("The Workshops were planned in the capital") == ["workshop", "plan", "capit"]


def test_tokenize_normalizes_accents_case_and_possessives() -> None:
    assert tokenize("Quiñones") == tokenize("QUINONES")
    assert tokenize("Cambodia’s workers") == ["cambodia", "worker"]
    assert tokenize("SSE's role") == tokenize("SSE’s roles") == ["sse", stem("role")]


def test_tokenize_keep_stopwords() -> None:
    assert tokenize("the plan", keep_stopwords=True) == ["the", "plan"]
    assert tokenize("the and of") == []


def test_tokenize_numbers() -> None:
    assert tokenize("37 participants in 2021") == ["37", "particip", "2021"]


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("countries", "countri"),
        ("classes", "class"),
        ("planned", "plan"),
        ("meeting", "meet"),
        ("workers", "worker"),
        ("status", "status"),
        ("analysis", "analysi"),
        ("bus", "bus"),
        ("cat", "cat"),
        ("2021", "2021"),
    ],
)
def test_stem(word: str, expected: str) -> None:
    assert stem(word) == expected


@pytest.mark.parametrize(
    "forms",
    [
        ("cooperative", "cooperatives"),
        ("policy", "policies"),
        ("organize", "organizes", "organized", "organizing"),
        ("plan", "plans", "planned", "planning"),
        ("call", "calls", "called"),
        ("pass", "passed"),
        ("proceed", "proceeds", "proceeded"),
        ("workshop", "workshops"),
        ("class", "classes"),
    ],
)
def test_word_forms_meet(forms: tuple[str, ...]) -> None:
    assert len({stem(f) for f in forms}) == 1, {f: stem(f) for f in forms}


def test_normalize() -> None:
    assert normalize("Café’S") == "cafe's"


def test_month_numbers() -> None:
    assert MONTH_NUMBERS["sept"] == MONTH_NUMBERS["september"] == 9
    assert MONTH_NUMBERS["may"] == 5 and len(MONTH_NUMBERS) == 24


def test_numbers_in_words_and_digits() -> None:
    assert numbers_in("six members, 1,200 workers and 3.5 million") == {"6", "1200", "3.5"}


def test_without_dates_leaves_counts() -> None:
    assert numbers_in(without_dates("On 2 November 2022, 100 people met.")) == {"100"}


def test_proper_names_skip_sentence_openers() -> None:
    assert proper_names("The ILO met KoSEA. They agreed.") == {"ilo", "kosea"}


@pytest.mark.parametrize(
    "text",
    [
        "The Workshop took place on 2nd November 2022 in Phnom Penh",
        "the Normans landed in 1066",
        "in 476",
        "476 AD",
        "the 5th century",
        "the fifth century",
        "the 1990s",
        "two weeks later",
        "a year after the war",
        "expected to be launched later this year",
        "three years ago",
        "at 3 pm",
        "in the summer",
        "at age 12",
    ],
)
def test_holds_time(text: str) -> None:
    assert HOLDS_TIME.search(text), text


@pytest.mark.parametrize(
    "text",
    [
        # An ordinal ranks, it does not date: this sentence once answered "When was the workshop held?".
        "the 110th session of the International Labour Conference held a general discussion",
        "around 100 participants",
        "1,200 workers",
        "one of the speakers",
        "six member countries",
        "20% of workers",
        "the same organisation",
    ],
)
def test_holds_no_time(text: str) -> None:
    assert not HOLDS_TIME.search(text), text
