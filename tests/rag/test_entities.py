"""Named entities and the learned answer type: the tagger, the counts model, its training command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.answer_type_training import CARD, train_answer_types
from rag.cli import main as cli_main
from rag.entities import (
    ANSWER_TYPES_FILE,
    NER_SHA256,
    NO_ENTITY,
    AnswerTypeModel,
    EntityModelError,
    EntityTagger,
    count_answer_types,
)
from rag.files import HASH_LIST
from rag.settings import ANSWER_TYPES_DIR, Settings


@pytest.fixture(scope="module")
def tagger() -> EntityTagger:
    return EntityTagger()


def _squad(tmp_path: Path) -> Path:
    def qa(context: str, question: str, answer: str | None, n: int) -> dict:
        return {"id": f"q{n}", "question": question, "is_impossible": answer is None,
                "answers": [] if answer is None else [{"text": answer, "answer_start": context.index(answer)}]}

    town = "The harbour of Portvale was built in 1821 by Anna Berg. It is run by the Portvale Harbour Board."
    rail = "The Alder railway opened in 1901. Its engines were built by Karl Weiss in Zurich."
    lighthouse = "The Brill lighthouse was designed by Maria Lopez in 1900."
    data = {"version": "v2.0", "data": [
        {"title": "Harbour", "paragraphs": [{"context": town, "qas": [
            qa(town, "Who built the harbour of Portvale?", "Anna Berg", 1),
            qa(town, "When was the harbour of Portvale built?", "1821", 2),
            qa(town, "Who runs the harbour?", "the Portvale Harbour Board", 3),
            qa(town, "Who painted the harbour?", None, 4),
        ]}]},
        {"title": "Railway", "paragraphs": [{"context": rail, "qas": [
            qa(rail, "Who built the engines of the Alder railway?", "Karl Weiss", 5),
            qa(rail, "In which city were the engines built?", "Zurich", 6),
        ]}]},
        {"title": "Lighthouse", "paragraphs": [{"context": lighthouse, "qas": [
            qa(lighthouse, "Who designed the Brill lighthouse?", "Maria Lopez", 7),
        ]}]},
    ]}
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# --- the counts model --------------------------------------------------------------------------------


def test_distribution_backs_off_to_the_question_word() -> None:
    model = AnswerTypeModel({"who|": {"PERSON": 8, "OTHER": 2}, "who|runs": {"ORG": 2}}, prior_strength=2)
    rare = model.distribution("Who runs the harbour?")
    assert rare == pytest.approx({"ORG": 0.5, "PERSON": 0.4, "OTHER": 0.1})
    assert model.distribution("Who built it?") == pytest.approx({"PERSON": 0.8, "OTHER": 0.2})
    assert model.distribution("Tell me about the harbour.") == {NO_ENTITY: 1.0}
    assert sum(model.distribution("Who chairs it?").values()) == pytest.approx(1.0)


def test_match_counts_only_entities_beyond_the_question() -> None:
    model = AnswerTypeModel({"who|": {"PERSON": 7, "OTHER": 3}})
    question = "Who did Anna Berg hire?"
    assert model.match(question, {("PERSON", "anna berg")}) == pytest.approx(0.3)  # the question's own name
    assert model.match(question, {("PERSON", "karl weiss")}) == pytest.approx(1.0)
    assert model.match(question, {("DATE", "1821")}) == pytest.approx(0.3)
    assert model.match("Why was it built?", set()) == 1.0  # no counts for "why": no opinion


def test_bad_prior_strength_is_refused() -> None:
    with pytest.raises(ValueError, match="prior_strength"):
        AnswerTypeModel({}, prior_strength=0)


# --- the tagger --------------------------------------------------------------------------------------


def test_tagger_finds_people_places_and_dates(tagger: EntityTagger) -> None:
    first, second = tagger.entities(["Mr. Vino Lucero presented on digital rights.",
                                     "The workshop was held in Phnom Penh on 2 November 2022."])
    assert ("PERSON", "vino lucero") in first
    assert {label for label, _ in second} >= {"GPE", "DATE"}
    assert tagger.entities(["Mr. Vino Lucero presented on digital rights."]) == [first]  # cached


def test_tagger_refuses_an_altered_pipeline() -> None:
    with pytest.raises(EntityModelError, match=r"ner/model is missing or altered"):
        EntityTagger(expected={**NER_SHA256, "ner/model": "0" * 64}).entities(["Anna Berg"])


def test_tagger_names_the_install_command_when_the_pipeline_is_missing() -> None:
    from rag.errors import ModelNotInstalledError

    with pytest.raises(ModelNotInstalledError, match="pip install"):
        EntityTagger(package="no_such_spacy_pipeline").entities(["Anna Berg"])


def test_count_answer_types_labels_the_answer_span(tagger: EntityTagger) -> None:
    context = "The harbour was built in 1821 by Anna Berg."
    counts = count_answer_types([
        ("Who built the harbour?", context, context.index("Anna"), context.index("Anna") + 9),
        ("When was it built?", context, context.index("1821"), context.index("1821") + 4),
        ("What was built?", context, 0, 11),  # "The harbour": no entity
    ], tagger)
    assert counts["who|"] == {"PERSON": 1} and counts["who|built"] == {"PERSON": 1}
    assert counts["when|"] == {"DATE": 1}
    assert counts["what|"] == {NO_ENTITY: 1}


# --- the training command ----------------------------------------------------------------------------


def test_training_writes_a_checked_folder_and_holds_scored_articles_out(tmp_path: Path, tagger: EntityTagger) -> None:
    held = tmp_path / "scored"
    held.mkdir()
    (held / "lighthouse.txt").write_text("Brill lighthouse\n\nThe Brill lighthouse was designed by Maria Lopez in 1900.\n",
                                         encoding="utf-8")
    out = tmp_path / "answer-types"
    report = train_answer_types(_squad(tmp_path), out, [held], tagger)
    assert report["held_out_articles"] == ["Lighthouse"] and report["questions"] == 5  # not the unanswerable one
    assert {p.name for p in out.iterdir()} == {ANSWER_TYPES_FILE, HASH_LIST, CARD}
    model = AnswerTypeModel.load(out)
    assert model.counts["who|"]["PERSON"] == 2  # Anna Berg, Karl Weiss; Maria Lopez is held out
    assert model.distribution("In which city is it?")["GPE"] > 0.5
    assert "Never counted (scored by the evals): Lighthouse" in (out / CARD).read_text(encoding="utf-8")

    train_answer_types(_squad(tmp_path), out, [], tagger)  # a second run replaces the folder whole
    assert AnswerTypeModel.load(out).counts["who|"]["PERSON"] == 3
    assert not list(tmp_path.glob(".answer-types*"))

    data = json.loads((out / ANSWER_TYPES_FILE).read_text(encoding="utf-8"))
    data["counts"]["who|"]["PERSON"] = 99
    (out / ANSWER_TYPES_FILE).write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(EntityModelError, match="retrain"):
        AnswerTypeModel.load(out)


def test_loading_a_missing_folder_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(EntityModelError, match="rag train-answer-types"):
        AnswerTypeModel.load(tmp_path / "nothing")


def test_cli_without_a_training_file_prints_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["train-answer-types", "--squad", str(tmp_path / "none.json"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code != 0 and "no training file" in err and "Traceback" not in err


def test_the_shipped_counts_load_and_are_the_default() -> None:
    model = AnswerTypeModel.load(ANSWER_TYPES_DIR)
    assert Settings().answer_type_model == str(ANSWER_TYPES_DIR)
    assert model.distribution("When did the workshop take place?")["DATE"] > 0.8
    assert model.distribution("How many people attended?")["CARDINAL"] > 0.7
    assert model.provenance["held_out_articles"] == ["Spectre_(2015_film)", "The_Legend_of_Zelda:_Twilight_Princess"]
