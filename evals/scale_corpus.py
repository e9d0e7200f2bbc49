"""A realistic large corpus for the scale benchmarks: real sentences recombined, with needle questions.

The earlier scale corpus was template word salad: its paragraphs were near-ties of each other, so
approximate search looked worse than it is and the lexical signals had nothing to tell apart.
This one is built from real prose:

- **Sentences**: every sentence of the seeds (five ILO news articles) and of the ten SQuAD 2.0
  Wikipedia articles in ``../shared/datasets/squad2-train-articles/`` (about 4,000 sentences on
  15 subjects).
- **Articles**: article ``i`` is about source ``i mod 15``: its title is that source's title, a
  date, and 10 paragraphs of 2-5 *consecutive* sentences of the source starting at a random
  place, so a paragraph reads as prose about one subject and neighbours are topical rather than
  identical. Deterministic (``random.Random`` seeded by the article number).
- **Needles**: answerable SQuAD questions (real questions written by people). The sentence holding
  each one's answer is taken out of the shared pool and planted in exactly one paragraph of one
  article of its own subject, so the paragraph that answers is known, while the rest of the
  question's context (same names, same subject) is spread over thousands of other paragraphs:
  hard negatives.

Embedding 100,000 paragraphs costs about an hour on 2 cores (``scale.json``), so the benchmark
can embed the way the corpus is made (``ComposedEmbeddings``): every distinct sentence and title
line is embedded once with the real model (cached under ``evals/results/tmp/``), and a chunk's
vector is the normalized sum of its pieces' vectors. Sentence chunks then are exactly the
model's vectors; a paragraph's vector is an approximation of the model's, whose agreement with
the real one is measured (``compare_with_model``) and reported with every result.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.embed_base import VectorEmbeddings, unit_rows
from rag.lexicon import MONTH_NAMES
from rag.sentences import sentence_spans

REPO_ROOT = Path(__file__).resolve().parent.parent
SEEDS_DIR = REPO_ROOT / "seeds"
SQUAD_JSON = REPO_ROOT.parent / "shared" / "datasets" / "squad2-train-articles" / "squad2-train-10-articles.json"
PARAGRAPHS_PER_ARTICLE = 10
MIN_SENTENCE_CHARS = 25


@dataclass(frozen=True)
class Source:
    """One real article whose sentences the generated articles reuse."""

    title: str
    sentences: tuple[str, ...]


@dataclass(frozen=True)
class Needle:
    """A real question, the sentence that answers it, and the subject it belongs to."""

    number: int
    question: str
    answer: str
    sentence: str
    source: int


def _sentences(text: str) -> list[str]:
    return [s for a, b in sentence_spans(text) if len(s := text[a:b].strip()) >= MIN_SENTENCE_CHARS]


def load_sources(seeds_dir: Path = SEEDS_DIR, squad_json: Path = SQUAD_JSON) -> tuple[list[Source], list[Needle]]:
    """The 15 sources (seeds first, then the SQuAD articles) and every usable needle, in file order.

    ``ScaleCorpus.make`` takes the chosen needles' sentences out of their sources' pools.
    """
    from rag.corpus import parse_corpus, scan_corpus
    from rag.settings import Settings

    settings = Settings()
    corpus = parse_corpus(seeds_dir, scan_corpus(seeds_dir, settings), settings)
    sources: list[tuple[str, list[str]]] = [
        (a.title, [s for p in a.paragraphs for s in _sentences(p.text)]) for a in corpus.articles
    ]
    needles: list[Needle] = []
    used: set[str] = set()
    data = json.loads(squad_json.read_text(encoding="utf-8"))["data"]
    for article in data:
        index = len(sources)
        sentences: list[str] = []
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            spans = [(a, b) for a, b in sentence_spans(context) if b - a >= MIN_SENTENCE_CHARS]
            sentences += [context[a:b] for a, b in spans]
            for qa in paragraph["qas"]:
                if qa.get("is_impossible") or not qa["answers"]:
                    continue
                start = qa["answers"][0]["answer_start"]
                span = next(((a, b) for a, b in spans if a <= start < b), None)
                if span is None or context[span[0] : span[1]] in used:
                    continue  # one question per answer sentence
                used.add(context[span[0] : span[1]])
                needles.append(
                    Needle(
                        len(needles),
                        qa["question"].strip(),
                        qa["answers"][0]["text"],
                        context[span[0] : span[1]],
                        index,
                    )
                )
        sources.append((article["title"].replace("_", " "), sentences))
    return [Source(title, tuple(dict.fromkeys(sents))) for title, sents in sources], needles


def pick_needles(needles: Sequence[Needle], n: int) -> list[Needle]:
    """``n`` needles spread evenly over the list (so over the subjects), deterministic."""
    if n >= len(needles):
        return list(needles)
    step = len(needles) / n
    return [needles[int(i * step)] for i in range(n)]


@dataclass
class ScaleCorpus:
    """The generated corpus: ``article(i)`` is the text of article ``i``; needles sit at known places."""

    sources: list[Source]
    n_articles: int
    needles: list[Needle]
    #: article number -> (paragraph index 0-9, the needle) planted there
    placements: dict[int, tuple[int, Needle]]

    @classmethod
    def make(cls, n_paragraphs: int, n_needles: int = 200) -> ScaleCorpus:
        sources, all_needles = load_sources()
        n_articles = max(len(sources), n_paragraphs // PARAGRAPHS_PER_ARTICLE)
        needles = pick_needles(all_needles, n_needles)
        planted = {n.sentence for n in needles}  # each sits in its one paragraph only
        sources = [Source(s.title, tuple(x for x in s.sentences if x not in planted)) for s in sources]
        placements: dict[int, tuple[int, Needle]] = {}
        per_source: dict[int, int] = {}
        n_src = len(sources)
        for needle in needles:
            j = per_source.get(needle.source, 0)
            per_source[needle.source] = j + 1
            # The j-th needle of a subject goes to an article of that subject, spread over the corpus.
            slots = max(1, (n_articles - needle.source + n_src - 1) // n_src)
            article = needle.source + n_src * ((j * 7919) % slots)
            while article in placements:
                article = (article + n_src) % (n_src * slots)
            placements[article] = (needle.number % PARAGRAPHS_PER_ARTICLE, needle)
        return cls(sources, n_articles, needles, placements)

    def doc_id(self, i: int) -> str:
        return f"{i // 1000:04d}/article_{i:07d}.txt"

    def article(self, i: int) -> str:
        source = self.sources[i % len(self.sources)]
        rng = random.Random(1_000_003 * i + 17)
        # The first of a month: the "title (date)" header is one piece to embed, so 1,800 of them at most.
        date = f"01 {MONTH_NAMES[rng.randrange(12)]} {rng.randint(2015, 2024)}"
        sents = source.sentences
        paragraphs = []
        for _ in range(PARAGRAPHS_PER_ARTICLE):
            start, count = rng.randrange(len(sents)), rng.randint(2, 5)
            paragraphs.append(" ".join(sents[(start + k) % len(sents)] for k in range(count)))
        if i in self.placements:
            j, needle = self.placements[i]
            paragraphs[j] = f"{paragraphs[j]} {needle.sentence}"
        return f"{source.title}\n\nNews | {date}\n" + "\n\n".join(paragraphs) + "\n"

    def write(self, folder: Path) -> None:
        """Write every article under ``folder`` (1,000 files per subfolder); skips a complete folder."""
        done = folder / ".complete"
        if done.exists() and done.read_text(encoding="utf-8") == str(self.n_articles):
            return
        for i in range(self.n_articles):
            path = folder / self.doc_id(i)
            if i % 1000 == 0:
                path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.article(i), encoding="utf-8")
        done.write_text(str(self.n_articles), encoding="utf-8")

    def needle_targets(self) -> dict[int, tuple[str, str]]:
        """needle number -> (doc_id, the planted sentence)."""
        return {needle.number: (self.doc_id(a), needle.sentence) for a, (_, needle) in self.placements.items()}


# --- embedding by composition ---------------------------------------------------------------


def pieces(text: str) -> Iterator[str]:
    """The units a chunk text is composed of: each line's sentences (a title header is one line)."""
    for line in text.split("\n"):
        spans = sentence_spans(line)
        if not spans and line.strip():
            yield line.strip()
        for a, b in spans:
            yield line[a:b]


class ComposedEmbeddings(VectorEmbeddings):
    """Unit vectors made from the real model's vectors of each piece (sentence or title line).

    Each distinct piece is embedded once by ``model`` and kept in ``cache_dir`` (``pieces.jsonl``
    and ``vectors-<n>.npy``, never pickle); a text's vector is the normalized sum of its pieces'.
    Questions are embedded by the model itself.
    """

    backend = "composed"

    def __init__(self, model: VectorEmbeddings, cache_dir: Path) -> None:
        super().__init__()
        self.model = model
        # One cache per vector space: pieces embedded by another model (the default changed from the
        # packaged MiniLM to models/embedder-qa) must never be summed with this one's questions.
        self.cache_dir = cache_dir / str(model.describe().get("fingerprint", "model"))
        self._lock = threading.Lock()
        self._row: dict[str, int] = {}
        self._vectors = np.zeros((0, model.dimension), dtype=np.float32)
        self.embedded = 0  # pieces embedded by the model in this process
        self._load()

    def _load(self) -> None:
        keys = self.cache_dir / "pieces.jsonl"
        if not keys.exists():
            return
        texts = [json.loads(line) for line in keys.read_text(encoding="utf-8").splitlines() if line]
        stored = sorted(self.cache_dir.glob("vectors-*.npy"), key=lambda p: int(p.stem.split("-")[1]))
        if not stored:
            return
        vectors = np.load(stored[-1])
        n = min(len(texts), len(vectors))
        self._vectors = np.ascontiguousarray(vectors[:n])
        self._row = {t: i for i, t in enumerate(texts[:n])}

    def _save(self) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        texts = sorted(self._row, key=self._row.__getitem__)
        (self.cache_dir / "pieces.jsonl").write_text(
            "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8"
        )
        np.save(self.cache_dir / f"vectors-{len(texts)}.npy", self._vectors)
        for old in self.cache_dir.glob("vectors-*.npy"):
            if old.name != f"vectors-{len(texts)}.npy":
                old.unlink()

    @property
    def dimension(self) -> int:
        return self.model.dimension

    def describe(self) -> dict[str, Any]:
        meta = dict(self.model.describe())
        meta["fingerprint"] = "composed-" + str(meta["fingerprint"])
        return meta

    def piece_vectors(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._row))
            if missing:
                new = self.model.encode(missing, progress=len(missing) > 2000)
                self._row.update({t: len(self._row) + i for i, t in enumerate(missing)})
                self._vectors = np.concatenate([self._vectors, new])
                self.embedded += len(missing)
                self._save()
            return self._vectors[[self._row[t] for t in texts]]

    def encode(self, texts: list[str], *, progress: bool | None = None) -> np.ndarray:
        parts = [list(pieces(t)) or [t] for t in texts]
        flat = [p for ps in parts for p in ps]
        vectors = self.piece_vectors(flat)
        owner = np.repeat(np.arange(len(texts)), [len(ps) for ps in parts])
        sums = np.zeros((len(texts), self.dimension), dtype=np.float32)
        np.add.at(sums, owner, vectors)
        return unit_rows(sums)

    def _encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, progress=False)


def compare_with_model(composed: ComposedEmbeddings, texts: Sequence[str]) -> dict[str, float]:
    """How close composed vectors are to the model's own on the same texts (mean/p5 cosine)."""
    real = composed.model.encode(list(texts), progress=False)
    made = composed.encode(list(texts))
    cos = np.sum(real * made, axis=1)
    return {
        "texts": len(texts),
        "mean_cosine": round(float(cos.mean()), 4),
        "p5_cosine": round(float(np.percentile(cos, 5)), 4),
    }
