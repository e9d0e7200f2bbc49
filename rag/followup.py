"""Follow-up questions rewritten into standalone ones, without an LLM.

"And who funded it?" after "When was the HomeNet workshop held?" becomes
"who funded the HomeNet workshop?". A question that stands on its own is left untouched.

>>> rewrite_followup("And who funded it?", [{"role": "user", "content": "When was the HomeNet workshop held?"},
...                                          {"role": "assistant", "content": "On 2 November 2022 [1]."}])
'Who funded the HomeNet workshop?'
>>> rewrite_followup("Who funded the 2021 workshop?", [{"role": "user", "content": "Anything"}])
'Who funded the 2021 workshop?'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rag.lexicon import OBJECT_PRONOUNS, POSSESSIVE_PRONOUNS, SUBJECT_PRONOUNS

_LEADING_FILLER = re.compile(r"^\s*(?:and|so|also|then|ok(?:ay)?|and then|but)\b[\s,]*", re.I)
# References that only make sense with the previous turn.
_PRONOUN = re.compile(
    r"\b("
    + "|".join(sorted(SUBJECT_PRONOUNS | POSSESSIVE_PRONOUNS | OBJECT_PRONOUNS))
    + r"|the same|the event|the workshop|the meeting|the webinar|the project|the session)\b",
    re.I,
)
_WHAT_ABOUT = re.compile(r"^\s*(?:and\s+)?(?:what|how)\s+about\s+(?P<topic>.+?)\s*\??\s*$", re.I)
_EVENT_NOUNS = (
    r"workshop|webinar|orientation|conference|meeting|event|session|project|programme|program|"
    r"network|study|resolution|strategy|plan|roundtable|summit|training|discussion|phase|tour"
)
# "the HomeNet Southeast Asia workshop", "the 2021 workshop", "the research orientation"
# Case-insensitive except the trailing name: "on SSE Policy" continues a topic, "on policy" not.
_TOPIC = re.compile(
    r"\b(?i:the|this|that)\s+(?:[\w’'()-]+\s+){0,6}?(?i:" + _EVENT_NOUNS + r")\b"
    r"(?:\s+(?:on|in|of|for)\s+[A-Z][\w’'-]*(?:\s+[A-Z][\w’'-]*)*)?"
)
_ENTITY = re.compile(r"\b[A-Z][\w’'-]*(?:\s+(?:of|and|for|the|on)?\s*[A-Z][\w’'-]*)+|\b[A-Z]{2,}\b")
_STANDALONE_MIN_WORDS = 5


def needs_rewrite(question: str, history: Sequence[dict[str, Any]] | None) -> bool:
    """Whether the question leans on the conversation (a pronoun, "what about", very short)."""
    if not history or not _previous_user_question(history):
        return False
    if _WHAT_ABOUT.match(question) or (_LEADING_FILLER.match(question) and len(question.split()) <= 8):
        return True
    if _PRONOUN.search(question) and not _ENTITY.search(_LEADING_FILLER.sub("", question)[1:]):
        return True
    return len(question.split()) < _STANDALONE_MIN_WORDS and not _ENTITY.search(question[1:])


def rewrite_followup(question: str, history: Sequence[dict[str, Any]] | None) -> str:
    """A standalone version of ``question`` (the question itself when none is needed)."""
    question = question.strip()
    if not needs_rewrite(question, history):
        return question
    previous = _previous_user_question(history or [])
    topic = _topic(previous)
    body = _LEADING_FILLER.sub("", question).strip() or question

    what_about = _WHAT_ABOUT.match(body)
    if what_about:
        # "What about the 2024 one?" -> the previous question with its topic swapped.
        new_topic = what_about.group("topic")
        if topic and _PRONOUN.search(new_topic):
            # "What about its participants?" -> "What about the HomeNet workshop's participants?"
            return _capitalize(f"What about {_replace_first_pronoun(new_topic, topic)}?")
        if topic and topic in previous:
            return _capitalize(previous.replace(topic, new_topic, 1))
        return _capitalize(f"{previous.rstrip('?')} — {new_topic}?")

    if topic:
        replaced = _replace_first_pronoun(body, topic)
        if replaced != body:
            return _capitalize(replaced)
        return _capitalize(f"{body.rstrip('?')} ({topic})?" if body.endswith("?") else f"{body} ({topic})")
    # No clear topic: carry the previous question along as context for retrieval.
    return _capitalize(f"{previous.rstrip('?')}: {body}")


def _previous_user_question(history: Sequence[dict[str, Any]]) -> str:
    for turn in reversed(history):
        if turn.get("role") == "user" and str(turn.get("content", "")).strip():
            return str(turn["content"]).strip()
    return ""


def _topic(question: str) -> str | None:
    matches = [m.group(0) for m in _TOPIC.finditer(question)]
    if matches:
        return max(matches, key=len)
    entities = [m.group(0) for m in _ENTITY.finditer(question) if m.start() > 0 or len(m.group(0).split()) > 1]
    return max(entities, key=len) if entities else None


def _replace_first_pronoun(text: str, topic: str) -> str:
    def swap(match: re.Match[str]) -> str:
        word = match.group(0).lower()
        if word in POSSESSIVE_PRONOUNS:
            return f"{topic}'s"
        if word in SUBJECT_PRONOUNS or word.startswith("the ") or word in OBJECT_PRONOUNS:
            return f"in {topic}" if word == "there" else topic
        return match.group(0)

    return _PRONOUN.sub(swap, text, count=1)


def _capitalize(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text[:1].upper() + text[1:]
