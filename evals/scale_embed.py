"""Embedding throughput: torch against ONNX Runtime (fp32 and int8) on the same texts, in one run.

    python -m evals.scale_embed [--texts 512] [--out evals/results/scale_embed.json]

The texts are the seeds' chunks (paragraphs with their title header, and sentences), as the index
embeds them. For each engine: chunks per second (the model loaded and warmed up first), the
cosine of its vectors to torch's, and the hybrid search's gold hit@1/@5 on the seeds with an index
embedded by that engine (the issue's bar: within 0.01 of torch). Also the cost of sentence chunks:
how many of the seeds' chunks are sentences, and gold hit@k with ``sentence_chunks`` off.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evals.gold import load_gold

#: Questions embedded one at a time for the per-query latency (question-length texts).
_QUESTIONS = [
    "When was the HomeNet workshop held and where?",
    "Which countries took part in the SSE academy?",
    "What does the social and solidarity economy mean for informal workers?",
    "How many cooperatives were trained?",
    "Who funded the project?",
    "What did the ILO recommend to the government of Indonesia on cooperative law?",
]


def gold_hits(settings: Any, embedder: Any) -> dict[str, float]:
    """Hybrid search hit@1/@5 on the gold set's answerable questions (gold paragraph = the one
    holding a source quote), over the seeds indexed with ``embedder``."""
    from rag.index import IndexStore
    from rag.searcher import HybridSearcher

    with tempfile.TemporaryDirectory() as tmp:
        store = IndexStore(Path(tmp) / "index", settings, embedder=embedder)
        store.build(settings.corpus_dir, progress=False)
        index = store.load()
        searcher = HybridSearcher(index, embedder, settings)
        hit1 = hit5 = n = 0
        for item in load_gold():
            if not item.answerable or not item.sources or item.history:
                continue
            wanted = set()
            for source in item.sources:
                article = index.articles.get(source.file)
                if article is not None:
                    wanted |= {(source.file, p.number) for p in article.paragraphs if source.quote in p.text}
            if not wanted:
                continue
            keys = [(h.doc_id, h.paragraph) for h in searcher.search(item.question, 5)]
            n += 1
            hit1 += keys[0] in wanted
            hit5 += bool(wanted & set(keys))
        return {"questions": n, "hit_at_1": round(hit1 / n, 3), "hit_at_5": round(hit5 / n, 3)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.scale_embed", description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--out", type=Path, default=Path("evals/results/scale_embed.json"))
    parser.add_argument("--skip-gold", action="store_true")
    args = parser.parse_args(argv)

    from rag.chunk import ParagraphChunker
    from rag.corpus import read_corpus
    from rag.embed import OnnxEmbeddings, SentenceTransformerEmbeddings
    from rag.settings import Settings

    settings = Settings()
    chunks = [
        c for a in read_corpus(settings.corpus_dir, settings).articles for c in ParagraphChunker(settings).chunk(a)
    ]
    texts = [c.embed_text for c in chunks][: args.texts]
    engines = {
        "torch": SentenceTransformerEmbeddings(settings=settings),
        "onnx_fp32": OnnxEmbeddings(settings=settings, quantize=False),
        "onnx_int8": OnnxEmbeddings(settings=settings, quantize=True),
    }
    results: dict[str, Any] = {
        "texts": len(texts),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "engines": {},
        "seed_chunks": {"all": len(chunks), "sentence": sum(c.kind == "sentence" for c in chunks)},
    }
    for engine in engines.values():
        engine.encode(texts[:16])  # load (and export, once) and warm up
    # Interleaved rounds (torch, fp32, int8, torch, ...), best of three per engine: the machine is
    # shared, so a round slowed by another job must not count against one engine only. (An earlier
    # run timed the engines one after the other on a starved machine and saw ONNX 4.8x faster; on a
    # quiet one torch is the fastest.)
    rounds: dict[str, list[float]] = {name: [] for name in engines}
    query_ms: dict[str, list[float]] = {name: [] for name in engines}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(3):
        for name, engine in engines.items():
            start = time.perf_counter()
            vectors[name] = engine.encode(texts, progress=False)
            rounds[name].append(time.perf_counter() - start)
            # One question at a time, as a search embeds it (the serving path's cost per query).
            for question in _QUESTIONS:
                start = time.perf_counter()
                engine._encode_queries([question])  # not encode_query: it caches
                query_ms[name].append((time.perf_counter() - start) * 1000)
    reference = vectors["torch"]
    for name, engine in engines.items():
        entry = {
            "chunks_per_s": round(len(texts) / min(rounds[name]), 1),
            "rounds_s": [round(r, 2) for r in rounds[name]],
            "query_ms_p50": round(float(np.percentile(query_ms[name], 50)), 2),
            "query_ms_p95": round(float(np.percentile(query_ms[name], 95)), 2),
            "cosine_to_torch_min": round(float(np.min(np.sum(vectors[name] * reference, axis=1))), 5),
        }
        if not args.skip_gold:
            entry["gold"] = gold_hits(settings, engine)
        results["engines"][name] = entry
        print(name, entry, flush=True)
    if not args.skip_gold:
        no_sentences = Settings(sentence_chunks=False)
        results["gold_without_sentence_chunks"] = gold_hits(no_sentences, engines["torch"])
        print("torch, sentence_chunks off", results["gold_without_sentence_chunks"], flush=True)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
