"""Tests of rag.question: one analysis per question, read by search, answering and the checks."""

from __future__ import annotations

import pytest

from rag.lexicon import stem, tokenize
from rag.question import analyze_question, holds_answer_type


def test_analysis_fields() -> None:
    q = analyze_question("How many people attended the HomeNet workshop in Phnom Penh in 2022?")
    assert q.terms == tuple(tokenize(q.text))
    assert q.answer_types == ("number",) and q.asks == ("number",)
    assert q.names == {"homenet", "phnom", "penh", "2022"}
    assert q.numbers == {"2022"}
    assert q.counted == {stem("people"), stem("attended")}


@pytest.mark.parametrize(
    ("question", "loose", "strict"),
    [
        ("Who funded the 2021 workshop?", ("person",), ("person",)),
        ("When was the orientation held?", ("date",), ("date",)),
        ("Whose ministry funded it?", ("person",), ()),  # "whose" mid-question: a hint, not a verdict
        ("How much money did Korea contribute?", ("number",), ("amount", "number")),
        ("Where did the workshop take place?", ("place",), ()),
        # A second question joined on asks for a place too; a relative "where" does not.
        ("When was the HomeNet workshop held and where?", ("date", "place"), ("date",)),
        ("Who spoke, and where was it?", ("person", "place"), ("person",)),
        ("What is the forum where cooperatives meet?", (), ()),
        ("What did Benjamin Velasco present?", (), ()),
    ],
)
def test_loose_and_strict_readings(question: str, loose: tuple[str, ...], strict: tuple[str, ...]) -> None:
    q = analyze_question(question)
    assert q.answer_types == loose
    assert q.asks == strict


def test_possessives_and_phrases() -> None:
    q = analyze_question("What did the ILO's director tell the Asian Solidarity Economy Council?")
    assert "ilo" in q.names and "ilo's" not in q.names
    assert q.phrases == {"asian solidarity economy council"}


def test_analysis_is_cached_and_immutable() -> None:
    q = analyze_question("Who funded the 2021 workshop?")
    assert analyze_question("Who funded the 2021 workshop?") is q
    with pytest.raises(AttributeError):
        q.text = "changed"  # type: ignore[misc]


def test_holds_answer_type() -> None:
    assert holds_answer_type("Around 100 people came.", ("number",)) == 1.0
    assert holds_answer_type("It was held on 2 November 2022 in Phnom Penh.", ("date", "number")) == 1.0
    assert holds_answer_type("Nobody said anything.", ("date", "person")) == 0.0
    assert holds_answer_type("Anything", ()) == 0.0


@pytest.mark.parametrize(
    ("question", "asks"),
    [
        ("When did the ILO publish its news item about the AROSP webinar?", True),
        ("When was the ILO's article on the HomeNet Southeast Asia workshop published?", True),
        ("What is the date of the news article about the webinar?", True),
        ("On what date was the press release about the summit posted?", True),
        ("When was the article published?", True),
        # A report or a resolution is published inside the news; the article as a source is not asked about.
        ("When was the report on SSE published?", False),
        ("When was the ILO report released, according to the article?", False),
        ("When did the UN General Assembly adopt its resolution on SSE?", False),
        ("When was the workshop held?", False),
        ("Who published the article?", False),
    ],
)
def test_asks_publication(question: str, asks: bool) -> None:
    assert analyze_question(question).asks_publication is asks


@pytest.mark.parametrize(("text", "wh"), [
    ("In which city was the workshop held?", ("which", "city")),
    ("How many people attended?", ("how many", "people")),
    ("Who presented the session?", ("who", "presented")),
    ("The film was directed by whom?", ("whom", "")),
    ("Tell me about the SSE.", ("", "")),
])
def test_question_word_and_the_word_after_it(text: str, wh: tuple[str, str]) -> None:
    assert analyze_question(text).wh == wh
