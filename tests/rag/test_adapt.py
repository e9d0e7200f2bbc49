"""Tests of rag.adapt's question-tuned embedder (``rag adapt --squad``): data, hold-out, files, hashes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.adapt import QuestionAdaptConfig, adapt_on_questions, question_triples, squad_title
from rag.embed import load_sentence_transformer
from rag.errors import ModelNotInstalledError
from rag.reader_training import QAItem
from rag.settings import Settings, packaged_embedding_model
from tests.rag.test_reader_training import _squad_file


def _item(article: str, question: str, context: str, answer: str, qid: str) -> QAItem:
    return QAItem(article=article, question=question, context=context, answers=(answer,),
                  answer_starts=(context.index(answer),), impossible=False, qid=qid)


def _bag_of_words(texts: list[str]) -> np.ndarray:
    vocab = sorted({w for t in texts for w in t.lower().split()}) or ["x"]
    out = np.array([[t.lower().split().count(w) for w in vocab] for t in texts], dtype=np.float32) + 1e-3
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_question_triples_pick_the_closest_paragraph_without_the_answer() -> None:
    answer = "The harbour was built in 1821 by the town."
    near_miss = "The harbour was built by the town in a year nobody wrote down: 1821 is a legend."
    other = "Tickets cost 30 francs."
    wrong = "The harbour was built by the town, which also built a museum."
    items = [
        _item("Harbour_town", "When was the harbour built by the town?", answer, "1821", "q1"),
        _item("Harbour_town", "How much do tickets cost?", other, "30 francs", "q2"),
        _item("Harbour_town", "What else did the town build?", wrong, "a museum", "q3"),
        _item("Harbour_town", "Is 1821 a legend?", near_miss, "legend", "q4"),
    ]
    # A shared encoder over all texts, as the model's would be.
    texts = [i.question for i in items] + [f"Harbour town\n{i.context}" for i in items]
    vectors = dict(zip(texts, _bag_of_words(texts), strict=True))
    triples = question_triples(items, lambda batch: np.stack([vectors[t] for t in batch]))
    first = triples[0]
    assert first.passage == f"Harbour town\n{answer}"  # the title line, as the index embeds a chunk
    # The nearest other paragraph holds "1821" (the answer), so it is skipped for the next one.
    assert first.hard_negative == f"Harbour town\n{wrong}"
    assert all(t.hard_negative != t.passage for t in triples)
    assert squad_title("Spectre_(2015_film)") == "Spectre (2015 film)"


def test_question_adapt_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        QuestionAdaptConfig(batch_size=1)
    with pytest.raises(ValueError):
        QuestionAdaptConfig(warmup_share=1.0)
    with pytest.raises(ValueError):
        QuestionAdaptConfig(rounds=0)


@pytest.mark.slow
def test_two_rounds_equal_a_second_round_from_the_saved_first(tmp_path: Path) -> None:
    """``rounds=2`` in one run trains exactly what a second run from the saved first model
    (``rag adapt --squad … --base FIRST``) trains: the shipped model's recipe is one command."""
    from safetensors.numpy import load_file

    squad = _squad_file(tmp_path)
    packaged = Settings(embedding_model=packaged_embedding_model())
    both = adapt_on_questions(squad, [], tmp_path / "both", packaged, QuestionAdaptConfig(batch_size=2, rounds=2),
                              log=lambda _: None)
    first = adapt_on_questions(squad, [], tmp_path / "first", packaged, QuestionAdaptConfig(batch_size=2),
                               log=lambda _: None)
    second = adapt_on_questions(squad, [], tmp_path / "second", Settings(embedding_model=str(first)),
                                QuestionAdaptConfig(batch_size=2), log=lambda _: None)
    a, b, c = (load_file(str(d / "model.safetensors")) for d in (both, second, first))
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)  # the second round did train
    provenance = json.loads((both / "adaptation.json").read_text(encoding="utf-8"))
    assert provenance["config"]["rounds"] == 2 and len(provenance["round_losses"]) == 2
    assert "2 round(s) of hard-negative mining" in (both / "README.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_adapt_on_questions_trains_writes_hashes_and_holds_out_scored_articles(tmp_path: Path) -> None:
    squad = _squad_file(tmp_path)
    held_corpus = tmp_path / "held"
    held_corpus.mkdir()
    (held_corpus / "lighthouse.txt").write_text(
        "Held out article\n\nThe Brill lighthouse shines every night since 1900.\n", encoding="utf-8"
    )
    out = adapt_on_questions(squad, [held_corpus], tmp_path / "qa", Settings(embedding_model=packaged_embedding_model()),
                             QuestionAdaptConfig(batch_size=2), log=lambda _: None)
    provenance = json.loads((out / "adaptation.json").read_text(encoding="utf-8"))
    assert provenance["data"]["held_out_articles"] == ["Held_out_article"]
    assert "Held_out_article" not in provenance["data"]["articles"]
    assert provenance["data"]["questions"] == 4  # the answerable ones of the two other articles
    hashes = json.loads((out / "sha256.json").read_text(encoding="utf-8"))
    assert "model.safetensors" in hashes and "README.md" not in hashes
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "Never trained on (scored by the evals): Held_out_article" in card
    model = load_sentence_transformer(str(out))
    vectors = model.encode(["When was the harbour built?"], normalize_embeddings=True)
    assert vectors.dtype == np.float32 and vectors.shape == (1, 384)  # stored fp16, computed fp32
    # A damaged file is refused with a clear message, not loaded.
    weights = out / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ModelNotInstalledError, match="does not match its sha256"):
        load_sentence_transformer(str(out), "cpu-check")


@pytest.mark.slow
def test_cloze_adaptation_writes_a_checked_model_with_its_provenance(tmp_path: Path, tiny_corpus) -> None:
    from rag.adapt import AdaptConfig, adapt_embedder

    corpus = tiny_corpus()
    out = adapt_embedder(corpus, tmp_path / "adapted", Settings(embedding_model=packaged_embedding_model()),
                         AdaptConfig(epochs=1, batch_size=2, max_pairs=8), log=lambda _: None)
    provenance = json.loads((out / "adaptation.json").read_text(encoding="utf-8"))
    assert provenance["method"].startswith("inverse cloze") and provenance["pairs"] == 8
    assert "model.safetensors" in json.loads((out / "sha256.json").read_text(encoding="utf-8"))
    assert load_sentence_transformer(str(out)).encode(["a question"]).shape == (1, 384)


@pytest.mark.slow
def test_adapt_on_questions_trains_on_several_files_and_names_each(tmp_path: Path) -> None:
    """`rag adapt --squad A --squad B`: the questions of both, each file with its hash in the card."""
    first = _squad_file(tmp_path)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    (other_dir / "README.md").write_text("# A second SQuAD sample\n\nFor the test.\n", encoding="utf-8")
    context = "The Vale bridge opened in 1907. It spans the river Ost."
    second = other_dir / "more.json"
    second.write_text(json.dumps({"version": "v2.0", "data": [{"title": "Vale_bridge", "paragraphs": [{
        "context": context, "qas": [
            {"id": "b1", "question": "When did the Vale bridge open?", "is_impossible": False,
             "answers": [{"text": "1907", "answer_start": context.index("1907")}]},
            {"id": "b2", "question": "Who paid for the Vale bridge?", "is_impossible": True, "answers": []},
        ]}]}]}), encoding="utf-8")
    out = adapt_on_questions([first, second], [], tmp_path / "qa", Settings(embedding_model=packaged_embedding_model()),
                             QuestionAdaptConfig(batch_size=2), log=lambda _: None)
    data = json.loads((out / "adaptation.json").read_text(encoding="utf-8"))["data"]
    assert [Path(f["file"]).name for f in data["files"]] == ["squad.json", "more.json"]
    assert data["files"][1]["source"] == "A second SQuAD sample"
    assert data["questions"] == 6 and "Vale_bridge" in data["articles"]  # 5 answerable + 1 from the second file
    card = (out / "README.md").read_text(encoding="utf-8")
    assert f"--squad {first} --squad {second}" in card and data["files"][1]["sha256"][:16] in card
