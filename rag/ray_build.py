"""The index build on Ray: parse and chunk the files in parallel, embed on a pool of actors.

    python -m rag.ray_build [--corpus DIR] [--index DIR] [--address ADDR] [--workers N] [--rebuild]

For a corpus that outgrows one process. ``RayEngine`` is a ``rag.index.BuildEngine``: the store
still decides which files changed, reuses the vectors of unchanged ones, builds the FAISS index
and writes the manifest and the atomic swap, so a Ray build writes exactly the project's own index
format and serving is unchanged. Two stages run on the cluster as Ray Data jobs:

1. **parse + chunk**: the files, one row each, through ``map_batches`` (a task per batch):
   ``parse_file`` and the ``ParagraphChunker``, returned as the index's own JSON rows (articles
   and chunks cross the wire as JSON, not as Python objects).
2. **embed**: the chunk texts still to embed through ``map_batches`` on an actor pool
   (``concurrency=workers``), each actor holding one embedder built from the same settings.

Duplicates and unreadable files are decided as ``rag.corpus.parse_corpus`` decides them (by
content hash, first file wins), so the Ray build and the local one index the same articles. With
no ``address`` a local Ray runtime is started on this machine (``num_cpus=workers``); with one,
the job joins that cluster (``ray://host:10001`` or ``auto``), whose workers need this package
and the model folder at the same path. Ray is an optional extra: ``pip install -e ".[ray]"``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.chunk import ParagraphChunker
from rag.corpus import Corpus, CorpusFile, require_articles
from rag.domain import Chunk
from rag.embed import make_embedder
from rag.embed_base import VectorEmbeddings
from rag.errors import CorpusError, RagError
from rag.index import IndexStore, _article_from_json, _article_to_json, _chunk_to_json
from rag.parse import parse_file
from rag.settings import Settings

log = logging.getLogger(__name__)

#: Files per parse task and texts per embedding call on an actor.
PARSE_BATCH = 64
EMBED_BATCH = 256


class RayNotInstalledError(RagError):
    """The Ray engine was asked for but ``ray`` is not importable."""


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RayNotInstalledError(
            'the Ray build needs Ray: pip install -e ".[ray]" (or use the local build: rag index)'
        ) from exc
    return ray


def _settings_json(settings: Settings) -> str:
    """The settings as JSON, to rebuild the same ``Settings`` on a worker (no pickled objects)."""
    return settings.model_dump_json()


def _settings_from_json(text: str) -> Settings:
    return Settings.model_validate_json(text)


def _parse_batch(batch: dict[str, np.ndarray], settings_json: str) -> dict[str, list[str]]:
    """Parse and chunk a batch of files: one JSON article (or error) and one JSON chunk list per file."""
    settings = _settings_from_json(settings_json)
    chunker = ParagraphChunker(settings)
    articles, chunks, errors = [], [], []
    for doc_id, path in zip(batch["doc_id"].tolist(), batch["path"].tolist(), strict=True):
        try:
            article = parse_file(Path(path), doc_id, max_bytes=settings.max_file_bytes)
        except CorpusError as exc:
            articles.append("")
            chunks.append("[]")
            errors.append(str(exc).removeprefix(f"{doc_id}: "))
            continue
        articles.append(json.dumps(_article_to_json(article), ensure_ascii=False))
        chunks.append(json.dumps([_chunk_to_json(c) for c in chunker.chunk(article)], ensure_ascii=False))
        errors.append("")
    return {"doc_id": list(batch["doc_id"]), "article": articles, "chunks": chunks, "error": errors}


class _Embedder:
    """A Ray actor: one embedder, loaded once, encoding batches of texts."""

    def __init__(self, settings_json: str) -> None:
        self.embedder = make_embedder(_settings_from_json(settings_json))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.embedder.encode([str(t) for t in batch["text"]], progress=False)
        return {"row": batch["row"], "vector": list(vectors)}


class RayEngine:
    """A ``rag.index.BuildEngine`` on Ray: ``workers`` embedding actors (one model each)."""

    def __init__(self, address: str | None = None, workers: int = 2, *, settings: Settings | None = None) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.address = address
        self.workers = workers
        self.settings = settings
        self._started = False

    def _init(self) -> Any:
        ray = _ray()
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                # One CPU per embedding actor (Ray gives each OMP_NUM_THREADS=1, so N actors use N
                # cores), plus one for the parse tasks and Ray Data's own (with exactly N, a first
                # run's actor pool waited six minutes without starting; the cause is not pinned down).
                # Ray waits a fixed 30 s for its node to register; on a starved machine (measured
                # here: CPU pressure 85%) that is too short once in a while, so try again.
                for attempt in range(3):
                    try:
                        ray.init(
                            num_cpus=self.workers + 1,
                            include_dashboard=False,
                            log_to_driver=False,
                            configure_logging=False,
                        )
                        break
                    except Exception as exc:  # Ray raises a bare Exception for this
                        if attempt == 2 or "timed out during startup" not in str(exc):
                            raise
                        log.warning("Ray's node was slow to start (%s); retrying", exc)
                        ray.shutdown()
            self._started = True
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        return ray

    def shutdown(self) -> None:
        """Stop the local runtime this engine started (a cluster joined by address stays up)."""
        if self._started:
            _ray().shutdown()
            self._started = False

    def parse_and_chunk(
        self, corpus_dir: Path, files: list[CorpusFile], settings: Settings, chunker: ParagraphChunker
    ) -> tuple[Corpus, dict[str, list[Chunk]]]:
        ray = self._init()
        corpus = Corpus(Path(corpus_dir), files)
        first: dict[str, CorpusFile] = {}
        for f in files:
            first.setdefault(f.sha256, f)
        unique = list(first.values())
        rows = [{"doc_id": f.doc_id, "path": str(f.path)} for f in unique]
        parsed: dict[str, dict[str, str]] = {}
        if rows:
            dataset = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows) // PARSE_BATCH + 1, 64)))
            dataset = dataset.map_batches(
                _parse_batch,
                fn_kwargs={"settings_json": _settings_json(settings)},
                batch_size=PARSE_BATCH,
                batch_format="numpy",
            )
            parsed = {str(r["doc_id"]): r for r in dataset.take_all()}
        chunked: dict[str, list[Chunk]] = {}
        articles = {}
        for f in unique:
            row = parsed[f.doc_id]
            if row["error"]:
                continue
            article = _article_from_json(json.loads(row["article"]))
            articles[f.doc_id] = article
        # The same decisions, in the same file order, as ``parse_corpus``.
        seen: dict[str, str] = {}
        for f in files:
            if f.sha256 in seen:
                corpus.skipped[f.doc_id] = {"sha256": f.sha256, "reason": f"duplicate of {seen[f.sha256]}"}
                continue
            origin = first[f.sha256]
            if origin.doc_id not in articles:
                corpus.skipped[f.doc_id] = {"sha256": f.sha256, "reason": str(parsed[origin.doc_id]["error"])}
                continue
            seen[f.sha256] = f.doc_id
            article = articles[f.doc_id]
            corpus.articles.append(article)
            chunked[f.doc_id] = [
                Chunk(
                    chunk_id=d["id"],
                    doc_id=d["doc"],
                    paragraph=int(d["p"]),
                    kind=d["kind"],
                    text=d["text"],
                    embed_text=d["embed"],
                )
                for d in json.loads(parsed[f.doc_id]["chunks"])
            ]
        return require_articles(corpus), chunked

    def encode(self, embedder: VectorEmbeddings, texts: list[str], progress: bool | None) -> np.ndarray:
        if not texts:
            return np.zeros((0, embedder.dimension), dtype=np.float32)
        ray = self._init()
        settings = self.settings or Settings()
        dataset = ray.data.from_items(
            [{"row": i, "text": t} for i, t in enumerate(texts)],
            override_num_blocks=max(self.workers, min(len(texts) // EMBED_BATCH + 1, 256)),
        )
        dataset = dataset.map_batches(
            _Embedder,
            fn_constructor_kwargs={"settings_json": _settings_json(settings)},
            batch_size=EMBED_BATCH,
            compute=ray.data.ActorPoolStrategy(size=self.workers),
            num_cpus=1,
            batch_format="numpy",
        )
        out = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
        for batch in dataset.iter_batches(batch_size=EMBED_BATCH, batch_format="numpy"):
            out[np.asarray(batch["row"], dtype=np.int64)] = np.stack(batch["vector"])
        return out


def build_with_ray(
    corpus_dir: str | Path,
    index_dir: str | Path,
    settings: Settings | None = None,
    *,
    address: str | None = None,
    workers: int = 2,
    rebuild: bool = False,
) -> Any:
    """Build (incrementally) the index of ``corpus_dir`` in ``index_dir`` on Ray; the ``BuildReport``."""
    settings = settings or Settings()
    engine = RayEngine(address, workers, settings=settings)
    try:
        return IndexStore(index_dir, settings).build(corpus_dir, rebuild=rebuild, progress=False, engine=engine)
    finally:
        engine.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.ray_build", description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--index", type=Path, default=None)
    parser.add_argument("--address", default=None, help="a Ray cluster (default: a local runtime)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="embedding actors")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args(argv)
    settings = Settings()
    try:
        report = build_with_ray(
            args.corpus or settings.corpus_dir,
            args.index or settings.index_dir,
            settings,
            address=args.address,
            workers=args.workers,
            rebuild=args.rebuild,
        )
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
