"""Question analysis, done once per question: what it asks for, its names, numbers and terms.

Search, sentence scoring and the answerability checks all read the same ``Question``, so they
agree on what was asked.

>>> q = analyze_question("How many people attended the HomeNet workshop in 2022?")
>>> q.answer_types, q.asks, sorted(q.names), sorted(q.counted)
(('number',), ('number',), ['2022', 'homenet'], ['attend', 'peopl'])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from rag.lexicon import (
    HOLDS_DATE,
    HOLDS_NUMBER,
    HOLDS_PERSON,
    HOLDS_PLACE,
    normalize,
    numbers_in,
    proper_names,
    stem,
    tokenize,
)

#: What a question asks for, read loosely (anywhere in the question): a soft retrieval signal,
#: with the pattern a text must match to hold that kind of answer.
ANSWER_TYPES: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "number": (
        re.compile(r"\bhow (?:many|much)\b|\bnumber of\b|\bwhat (?:percentage|share|proportion)\b|\bcount\b", re.I),
        HOLDS_NUMBER,
    ),
    "date": (
        re.compile(r"\bwhen\b|\bwhat (?:date|day|year|month|time)\b|\bwhich (?:date|day|year|month)\b|\bhow long\b", re.I),
        HOLDS_DATE,
    ),
    "person": (
        re.compile(r"^\s*(?:and\s+)?who\b|\bwhom\b|\bwhose\b|\bwhich (?:person|official|speaker|organi[sz]ation|agency|ministry|partner)\b|\bname of\b", re.I),
        HOLDS_PERSON,
    ),
    "place": (
        # "where" mid-question is mostly relative ("the event where ..."), so only an opening one
        # counts, or a second question joined on ("When was it held and where?").
        re.compile(r"^\s*(?:and\s+)?where\b|\b(?:and|or) where\b(?=\s*(?:[?.!]|$|(?:was|were|is|are|did|do|does|will)\b))"
                   r"|\bwhich (?:countr(?:y|ies)|city|cities|region|place)\b|\bwhat countr", re.I),
        HOLDS_PLACE,
    ),
}

#: What a question asks for, read strictly from its opening words: a soft retrieval signal may
#: guess from "whose" in mid-question, a check that can make the system abstain may not.
STRICT_ASKS: dict[str, re.Pattern[str]] = {
    "amount": re.compile(
        r"^\W*(?:and\s+|so\s+)?how much (?:money|funding|did\b.*\b(?:cost|pay|contribute|provide|spend|fund|donate|raise|give|grant))\b"
        r"|^\W*what (?:is|was|were|are) the (?:budget|cost|price|amount of (?:money|funding))\b",
        re.I,
    ),
    "number": re.compile(
        r"^\W*(?:and\s+|so\s+)?how (?:many|much|long|old)\b"
        r"|^\W*what (?:is|was|were|are) the (?:budget|cost|price|amount|number|total|population|percentage|size)\b",
        re.I,
    ),
    "date": re.compile(r"^\W*(?:and\s+|so\s+)?(?:when\b|(?:on |in )?(?:what|which) (?:date|day|year|month)\b)", re.I),
    "person": re.compile(r"^\W*(?:and\s+|so\s+)?who(?:m)?\b", re.I),
}

#: A question about when the article itself came out ("When was the ILO's article on the workshop
#: published?", "When did the ILO publish its news item about ...?"): the answer is the article's
#: dateline, which is not content (``rag.parse``), so no paragraph's sentence can give it. A
#: "report" or a "resolution" is left out: those are published inside the news, not the news itself.
_ARTICLE_NOUN = r"(?:article|news(?:\s+(?:item|story|piece|release|post))?|story|press\s+release|blog\s+post|post)"
_PUBLICATION = re.compile(
    rf"^\W*(?:and\s+|so\s+)?(?:when\b|(?:on\s+|in\s+)?(?:what|which)\s+(?:date|day)\b)"
    rf"(?=.*\b{_ARTICLE_NOUN}\b)(?=.*\b(?:publish(?:ed|es)?|posted|put\s+out|released?|dated|come\s+out|came\s+out)\b)"
    rf"|\b(?:what|which)\s+(?:is|was)\s+the\s+(?:publication\s+)?date\s+of\s+(?:the|this|that|its|their)\s+"
    rf"(?:[\w’'-]+\s+){{0,3}}?{_ARTICLE_NOUN}\b",
    re.I,
)
#: "... according to the article?": the article is where the answer is, not what is asked about.
_ARTICLE_AS_SOURCE = re.compile(rf"\b(?:according\s+to|in|from|by|says?)\s+(?:the|this|that|its)\s+{_ARTICLE_NOUN}\b", re.I)

#: The question word and the word after it ("which city", "who presented", "how many"): what
#: ``rag.entities.AnswerTypeModel`` reads the kind of answer from. The first question word
#: anywhere counts ("In which city ...", "... directed by whom?"); two-word ones before "how".
_WH = re.compile(r"\b(how (?:many|much|long|old|far|big)|who|whom|whose|when|where|which|what|how|why)\b", re.I)
_HOW_MANY = re.compile(r"\bhow many\s+([\w-]+)(?:\s+([\w-]+))?", re.I)
_NAME_PHRASE = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][\w’'-]*(?:\s+(?:of\s+|for\s+|and\s+)?[A-Z][\w’'-]*)+")


@dataclass(frozen=True)
class Question:
    """One question, analysed."""

    text: str
    #: Lexical terms (``lexicon.tokenize``), in order.
    terms: tuple[str, ...]
    #: What kind of thing a paragraph should hold to answer (loose reading; for ranking).
    answer_types: tuple[str, ...]
    #: What the question asks for by its opening words (strict reading; for the checks).
    asks: tuple[str, ...]
    #: Proper names not opening a sentence ("homenet"), normalized.
    proper_names: frozenset[str]
    #: Proper names (possessives dropped) and the numbers the question writes in digits.
    names: frozenset[str]
    #: Multi-word names ("asian solidarity economy council"), normalized.
    phrases: frozenset[str]
    #: Numbers it states, words and digits alike.
    numbers: frozenset[str]
    #: For "how many N ...": the stems of the (up to two) words after "how many".
    counted: frozenset[str]
    #: It asks when the article itself was published (answered from its dateline).
    asks_publication: bool = False
    #: The question word and the next word, lower-cased (("which", "city")); ("", "") without one.
    wh: tuple[str, str] = ("", "")


@lru_cache(maxsize=4096)
def analyze_question(text: str) -> Question:
    """The analysis of one question (cached: the same question is analysed once)."""
    names = {re.sub(r"[’']s$", "", n) for n in proper_names(text)}
    how_many = _HOW_MANY.search(text)
    return Question(
        text=text,
        terms=tuple(tokenize(text)),
        answer_types=tuple(name for name, (asks, _) in ANSWER_TYPES.items() if asks.search(text)),
        asks=tuple(kind for kind, asks in STRICT_ASKS.items() if asks.search(text)),
        proper_names=frozenset(proper_names(text)),
        names=frozenset({n for n in names if n} | set(re.findall(r"\b\d[\d,]*\b", text))),
        phrases=frozenset(normalize(re.sub(r"[’']s\b", "", m.group())) for m in _NAME_PHRASE.finditer(text)),
        numbers=frozenset(numbers_in(text)),
        counted=frozenset(stem(w.lower()) for w in how_many.groups() if w) if how_many else frozenset(),
        asks_publication=_PUBLICATION.search(text) is not None and not _ARTICLE_AS_SOURCE.search(text),
        wh=question_word(text),
    )


def question_word(text: str) -> tuple[str, str]:
    """The first question word and the word after it, lower-cased.

    >>> question_word("In which city was the workshop held?"), question_word("How many attended?")
    (('which', 'city'), ('how many', 'attended'))
    """
    match = _WH.search(text)
    if match is None:
        return ("", "")
    following = re.match(r"\W*([A-Za-z]+)", text[match.end() :])
    return (re.sub(r"\s+", " ", match.group(1).lower()), following.group(1).lower() if following else "")


def holds_answer_type(text: str, kinds: Sequence[str]) -> float:
    """The share of the asked-for kinds (``Question.answer_types``) that ``text`` holds."""
    if not kinds:
        return 0.0
    return sum(1.0 for k in kinds if ANSWER_TYPES[k][1].search(text)) / len(kinds)
