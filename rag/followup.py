"""Follow-up questions rewritten into standalone ones, without an LLM.

"And who funded it?" after "When was the HomeNet workshop held?" becomes
"who funded the HomeNet workshop?". A question that stands on its own is left untouched.

The thing a follow-up refers to is the topic of the conversation: the last event or name the
user spelled out. Earlier user turns are rewritten first, in order, so a chain of follow-ups
("Who organized it?", then "How many people attended it?") keeps pointing at the event named
at the start, and a turn that names another event switches the topic. Only the topic is carried
over, never the wording of an earlier question.

>>> rewrite_followup("And who funded it?", [{"role": "user", "content": "When was the HomeNet workshop held?"},
...                                          {"role": "assistant", "content": "On 2 November 2022 [1]."}])
'Who funded the HomeNet workshop?'
>>> rewrite_followup("How many people attended it?", [
...     {"role": "user", "content": "When was the HomeNet workshop held and where?"},
...     {"role": "assistant", "content": "On 2 November 2022 in Phnom Penh [1]."},
...     {"role": "user", "content": "Who organized it?"},
...     {"role": "assistant", "content": "HomeNet South-East Asia [1]."}])
'How many people attended the HomeNet workshop?'
>>> rewrite_followup("Who funded the 2021 workshop?", [{"role": "user", "content": "Anything"}])
'Who funded the 2021 workshop?'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rag.lexicon import (
    COMMON_CAPITALISED,
    DEMONSTRATIVES,
    OBJECT_PRONOUNS,
    PERSON_PRONOUNS,
    POSSESSIVE_PRONOUNS,
    STOPWORDS,
    SUBJECT_PRONOUNS,
)

_LEADING_FILLER = re.compile(r"^\s*(?:and|so|also|then|ok(?:ay)?|and then|but)\b[\s,]*", re.I)
_WHAT_ABOUT = re.compile(r"^\s*(?:and\s+)?(?:what|how)\s+about\s+(?P<topic>.+?)\s*\??\s*$", re.I)
_EVENT_NOUNS = (
    r"(?:workshop|webinar|orientation|conference|meeting|event|session|project|programme|program|"
    r"network|study|resolution|strategy|plan|roundtable|summit|training|discussion|phase|tour)s?|studies"
)
# Event nouns for a part of an event: "the statistics session" still needs the workshop it was in.
_PART_OF_EVENT = re.compile(r"\b(?:sessions?|tours?|phases?|discussions?)$", re.I)
# Words that end the modifiers of an event phrase: "the end of the 2021 workshop" is about the
# 2021 workshop, "the ILO hold the research orientation" about the research orientation.
_NOT_A_MODIFIER = (
    r"(?!(?i:the|a|an|this|that|these|those|of|at|in|on|for|to|by|and|with|from|about|same|other|which|what|"
    r"who|did|does|do|was|were|is|are|has|have|had)\b)"
)
# Case-insensitive except the trailing names: "on SSE Policy in Asia" continues a topic, "on policy" not.
_TRAILING_NAME = r"\s+(?:on|in|of|for)\s+[A-Z][\w’'-]*(?:\s+(?:and\s+)?[A-Z][\w’'-]*)*"
# "the HomeNet Southeast Asia workshop", "the 2021 workshop", "the strategy and action plan",
# 'the webinar "Digital Technology and Solidarity Economy in Asia"'
_TOPIC = re.compile(
    r"\b(?i:the|this|that|these|those)\s+(?:" + _NOT_A_MODIFIER + r"[\w’'()-]+\s+){0,6}"
    r"(?i:" + _EVENT_NOUNS + r")\b"
    r"(?:\s+and\s+(?:" + _NOT_A_MODIFIER + r"[\w’'-]+\s+){0,2}?(?i:" + _EVENT_NOUNS + r")\b)?"
    r"(?:" + _TRAILING_NAME + r"){0,2}"
    r"(?:\s+[\"“][^\"”]{1,100}[\"”])?"
)
# Several capitalised words, an acronym ("ILO") or one word capitalised inside ("KoSEA", "HomeNet").
_ENTITY = re.compile(
    r"\b[A-Z][\w’'-]*(?:\s+(?:of|and|for|the|on)?\s*[A-Z][\w’'-]*)+|\b[A-Z]{2,}\b|\b[A-Z][a-z]+[A-Z][\w-]*"
)
# Capitalised openers that are not part of a name: "Which HomeNet member" names "HomeNet".
_NOT_A_NAME = COMMON_CAPITALISED | STOPWORDS
_STANDALONE_MIN_WORDS = 5

_THING_PRONOUNS = (SUBJECT_PRONOUNS | POSSESSIVE_PRONOUNS | OBJECT_PRONOUNS) - PERSON_PRONOUNS - DEMONSTRATIVES
_SINGULAR_PERSON_PRONOUNS = frozenset(["he", "she", "him", "his", "her", "hers"])
# "Simel Esim", "Benjamin Velasco": two or three plain capitalised words (not "HomeNet", not "ILO").
_PERSON_NAME = re.compile(r"[A-Z][a-zñéáíóúü’'-]+(?:\s+[A-Z][a-zñéáíóúü’'-]+){1,2}")
_BE_VERBS = ("is", "are", "was", "were", "be", "been", "will", "'s", "’s")
# What can point back, leftmost first: "that session", "the workshop", "the same", "it", "she"...
_REFERENCE = re.compile(
    r"\b(?P<demonstrative>(?i:" + "|".join(sorted(DEMONSTRATIVES)) + r"))\s+"
    r"(?!(?:" + "|".join(sorted(STOPWORDS)) + r")\b)(?P<noun>[a-z][\w-]*)"
    r"|\b(?P<bare_event>(?i:the\s+(?:same\s+)?(?:" + _EVENT_NOUNS + r")|the\s+same))\b"
    r"|\b(?P<pronoun>(?i:"
    + "|".join(sorted(_THING_PRONOUNS | PERSON_PRONOUNS | DEMONSTRATIVES, key=len, reverse=True))
    + r"))\b"
)


@dataclass(frozen=True)
class Topic:
    """What the conversation is about: an event phrase ("the 2021 workshop") or a name ("Simel Esim")."""

    text: str
    is_event: bool


@dataclass(frozen=True)
class _Reference:
    """A word or phrase of a follow-up that points back at the topic."""

    start: int
    end: int
    text: str
    kind: str  # "demonstrative" (that session), "bare_event" (the workshop), "pronoun"
    noun: str = ""


def needs_rewrite(question: str, history: Sequence[dict[str, Any]] | None) -> bool:
    """Whether the question leans on the conversation (a pronoun, "what about", very short)."""
    if not history or not _previous_user_question(history):
        return False
    return _leans_on_context(question)


def rewrite_followup(question: str, history: Sequence[dict[str, Any]] | None) -> str:
    """A standalone version of ``question`` (the question itself when none is needed)."""
    question = question.strip()
    if not needs_rewrite(question, history):
        return question
    return _rewrite(question, _standalone_user_turns(history or []))


def conversation_topic(history: Sequence[dict[str, Any]] | None) -> Topic | None:
    """The last event or name the user's turns spelled out (follow-ups resolved first), if any."""
    return _topic_of_turns(_standalone_user_turns(history or []))


def _standalone_user_turns(history: Sequence[dict[str, Any]]) -> list[str]:
    """Every user turn, rewritten in order against the turns before it."""
    standalone: list[str] = []
    for turn in history:
        content = str(turn.get("content", "")).strip() if turn.get("role") == "user" else ""
        if content:
            standalone.append(_rewrite(content, standalone) if standalone and _leans_on_context(content) else content)
    return standalone


def _leans_on_context(question: str) -> bool:
    body = _LEADING_FILLER.sub("", question)
    if _WHAT_ABOUT.match(body):
        return True
    if any(not _PART_OF_EVENT.search(phrase) for phrase in _named_event_topics(body)):
        # "And who funded the 2021 workshop?" names its own event: it stands alone. "The statistics
        # session" is only a part of one, which the conversation says.
        return False
    if _LEADING_FILLER.match(question) and len(question.split()) <= 8:
        return True
    reference = _first_reference(body)
    names = _names(body)
    # "there" and "that session" point at an event even when the question names a person or the ILO.
    if reference and (not names or reference.kind != "pronoun" or reference.text.lower() == "there"):
        return True
    return len(question.split()) < _STANDALONE_MIN_WORDS and not names


def _rewrite(question: str, earlier: Sequence[str]) -> str:
    """``question`` made standalone, given the standalone versions of the earlier user turns."""
    previous = earlier[-1] if earlier else ""
    topic = _topic_of_turns(earlier)
    body = _LEADING_FILLER.sub("", question).strip() or question

    what_about = _WHAT_ABOUT.match(body)
    if what_about:
        return _rewrite_what_about(what_about.group("topic"), previous, topic)
    reference = _first_reference(body)
    if reference and reference.text.lower() in _SINGULAR_PERSON_PRONOUNS:
        # "What is her role?" after "What did Simel Esim say at the HomeNet workshop?": her is Simel Esim.
        topic = _person_of_turns(earlier) or topic
    if topic is None:
        # Nothing named to resolve to: the question as asked beats one glued to an older question.
        return _capitalize(body)
    return _capitalize(_resolve_reference(body, topic))


def _rewrite_what_about(new_subject: str, previous: str, topic: Topic | None) -> str:
    if topic and _first_reference(new_subject):
        # "What about its participants?" -> "What about the HomeNet workshop's participants?"
        return _capitalize(f"What about {_resolve_reference(new_subject, topic, append=False)}?")
    if topic and topic.is_event:
        # "the 2024 one" is the 2024 workshop when the 2021 workshop was talked about.
        new_subject = re.sub(
            r"\bones?\b", lambda one: _head_noun(topic.text, plural=one.group(0) == "ones"), new_subject
        )
    new_topic = _topic(new_subject)
    if topic and new_topic and new_topic.is_event == topic.is_event and topic.text in previous:
        # "What about the 2024 workshop?" -> the previous question, asked of the 2024 workshop.
        return _capitalize(previous.replace(topic.text, new_subject, 1))
    if topic and new_topic:
        # "How about Simel Esim?" after a question on a workshop: a person is not asked what a workshop was.
        return _capitalize(f"What about {new_subject} ({topic.text})?")
    if topic:
        # "What about the participants?" -> an aspect of the topic, not a new topic.
        return _capitalize(f"What about {new_subject} of {topic.text}?")
    return _capitalize(f"{previous.rstrip('?')} ({new_subject})?" if previous else f"What about {new_subject}?")


def _resolve_reference(text: str, topic: Topic, *, append: bool = True) -> str:
    """``text`` with its first reference replaced by the topic, or the topic appended when none fits."""
    reference = _first_reference(text)
    replacement = _replacement(reference, topic, text) if reference else None
    if reference and replacement is not None:
        return text[: reference.start] + replacement + text[reference.end :]
    if reference and reference.kind == "demonstrative":
        # "in that session" after "What is Lovely Paper?" -> "in the session (Lovely Paper)"
        text = text[: reference.start] + "the " + reference.noun + text[reference.end :]
    if not append:
        return text
    return f"{text.rstrip('?').rstrip()} ({topic.text})?" if text.endswith("?") else f"{text} ({topic.text})"


def _replacement(reference: _Reference, topic: Topic, text: str) -> str | None:
    """What stands in for ``reference`` (None: the reference stays and the topic is appended)."""
    word = reference.text.lower()
    if reference.kind == "demonstrative":
        # "that workshop" -> "the 2021 workshop"; "that resolution" and "those countries" keep their noun.
        return topic.text if _same_kind_of_event(reference.noun, topic) else None
    if reference.kind == "bare_event":
        noun = word.split()[-1]
        return topic.text if word == "the same" or noun == "event" or _same_kind_of_event(noun, topic) else None
    if word in PERSON_PRONOUNS and topic.is_event:
        # "What did they commit to?" after a question on a workshop: "they" are people, not the workshop.
        return None
    if word == "there":
        return f"at {topic.text}" if topic.is_event else f"in {topic.text}"
    if word in POSSESSIVE_PRONOUNS and (word != "her" or _next_word_is_noun(text, reference.end)):
        return f"{topic.text}'s"
    return topic.text


def _same_kind_of_event(noun: str, topic: Topic) -> bool:
    """Whether "that <noun>" can be the topic: "that workshop" the 2021 workshop, not "that resolution"."""
    if not topic.is_event:
        return False
    topic_nouns = {n.lower().rstrip("s") for n in re.findall(r"\b(?:" + _EVENT_NOUNS + r")\b", topic.text, re.I)}
    return noun.lower().rstrip("s") in topic_nouns


def _head_noun(event_phrase: str, *, plural: bool = False) -> str:
    """The event noun of a phrase: "workshop" for "the June 2024 regional workshop on SSE"."""
    nouns = re.findall(r"\b(?:" + _EVENT_NOUNS + r")\b", event_phrase, re.I)
    noun = nouns[-1].lower() if nouns else "one"
    return noun + "s" if plural and not noun.endswith("s") else noun


def _first_reference(text: str) -> _Reference | None:
    for match in _REFERENCE.finditer(text):
        kind = match.lastgroup if match.lastgroup != "noun" else "demonstrative"
        if kind == "pronoun" and match.group(0).lower() == "there" and _is_existential_there(text, match):
            continue  # "Were there any women?" asks whether, not where
        if kind == "demonstrative":
            return _Reference(match.start(), match.end(), match.group(0), kind, match.group("noun"))
        return _Reference(match.start(), match.end(), match.group(0), str(kind))
    return None


def _is_existential_there(text: str, match: re.Match[str]) -> bool:
    after = text[match.end() :].split()
    before = text[: match.start()].split()
    if after and after[0].lower().strip(",?") in _BE_VERBS:
        return True  # "there was", "there were"
    # "Were there any women?" (existential) but "Who was there?" (the place).
    return bool(before and before[-1].lower() in _BE_VERBS and after and after[0] not in {"?", ","})


def _next_word_is_noun(text: str, position: int) -> bool:
    following = re.match(r"\s+([a-z][\w-]*)", text[position:])
    return bool(following and following.group(1) not in STOPWORDS)


def _topic_of_turns(standalone_turns: Sequence[str]) -> Topic | None:
    # Walk back: a turn that named nothing ("How many?") leaves the topic where it was.
    for turn in reversed(standalone_turns):
        topic = _topic(turn)
        if topic:
            return topic
    return None


def _person_of_turns(standalone_turns: Sequence[str]) -> Topic | None:
    for turn in reversed(standalone_turns):
        events = " ".join(_named_event_topics(turn))
        people = [n for n in _names(turn) if _PERSON_NAME.fullmatch(n) and n not in events]
        if people:
            return Topic(people[-1], is_event=False)
    return None


def _topic(text: str) -> Topic | None:
    events = _named_event_topics(text)
    if events:
        phrase = max(events, key=len)
        # "that 2021 workshop" is "the 2021 workshop" once it is the topic.
        return Topic(re.sub(r"^(?i:this|that)\b", "the", phrase), is_event=True)
    names = _names(text)
    return Topic(max(names, key=len), is_event=False) if names else None


def _named_event_topics(text: str) -> list[str]:
    # "the workshop" alone names nothing; "the 2021 workshop" does.
    return [m.group(0) for m in _TOPIC.finditer(text) if len(m.group(0).split()) > 2 or m.group(0)[-1] in '"”']


def _names(text: str) -> list[str]:
    """Names in ``text``, without the capitalised question word that may open it."""
    names: list[str] = []
    for match in _ENTITY.finditer(text):
        words = match.group(0).split()
        while words and words[0].lower() in _NOT_A_NAME:
            words = words[1:]
        if match.start() == 0 and len(words) == len(match.group(0).split()) and len(words) == 1:
            continue  # a single capitalised opener ("Where", "Funded") is no name
        if words and not (len(words) == 1 and words[0].lower() in _NOT_A_NAME):
            names.append(" ".join(words))
    return names


def _previous_user_question(history: Sequence[dict[str, Any]]) -> str:
    for turn in reversed(history):
        if turn.get("role") == "user" and str(turn.get("content", "")).strip():
            return str(turn["content"]).strip()
    return ""


def _capitalize(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text[:1].upper() + text[1:]
