"""Resident memory of serving replicas that share one index: 1 and 4 processes, mmap on and off.

    python -m evals.scale_replicas --index evals/results/tmp/scale/index-100000-p [--index OTHER ...]
                                   [--replicas 1,4] [--mmap off,on]

Each replica is a fresh interpreter that loads the index and the hybrid searcher as ``rag serve``
does (``IndexStore.load`` + ``HybridSearcher``), answers a few searches, then waits. Read from
``/proc/<pid>/smaps_rollup`` while all replicas are up: RSS (what ``top`` shows, shared pages
counted in every process), PSS (shared pages divided among the processes that map them: the
fair share) and private memory. Each replica also reports its RSS after loading the embedding
model (before the index) and how long the index and the searcher took to load. With
``RAG_INDEX_MMAP`` on, the FAISS vectors and, for a format-2 index, the metadata columns and
the lexical tables are file pages shared by every replica; a format-1 index (``--index`` of one
built before) parses its metadata and builds its BM25 matrices on each replica's heap.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_WORKER = r"""
import json, os, sys, time
from rag.embed import SentenceTransformerEmbeddings
from rag.index import IndexStore
from rag.searcher import HybridSearcher
from rag.settings import Settings
def rss():
    return round(int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
settings = Settings(index_dir=sys.argv[1], index_mmap=sys.argv[2] == "1")
embedder = SentenceTransformerEmbeddings(settings=settings)
embedder.encode_query("warm the model up")
rss_model = rss()
t0 = time.perf_counter()
index = IndexStore(settings.index_dir, settings, embedder=embedder).load(verify_checksums=False)
t1 = time.perf_counter()
searcher = HybridSearcher(index, embedder, settings)
t2 = time.perf_counter()
for q in ("Who funded the project?", "When did Beyonce start becoming popular?", "What is solar energy?"):
    searcher.search(q, 5)
info = {"rss_after_model_mib": rss_model, "index_load_s": round(t1 - t0, 2), "searcher_init_s": round(t2 - t1, 2),
        "format": index.manifest["format"], "stored_lexical": index.lexical is not None}
print("ready " + json.dumps(info), flush=True)
time.sleep(1800)
"""


def smaps(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value) / 1024  # kB -> MiB
    return {
        "rss_mib": round(fields["Rss"], 1),
        "pss_mib": round(fields["Pss"], 1),
        "private_mib": round(fields["Private_Clean"] + fields["Private_Dirty"], 1),
        "shared_mib": round(fields["Shared_Clean"] + fields["Shared_Dirty"], 1),
    }


def measure(index: Path, replicas: int, mmap: bool) -> dict[str, Any]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(index), "1" if mmap else "0"], stdout=subprocess.PIPE, text=True
        )
        for _ in range(replicas)
    ]
    started = time.perf_counter()
    try:
        infos = []
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline().strip()
            if not line.startswith("ready "):
                raise RuntimeError("a replica failed to start")
            infos.append(json.loads(line[len("ready "):]))
        all_ready_s = time.perf_counter() - started
        time.sleep(1)
        per = [{**smaps(p.pid), **info} for p, info in zip(procs, infos, strict=True)]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    total_pss = sum(r["pss_mib"] for r in per)
    return {
        "index": str(index),
        "format": per[0]["format"],
        "replicas": replicas,
        "mmap": mmap,
        "all_ready_s": round(all_ready_s, 1),
        "private_per_replica_mib": round(sum(r["private_mib"] for r in per) / replicas, 1),
        "per_replica": per,
        "total_pss_mib": round(total_pss, 1),
        "pss_per_replica_mib": round(total_pss / replicas, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.scale_replicas", description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, action="append", required=True, help="index folder (repeatable)")
    parser.add_argument("--replicas", default="1,4")
    parser.add_argument("--mmap", default="off,on", help="RAG_INDEX_MMAP values to run")
    parser.add_argument("--out", type=Path, default=Path("evals/results/scale_replicas.json"))
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "command": "python -m evals.scale_replicas " + " ".join(argv if argv is not None else sys.argv[1:]),
        "indexes": {},
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "machine": {"cpus": os.cpu_count(), "note": "2 cores shared with other jobs"},
        "runs": [],
    }
    for index in args.index:
        manifest = json.loads((index / (index / "CURRENT").read_text().strip() / "manifest.json").read_text())
        results["indexes"][str(index)] = {
            "format": manifest["format"], "chunks": manifest["faiss"]["ntotal"], "faiss": manifest["faiss"]["type"],
            "paragraphs": sum(f["paragraphs"] for f in manifest["files"].values()),
        }
        for mmap in (m == "on" for m in args.mmap.split(",")):
            for n in (int(x) for x in args.replicas.split(",")):
                run = measure(index, n, mmap)
                results["runs"].append(run)
                print(json.dumps({k: v for k, v in run.items() if k != "per_replica"}), flush=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
