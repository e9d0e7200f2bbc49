"""The reader's training data and command: split by article, hard negatives, a tiny real run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.reader import READER_CARD, READER_HASHES, Reader, ReaderError, verify_reader
from rag.reader_training import (
    QAItem,
    ReaderTrainConfig,
    build_pairs,
    held_out_articles,
    load_squad,
    split_by_article,
    train_reader,
)
from rag.settings import packaged_embedding_model

SQUAD = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "squad2-train-articles"


def _squad_file(tmp_path: Path) -> Path:
    """A SQuAD 2.0 file of three small articles (one with an unanswerable question)."""
    def para(context: str, qas: list[tuple[str, str | None]]) -> dict:
        out = []
        for i, (q, a) in enumerate(qas):
            item = {"id": f"{abs(hash((context, q)))}-{i}", "question": q, "is_impossible": a is None,
                    "answers": [] if a is None else [{"text": a, "answer_start": context.index(a)}]}
            out.append(item)
        return {"context": context, "qas": out}

    data = {"version": "v2.0", "data": [
        {"title": "Harbour_town", "paragraphs": [
            para("The harbour of Portvale was built in 1821. Fishing boats still use it every morning.",
                 [("When was the harbour of Portvale built?", "1821"), ("Who designed the harbour?", None)]),
            para("Portvale has a museum of ships. The museum is run by Anna Berg, a retired captain.",
                 [("Who runs the museum of ships in Portvale?", "Anna Berg")]),
        ]},
        {"title": "Mountain_railway", "paragraphs": [
            para("The Alder railway climbs 1,200 metres. Its trains are pulled by Karl Weiss engines.",
                 [("How high does the Alder railway climb?", "1,200 metres")]),
            para("Tickets for the Alder railway cost 30 francs. Children ride free in winter.",
                 [("How much does a ticket on the Alder railway cost?", "30 francs")]),
        ]},
        {"title": "Held_out_article", "paragraphs": [
            para("The Brill lighthouse shines every night since 1900.",
                 [("Since when does the Brill lighthouse shine?", "1900")]),
        ]},
    ]}
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_split_by_article_keeps_whole_articles_apart(tmp_path: Path) -> None:
    items = load_squad(_squad_file(tmp_path))
    train, held = split_by_article(items, ["Held_out_article"])
    assert {i.article for i in held} == {"Held_out_article"}
    assert not {i.article for i in train} & {i.article for i in held}
    assert len(train) + len(held) == len(items)


def test_a_held_out_corpus_holds_its_articles_out(tmp_path: Path) -> None:
    items = load_squad(_squad_file(tmp_path))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "brill.txt").write_text("Brill\n\nThe  Brill lighthouse shines\nevery night since 1900.\n", encoding="utf-8")
    assert held_out_articles(items, [corpus]) == {"Held_out_article"}


def test_pairs_have_hard_negatives_without_the_answer(tmp_path: Path) -> None:
    items = [i for i in load_squad(_squad_file(tmp_path)) if i.article != "Held_out_article"]
    pairs = build_pairs(items, ReaderTrainConfig(hard_negatives=1, easy_negative_share=1.0))
    counts = pairs.counts()
    assert counts["paragraph+"] == 4 and counts["sentence+"] == 4
    assert counts["paragraph-hard"] == 4 and counts["squad2-unanswerable"] == 1
    for (question, passage), label, kind in zip(pairs.texts, pairs.labels, pairs.kinds, strict=True):
        item = next((i for i in items if i.question == question), None)
        if label == 0.0 and item is not None and kind != "squad2-unanswerable":
            assert not any(a.lower() in passage.lower() for a in item.answers), (kind, question, passage)
    # The positive passage is read with its article's title in front, as the searcher sends it.
    first = pairs.texts[pairs.kinds.index("paragraph+")][1]
    assert first.split("\n")[0] in {"Harbour town", "Mountain railway"}


def test_an_unanswerable_question_is_read_against_its_plausible_answers_sentence(tmp_path: Path) -> None:
    """SQuAD 2.0's plausible answer marks the sentence a careless reader would quote: a negative."""
    context = "Portvale lies on the coast. Its harbour was built by Jan Hol in 1821. Boats use it daily."
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"version": "v2.0", "data": [{"title": "Port", "paragraphs": [{
        "context": context, "qas": [
            {"id": "u1", "question": "Who rebuilt the harbour in 1921?", "is_impossible": True, "answers": [],
             "plausible_answers": [{"text": "Jan Hol", "answer_start": context.index("Jan Hol")}]},
            {"id": "u2", "question": "Who paid for the harbour?", "is_impossible": True, "answers": []},
        ]}]}]}), encoding="utf-8")
    items = load_squad(path)
    assert items[0].plausible_starts == (context.index("Jan Hol"),) and items[1].plausible_starts == ()
    pairs = build_pairs(items, ReaderTrainConfig(hard_negatives=0, easy_negative_share=0.0))
    sentences = [(q, passage, label) for (q, passage), label, kind in zip(pairs.texts, pairs.labels, pairs.kinds,
                                                                          strict=True)
                 if kind == "squad2-unanswerable-sentence"]
    # One pair (the question without a plausible answer has no sentence to be read against).
    assert sentences == [("Who rebuilt the harbour in 1921?", "Port\nIts harbour was built by Jan Hol in 1821.", 0.0)]
    assert pairs.counts()["squad2-unanswerable"] == 2


def test_a_swapped_name_makes_a_near_miss_negative() -> None:
    items = [
        QAItem("A", "Who runs the Portvale museum?", "Anna Berg runs the Portvale museum.", ("Anna Berg",), (0,),
               False, "1"),
        QAItem("B", "Where is Lindholm?", "Lindholm is a village near Oslo.", ("near Oslo",), (22,), False, "2"),
    ]
    pairs = build_pairs(items, ReaderTrainConfig(hard_negatives=0, easy_negative_share=0.0))
    swapped = [q for (q, _), k in zip(pairs.texts, pairs.kinds, strict=True) if k == "name-swapped"]
    assert swapped and all("Portvale" not in q or "Lindholm" not in q for q in swapped)
    assert any(q != "Who runs the Portvale museum?" and q.startswith("Who runs the") for q in swapped)


def test_bad_training_files_and_settings_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(Exception, match="is not a SQuAD JSON file"):
        load_squad(bad)
    with pytest.raises(ValueError):
        ReaderTrainConfig(layers=9)


@pytest.mark.slow
def test_train_reader_tiny_run_writes_a_checked_model(tmp_path: Path) -> None:
    """The real command end to end on a tiny sample: trains, writes fp16 weights, a card and hashes."""
    out = tmp_path / "reader"
    report = train_reader(_squad_file(tmp_path), out, packaged_embedding_model(),
                          ReaderTrainConfig(layers=1, batch_size=4, held_out=("Held_out_article",)), log=lambda _: None)
    assert "Held_out_article" not in report["trained_articles"]
    assert (out / READER_CARD).read_text(encoding="utf-8").startswith("# The reader")
    hashes = verify_reader(out)
    assert "model.safetensors" in hashes and READER_CARD not in hashes
    scores = Reader(out).score("When was the harbour built?", ["Harbour\nBuilt in 1821.", "Railway\nTickets cost 30."])
    assert scores.shape == (2,) and np.isfinite(scores).all()
    # An altered weight file is refused with a clear message, not loaded.
    with open(out / "model.safetensors", "ab") as f:
        f.write(b"x")
    with pytest.raises(ReaderError, match="does not match its sha256"):
        Reader(out).score("q", ["p"])
    (out / READER_HASHES).unlink()
    with pytest.raises(ReaderError, match="rag train-reader"):
        Reader(out).score("q", ["p"])


@pytest.mark.skipif(not (SQUAD / "squad2-train-10-articles.json").is_file(), reason="shared SQuAD data not present")
def test_the_shared_squad_articles_scored_by_the_evals_are_held_out_by_default() -> None:
    items = load_squad(SQUAD / "squad2-train-10-articles.json")
    held = held_out_articles(items, [SQUAD / "corpus"])
    assert held == set(ReaderTrainConfig().held_out)


def test_exclude_sample_trains_on_exactly_the_questions_an_earlier_capped_run_left_out() -> None:
    items = [QAItem(f"Art_{i % 3}", f"Question number {i} about the thing?", f"Paragraph {i}. The answer is x{i}.",
                    (f"x{i}",), (len(f"Paragraph {i}. The answer is "),), False, str(i)) for i in range(30)]
    earlier = build_pairs(items, ReaderTrainConfig(max_questions=12, hard_negatives=0))
    rest = build_pairs(items, ReaderTrainConfig(max_questions=0, exclude_sample=12, hard_negatives=0))
    seen = {q for (q, _), k in zip(earlier.texts, earlier.kinds, strict=True) if k == "paragraph+"}
    unseen = {q for (q, _), k in zip(rest.texts, rest.kinds, strict=True) if k == "paragraph+"}
    assert len(seen) == 12 and len(unseen) == 18 and not seen & unseen
    assert seen | unseen == {i.question for i in items}
    # The same seed gives the same split again.
    again = build_pairs(items, ReaderTrainConfig(max_questions=0, exclude_sample=12, hard_negatives=0))
    assert again.texts == rest.texts


def test_a_pair_kind_ending_in_a_star_keeps_every_kind_with_that_prefix() -> None:
    items = [
        QAItem("A", "Who runs the Portvale museum?", "Anna Berg runs the Portvale museum. It opened in 1990.",
               ("Anna Berg",), (0,), False, "1"),
        QAItem("B", "Where is the Lindholm village?", "Lindholm is a village near Oslo. It has a church.",
               ("near Oslo",), (22,), False, "2", source="generated"),
    ]
    pairs = build_pairs(items, ReaderTrainConfig(hard_negatives=0, pair_kinds=("sentence+", "generated-*")))
    assert set(pairs.kinds) >= {"sentence+", "generated-paragraph+", "generated-sentence+"}
    assert "paragraph+" not in pairs.kinds
