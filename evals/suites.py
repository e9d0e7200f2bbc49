"""Named evaluation suites: a gold file, its corpus and an index folder of its own.

Every setting is chosen on more than one corpus (the project's gold set and the shared SQuAD 2.0
articles, written by other people about other things), so ``rag eval --suite gold,squad2`` and
``python -m evals.tune --suite gold,squad2`` measure both in one command.

>>> sorted(SUITES)
['gold', 'squad2']
>>> [s.name for s in parse_suites("gold, squad2")]
['gold', 'squad2']
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from evals.gold import DEFAULT_CORPUS, DEFAULT_GOLD, REPO_ROOT
from rag.settings import Settings

#: Backends whose vectors are MiniLM's (ONNX fp32 shares torch's fingerprint): they share the
#: suites' index folders. Any other backend gets folders of its own, so measuring it never
#: rebuilds the project's ``index/`` (nor the next default run rebuilds it back).
SHARED_INDEX_BACKENDS = frozenset({"sentence-transformers", "onnx"})

#: The SQuAD 2.0 articles shared with the project (``../shared/datasets/squad2-train-articles``).
SQUAD2_DIR = REPO_ROOT.parent / "shared" / "datasets" / "squad2-train-articles"


@dataclass(frozen=True)
class Suite:
    name: str
    gold: Path
    corpus: Path
    #: An index folder per corpus, so switching suites never rebuilds another corpus's index.
    index: Path
    description: str

    def available(self) -> bool:
        return self.gold.is_file() and self.corpus.is_dir()

    def for_backend(self, backend: str) -> Suite:
        """This suite with the index folder of ``backend``'s vectors.

        >>> SUITES["gold"].for_backend("gemma").index.name
        'index-gold-gemma'
        """
        if backend in SHARED_INDEX_BACKENDS:
            return self
        return replace(self, index=REPO_ROOT / "evals" / "results" / "tmp" / f"index-{self.name}-{backend}")


SUITES: dict[str, Suite] = {
    "gold": Suite("gold", DEFAULT_GOLD, DEFAULT_CORPUS, REPO_ROOT / "index", "the project's gold set on seeds/"),
    "squad2": Suite(
        "squad2",
        SQUAD2_DIR / "gold.jsonl",
        SQUAD2_DIR / "corpus",
        REPO_ROOT / "evals" / "results" / "tmp" / "index-squad2",
        "two SQuAD 2.0 Wikipedia articles, crowd questions (never trained on)",
    ),
}


def parse_suites(spec: str) -> list[Suite]:
    """``gold,squad2`` → the suites, in that order; ``all`` → every suite. Raises ValueError."""
    names = [n.strip().lower() for n in spec.split(",") if n.strip()]
    if names == ["all"]:
        names = list(SUITES)
    unknown = [n for n in names if n not in SUITES]
    if unknown or not names:
        raise ValueError(f"unknown suite {', '.join(unknown) or spec!r}: use {', '.join(SUITES)} or all")
    backend = Settings().embedding_backend
    suites = [SUITES[n].for_backend(backend) for n in dict.fromkeys(names)]
    missing = [s for s in suites if not s.available()]
    if missing:
        raise ValueError(
            "suite data not found: " + "; ".join(f"{s.name} needs {s.gold} and {s.corpus}" for s in missing)
        )
    return suites
