"""Speed benchmark: index build, warm search latency, and the embedding pipeline's overhead.

    python -m evals.bench [--out evals/results/bench.json] [--paragraphs 10000] [--queries 200]

Measured on two corpora, each indexed from scratch into a temporary folder with the default
settings:

- ``seeds``: the five articles in ``seeds/``;
- ``generated``: a deterministic synthetic corpus (seeded random, English-like sentences with
  names, places, numbers and dates; files of ~20 paragraphs).

For each: build time, chunks/s overall and in the embedding stage, and warm search latency
(p50/p95 over ``--queries`` questions, after a warm-up). Then the embedding pipeline is compared
with a bare ``SentenceTransformer.encode`` (same model and batch size) on the same texts in the
same process: the index build's embedding stage on the seeds' chunks (three rebuild/bare pairs),
and ``SentenceTransformerEmbeddings.encode`` on a sample of the generated chunks (paired blocks in
alternating order). Each ratio is the median of paired ratios, so load from other processes
largely cancels out. Goal: ratio >= 0.9.

Cost: embedding dominates. With the defaults (~26,000 chunks) it needs about 10 CPU-minutes,
i.e. ~5 minutes on two idle cores; ``--paragraphs 2000`` gives a quick run.

Prints a Markdown table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evals.metrics import latency_ms
from rag.lexicon import MONTH_NAMES

REPO_ROOT = Path(__file__).resolve().parents[1]

# --- a deterministic synthetic corpus ------------------------------------------------------

_FIRST = ["Anna", "Minh", "Sokha", "Bat-Erdene", "Aigul", "Somchai", "Maria", "Jun", "Priya", "Tomas",
          "Lena", "Kofi", "Nadia", "Hiroshi", "Ana", "Dewi", "Ravi", "Elif", "Omar", "Chen"]
_LAST = ["Nguyen", "Kim", "Chan", "Dorj", "Sokolova", "Santos", "Tanaka", "Perera", "Haddad", "Novak",
         "Ortiz", "Mensah", "Rahman", "Suzuki", "Silva", "Wijaya", "Singh", "Yilmaz", "Farah", "Wang"]
_ROLES = ["director", "programme manager", "chair", "senior economist", "project officer", "president",
          "technical adviser", "coordinator", "spokesperson", "research lead"]
_ORGS = ["ministry of labour", "cooperative federation", "regional office", "national council",
         "workers' union", "city council", "development bank", "research institute", "farmers' association",
         "women's network", "statistics office", "chamber of commerce", "housing board", "water authority"]
_PLACES = ["Phnom Penh", "Ulaanbaatar", "Bangkok", "Hanoi", "Bishkek", "Jakarta", "Manila", "Seoul", "Dhaka",
           "Colombo", "Kathmandu", "Vientiane", "Yangon", "Kuala Lumpur", "Almaty", "Tashkent", "Lima", "Nairobi",
           "Accra", "Lisbon", "Geneva", "Osaka", "Busan", "Cebu", "Da Nang", "Chiang Mai", "Siem Reap", "Medan"]
_VERBS = ["launched", "reviewed", "funded", "organized", "announced", "evaluated", "expanded", "approved",
          "presented", "hosted", "extended", "redesigned"]
_ADJ = ["regional", "new", "digital", "rural", "three-year", "national", "pilot", "joint", "annual",
        "inclusive", "community", "green"]
_NOUNS = ["training programme", "survey", "workshop", "credit scheme", "policy review", "market study",
          "savings plan", "housing project", "water project", "school meal plan", "insurance fund",
          "export strategy", "apprenticeship scheme", "care service", "solar project", "fisheries plan"]
_PEOPLE = ["workers", "farmers", "members", "students", "households", "traders", "nurses", "fishers", "artisans"]
_GROUPS = ["women", "young people", "migrants", "first-time members", "home-based workers"]
_THINGS = ["exports", "savings", "jobs", "members", "loans", "harvests", "visitors"]
_MONTHS = MONTH_NAMES


class CorpusGenerator:
    """English-like news paragraphs from word lists; the same seed gives the same corpus."""

    def __init__(self, seed: int = 1234) -> None:
        self.rng = random.Random(seed)

    def _date(self) -> str:
        r = self.rng
        return f"{r.randint(1, 28)} {r.choice(_MONTHS)} {r.randint(2015, 2025)}"

    def _person(self) -> str:
        return f"{self.rng.choice(_FIRST)} {self.rng.choice(_LAST)}"

    def sentence(self) -> str:
        r = self.rng
        template = r.randrange(7)
        if template == 0:
            return (f"The {r.choice(_ORGS)} {r.choice(_VERBS)} a {r.choice(_ADJ)} {r.choice(_NOUNS)} "
                    f"in {r.choice(_PLACES)} on {self._date()}.")
        if template == 1:
            n = r.randint(20, 900)
            return f"About {n} {r.choice(_PEOPLE)} took part, {r.randint(5, n)} of them {r.choice(_GROUPS)}."
        if template == 2:
            return (f"The {r.choice(_NOUNS)} will cost {r.randint(2, 95)}0,000 dollars and run until "
                    f"{r.randint(2024, 2030)}.")
        if template == 3:
            return (f"{self._person()}, {r.choice(_ROLES)} at the {r.choice(_ORGS)}, said the {r.choice(_NOUNS)} "
                    f"would help {r.randint(50, 5000)} {r.choice(_PEOPLE)} in {r.choice(_PLACES)}.")
        if template == 4:
            return (f"Officials in {r.choice(_PLACES)} expect {r.randint(2, 40)} percent more "
                    f"{r.choice(_THINGS)} by {r.randint(2025, 2030)}.")
        if template == 5:
            return (f"A second phase is planned for {r.choice(_MONTHS)} {r.randint(2024, 2027)} in "
                    f"{r.choice(_PLACES)} and {r.choice(_PLACES)}.")
        return (f"Participants from {r.choice(_PLACES)} shared lessons on {r.choice(_ADJ)} "
                f"{r.choice(_NOUNS)}s with the {r.choice(_ORGS)}.")

    def paragraph(self) -> str:
        n = self.rng.choices([1, 2, 3], weights=[3, 5, 2])[0]
        return " ".join(self.sentence() for _ in range(n))

    def article(self, n_paragraphs: int) -> str:
        r = self.rng
        title = (f"{r.choice(_ORGS).capitalize()} {r.choice(_VERBS)} {r.choice(_ADJ)} "
                 f"{r.choice(_NOUNS)} in {r.choice(_PLACES)}")
        body = "\n\n".join(self.paragraph() for _ in range(n_paragraphs))
        return f"{title}\n\nNews | {self._date()}\n{body}\n"

    def question(self) -> str:
        r = self.rng
        template = r.randrange(6)
        if template == 0:
            return f"Who {r.choice(_VERBS)} the {r.choice(_NOUNS)} in {r.choice(_PLACES)}?"
        if template == 1:
            return f"How many {r.choice(_PEOPLE)} took part in the {r.choice(_NOUNS)} in {r.choice(_PLACES)}?"
        if template == 2:
            return f"When will the {r.choice(_ADJ)} {r.choice(_NOUNS)} start?"
        if template == 3:
            return f"Which places are in the second phase of the {r.choice(_NOUNS)}?"
        if template == 4:
            return f"What did {self._person()} say about the {r.choice(_NOUNS)}?"
        return f"How much will the {r.choice(_NOUNS)} cost?"

    def write(self, folder: Path, n_paragraphs: int, per_file: int = 20) -> int:
        folder.mkdir(parents=True, exist_ok=True)
        files = 0
        remaining = n_paragraphs
        while remaining > 0:
            n = min(per_file, remaining)
            (folder / f"gen_{files:05d}.txt").write_text(self.article(n), encoding="utf-8")
            remaining -= n
            files += 1
        return files


SEED_QUESTIONS = [
    "Which countries were in phase 2?",
    "Who funded the 2021 workshop?",
    "When was the HomeNet workshop held?",
    "How many participants attended the workshop in March 2021?",
    "What is digital colonialism?",
    "Who is Simel Esim?",
    "What was the objective of the research orientation?",
    "Where did the HNSEA thematic workshop take place?",
    "What did the ILO present on the second day?",
    "Which organisations are members of HomeNet South-East Asia?",
]


def seed_questions(articles: list[Any], n: int, seed: int = 7) -> list[str]:
    """Hand-written questions plus questions made from the seeds' own sentences."""
    from rag.sentences import sentences

    rng = random.Random(seed)
    pool = [s for a in articles for p in a.paragraphs for s in sentences(p.text) if len(s.split()) >= 6]
    questions = list(SEED_QUESTIONS)
    while len(questions) < n:
        words = rng.choice(pool).rstrip(".").split()
        start = rng.randrange(0, max(1, len(words) - 6))
        questions.append("What about " + " ".join(words[start : start + rng.randint(4, 9)]) + "?")
    return questions[:n]


# --- measurements --------------------------------------------------------------------------


def measure_build(corpus: Path, index_dir: Path, settings: Any, embedder: Any, repeats: int = 1) -> tuple[dict[str, Any], Any]:
    """Build from scratch ``repeats`` times; the fastest build counts."""
    from rag.index import IndexStore

    store = IndexStore(index_dir, settings, embedder)
    best: tuple[float, float, Any] | None = None
    for _ in range(repeats):
        stages: list[tuple[str, float]] = []
        started = time.perf_counter()
        report = store.build(
            corpus, rebuild=True, progress=False, on_stage=lambda s, stages=stages: stages.append((s, time.perf_counter()))
        )
        build_s = time.perf_counter() - started
        marks = {name.split(" ")[0]: t for name, t in stages}
        embed_s = marks["writing"] - marks["embedding"]
        if best is None or build_s < best[0]:
            best = (build_s, embed_s, report)
    assert best is not None
    build_s, embed_s, report = best
    t = time.perf_counter()
    loaded = store.load()
    load_s = time.perf_counter() - t
    result = {
        "files": report.files,
        "paragraphs": report.paragraphs,
        "chunks": report.chunks,
        "build_s": round(build_s, 3),
        "chunks_per_s": round(report.chunks / build_s, 1),
        "embed_s": round(embed_s, 3),
        "embed_chunks_per_s": round(report.embedded_chunks / embed_s, 1) if embed_s > 0 else None,
        "load_s": round(load_s, 3),
        "faiss": loaded.manifest["faiss"]["type"],
        "builds": repeats,
    }
    return result, loaded


def measure_search(loaded: Any, embedder: Any, settings: Any, questions: list[str], warmup: int = 5,
                   reader: Any = None) -> dict[str, Any]:
    from rag.searcher import HybridSearcher

    t = time.perf_counter()
    searcher = HybridSearcher(loaded, embedder, settings, reader)
    init_s = time.perf_counter() - t
    for q in questions[:warmup]:
        searcher.search(q, settings.top_k)
    latencies = []
    for q in questions:
        t = time.perf_counter()
        hits = searcher.search(q, settings.top_k)
        latencies.append(time.perf_counter() - t)
        assert hits, q
    latency = latency_ms(latencies, digits=2)
    return {
        "searcher_init_s": round(init_s, 3),
        "queries": len(questions),
        "search_p50_ms": latency["p50_ms"],
        "search_p95_ms": latency["p95_ms"],
        "search_mean_ms": latency["mean_ms"],
    }


def _timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bare_encode(embedder: Any, texts: list[str]) -> Any:
    """The baseline: sentence-transformers itself, same model and batch size, nothing around it."""
    return embedder.client.encode(texts, batch_size=embedder.batch_size, show_progress_bar=False)


def measure_encode_ratio(texts: list[str], embedder: Any, block: int = 128, passes: int = 2) -> dict[str, Any]:
    """Pipeline ``SentenceTransformerEmbeddings.encode`` vs bare ``SentenceTransformer.encode`` on
    the same texts. Paired blocks, run back to back in alternating order, so that load from other
    processes hits both sides alike; the median of the per-block time ratios is the estimate."""
    blocks = [texts[i : i + block] for i in range(0, len(texts), block)]
    bare_encode(embedder, blocks[0][:32])  # warm-up
    ratios: list[float] = []
    totals = {"pipeline": 0.0, "bare": 0.0}
    cpu = {"pipeline": 0.0, "bare": 0.0}
    for n in range(passes * len(blocks)):
        chunk = blocks[n % len(blocks)]
        times: dict[str, float] = {}
        for name in (("pipeline", "bare") if n % 2 == 0 else ("bare", "pipeline")):
            c, w = time.process_time(), time.perf_counter()
            if name == "pipeline":
                embedder.encode(chunk, progress=False)
            else:
                bare_encode(embedder, chunk)
            times[name] = time.perf_counter() - w
            totals[name] += times[name]
            cpu[name] += time.process_time() - c
        ratios.append(times["bare"] / times["pipeline"])
    n_texts = passes * len(texts)
    return {
        "texts": len(texts),
        "passes": passes,
        "bare_texts_per_s": round(n_texts / totals["bare"], 1),
        "pipeline_texts_per_s": round(n_texts / totals["pipeline"], 1),
        "ratio": round(statistics.median(ratios), 3),
        "ratio_of_totals": round(totals["bare"] / totals["pipeline"], 3),
        "cpu_time_ratio": round(cpu["bare"] / cpu["pipeline"], 3),
        "block_ratios": [round(r, 3) for r in ratios],
    }


def measure_build_stage_ratio(seeds: Path, index_dir: Path, settings: Any, embedder: Any,
                              rounds: int = 3) -> dict[str, Any]:
    """The index build's embedding stage vs bare encode of the very same chunk texts: ``rounds``
    pairs of (full rebuild, bare encode) in alternating order; the median pair ratio counts."""

    def build() -> tuple[float, list[str]]:
        result, loaded = measure_build(seeds, index_dir, settings, embedder)
        return result["embed_chunks_per_s"], [c.embed_text for c in loaded.chunks]

    def bare(texts: list[str]) -> float:
        return len(texts) / _timed(lambda: bare_encode(embedder, texts))

    stage_rates, bare_rates = [], []
    stage_rate, texts = build()  # round 0: build first, then bare on its texts
    stage_rates.append(stage_rate)
    bare_rates.append(bare(texts))
    for n in range(1, rounds):
        if n % 2:
            bare_rates.append(bare(texts))
            stage_rates.append(build()[0])
        else:
            stage_rates.append(build()[0])
            bare_rates.append(bare(texts))
    ratios = [s / b for s, b in zip(stage_rates, bare_rates, strict=True)]
    return {
        "texts": len(texts),
        "rounds": rounds,
        "bare_texts_per_s": round(statistics.median(bare_rates), 1),
        "build_stage_texts_per_s": round(statistics.median(stage_rates), 1),
        "ratio": round(statistics.median(ratios), 3),
        "pair_ratios": [round(r, 3) for r in ratios],
    }


# --- report --------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| corpus | files | paragraphs | chunks | build s | chunks/s | embed s | embedded chunks/s "
        "| search p50 ms | search p95 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ("seeds", "generated"):
        r = results.get(name)
        if not r:
            continue
        lines.append(
            f"| {name} | {r['files']} | {r['paragraphs']} | {r['chunks']} | {r['build_s']} | {r['chunks_per_s']} "
            f"| {r['embed_s']} | {r['embed_chunks_per_s']} | {r['search_p50_ms']} | {r['search_p95_ms']} |"
        )
    seeds = results.get("seeds") or {}
    if "reranked_search_p50_ms" in seeds:
        lines.append(
            f"| seeds, first stage + reader rerank | | | | | | | | {seeds['reranked_search_p50_ms']} "
            f"| {seeds['reranked_search_p95_ms']} |"
        )
    lines += [
        "",
        "| embedding throughput (same texts, same run) | texts | bare texts/s | pipeline texts/s | ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    stage = results["embedding"]["build_stage_vs_bare"]
    enc = results["embedding"]["encode_vs_bare"]
    lines.append(
        f"| index build embedding stage (seeds chunks) | {stage['texts']} | {stage['bare_texts_per_s']} "
        f"| {stage['build_stage_texts_per_s']} | {stage['ratio']} |"
    )
    lines.append(
        f"| SentenceTransformerEmbeddings.encode ({enc['sample_from']} chunks) | {enc['texts']} | {enc['bare_texts_per_s']} "
        f"| {enc['pipeline_texts_per_s']} | {enc['ratio']} |"
    )
    lines.append("")
    lines.append(f"Goal: ratio >= 0.9 — {'met' if results['embedding']['goal_met'] else 'NOT met'}. "
                 f"Model load {results['model_load_s']} s; total {results['total_s']} s on "
                 f"{results['machine']['cpus']} CPUs (torch threads {results['machine']['torch_threads']}); "
                 f"load average at start {results['machine']['load_average_start']}.")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from rag.chunk import ParagraphChunker
    from rag.embed import SentenceTransformerEmbeddings
    from rag.parse import parse_file
    from rag.settings import Settings

    started = time.perf_counter()
    settings = Settings()
    embedder = SentenceTransformerEmbeddings(settings=settings)
    model_load_s = _timed(lambda: embedder.client)
    embedder.encode(["warm-up text"] * 8, progress=False)  # first-call costs are not throughput
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_start": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": {
            "embedding_model": Path(settings.embedding_model).name,
            "embedding_batch_size": settings.embedding_batch_size,
            "max_chunk_chars": settings.max_chunk_chars,
            "sentence_chunks": settings.sentence_chunks,
            "top_k": settings.top_k,
        },
        "model_load_s": round(model_load_s, 2),
    }

    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        root = Path(tmp)
        seeds = args.seeds
        print(f"building the seeds index ({seeds}) ...", file=sys.stderr)
        build, loaded = measure_build(seeds, root / "index-seeds", settings, embedder, repeats=2)
        seed_articles = list(loaded.articles.values())
        questions = seed_questions(seed_articles, args.queries)
        build.update(measure_search(loaded, embedder, settings, questions))
        from rag.reader import Reader

        reader = Reader.from_settings(settings)
        if reader is not None and settings.weight_reader > 0:  # the same search with the reader's rerank
            reranked = measure_search(loaded, embedder, settings, questions, reader=reader)
            build.update({f"reranked_{k}": v for k, v in reranked.items() if k.startswith("search_")})
        results["seeds"] = build
        print("comparing the build's embedding stage with bare encode ...", file=sys.stderr)
        stage_ratio = measure_build_stage_ratio(seeds, root / "index-ratio", settings, embedder)

        if args.paragraphs > 0:
            gen = CorpusGenerator(args.seed)
            corpus = root / "generated"
            gen.write(corpus, args.paragraphs)
            print(f"building the generated index ({args.paragraphs} paragraphs) ...", file=sys.stderr)
            build, loaded = measure_build(corpus, root / "index-generated", settings, embedder)
            questions = [gen.question() for _ in range(args.queries)]
            build.update(measure_search(loaded, embedder, settings, questions))
            results["generated"] = build
            texts = [c.embed_text for c in loaded.chunks]
        else:
            chunker = ParagraphChunker(settings)
            texts = [c.embed_text for p in sorted(seeds.glob("*.txt")) for c in chunker.chunk(parse_file(p))]
        sample = random.Random(args.seed).sample(texts, min(args.ratio_texts, len(texts)))
        print(f"comparing encode throughput on {len(sample)} texts ...", file=sys.stderr)
        enc_ratio = measure_encode_ratio(sample, embedder)
        enc_ratio["sample_from"] = "generated" if args.paragraphs > 0 else "seeds"
        results["embedding"] = {
            "build_stage_vs_bare": stage_ratio,
            "encode_vs_bare": enc_ratio,
            "bare": "SentenceTransformer.encode(texts, batch_size=<pipeline batch size>)",
            "goal": 0.9,
            "goal_met": min(stage_ratio["ratio"], enc_ratio["ratio"]) >= 0.9,
        }
    results["total_s"] = round(time.perf_counter() - started, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "evals" / "results" / "bench.json")
    parser.add_argument("--paragraphs", type=int, default=10_000, help="size of the generated corpus (0: skip it)")
    parser.add_argument("--queries", type=int, default=200, help="timed searches per corpus (>= 200 recommended)")
    parser.add_argument("--ratio-texts", type=int, default=600, help="texts in the encode comparison")
    parser.add_argument("--seeds", type=Path, default=REPO_ROOT / "seeds")
    parser.add_argument("--seed", type=int, default=1234, help="random seed of the generated corpus")
    args = parser.parse_args(argv)
    if args.queries < 1 or args.paragraphs < 0 or args.ratio_texts < 32:
        parser.error("--queries must be >= 1, --paragraphs >= 0 and --ratio-texts >= 32")
    results = run(args)
    print(markdown(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
