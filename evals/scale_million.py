"""Hybrid search at 1,000,000 paragraphs: latency, needle hits and dense recall, the index made in memory.

    python -m evals.scale_million [--paragraphs 1000000] [--needles 200] [--out evals/results/scale_million.json]
                                  [--query-backend torch|onnx]

``evals.scale_search`` runs the whole build (files, parse, embed, FAISS, write, load); at 1M
paragraphs that does not fit a working session on this 2-core machine. This script measures
the search itself at 1M on the same corpus: ``ScaleCorpus`` (real sentences of 15 sources
recombined, 200 SQuAD needles planted in known paragraphs) is parsed and chunked by the
project's own parser and chunker in memory (no files), the vectors are composed, the FAISS
index is the one ``choose_index_type`` picks at this size (IVF, ``4·√n`` lists, a third of them
probed), and the searcher is the default ``HybridSearcher`` over a ``LoadedIndex`` made from
those objects (lexical tables built at start-up, each paragraph tokenized once; the tokenizer
memoized per text as in ``evals.scale_search``, since the corpus repeats 4,000 sentences).

**How the vectors are made.** As ``ComposedEmbeddings`` makes them: every distinct piece (a
sentence, or the title line) was embedded once by the real model (all-MiniLM-L6-v2, cached in
``evals/results/tmp/scale/pieces/``); a chunk's vector is the normalized sum of its pieces'
vectors. Here the sum is taken line by line, each distinct line's sum computed once (the same
sum up to float rounding). Questions are embedded by the model itself. What that means for
recall: the corpus has far fewer distinct paragraphs than paragraphs (a paragraph is 2-5
consecutive sentences of one source: a few thousand distinct bodies per source, each under up
to 1,800 title lines), so many chunks have identical or near-identical vectors. Recall by id
against exact search then counts arbitrary choices among exact ties as misses; the tie-aware
recall (a found row counts when its exact score reaches the exact 10th score) is the fair
number, and both are reported. Neighbourhoods are denser than in a real archive of 1M distinct
paragraphs, which makes IVF's job (separating near-ties across cells) harder, not easier.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from evals.metrics import latency_ms
from evals.scale_corpus import ComposedEmbeddings, ScaleCorpus, pieces
from evals.scale_search import DEFAULT_WORKDIR, cache_tokenizer_for_bench, needle_paragraphs, question_model, rss_mib


def compose_vectors(embedder: ComposedEmbeddings, texts: Sequence[str]) -> np.ndarray:
    """``embedder.encode(texts)`` with each distinct line's piece sum computed once."""
    line_sum: dict[str, np.ndarray] = {}
    out = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    for i, text in enumerate(texts):
        for line in text.split("\n"):
            vec = line_sum.get(line)
            if vec is None:
                parts = list(pieces(line))
                vec = embedder.piece_vectors(parts).sum(axis=0) if parts else np.zeros(embedder.dimension, np.float32)
                line_sum[line] = vec
            out[i] += vec
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


def exact_top(matrix: np.ndarray, queries: np.ndarray, k: int, block: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k, blockwise (no second copy of the vectors)."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.full((len(queries), k), -1, dtype=np.int64)
    for start in range(0, len(matrix), block):
        scores = queries @ matrix[start : start + block].T
        idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(scores, idx, axis=1)], axis=1)
        cand_i = np.concatenate([best_i, idx + start], axis=1)
        order = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(cand_s, order, axis=1), np.take_along_axis(cand_i, order, axis=1)
    return best_s, best_i


def run(n_paragraphs: int, n_needles: int, workdir: Path, query_backend: str = "torch") -> dict[str, Any]:
    from rag.chunk import ParagraphChunker
    from rag.index import LoadedIndex
    from rag.parse import parse_text
    from rag.searcher import HybridSearcher
    from rag.settings import Settings
    from rag.vectorstore import VectorIndex, choose_index_type

    cache_tokenizer_for_bench()
    marks: dict[str, float] = {}
    t = time.perf_counter()

    def mark(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        marks[name] = round(now - t, 1)
        t = now
        print(f"{name}: {marks[name]} s, RSS {rss_mib()} MiB", flush=True)

    settings = Settings(sentence_chunks=False, answer_mode="extractive")
    corpus = ScaleCorpus.make(n_paragraphs, n_needles)
    chunker = ParagraphChunker(settings)
    articles = {}
    chunks = []
    for i in range(corpus.n_articles):
        article = parse_text(corpus.doc_id(i), corpus.article(i), sha256="-")
        articles[article.doc_id] = article
        chunks.extend(chunker.chunk(article))
    mark("parse_and_chunk_s")
    model = question_model(settings, query_backend)
    embedder = ComposedEmbeddings(model, workdir / "pieces")
    matrix = compose_vectors(embedder, [c.embed_text for c in chunks])
    mark("compose_vectors_s")
    kind = choose_index_type(len(matrix))
    vectors = VectorIndex.build(matrix, kind)
    mark(f"faiss_{kind}_build_s")
    index = LoadedIndex(Path("<memory>"), {"format": 2}, articles, chunks, vectors)
    mark("loaded_index_s")
    searcher = HybridSearcher(index, embedder, settings)
    mark("searcher_start_s")
    gc.collect()

    targets = needle_paragraphs(corpus, index)
    needles = sorted(corpus.needles, key=lambda n: n.number)
    for needle in needles[:5]:
        searcher.search(needle.question, 10)  # warm-up
    model._query_cache.clear()
    times, ranks = [], []
    for needle in needles:  # the question embedded on the spot
        t0 = time.perf_counter()
        hits = searcher.search(needle.question, 10)
        times.append(time.perf_counter() - t0)
        keys = [(h.doc_id, h.paragraph) for h in hits]
        ranks.append(keys.index(targets[needle.number]) + 1 if targets[needle.number] in keys else None)
    cached, cpu = [], []
    for needle in needles:  # the question vector cached: the searcher's own work
        t0, c0 = time.perf_counter(), time.process_time()
        searcher.search(needle.question, 10)
        cached.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    mark("searches_s")
    queries = model.encode([n.question for n in needles], progress=False)
    truth_s, truth = exact_top(matrix, queries, 10)
    found = vectors.search(queries, 10)[1]
    found_s = np.einsum("qkd,qd->qk", matrix[np.maximum(found, 0)], queries)
    dense_times = []
    for q in queries:
        t0 = time.perf_counter()
        vectors.search(q[None, :], max(settings.candidate_pool * 20, 1000))
        dense_times.append(time.perf_counter() - t0)
    mark("recall_s")
    ivf = None
    if kind == "ivf":
        import faiss

        ivf = faiss.extract_index_ivf(vectors.index)
    return {
        "paragraphs": len(index.paragraph_keys),
        "articles": len(articles),
        "chunks": len(chunks),
        "distinct_paragraph_texts": len({p.text for a in articles.values() for p in a.paragraphs}),
        "query_backend": query_backend,
        "faiss_type": kind,
        "ivf_lists": ivf.nlist if ivf is not None else None,
        "ivf_nprobe": ivf.nprobe if ivf is not None else None,
        "stages_s": marks,
        "search_latency": latency_ms(times),
        "search_latency_query_cached": latency_ms(cached),
        "search_cpu_query_cached": latency_ms(cpu),
        "dense_k1000_latency": latency_ms(dense_times),
        **{
            f"needle_hit_at_{k}": round(sum(1 for r in ranks if r is not None and r <= k) / len(ranks), 3)
            for k in (1, 5, 10)
        },
        "dense_recall_at_10": round(
            float(np.mean([len(set(f.tolist()) & set(g.tolist())) / 10 for f, g in zip(found, truth, strict=True)])), 4
        ),
        "dense_recall_at_10_ties": round(float(((found >= 0) & (found_s >= truth_s[:, 9:10] - 1e-5)).mean()), 4),
        "rss_mib_serving": rss_mib(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.scale_million", description=__doc__.split("\n")[0])
    parser.add_argument("--paragraphs", type=int, default=1_000_000)
    parser.add_argument("--needles", type=int, default=200)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--out", type=Path, default=Path("evals/results/scale_million.json"))
    parser.add_argument("--query-backend", choices=("torch", "onnx"), default="torch",
                        help="what embeds the questions (onnx: ONNX Runtime fp32, the same vectors)")
    args = parser.parse_args(argv)
    load = [round(x, 2) for x in os.getloadavg()]
    result = run(args.paragraphs, args.needles, args.workdir, args.query_backend)
    result["load_average_at_start"] = load
    result["created"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result["command"] = "python -m evals.scale_million " + " ".join(argv if argv is not None else sys.argv[1:])
    result["machine"] = {"cpus": os.cpu_count(), "note": "2 cores shared with other jobs: latencies are upper bounds"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
