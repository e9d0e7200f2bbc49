"""Follow-up rewriting: only when needed, and without an LLM.

Besides single follow-ups, whole conversations over the seed articles are replayed turn by turn
(three and four turns, topic switches, "what about"), each rewrite checked against the one
expected, and the same conversations run end to end against the seeds' index.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from rag.followup import conversation_topic, needs_rewrite, rewrite_followup
from rag.knowledge import KnowledgeBase

HOMENET = [
    {"role": "user", "content": "When was the HomeNet workshop held?"},
    {"role": "assistant", "content": "On 2 November 2022 [1]."},
]

# Seed articles, by the doc id the index gives them.
WEBINAR_2022 = "000_57b7b5ccac7b4b3f.txt"
HOMENET_2022 = "001_836a51dde4f8b979.txt"
REGIONAL_WORKSHOP_2024 = "002_c07edba6fafc06a0.txt"
SSE_POLICY_WORKSHOP_2021 = "003_21bb20fa281d6cc8.txt"
RESEARCH_ORIENTATION_2022 = "004_39012777520c72e4.txt"


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


def test_what_about_an_aspect_keeps_the_topic() -> None:
    # "the participants" is not another event: it is asked of the one talked about.
    assert rewrite_followup("What about the participants?", HOMENET) == (
        "What about the participants of the HomeNet workshop?"
    )


def test_what_about_the_other_one_is_the_same_kind_of_event() -> None:
    history = [{"role": "user", "content": "Who funded the 2021 workshop?"}]
    assert rewrite_followup("And what about the 2024 one?", history) == "Who funded the 2024 workshop?"


def test_what_about_a_person_does_not_ask_the_events_question() -> None:
    # "When was Simel Esim held?" would be nonsense: the person is asked about within the event.
    assert rewrite_followup("How about Simel Esim?", HOMENET) == "What about Simel Esim (the HomeNet workshop)?"


def test_she_is_the_person_named_beside_the_event() -> None:
    history = [{"role": "user", "content": "What did Simel Esim say at the HomeNet workshop?"}]
    assert rewrite_followup("What is her role?", history) == "What is Simel Esim's role?"
    assert rewrite_followup("When was it held?", history) == "When was the HomeNet workshop held?"


def test_a_name_capitalised_inside_is_a_topic() -> None:
    history = [{"role": "user", "content": "Tell me about KoSEA"}]
    assert rewrite_followup("Who leads it?", history) == "Who leads KoSEA?"


def test_a_part_of_the_event_still_needs_the_event() -> None:
    history = [{"role": "user", "content": "Which countries gave policy presentations at the 2024 regional workshop?"}]
    assert rewrite_followup("And what did the statistics session recommend?", history) == (
        "What did the statistics session recommend (the 2024 regional workshop)?"
    )


def test_short_followup_without_topic_carries_the_previous_topic() -> None:
    history = [{"role": "user", "content": "Who funded the country studies?"}]
    rewritten = rewrite_followup("How many?", history)
    assert "country studies" in rewritten and "How many" in rewritten
    assert "funded" not in rewritten  # the topic travels, not the previous question


def test_nothing_named_means_nothing_glued_on() -> None:
    history = [{"role": "user", "content": "Hello"}, {"role": "user", "content": "Who funded it?"}]
    assert rewrite_followup("And how much?", history) == "How much?"


def test_person_pronoun_resolves_to_the_person() -> None:
    history = [{"role": "user", "content": "Who is Benjamin Velasco?"}]
    assert rewrite_followup("What phenomenon did he describe?", history) == (
        "What phenomenon did Benjamin Velasco describe?"
    )


def test_people_are_not_replaced_by_an_event() -> None:
    # "they" are the speakers, not the workshop: the workshop is added as context instead.
    history = [
        {"role": "user", "content": "Who gave the congratulatory messages at the end of the 2021 SSE policy workshop?"}
    ]
    assert (
        rewrite_followup("What did they commit to?", history)
        == "What did they commit to (the 2021 SSE policy workshop)?"
    )


def test_there_is_the_place_of_the_event_even_next_to_a_name() -> None:
    history = [
        {"role": "user", "content": "When did the ILO hold the research orientation for national SSE researchers?"}
    ]
    assert rewrite_followup("Which ILO official spoke there?", history) == (
        "Which ILO official spoke at the research orientation?"
    )


def test_existential_there_is_not_a_place() -> None:
    assert rewrite_followup("Were there any women?", HOMENET) == "Were there any women (the HomeNet workshop)?"


def test_demonstrative_of_another_noun_keeps_its_noun() -> None:
    history = [{"role": "user", "content": "What did Simel Esim introduce at the October 2022 research orientation?"}]
    assert rewrite_followup("What does that resolution encourage member States to do?", history) == (
        "What does the resolution encourage member States to do (the October 2022 research orientation)?"
    )


def test_demonstrative_of_the_same_noun_is_the_event() -> None:
    history = [{"role": "user", "content": "Who funded the 2021 workshop on SSE Policy in Asia?"}]
    assert rewrite_followup("How long did that workshop last?", history) == (
        "How long did the 2021 workshop on SSE Policy in Asia last?"
    )


def test_quoted_title_belongs_to_the_topic() -> None:
    history = [
        {"role": "user", "content": 'Who organized the webinar "Digital Technology and Solidarity Economy in Asia"?'}
    ]
    assert rewrite_followup("And when did it take place?", history) == (
        'When did the webinar "Digital Technology and Solidarity Economy in Asia" take place?'
    )


# --- whole conversations ----------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    question: str
    standalone: str  # what the rewriter must make of it
    article: str  # the seed article that answers it


CONVERSATIONS: dict[str, list[Turn]] = {
    # The chat UI once turned the third question into "Who organized it: How many people attended it?".
    "homenet, three turns": [
        Turn(
            "When was the HomeNet workshop held and where?",
            "When was the HomeNet workshop held and where?",
            HOMENET_2022,
        ),
        Turn("Who organized it?", "Who organized the HomeNet workshop?", HOMENET_2022),
        Turn("How many people attended it?", "How many people attended the HomeNet workshop?", HOMENET_2022),
    ],
    "switch to the 2021 workshop at turn three": [
        Turn(
            "When was the HomeNet workshop held and where?",
            "When was the HomeNet workshop held and where?",
            HOMENET_2022,
        ),
        Turn("Who organized it?", "Who organized the HomeNet workshop?", HOMENET_2022),
        Turn(
            "Who funded the 2021 workshop on SSE policy?",
            "Who funded the 2021 workshop on SSE policy?",
            SSE_POLICY_WORKSHOP_2021,
        ),
        Turn("When was it held?", "When was the 2021 workshop on SSE held?", SSE_POLICY_WORKSHOP_2021),
    ],
    "what about another workshop, then a pronoun": [
        Turn(
            "Who implemented the 2021 workshop on SSE policy?",
            "Who implemented the 2021 workshop on SSE policy?",
            SSE_POLICY_WORKSHOP_2021,
        ),
        Turn("And who funded it?", "Who funded the 2021 workshop on SSE?", SSE_POLICY_WORKSHOP_2021),
        Turn(
            "What about the 2024 regional workshop?", "Who funded the 2024 regional workshop?", REGIONAL_WORKSHOP_2024
        ),
        Turn(
            "How many people attended it?",
            "How many people attended the 2024 regional workshop?",
            REGIONAL_WORKSHOP_2024,
        ),
    ],
    "webinar, a follow-up that names nothing, then there": [
        Turn(
            'Who organized the webinar "Digital Technology and Solidarity Economy in Asia"?',
            'Who organized the webinar "Digital Technology and Solidarity Economy in Asia"?',
            WEBINAR_2022,
        ),
        Turn(
            "When did it take place?",
            'When did the webinar "Digital Technology and Solidarity Economy in Asia" take place?',
            WEBINAR_2022,
        ),
        Turn(
            "How many attended?",
            'How many attended (the webinar "Digital Technology and Solidarity Economy in Asia")?',
            WEBINAR_2022,
        ),
        Turn(
            "Which ILO official spoke there?",
            'Which ILO official spoke at the webinar "Digital Technology and Solidarity Economy in Asia"?',
            WEBINAR_2022,
        ),
    ],
    "research orientation, three turns": [
        Turn(
            "When did the ILO hold the research orientation for national SSE researchers?",
            "When did the ILO hold the research orientation for national SSE researchers?",
            RESEARCH_ORIENTATION_2022,
        ),
        Turn(
            "Who presented the analytical framework there?",
            "Who presented the analytical framework at the research orientation?",
            RESEARCH_ORIENTATION_2022,
        ),
        Turn(
            "Which countries does the study cover?",
            "Which countries does the study cover (the research orientation)?",
            RESEARCH_ORIENTATION_2022,
        ),
    ],
    "a person, then back to an event": [
        Turn("Who is Benjamin Velasco?", "Who is Benjamin Velasco?", WEBINAR_2022),
        Turn("What phenomenon did he describe?", "What phenomenon did Benjamin Velasco describe?", WEBINAR_2022),
        Turn(
            "When was the HomeNet Southeast Asia workshop?",
            "When was the HomeNet Southeast Asia workshop?",
            HOMENET_2022,
        ),
        Turn("Where was it held?", "Where was the HomeNet Southeast Asia workshop held?", HOMENET_2022),
    ],
}


def _replay(turns: list[Turn]) -> list[tuple[Turn, str, list[dict[str, str]]]]:
    """Each turn with its rewrite and the history before it (assistant turns say little, on purpose)."""
    history: list[dict[str, str]] = []
    replayed = []
    for turn in turns:
        replayed.append((turn, rewrite_followup(turn.question, history), list(history)))
        history += [
            {"role": "user", "content": turn.question},
            {"role": "assistant", "content": "According to the article, yes [1]."},
        ]
    return replayed


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_conversation_followups_resolve_to_the_topic(name: str) -> None:
    for turn, rewritten, _ in _replay(CONVERSATIONS[name]):
        assert rewritten == turn.standalone, turn.question


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_a_followup_never_carries_an_earlier_question(name: str) -> None:
    for turn, rewritten, history in _replay(CONVERSATIONS[name]):
        earlier = [t["content"] for t in history if t["role"] == "user"]
        for question in earlier:
            if question != turn.question:
                assert question.rstrip("?") not in rewritten, (turn.question, rewritten)


def test_conversation_topic_follows_the_last_named_event() -> None:
    history = [
        {"role": "user", "content": "When was the HomeNet workshop held and where?"},
        {"role": "user", "content": "Who organized it?"},
    ]
    assert conversation_topic(history).text == "the HomeNet workshop"  # type: ignore[union-attr]
    history.append({"role": "user", "content": "Who funded the 2021 workshop on SSE policy?"})
    assert conversation_topic(history).text == "the 2021 workshop on SSE"  # type: ignore[union-attr]
    assert conversation_topic([{"role": "user", "content": "Hello"}]) is None


# --- end to end, over the seeds' index ---------------------------------------------------------


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_conversation_retrieves_the_right_article(seeds_kb: KnowledgeBase, name: str) -> None:
    """Each turn, asked with the real answers as history, is rewritten as expected and cites its article."""
    history: list[dict[str, str]] = []
    for turn in CONVERSATIONS[name]:
        hits = seeds_kb.search(rewrite_followup(turn.question, history), 3)
        assert hits and hits[0].doc_id == turn.article, (turn.question, [h.doc_id for h in hits])
        answer = seeds_kb.answer(turn.question, history, mode="extractive")
        assert answer.standalone_question == (None if turn.standalone == turn.question else turn.standalone)
        if not answer.abstained:
            assert answer.citations[0].doc_id == turn.article, (turn.question, answer.text)
        history += [{"role": "user", "content": turn.question}, {"role": "assistant", "content": answer.text}]
