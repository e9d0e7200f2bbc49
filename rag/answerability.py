"""Does a candidate answer actually answer the question? Checks that catch the near miss.

Retrieval confidence cannot tell "the articles discuss this event" from "the articles state
what was asked about it": a question about an event the articles cover, asking for a detail they
never give ("How many people attended the HomeNet workshop?"), retrieves the right article with
high scores. The failure then shows in the answer itself, which these checks read:

- **names**: the question's proper names and numbers ("HomeNet", "2024") must occur in the
  articles the answer cites. An answer built from another event's article is the typical slip
  (the attendance of the 2024 workshop offered for the 2022 one).
- **answer type**: a "how many N" question needs a number, not a date and not one the question
  already states, that counts N ("six member countries" does not answer "how many people"); a
  "how much money" question a sum; a "when" question a time (a date, a year, "two weeks later"; not
  just any number: "the 110th session" is no date); a "who" question a name the
  question does not already give.
- **novelty**: the answer must say something the question did not ("The webinar was
  interpreted into seven languages." does not answer "Which seven languages…?").

Every check is a rule about questions and answers in general, not about this corpus; each was
kept because it raised abstention on unanswerable gold questions without raising false
abstentions (``python -m evals.run``).

>>> check_answer("How many people attended the Phnom Penh workshop?", "Around 100 took part.",
...              ["The workshop in Phnom Penh had many guests. Around 100 took part."]).ok
True
>>> check_answer("How many people attended the Phnom Penh workshop?", "The workshop was lively.",
...              ["The workshop in Phnom Penh was lively."]).reason
'answer_type'
>>> check_answer("How many people attended the Phnom Penh workshop?", "About 100 attended.",
...              ["About 100 attended the Bangkok forum."], ["The workshop in Phnom Penh was lively."]).reason
'names'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.domain import CITATION_MARKER
from rag.lexicon import (
    AMOUNT,
    COMMON_CAPITALISED,
    COUNT_PATTERN,
    HOLDS_TIME,
    PEOPLE_STEMS,
    QUESTION_TOKENS,
    normalize,
    numbers_in,
    proper_names,
    spell_date,
    stem,
    tokenize,
    without_dates,
)
from rag.question import Question, analyze_question


@dataclass(frozen=True)
class Answerability:
    ok: bool
    reason: str | None = None  # "names", "answer_type" or "novelty" when not ok
    detail: str = ""


def _name_forms(name: str) -> set[str]:
    """Spellings of one name to look for: as written, without hyphens, and its stem."""
    forms = {name, name.replace("-", " "), name.replace("-", "")}
    if len(name) >= 6 and name.isalpha():
        forms.add(name[: max(5, len(name) - 2)])  # "korean" → "kore", "cambodian" → "cambodi"
    return {f for f in forms if f}


def missing_names(names: set[str], evidence_text: str) -> list[str]:
    """The names that ``evidence_text`` does not contain (in some spelling)."""
    known = normalize(evidence_text)
    known_squashed = known.replace("-", "").replace(" ", "")

    def found(name: str) -> bool:
        if any(form in known or form.replace(" ", "") in known_squashed for form in _name_forms(name)):
            return True
        # "Asia-Pacific" is also written "Asia and the Pacific": each part on its own will do.
        parts = [part for part in name.split("-") if len(part) > 1]
        return len(parts) > 1 and all(part in known for part in parts)

    return sorted(name for name in names if not found(name))


def _answer_names(answer: str) -> set[str]:
    """Proper names of an answer, its opening word included when it is clearly a name
    ("Vic Van Vuuren gave…", "KoSEA …"), not just a capitalised first word ("Two speakers…")."""
    names = proper_names(answer)
    opening = re.match(r"\W*([A-Z][\w’'-]*[A-Za-z])(?=\s+[A-Z])|\W*([A-Z][A-Z0-9]+|[A-Z][a-z]+[A-Z]\w*)\b", answer)
    if opening and normalize(opening.group(1) or opening.group(2)) not in COMMON_CAPITALISED:
        names.add(normalize(opening.group(1) or opening.group(2)))
    return names


#: What follows a count that stands alone ("100 took part", "120 of them", "310 in all").
_BARE_COUNT = re.compile(
    r"\s+(?:(?:people\s+)?(?:took part|attended|joined|participated|came|registered|were|are|was|is|have|had)\b"
    r"|of (?:them|whom|us|these|those)\b|in (?:all|total)\b)",
    re.I,
)
#: A count in digits or words, with the word it may be hyphenated to ("two-day").
_COUNT = re.compile(r"(?<![\w-])(" + COUNT_PATTERN + r")(?:-([A-Za-z]+))?\b", re.I)
_PHRASE_END = re.compile(r"[,;:.()!?]|\b(?:and|or|from|of|in|at|to|with|for|who|that|which|on|by)\b", re.I)


def _counts_the_thing(question: Question, answer: str) -> bool:
    """For "how many N", some number in the answer counts N (or, for people, any word for people).

    "six member countries" is no answer to "how many people attended"; "over 120 social
    protection practitioners" is. The counted word is one of the two words after "how many"
    ("national researchers"); what a number counts is a word of the short phrase after it
    ("two-day" counts days); "member" is left out of the words for people, being
    mostly a modifier ("member countries").
    """
    wanted = question.counted
    if not wanted:
        return True
    people = bool(wanted & PEOPLE_STEMS)
    text = without_dates(answer)
    for number in _COUNT.finditer(text):
        if number.group(2):  # "two-day", "seven-year"
            words = [number.group(2)]
        elif _BARE_COUNT.match(text, number.end()):
            return True  # "around 100 took part": the count stands alone, its subject is the question's
        else:
            rest = text[number.end() : number.end() + 80]
            cut = _PHRASE_END.search(rest)
            words = re.findall(r"[A-Za-z’']+", rest[: cut.start()] if cut else rest)[:3]
        counted = {stem(w.lower()) for w in words}
        if counted & wanted or (people and counted & PEOPLE_STEMS):
            return True
    return False


def _answer_type_present(question: Question, answer: str) -> list[str]:
    """The answer types the question asks for that the answer lacks (beyond the question's own words)."""
    lacking = []
    for kind in question.asks:
        if kind == "amount":
            ok = bool(AMOUNT.search(answer))
        elif kind == "number":
            ok = bool(numbers_in(without_dates(answer)) - question.numbers) and _counts_the_thing(question, answer)
        elif kind == "date":
            ok = bool(HOLDS_TIME.search(answer))
        else:  # a name the question does not already give ("Indonesia" is given by "Indonesian")
            given = question.proper_names
            ok = any(
                not any((name[:5] == g[:5] and min(len(name), len(g)) >= 5) or name == g for g in given)
                for name in _answer_names(answer)
            )
        if not ok:
            lacking.append(kind)
    return lacking


def novel_terms(question: Question | str, answer: str) -> set[str]:
    """Content words (stemmed) of the answer that the question does not contain."""
    question = analyze_question(question) if isinstance(question, str) else question
    return set(tokenize(answer)) - set(question.terms) - QUESTION_TOKENS


def check_answer(
    question: Question | str, answer: str, cited_articles: Sequence[str], retrieved_articles: Sequence[str] = ()
) -> Answerability:
    """Whether ``answer`` (markers allowed) answers ``question`` from the articles it cites.

    ``cited_articles``: the whole text (title, date, paragraphs) of each article the answer
    cites; ``retrieved_articles``: the same for every article retrieval offered. When one
    offered article names everything the question names, the question is about that article's
    event and the answer must cite such an article. When none does (a question spanning
    articles), the names cannot decide and only the other checks apply.
    """
    question = analyze_question(question) if isinstance(question, str) else question
    answer = re.sub(r"\s+", " ", CITATION_MARKER.sub(" ", answer)).strip()
    names = set(question.names)
    if names:
        offered = list(dict.fromkeys([*cited_articles, *retrieved_articles]))
        # Multi-word names as phrases when some article has them all, else word by word.
        phrases = names | question.phrases
        complete = [text for text in offered if not missing_names(phrases, text)]
        if not complete:
            complete = [text for text in offered if not missing_names(names, text)]
        if complete and not any(text in complete for text in cited_articles):
            missing = min((missing_names(names, text) for text in cited_articles), key=len, default=sorted(names))
            return Answerability(False, "names", ", ".join(missing))
    lacking = _answer_type_present(question, answer)
    if lacking:
        return Answerability(False, "answer_type", ", ".join(lacking))
    if not novel_terms(question, answer):
        return Answerability(False, "novelty")
    return Answerability(True)


def article_evidence(title: str, date: str | None, paragraphs: Sequence[str]) -> str:
    """An article as evidence for the names check: its date also spelled out ("1 April 2022")."""
    return "\n".join([title, date or "", spell_date(date) or "", *paragraphs])
