"""Resident memory of serving replicas that share one index: 1 and 4 processes, mmap on and off.

    python -m evals.scale_replicas --index evals/results/tmp/scale/index-100000-p [--replicas 1,4]

Each replica is a fresh interpreter that loads the index and the hybrid searcher as ``rag serve``
does (``IndexStore.load`` + ``HybridSearcher``), answers a few searches, then waits. Read from
``/proc/<pid>/smaps_rollup`` while all replicas are up: RSS (what ``top`` shows, shared pages
counted in every process), PSS (shared pages divided among the processes that map them: the
fair share) and private memory. With ``RAG_INDEX_MMAP`` on, the FAISS vectors are file pages
shared by every replica; the metadata (articles, chunks, BM25 matrices) is still per process.
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
import sys, time
from rag.embed import SentenceTransformerEmbeddings
from rag.index import IndexStore
from rag.searcher import HybridSearcher
from rag.settings import Settings
settings = Settings(index_dir=sys.argv[1], index_mmap=sys.argv[2] == "1")
embedder = SentenceTransformerEmbeddings(settings=settings)
index = IndexStore(settings.index_dir, settings, embedder=embedder).load(verify_checksums=False)
searcher = HybridSearcher(index, embedder, settings)
for q in ("Who funded the project?", "When did Beyonce start becoming popular?", "What is solar energy?"):
    searcher.search(q, 5)
print("ready", flush=True)
time.sleep(600)
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
    try:
        for p in procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("a replica failed to start")
        time.sleep(1)
        per = [smaps(p.pid) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    total_pss = sum(r["pss_mib"] for r in per)
    return {
        "replicas": replicas,
        "mmap": mmap,
        "per_replica": per,
        "total_pss_mib": round(total_pss, 1),
        "pss_per_replica_mib": round(total_pss / replicas, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.scale_replicas", description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--replicas", default="1,4")
    parser.add_argument("--out", type=Path, default=Path("evals/results/scale_replicas.json"))
    args = parser.parse_args(argv)
    manifest = json.loads((args.index / (args.index / "CURRENT").read_text().strip() / "manifest.json").read_text())
    results: dict[str, Any] = {
        "index": str(args.index),
        "chunks": manifest["faiss"]["ntotal"],
        "faiss": manifest["faiss"]["type"],
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "runs": [],
    }
    for mmap in (False, True):
        for n in (int(x) for x in args.replicas.split(",")):
            run = measure(args.index, n, mmap)
            results["runs"].append(run)
            print(json.dumps(run), flush=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
