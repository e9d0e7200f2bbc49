"""Serving start-up at scale: how long a process takes to open an index and make its searcher.

    python -m evals.scale_startup --index evals/results/tmp/scale/index-100000-p [--index ...]
                                  [--made] [--out evals/results/scale_startup.json]

For each index (one fresh interpreter each, so memory and caches are its own): ``IndexStore.load``
(checksums verified and not), then ``HybridSearcher`` over it: with the lexical tables the build
stored (format 2: memory-mapped, nothing tokenized), and with ``--made`` also with the tables made
at start-up, as for a format-1 index or one whose tables another tokenizer version made (each
paragraph tokenized once). Wall and CPU seconds, and RSS after each step.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_WORKER = r"""
import json, os, sys, time
from rag.index import IndexStore
from rag.searcher import HybridSearcher
from rag.settings import Settings
def rss():
    return round(int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
def timed(fn):
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, round(time.perf_counter() - t, 2), round(time.process_time() - c, 2)
settings = Settings(index_dir=sys.argv[1], sentence_chunks=False, answer_mode="extractive")
store = IndexStore(settings.index_dir, settings, embedder=object())
out = {"rss_start_mib": rss()}
_, out["load_verified_s"], _ = timed(lambda: store.load(verify_checksums=True))
index, out["load_s"], out["load_cpu_s"] = timed(lambda: store.load(verify_checksums=False))
out["format"] = index.manifest["format"]
out["paragraphs"] = len(index.paragraph_keys)
out["rss_loaded_mib"] = rss()
out["stored_lexical"] = index.lexical is not None
if index.lexical is not None:
    _, out["searcher_stored_s"], out["searcher_stored_cpu_s"] = timed(lambda: HybridSearcher(index, None, settings))
    out["rss_searcher_stored_mib"] = rss()
if sys.argv[2] == "1" or index.lexical is None:
    index.lexical = None
    _, out["searcher_made_s"], out["searcher_made_cpu_s"] = timed(lambda: HybridSearcher(index, None, settings))
    out["rss_searcher_made_mib"] = rss()
print(json.dumps(out))
"""


def measure(index: Path, made: bool) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _WORKER, str(index), "1" if made else "0"], check=True, capture_output=True, text=True
    )
    return {"index": str(index), **json.loads(proc.stdout.strip().splitlines()[-1])}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.scale_startup", description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, action="append", required=True)
    parser.add_argument("--made", action="store_true", help="also make the lexical tables at start-up")
    parser.add_argument("--out", type=Path, default=Path("evals/results/scale_startup.json"))
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "command": "python -m evals.scale_startup " + " ".join(argv if argv is not None else sys.argv[1:]),
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "machine": {"cpus": os.cpu_count(), "note": "2 cores shared with other jobs"},
        "runs": [],
    }
    for index in args.index:
        run = measure(index, args.made)
        results["runs"].append(run)
        print(json.dumps(run), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
