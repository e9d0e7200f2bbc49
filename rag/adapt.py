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
from dataclasses import dataclass
from pathlib import Path

from rag.chunk import context_header
from rag.corpus import read_corpus
from rag.domain import Article
from rag.embed import load_sentence_transformer, model_fingerprint
from rag.errors import CorpusError
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

    model = SentenceTransformer(settings.embedding_model, device=settings.embedding_device, local_files_only=True)
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

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save(str(staging))
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
    (staging / "adaptation.json").write_text(json.dumps(provenance, indent=2), encoding="utf-8")
    # Swap in: the old model (if any) is replaced only once the new one is complete.
    old = out_dir.with_name(f".{out_dir.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        out_dir.rename(old)
    staging.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return out_dir
