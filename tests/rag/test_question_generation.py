"""LLM-written training questions: generation with a fake chat model, the cache, the filter."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from rag.knowledge import load
from rag.question_generation import (
    SourceParagraph,
    answer_span,
    apply_filter,
    cache_key,
    generate,
    generate_for_corpus,
    load_generated,
    parse_generation,
    prompt_fingerprint,
    read_records,
)
from rag.reader_training import ReaderTrainConfig, build_pairs, generated_items

PARAS = [
    SourceParagraph("fair.txt", 1, "Book fair opens in Lund",
                    "The Riverside Book Fair opened on 4 May in Lund. Its speakers were Ana Berg and Jonas Holm."),
    SourceParagraph("fair.txt", 2, "Book fair opens in Lund",
                    "Tickets for the Riverside Book Fair cost 12 euros. Children under ten enter free."),
]

REPLIES = {
    1: "Q: Where did the Riverside Book Fair open?\nA: Lund\nQ: Who spoke at the Riverside Book Fair?\n"
       "A: ana berg\nQ: How many visitors came to the Riverside Book Fair?\nA: 3,000 visitors\n"
       "UNANSWERED: Who moderated the Riverside Book Fair?",
    2: "Q: How much did a ticket for the Riverside Book Fair cost?\nA: 12 euros\nQ: Who enters free at 12 euros?\n"
       "A: 12 euros\nQ: Who enters the Riverside",  # cut off mid-question: what came before still counts
}


class FakeChat:
    """Answers from ``REPLIES`` by the paragraph in the prompt; counts calls and keeps the kwargs."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def invoke(self, messages: Any, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        user = messages[-1].content
        number = 1 if "opened on 4 May" in user else 2
        return SimpleNamespace(content=REPLIES[number])


def test_the_reply_is_parsed_line_by_line_and_a_cut_off_reply_still_counts() -> None:
    pairs, negatives = parse_generation(REPLIES[1])
    assert pairs[0][0] == "Where did the Riverside Book Fair open?" and len(pairs) == 3
    assert negatives == ["Who moderated the Riverside Book Fair?"]
    pairs, negatives = parse_generation(REPLIES[2])
    assert len(pairs) == 2 and negatives == []
    assert parse_generation("I cannot help with that.") == ([], [])


def test_answers_are_copied_from_the_paragraph() -> None:
    text = PARAS[0].text
    assert answer_span("ana berg", text) == "Ana Berg"
    assert answer_span('"Lund."', text) == "Lund"
    assert answer_span("Stockholm", text) is None


def test_generation_is_cached_by_paragraph_prompt_and_model(tmp_path: Path) -> None:
    cache = tmp_path / "gen.jsonl"
    chat = FakeChat()
    stats = generate(PARAS, chat, "model-a", cache, log=lambda _: None)
    assert stats["generated"] == 2 and len(chat.calls) == 2
    # A low temperature and a fixed seed are asked for.
    assert chat.calls[0]["seed"] == 0 and chat.calls[0]["temperature"] <= 0.3
    records = read_records(cache)
    assert [r["key"] for r in records] == [cache_key(p.text, prompt_fingerprint(), "model-a") for p in PARAS]
    # A re-run asks nothing: every paragraph is in the cache.
    again = generate(PARAS, chat, "model-a", cache, log=lambda _: None)
    assert again["generated"] == 0 and again["cached"] == 2 and len(chat.calls) == 2
    # An edited paragraph, or another model, is generated anew; the rest stays cached.
    edited = [PARAS[0], SourceParagraph("fair.txt", 2, PARAS[1].title, PARAS[1].text + " Dogs are welcome.")]
    assert generate(edited, chat, "model-a", cache, log=lambda _: None)["generated"] == 1
    assert generate(PARAS, chat, "model-b", cache, log=lambda _: None)["generated"] == 2
    assert len(read_records(cache)) == 5
    # A line damaged by an interrupted run is skipped, not fatal.
    with cache.open("a", encoding="utf-8") as f:
        f.write('{"key": "half')
    assert len(read_records(cache)) == 5


def test_the_filter_keeps_answers_in_the_paragraph_that_the_searcher_finds(tmp_path: Path) -> None:
    cache = tmp_path / "gen.jsonl"
    generate(PARAS, FakeChat(), "m", cache, log=lambda _: None)

    def search(question: str) -> list[tuple[str, int]]:
        # The searcher finds the first paragraph for every question but the one about speakers.
        if "spoke" in question:
            return [("other.txt", 1), ("other.txt", 2), ("other.txt", 3), ("fair.txt", 1)]
        return [("fair.txt", 1), ("fair.txt", 2)]

    first, second = apply_filter(read_records(cache), search, top_k=3)
    assert [q["question"] for q in first["questions"]] == ["Where did the Riverside Book Fair open?"]
    reasons = {r["question"]: r["reason"] for r in first["rejected"]}
    assert reasons["Who spoke at the Riverside Book Fair?"].startswith("source paragraph not in the searcher's top 3")
    assert reasons["How many visitors came to the Riverside Book Fair?"] == "answer not in the paragraph"
    assert first["unanswerable"] == ["Who moderated the Riverside Book Fair?"]
    assert [q["answer"] for q in second["questions"]] == ["12 euros"]
    assert second["rejected"][0]["reason"] == "answer in the question"
    kept = first["questions"][0]
    assert PARAS[0].text[kept["answer_start"]:].startswith(kept["answer"])


def test_generated_questions_become_reader_pairs_with_negatives_from_the_same_article(tmp_path: Path) -> None:
    cache = tmp_path / "gen.jsonl"
    generate(PARAS, FakeChat(), "m", cache, log=lambda _: None)
    records = apply_filter(read_records(cache), lambda q: [("fair.txt", 1), ("fair.txt", 2)])
    cache.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    loaded = load_generated(cache)
    assert sum(g["answer"] is None for g in loaded) == 1
    items = generated_items(cache)
    assert {i.source for i in items} == {"generated"} and sum(i.impossible for i in items) == 1
    assert not any(i.impossible for i in generated_items(cache, near_misses=False))
    pairs = build_pairs(items, ReaderTrainConfig(hard_negatives=1, easy_negative_share=0.0, max_questions=1))
    counts = pairs.counts()
    # Every generated question is trained on (the cap is for SQuAD), its kinds marked "generated-".
    assert counts["generated-paragraph+"] == 3 and counts["generated-sentence+"] == 3
    assert counts["generated-paragraph-hard"] >= 1  # the other paragraph of the same article
    assert counts["generated-unanswerable"] == 1 and counts["generated-unanswerable-sentence"] == 1
    assert all(k.startswith("generated-") for k in counts)
    # A paragraph of a corpus the evals score is never trained on.
    held = tmp_path / "held"
    held.mkdir()
    (held / "fair.txt").write_text("Book fair\n\n" + PARAS[0].text + "\n", encoding="utf-8")
    assert all(i.context != PARAS[0].text for i in generated_items(cache, [held]))


def test_generate_for_corpus_end_to_end_with_a_fake_model(tiny_corpus: Any, tmp_path: Path) -> None:
    corpus = tiny_corpus()

    class Chat:
        def invoke(self, messages: Any, **kwargs: Any) -> Any:
            user = messages[-1].content
            if "400 tonnes" in user:
                return SimpleNamespace(content="Q: How many tonnes of apples did the Green Valley orchard "
                                               "cooperative harvest?\nA: 400 tonnes\nUNANSWERED: Who bought the "
                                               "Green Valley apples?")
            return SimpleNamespace(content="nothing useful")

    out = tmp_path / "gen.jsonl"
    report = generate_for_corpus(load(corpus, tmp_path / "index"), out, chat=Chat(), model_sha="fake", log=lambda _: None)
    assert report["kept"] == 1 and report["unanswerable"] == 1 and report["written"] == 1 and report["generated"] >= 1
    again = generate_for_corpus(load(corpus, tmp_path / "index"), out, chat=Chat(), model_sha="fake", log=lambda _: None)
    assert again["generated"] == 0 and again["kept"] == 1
