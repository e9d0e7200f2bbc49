"""Build time of the same index: local, then Ray with 1 and 2 embedding workers (rebuilds).

    python -m evals.scale_ray [--corpus DIR] [--out evals/results/scale_ray.json]

Each build re-embeds everything (``rebuild=True``) into its own temporary index folder; the Ray
times include starting the local runtime and loading one model per actor.
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

from evals.suites import SQUAD2_DIR


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.scale_ray", description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=SQUAD2_DIR / "corpus")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--out", type=Path, default=Path("evals/results/scale_ray.json"))
    args = parser.parse_args(argv)

    from rag.index import IndexStore
    from rag.ray_build import build_with_ray
    from rag.settings import Settings

    settings = Settings()
    result: dict = {"corpus": str(args.corpus), "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        report = IndexStore(Path(tmp) / "local", settings).build(args.corpus, rebuild=True, progress=False)
        result["local"] = {"s": round(time.perf_counter() - start, 1), "chunks": report.chunks}
        print("local", result["local"], flush=True)
        for n in (int(x) for x in args.workers.split(",")):
            start = time.perf_counter()
            report = build_with_ray(args.corpus, Path(tmp) / f"ray{n}", settings, workers=n, rebuild=True)
            result[f"ray_{n}_workers"] = {"s": round(time.perf_counter() - start, 1), "chunks": report.chunks}
            print(f"ray {n}", result[f"ray_{n}_workers"], flush=True)
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
