"""The reader: a small cross-encoder that reads a question and a passage together.

It scores how well a passage (a paragraph, or one sentence) answers the question, as a logit; the
searcher uses it to reorder the hybrid search's top candidates, and the answer stage reads its
probability. The model is the project's own (``rag train-reader``, see ``rag.reader_training``),
shipped in the repository at ``models/reader`` in fp16 with a sha256 list that is checked at load.

>>> passage_tokens = reader_passage("Spectre (2015 film)", "Spectre is a 2015 spy film.").split()
>>> passage_tokens[:2]
['Spectre', '(2015']
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import RagError
from rag.files import HASH_LIST, hash_list_problems, is_hash_list
from rag.settings import Settings

#: The file (inside the model folder) that lists each file's sha256.
READER_HASHES = HASH_LIST
#: The model card written next to the weights.
READER_CARD = "README.md"


class ReaderError(RagError):
    """The reader model is missing, altered or unreadable."""


def reader_passage(title: str, text: str) -> str:
    """What the reader reads for a passage: the article's title on a line, then the passage."""
    return f"{title}\n{text}" if title else text


def verify_reader(model_dir: Path) -> dict[str, str]:
    """Check every file listed in the model folder's sha256 list; return the list."""
    listing = model_dir / READER_HASHES
    if not listing.is_file():
        raise ReaderError(f"no reader model at {model_dir} (missing {READER_HASHES}); run `rag train-reader`")
    try:
        hashes: dict[str, str] = json.loads(listing.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ReaderError(f"{listing} is not valid JSON: {exc}") from exc
    if not is_hash_list(hashes):
        raise ReaderError(f"{listing} is not a list of file names and sha256 digests; retrain or restore it")
    problems = hash_list_problems(model_dir)
    if problems:
        raise ReaderError(f"reader model file {problems[0]}; retrain or restore it")
    return hashes


class Reader:
    """Scores (question, passage) pairs with the trained cross-encoder, on the CPU.

    Loaded lazily and once. ``quantize`` makes the linear layers int8 (faster, but a passage's
    score then depends on the batch it is read in; see ``Settings.reader_quantize``).
    """

    def __init__(self, model_dir: Path | str, *, quantize: bool = False, max_length: int = 256,
                 batch_size: int = 32) -> None:
        self.model_dir = Path(model_dir)
        self.quantize = quantize
        self.max_length = max_length
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()
        self.fingerprint = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> Reader | None:
        """The reader the settings ask for, or None when there is none (``reader_model`` empty).
        The searcher reads with it only when ``weight_reader`` > 0; the answer stage always does."""
        if not settings.reader_model:
            return None
        return cls(settings.reader_model, quantize=settings.reader_quantize, max_length=settings.reader_max_length)

    def available(self) -> bool:
        return (self.model_dir / READER_HASHES).is_file()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                hashes = verify_reader(self.model_dir)
                import torch
                from sentence_transformers import CrossEncoder

                try:
                    # Stored in fp16 (half the size); computed in fp32, which the CPU does faster.
                    model = CrossEncoder(str(self.model_dir), device="cpu", max_length=self.max_length,
                                         local_files_only=True, model_kwargs={"dtype": torch.float32})
                except (OSError, ValueError) as exc:
                    raise ReaderError(f"could not load the reader from {self.model_dir}: {exc}") from exc
                model.eval()
                if self.quantize:
                    with warnings.catch_warnings():  # torch's notice that eager quantization moves to torchao
                        warnings.simplefilter("ignore")
                        torch.ao.quantization.quantize_dynamic(
                            model.model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
                        )
                self.fingerprint = hashes.get("model.safetensors", "")[:16]
                self._model = model
        return self._model

    def score(self, question: str, passages: Sequence[str]) -> np.ndarray:
        """The reader's logit for each passage (higher: answers the question better)."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        model = self._load()
        import torch

        # Sorted by length so each batch pads little.
        order = sorted(range(len(passages)), key=lambda i: len(passages[i]))
        scores = model.predict(
            [(question, passages[i]) for i in order], batch_size=self.batch_size, show_progress_bar=False,
            activation_fn=torch.nn.Identity(), convert_to_numpy=True,  # logits (None would mean sigmoid)
        )
        out = np.empty(len(passages), dtype=np.float32)
        out[order] = np.asarray(scores, dtype=np.float32).ravel()
        return out

    def probability(self, question: str, passages: Sequence[str]) -> np.ndarray:
        """The reader's probability that each passage answers the question."""
        return 1.0 / (1.0 + np.exp(-self.score(question, passages)))
