"""Scale benchmark: the whole pipeline at 100,000 paragraphs, the vector index alone at 1,000,000.

    python -m evals.scale_bench [--paragraphs 100000] [--vectors 1000000] [--out evals/results/scale.json]
                                [--quick] [--sentence-chunks] [--types flat,ivf,hnsw] [--hnsw-max 300000]

1. **Pipeline** (``--paragraphs``): a deterministic generated corpus of news-like articles (10
   paragraphs each, one "needle" fact in some of them) goes through the real pipeline: scan →
   parse → chunk → embed (all-MiniLM-L6-v2 on the CPU) → FAISS index → load → hybrid search and
   extractive answers. Reported: build time per stage, peak RSS, index size on disk, load time,
   search and answer latency (p50/p95), whether the needle paragraph is found (hit@5), and the
   time of an incremental update (one file added). Sentence chunks are *off* by default here
   (``RAG_SENTENCE_CHUNKS=false``; ``--sentence-chunks`` turns them on): with them every
   sentence is embedded too, about four times the embedding work.
2. **Vector index alone** (``--vectors``): synthetic clustered unit vectors of dimension 384 at
   growing sizes up to ``--vectors``: for each index type, build time, memory per vector (RSS
   growth and file size), single-query latency at k=10 and at k=1000 (the depth the retriever
   asks for above 20,000 chunks), and recall@10 / @100 / @1000 against exact search, with a
   sweep of ``nprobe`` (IVF) or ``efSearch`` (HNSW). Each approximate type must reach
   recall@10 ≥ 0.95 with the project's defaults (``rag.vectorstore``); the exit status is 1
   otherwise.

Each part runs in its own subprocess, so each peak-RSS figure is that part's own. ``--quick``
runs a small version of everything in a few minutes (CI smoke). Results go to ``--out`` as JSON
and a summary is printed; a part skipped with ``--paragraphs 0`` or ``--vectors 0`` keeps its
earlier result in ``--out``, so the two parts can be run (and re-run) separately.

The synthetic vectors: 100 "topics", 2,000 clusters around them, and points spread inside a
32-dimensional subspace of their cluster plus isotropic noise, normalised. Nearest neighbours
have cosine ≈ 0.57, the 10th ≈ 0.45, random pairs ≈ 0: neighbourhoods overlap, as with text
embeddings, so an approximate index has real work to do.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from evals.metrics import latency_ms
from rag.lexicon import MONTH_NAMES

DIM = 384
QUERY_COUNT = 200
VECTOR_SIZES = (100_000, 300_000, 1_000_000)
PARAGRAPHS_PER_ARTICLE = 10
IVF_NPROBE_SWEEP = (8, 16, 32, 64, 128, 256)
HNSW_EF_SWEEP = (16, 32, 64, 128, 256)
RECALL_TARGET = 0.95


# --- measuring -------------------------------------------------------------------------------


def rss_bytes() -> int:
    """Resident memory of this process now."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def latency_stats(seconds: Sequence[float]) -> dict[str, float | int | None]:
    """n, p50_ms, p95_ms, mean_ms, max_ms (``evals.metrics.latency_ms``, 3 decimals)."""
    return latency_ms(seconds, digits=3)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def mib(n_bytes: float) -> float:
    return round(n_bytes / 2**20, 1)


def machine() -> dict[str, Any]:
    import faiss
    import torch

    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "faiss": faiss.__version__,
        "faiss_threads": faiss.omp_get_max_threads(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }


# --- the generated corpus --------------------------------------------------------------------

_COUNTRIES = ["Cambodia", "Viet Nam", "Indonesia", "the Philippines", "Thailand", "Malaysia", "Nepal",
              "Bangladesh", "Mongolia", "Sri Lanka", "Lao PDR", "Myanmar", "Timor-Leste", "Fiji", "India",
              "Pakistan", "Kenya", "Ghana", "Peru", "Jordan"]
_CITIES = ["Phnom Penh", "Hanoi", "Jakarta", "Manila", "Bangkok", "Kuala Lumpur", "Kathmandu", "Dhaka",
           "Ulaanbaatar", "Colombo", "Vientiane", "Yangon", "Dili", "Suva", "Delhi", "Lahore", "Nairobi",
           "Accra", "Lima", "Amman"]
_ORGS = ["the ILO", "the Ministry of Labour", "the workers' federation", "the employers' council",
         "the cooperative alliance", "the national statistics office", "a regional university",
         "the social security fund", "the chamber of commerce", "the home-based workers' network"]
_TOPICS = ["social protection", "skills training", "youth employment", "occupational safety",
           "minimum wages", "green jobs", "the informal economy", "migrant workers", "gender equality",
           "child labour", "digital platforms", "cooperatives", "maternity benefits", "labour inspection",
           "collective bargaining", "pension reform", "disaster recovery", "fair recruitment"]
_PEOPLE = ["workers", "employers", "trainees", "women entrepreneurs", "inspectors", "farmers",
           "domestic workers", "young people", "union leaders", "teachers"]
_SECTORS = ["garment", "construction", "fishing", "tourism", "agriculture", "care", "transport", "mining"]
_EVENTS = ["workshop", "webinar", "conference", "training course", "roundtable", "study tour", "forum"]
_ROLES = ["Director", "Programme Officer", "Minister", "Chairperson", "Researcher", "Coordinator"]
_FIRST = ["Anna", "Bui", "Carlos", "Dewi", "Elif", "Farah", "Gita", "Hiro", "Ines", "Joseph", "Kamala",
          "Luis", "Maya", "Nimal", "Olga", "Pich", "Rashid", "Sara", "Tomas", "Uma"]
_LAST = ["Santos", "Nguyen", "Rahman", "Perera", "Okafor", "Haddad", "Sok", "Tanaka", "Silva", "Kumar",
         "Mensah", "Lopez", "Bayar", "Wong", "Ali", "Costa", "Dara", "Ivanova", "Reyes", "Shah"]
_MONTHS = MONTH_NAMES
_FUNDERS = ["the European Union", "the Government of Japan", "the Swiss Agency for Development",
            "the Korean Ministry of Employment", "the Australian Government", "the Netherlands",
            "the World Bank", "the Asian Development Bank"]
_SYLLABLES = ["ka", "lo", "mi", "ra", "te", "vu", "zen", "dor", "bel", "qui", "sa", "no", "fi", "gar",
              "lun", "pe", "tor", "ix", "ma", "ven"]

_TEMPLATES = [
    "{org} and the government of {country} held a {event} on {topic} in {city} on {day} {month} {year}.",
    "More than {n} {people} took part, including representatives of {org2}.",
    "{person}, {role} at {org}, said that {topic} remains a priority for {country}.",
    "The {event} discussed {topic}, {topic2} and the role of {people} in the {sector} sector.",
    "Participants agreed to share data on {topic} and to meet again in {month} {year}.",
    "A report published by {org} found that {pct} percent of {people} in {country} work in the {sector} sector.",
    "The programme in {city} will run for {years} years with support from {funder}.",
    "{person} presented a study of {topic} among {people} in {city}.",
    "The {event} ended with a call to extend {topic} to {people} in the {sector} sector.",
]


def codename(i: int) -> str:
    """A unique made-up project name for needle ``i`` (four syllables, base 20)."""
    digits = []
    for _ in range(4):
        i, d = divmod(i, len(_SYLLABLES))
        digits.append(_SYLLABLES[d])
    return "".join(digits).capitalize()


def needle(i: int) -> tuple[str, str]:
    """(sentence planted in the corpus, question it answers)."""
    funder = _FUNDERS[i % len(_FUNDERS)]
    name = codename(i)
    return (f"The {name} project was funded by {funder} with {1000 + 37 * i} dollars.",
            f"Who funded the {name} project?")


def _sentence(rng: random.Random) -> str:
    text = rng.choice(_TEMPLATES).format(
        org=rng.choice(_ORGS), org2=rng.choice(_ORGS), country=rng.choice(_COUNTRIES), city=rng.choice(_CITIES),
        event=rng.choice(_EVENTS), topic=rng.choice(_TOPICS), topic2=rng.choice(_TOPICS),
        people=rng.choice(_PEOPLE), sector=rng.choice(_SECTORS), role=rng.choice(_ROLES),
        person=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}", day=rng.randint(1, 28), month=rng.choice(_MONTHS),
        year=rng.randint(2015, 2024), n=rng.randint(12, 400), pct=rng.randint(5, 95), years=rng.randint(2, 6),
        funder=rng.choice(_FUNDERS),
    )
    return text[0].upper() + text[1:]


def article_text(i: int, needles: dict[int, int], seed: int = 0) -> str:
    """Article ``i``: title, dateline, 10 paragraphs of 2-4 sentences; maybe one needle."""
    rng = random.Random(seed * 1_000_003 + i)
    org = rng.choice(_ORGS)
    verb = rng.choice(["supports", "reviews", "discusses", "launches work on"])
    title = f"{org[0].upper()}{org[1:]} {verb} {rng.choice(_TOPICS)} in {rng.choice(_COUNTRIES)} ({i})"
    date = f"{rng.randint(1, 28):02d} {rng.choice(_MONTHS)} {rng.randint(2015, 2024)}"
    paragraphs = [" ".join(_sentence(rng) for _ in range(rng.randint(2, 4))) for _ in range(PARAGRAPHS_PER_ARTICLE)]
    if i in needles:
        j = needles[i] % PARAGRAPHS_PER_ARTICLE
        paragraphs[j] = f"{paragraphs[j]} {needle(needles[i])[0]}"
    return f"{title}\n\nNews | {date}\n" + "\n\n".join(paragraphs) + "\n"


def write_corpus(folder: Path, n_paragraphs: int, n_needles: int) -> tuple[int, dict[int, int]]:
    """Write the articles; returns (number of files, article -> needle number)."""
    n_articles = max(1, n_paragraphs // PARAGRAPHS_PER_ARTICLE)
    step = max(1, n_articles // max(n_needles, 1))
    needles = {a: k for k, a in enumerate(range(0, n_articles, step)) if k < n_needles}
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_articles):
        sub = folder / f"{i // 1000:03d}"
        sub.mkdir(exist_ok=True)
        (sub / f"article_{i:06d}.txt").write_text(article_text(i, needles), encoding="utf-8")
    return n_articles, needles


# --- part 1: the pipeline --------------------------------------------------------------------


def run_pipeline(n_paragraphs: int, workdir: Path, sentence_chunks: bool, n_queries: int, n_answers: int) -> dict[str, Any]:
    from rag.embed import SentenceTransformerEmbeddings
    from rag.index import IndexStore
    from rag.knowledge import KnowledgeBase
    from rag.settings import Settings

    corpus, index_dir = workdir / "corpus", workdir / "index"
    (n_files, needles), gen_s = timed(lambda: write_corpus(corpus, n_paragraphs, n_queries))
    settings = Settings(corpus_dir=corpus, index_dir=index_dir, sentence_chunks=sentence_chunks,
                        answer_mode="extractive")
    embedder = SentenceTransformerEmbeddings(settings=settings)
    _, model_s = timed(lambda: embedder.dimension)  # loads the model
    rss_before = rss_bytes()

    marks: list[tuple[str, float]] = []
    kb = KnowledgeBase(corpus, index_dir, settings=settings, embedder=embedder)
    start = time.perf_counter()
    report = kb.refresh(progress=False, on_stage=lambda s: marks.append((s, time.perf_counter())))
    refresh_s = time.perf_counter() - start
    build_s = report.seconds  # the build itself: scan, parse, chunk, embed, write
    load_s = refresh_s - build_s  # then refresh loads the new index and builds the searcher
    points = [("scan", start)] + [(name.split()[0], t) for name, t in marks] + [("end", start + build_s)]
    stages = {points[i][0]: round(points[i + 1][1] - points[i][1], 2) for i in range(len(points) - 1)}
    build_peak = peak_rss_bytes()
    info = kb.index_info()
    manifest = info.manifest
    index_bytes = sum(p.stat().st_size for p in info.version_dir.iterdir())

    # Search: the needles' questions; hit@5 says the pipeline still finds things at this size.
    expected = {}
    for article, k in needles.items():
        doc = f"{article // 1000:03d}/article_{article:06d}.txt"
        found_in = kb.article(doc)
        assert found_in is not None, doc
        para = next(p.number for p in found_in.paragraphs if needle(k)[0] in p.text)
        expected[k] = (doc, para)
    questions = [needle(k)[1] for k in sorted(expected)]
    for q in questions[:3]:
        kb.search(q)  # warm-up
    search_times, found = [], 0
    for k, q in zip(sorted(expected), questions, strict=True):
        hits, seconds = timed(lambda q=q: kb.search(q, 5))
        search_times.append(seconds)
        found += expected[k] in {(h.doc_id, h.paragraph) for h in hits}
    answer_times, answered = [], 0
    for k, q in list(zip(sorted(expected), questions, strict=True))[:n_answers]:
        answer, seconds = timed(lambda q=q: kb.answer(q, mode="extractive"))
        answer_times.append(seconds)
        answered += any((c.doc_id, c.paragraph) == expected[k] for c in answer.citations)
    serving_rss = rss_bytes()
    stored = IndexStore(kb.index_dir, kb.settings).load().vectors.vectors()  # the raw stored FAISS vectors
    ann = ann_on_real_embeddings(stored, embedder.encode(questions, progress=False))
    del stored

    # An incremental update: one new article (embeds one file, rebuilds and reloads the index).
    (corpus / "new").mkdir(exist_ok=True)
    (corpus / "new" / "added.txt").write_text(article_text(10**7, {}), encoding="utf-8")
    update, update_s = timed(kb.refresh)

    return {
        "paragraphs": report.paragraphs,
        "files": n_files,
        "chunks": report.chunks,
        "sentence_chunks": sentence_chunks,
        "faiss_type": manifest["faiss"]["type"],
        "corpus_generation_s": round(gen_s, 1),
        "model_load_s": round(model_s, 1),
        "build_s": round(build_s, 1),
        "build_stages_s": stages,
        "embedded_chunks_per_s": round(report.embedded_chunks / max(stages.get("embedding", 1e-9), 1e-9), 1),
        "peak_rss_mib": mib(build_peak),
        "rss_before_build_mib": mib(rss_before),
        "serving_rss_mib": mib(serving_rss),
        "index_on_disk_mib": mib(index_bytes),
        "load_s": round(load_s, 2),
        "search_latency": latency_stats(search_times),
        "search_hit_at_5": round(found / max(len(questions), 1), 3),
        "answer_latency": latency_stats(answer_times),
        "answer_cites_needle": round(answered / max(len(answer_times), 1), 3),
        "ann_on_these_embeddings": ann,
        "incremental_update_s": round(update_s, 1),
        "incremental_update_embedded_chunks": update.embedded_chunks,
        "peak_rss_mib_end": mib(peak_rss_bytes()),
    }


def ann_on_real_embeddings(vectors: np.ndarray, queries: np.ndarray) -> dict[str, Any]:
    """Recall of the approximate types on the pipeline's own MiniLM vectors (real embeddings of
    template-generated text: many near-duplicates, so small margins), queries = the questions."""
    from rag.vectorstore import VectorIndex

    truth = VectorIndex.build(vectors, "flat").search(queries, 10)[1]
    out: dict[str, Any] = {"n": len(vectors), "queries": len(queries)}
    for kind in ("ivf", "hnsw"):
        index, build_s = timed(lambda kind=kind: VectorIndex.build(vectors, kind))
        lat, ids = per_query_latency(index.search, queries, 10)
        out[kind] = {"build_s": round(build_s, 1), "recall_at_10": round(recall(ids, truth), 4), "latency_k10": lat}
        if kind == "ivf":
            import faiss

            ivf = faiss.extract_index_ivf(index.index)
            default, sweep = ivf.nprobe, []
            for nprobe in IVF_NPROBE_SWEEP:
                ivf.nprobe = min(nprobe, ivf.nlist)
                sweep.append({"nprobe": ivf.nprobe, "recall_at_10": round(recall(index.search(queries, 10)[1], truth), 4)})
            ivf.nprobe = default
            out[kind].update(nlist=int(ivf.nlist), nprobe=int(default), sweep=sweep)
        del index
    return out


def run_real_embeddings(n_paragraphs: int, workdir: Path, n_queries: int) -> dict[str, Any]:
    """Approximate search on real MiniLM vectors of generated paragraphs (as the index embeds
    them), for two kinds of queries: questions (what the retriever searches with) and held-out
    paragraphs (same distribution as the data, like the synthetic benchmark). Embeddings are
    cached in ``workdir`` (``.npy``, no pickle) so the index part can be re-measured quickly."""
    from rag.chunk import ParagraphChunker
    from rag.embed import SentenceTransformerEmbeddings
    from rag.parse import parse_text
    from rag.settings import Settings
    from rag.vectorstore import VectorIndex

    settings = Settings(sentence_chunks=False)
    chunker = ParagraphChunker(settings)
    n_articles = max(1, n_paragraphs // PARAGRAPHS_PER_ARTICLE)
    step = max(1, n_articles // n_queries)
    needles = {a: k for k, a in enumerate(range(0, n_articles, step)) if k < n_queries}

    def embed_texts(first: int, count: int, with_needles: bool) -> list[str]:
        texts = []
        for i in range(first, first + count):
            article = parse_text(f"a{i}.txt", article_text(i, needles if with_needles else {}))
            texts += [c.embed_text for c in chunker.chunk(article)]
        return texts

    cache = workdir / f"real-{n_paragraphs}-{n_queries}"
    cache.mkdir(parents=True, exist_ok=True)
    arrays = {}
    embedder = SentenceTransformerEmbeddings(settings=settings)
    embed_s = None
    if all((cache / f"{name}.npy").exists() for name in ("data", "questions", "paragraphs")):
        arrays = {name: np.load(cache / f"{name}.npy") for name in ("data", "questions", "paragraphs")}
    else:
        started = time.perf_counter()
        arrays["data"] = embedder.encode(embed_texts(0, n_articles, True), progress=False)
        embed_s = time.perf_counter() - started
        arrays["questions"] = embedder.encode([needle(k)[1] for k in sorted(needles.values())], progress=False)
        held_out = embed_texts(n_articles, max(1, n_queries // PARAGRAPHS_PER_ARTICLE), False)[:n_queries]
        arrays["paragraphs"] = embedder.encode(held_out, progress=False)
        for name, array in arrays.items():
            np.save(cache / f"{name}.npy", array)
    data = arrays["data"]
    result: dict[str, Any] = {"n": len(data), "embedding_s": None if embed_s is None else round(embed_s, 1),
                              "query_sets": {}}
    indexes = {kind: timed(lambda kind=kind: VectorIndex.build(data, kind)) for kind in ("ivf", "hnsw")}
    flat = VectorIndex.build(data, "flat")
    for set_name in ("questions", "paragraphs"):
        queries = arrays[set_name]
        scores, truth = flat.search(queries, 11)
        within = (data @ queries.T >= scores[:, 9] - 0.01).sum(axis=0)
        entry: dict[str, Any] = {
            "queries": len(queries),
            "cosine_1st": round(float(scores[:, 0].mean()), 3),
            "cosine_10th": round(float(scores[:, 9].mean()), 3),
            "gap_10th_to_11th": round(float((scores[:, 9] - scores[:, 10]).mean()), 5),
            "rows_within_0.01_of_10th_median": int(np.median(within)),
        }
        truth, kth = truth[:, :10], scores[:, 9]
        for kind, (index, build_s) in indexes.items():
            rows = []
            if kind == "ivf":
                import faiss

                ivf = faiss.extract_index_ivf(index.index)
                default, knob, values = ivf.nprobe, "nprobe", sorted({*IVF_NPROBE_SWEEP, ivf.nprobe, 512})
            else:
                ivf, default, knob, values = None, index.index.hnsw.efSearch, "efSearch", [*HNSW_EF_SWEEP, 512, 1024]
            for value in values:
                if ivf is not None:
                    ivf.nprobe = min(value, ivf.nlist)
                else:
                    index.index.hnsw.efSearch = value
                lat, ids = per_query_latency(index.search, queries, 10)
                rows.append({knob: value, "default": value == default, "recall_at_10": round(recall(ids, truth), 4),
                             "tied_recall_at_10": round(tied_recall(ids, queries, data, kth), 4),
                             "epsilon_recall_at_10": round(tied_recall(ids, queries, data, kth, slack=0.01), 4),
                             "p50_ms": lat["p50_ms"], "p95_ms": lat["p95_ms"]})
            if ivf is not None:
                ivf.nprobe = default
            else:
                index.index.hnsw.efSearch = default
            entry[kind] = {"build_s": round(build_s, 1), "sweep": rows}
        result["query_sets"][set_name] = entry
    return result


# --- part 2: the vector index alone ----------------------------------------------------------


def clustered_vectors(n: int, seed: int, point_seed: int | None = None, dim: int = DIM, topics: int = 100,
                      clusters: int = 2000, subspace: int = 32, spread: float = 1.2, noise: float = 0.6,
                      topic_spread: float = 0.5) -> np.ndarray:
    """Unit vectors around ``clusters`` centres (grouped in ``topics``); same ``seed`` = same centres.

    ``point_seed`` draws other points from the same clusters (the queries).
    """
    rng = np.random.default_rng(seed)
    topic_centres = rng.standard_normal((topics, dim), dtype=np.float32)
    topic_centres /= np.linalg.norm(topic_centres, axis=1, keepdims=True)
    centres = topic_centres[rng.integers(0, topics, clusters)]
    centres = centres + topic_spread * rng.standard_normal((clusters, dim), dtype=np.float32) / np.sqrt(dim)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    bases = rng.standard_normal((clusters, subspace, dim), dtype=np.float32) / np.sqrt(dim)
    rng = np.random.default_rng(point_seed if point_seed is not None else seed + 1)
    labels = np.sort(rng.integers(0, clusters, n))
    bounds = np.searchsorted(labels, np.arange(clusters + 1))
    out = np.empty((n, dim), dtype=np.float32)
    for c in range(clusters):
        s, e = bounds[c], bounds[c + 1]
        if e > s:
            z = rng.standard_normal((e - s, subspace), dtype=np.float32) / np.sqrt(subspace)
            iso = rng.standard_normal((e - s, dim), dtype=np.float32) / np.sqrt(dim)
            out[s:e] = centres[c] + spread * (z @ bases[c]) + noise * iso
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out[rng.permutation(n)]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(f[f >= 0].tolist()) & set(t.tolist())) / k for f, t in zip(found, truth, strict=True)]))


def tied_recall(found: np.ndarray, queries: np.ndarray, vectors: np.ndarray, kth_scores: np.ndarray,
                slack: float = 1e-5) -> float:
    """Share of returned rows at most ``slack`` less similar than the exact k-th neighbour.

    With the default slack this is recall that counts exact ties as found. With ``slack=0.01``
    it is ann-benchmarks' "epsilon" recall: with many near-duplicates (template text), a row
    0.001 less similar than the true 10th is as good an answer, and id-recall calls it a miss.
    """
    good = 0
    for q, ids, kth in zip(queries, found, kth_scores, strict=True):
        ids = ids[ids >= 0]
        good += int(np.sum(vectors[ids] @ q >= kth - slack))
    return good / found.size


def per_query_latency(search: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]], queries: np.ndarray,
                      k: int) -> tuple[dict[str, float], np.ndarray]:
    ids, times = [], []
    for q in queries:
        (_, found), seconds = timed(lambda q=q: search(q[None, :], k))
        times.append(seconds)
        ids.append(found[0])
    return latency_stats(times), np.array(ids)


def run_vectors(n: int, types: Sequence[str], workdir: Path, n_queries: int, hnsw_max: int) -> dict[str, Any]:
    from rag import vectorstore
    from rag.vectorstore import VectorIndex

    data, gen_s = timed(lambda: clustered_vectors(n, seed=0))
    queries = clustered_vectors(n_queries, seed=0, point_seed=99)
    result: dict[str, Any] = {"n": n, "dim": DIM, "queries": n_queries, "generation_s": round(gen_s, 1),
                              "chosen_type": vectorstore.choose_index_type(n), "types": {}}

    # Exact search: the ground truth (and the flat index's own numbers).
    rss0 = rss_bytes()
    flat, flat_s = timed(lambda: VectorIndex.build(data, "flat"))
    flat_rss = rss_bytes() - rss0
    truth = {k: flat.search(queries, k)[1] for k in (10, 100, 1000)}
    sims = flat.search(queries, 10)[0]
    result["neighbour_cosine"] = {"1st": round(float(sims[:, 0].mean()), 3), "10th": round(float(sims[:, 9].mean()), 3)}

    for kind in types:
        if kind == "hnsw" and n > hnsw_max:
            result["types"][kind] = {"skipped": f"n > --hnsw-max {hnsw_max} (build time on this machine)"}
            continue
        gc.collect()
        if kind == "flat":
            index, build_s, grown = flat, flat_s, flat_rss
        else:
            rss0 = rss_bytes()
            index, build_s = timed(lambda kind=kind: VectorIndex.build(data, kind))
            grown = rss_bytes() - rss0
        path = workdir / f"{kind}-{n}.faiss"
        _, write_s = timed(lambda index=index, path=path: index.write(path))
        file_bytes = path.stat().st_size
        _, read_s = timed(lambda path=path, kind=kind: VectorIndex.read(path, kind))
        path.unlink()
        lat10, ids10 = per_query_latency(index.search, queries, 10)
        lat1000, ids1000 = per_query_latency(index.search, queries[: max(20, n_queries // 4)], 1000)
        entry: dict[str, Any] = {
            "build_s": round(build_s, 2),
            "write_s": round(write_s, 2),
            "read_s": round(read_s, 2),
            "bytes_per_vector_rss": round(grown / n, 1),
            "bytes_per_vector_file": round(file_bytes / n, 1),
            "latency_k10": lat10,
            "latency_k1000": lat1000,
            "recall_at_10": round(recall(ids10, truth[10]), 4),
            "recall_at_100": round(recall(index.search(queries, 100)[1], truth[100]), 4),
            "recall_at_1000": round(recall(ids1000, truth[1000][: len(ids1000)]), 4),
        }
        if kind == "ivf":
            import faiss

            ivf = faiss.extract_index_ivf(index.index)
            default = ivf.nprobe
            entry["params"] = {"nlist": int(ivf.nlist), "nprobe": int(default),
                               "train_iterations": vectorstore.IVF_TRAIN_ITERATIONS}
            entry["sweep"] = []
            for nprobe in IVF_NPROBE_SWEEP:
                if nprobe > ivf.nlist:
                    continue
                ivf.nprobe = nprobe
                lat, ids = per_query_latency(index.search, queries, 10)
                entry["sweep"].append({"nprobe": nprobe, "recall_at_10": round(recall(ids, truth[10]), 4),
                                       "p50_ms": lat["p50_ms"], "p95_ms": lat["p95_ms"]})
            ivf.nprobe = default
        elif kind == "hnsw":
            hnsw = index.index.hnsw
            default = hnsw.efSearch
            entry["params"] = {"M": vectorstore.HNSW_M, "efConstruction": vectorstore.HNSW_EF_CONSTRUCTION,
                               "efSearch": int(default)}
            entry["sweep"] = []
            for ef in HNSW_EF_SWEEP:
                hnsw.efSearch = ef
                lat, ids = per_query_latency(index.search, queries, 10)
                entry["sweep"].append({"efSearch": ef, "recall_at_10": round(recall(ids, truth[10]), 4),
                                       "p50_ms": lat["p50_ms"], "p95_ms": lat["p95_ms"]})
            hnsw.efSearch = default
        result["types"][kind] = entry
        if kind != "flat":
            del index
    del flat
    result["peak_rss_mib"] = mib(peak_rss_bytes())
    return result


# --- orchestration ---------------------------------------------------------------------------


def _subprocess(args: list[str], workdir: Path) -> dict[str, Any]:
    """Run one part in a fresh interpreter (its own peak RSS); returns its JSON result."""
    out = workdir / f"part-{time.monotonic_ns()}.json"
    cmd = [sys.executable, "-m", "evals.scale_bench", "--_part", *args, "--_part-out", str(out), "--workdir", str(workdir)]
    print("$", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text(encoding="utf-8"))


def summarize(results: dict[str, Any]) -> str:
    lines = []
    p = results.get("pipeline")
    if p:
        lines.append(
            f"pipeline: {p['paragraphs']:,} paragraphs / {p['chunks']:,} chunks ({p['faiss_type']}, sentence chunks "
            f"{'on' if p['sentence_chunks'] else 'off'}): build {p['build_s']}s {p['build_stages_s']}, "
            f"peak RSS {p['peak_rss_mib']} MiB, index {p['index_on_disk_mib']} MiB, load {p['load_s']}s, "
            f"search p50/p95 {p['search_latency']['p50_ms']}/{p['search_latency']['p95_ms']} ms "
            f"(hit@5 {p['search_hit_at_5']}), answer p50/p95 {p['answer_latency']['p50_ms']}/"
            f"{p['answer_latency']['p95_ms']} ms, incremental update {p['incremental_update_s']}s"
        )
        ann = p.get("ann_on_these_embeddings", {})
        for kind in ("ivf", "hnsw"):
            if kind in ann:
                lines.append(f"  {kind} on these {ann['n']:,} MiniLM vectors: recall@10 {ann[kind]['recall_at_10']} "
                             f"(build {ann[kind]['build_s']}s, p50 {ann[kind]['latency_k10']['p50_ms']} ms)")
    real = results.get("real_embeddings")
    if real:
        for set_name, entry in real["query_sets"].items():
            for kind in ("ivf", "hnsw"):
                sweep = ", ".join(
                    f"{next(iter(r.values()))}{'*' if r['default'] else ''}: {r['recall_at_10']}/{r['epsilon_recall_at_10']}"
                    for r in entry[kind]["sweep"]
                )
                lines.append(f"real MiniLM vectors n={real['n']:,}, {set_name} as queries, {kind} recall@10 (ids/epsilon 0.01): {sweep}")
    for v in results.get("vectors", []):
        for kind, e in v["types"].items():
            if "skipped" in e:
                lines.append(f"vectors n={v['n']:,} {kind}: skipped ({e['skipped']})")
                continue
            lines.append(
                f"vectors n={v['n']:,} {kind}{'*' if kind == v['chosen_type'] else ''}: build {e['build_s']}s, "
                f"{e['bytes_per_vector_file']} B/vector (file), {e['bytes_per_vector_rss']} B/vector (RSS), "
                f"k=10 p50/p95 {e['latency_k10']['p50_ms']}/{e['latency_k10']['p95_ms']} ms, "
                f"k=1000 p50 {e['latency_k1000']['p50_ms']} ms, recall@10 {e['recall_at_10']} "
                f"@100 {e['recall_at_100']} @1000 {e['recall_at_1000']} {e.get('params', '')}"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.scale_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--paragraphs", type=int, default=100_000, help="pipeline corpus size (0 skips)")
    parser.add_argument("--vectors", type=int, default=1_000_000, help="largest vector-index size (0 skips)")
    parser.add_argument("--real", type=int, default=30_000,
                        help="paragraphs embedded for the approximate-search check on real MiniLM vectors (0 skips)")
    parser.add_argument("--out", type=Path, default=Path("evals/results/scale.json"))
    parser.add_argument("--quick", action="store_true", help="a small run of everything (a couple of minutes)")
    parser.add_argument("--sentence-chunks", action="store_true", help="index sentence chunks too (~4x embedding)")
    parser.add_argument("--types", default="flat,ivf,hnsw", help="vector index types to measure")
    parser.add_argument("--hnsw-max", type=int, default=300_000, help="skip HNSW above this many vectors")
    parser.add_argument("--queries", type=int, default=QUERY_COUNT)
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--_part", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_part-out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._part:  # a worker: one part, result to a file
        kind, _, value = args._part.partition(":")
        args.workdir.mkdir(parents=True, exist_ok=True)
        if kind == "real":
            result = run_real_embeddings(int(value), args.workdir, n_queries=min(200, max(20, int(value) // 100)))
        elif kind == "pipeline":
            result = run_pipeline(int(value), args.workdir / "pipeline", args.sentence_chunks,
                                  n_queries=min(100, max(10, int(value) // 100)), n_answers=20)
        else:
            result = run_vectors(int(value), args.types.split(","), args.workdir, args.queries, args.hnsw_max)
        args._part_out.write_text(json.dumps(result), encoding="utf-8")
        return 0

    if args.quick:
        args.paragraphs = min(args.paragraphs, 2_000)
        args.real = min(args.real, 2_000)
        args.vectors = min(args.vectors, 20_000)
        args.queries = min(args.queries, 100)
        if args.out == Path("evals/results/scale.json"):
            args.out = Path("evals/results/scale_quick.json")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="scale-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python -m evals.scale_bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "recall_target_at_10": RECALL_TARGET,
    }
    common = ["--types", args.types, "--hnsw-max", str(args.hnsw_max), "--queries", str(args.queries)]
    if args.sentence_chunks:
        common.append("--sentence-chunks")
    try:
        if args.real > 0:
            results["real_embeddings"] = _subprocess([f"real:{args.real}", *common], workdir)
        if args.paragraphs > 0:
            results["pipeline"] = _subprocess([f"pipeline:{args.paragraphs}", *common], workdir)
            shutil.rmtree(workdir / "pipeline", ignore_errors=True)
        if args.vectors > 0:
            sizes = sorted({n for n in VECTOR_SIZES if n < args.vectors} | {args.vectors})
            results["vectors"] = [_subprocess([f"vectors:{n}", *common], workdir) for n in sizes]
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    results["total_s"] = round(time.perf_counter() - started, 1)
    if args.out.exists():  # keep the earlier result of a part that was not run this time
        try:
            earlier = json.loads(args.out.read_text(encoding="utf-8"))
        except ValueError:
            earlier = {}
        for part in ("pipeline", "real_embeddings", "vectors"):
            if part not in results and part in earlier:
                results[part] = earlier[part]
                results.setdefault("earlier_runs", {})[part] = {
                    k: earlier.get(k) for k in ("created", "command", "machine", "total_s")
                }
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    failures = [
        f"n={v['n']} {kind}: recall@10 {e['recall_at_10']} < {RECALL_TARGET}"
        for v in results.get("vectors", [])
        for kind, e in v["types"].items()
        if kind != "flat" and "recall_at_10" in e and e["recall_at_10"] < RECALL_TARGET
    ]
    results["recall_failures"] = failures
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(summarize(results))
    print(f"wrote {args.out} ({results['total_s']}s)")
    for failure in failures:
        print(f"RECALL BELOW TARGET: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
