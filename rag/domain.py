"""Small typed domain objects that flow through the pipeline.

``Article`` → ``Paragraph`` (the unit of citation) → ``Chunk`` (what is embedded and matched;
always maps back to one paragraph) → ``Hit`` (a ranked paragraph) → ``Citation`` → ``Answer``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ChunkKind = Literal["paragraph", "sentence", "window"]

#: The number a citation of an article's dateline carries (``Article.dateline``): not content,
#: so not one of the article's numbered paragraphs (those start at 1).
DATELINE = 0


def paragraph_label(number: int) -> str:
    """How a citation's place in its article is shown: "paragraph 3", or "dateline"."""
    return "dateline" if number == DATELINE else f"paragraph {number}"

#: How an answer's text points at its citations: "[n]" after the claim, n = ``Citation.n``.
CITATION_MARKER = re.compile(r"\[(\d{1,3})\]")


@dataclass(frozen=True, slots=True)
class Paragraph:
    """One paragraph of an article: ``source_text[start:end] == text``."""

    doc_id: str
    number: int  # 1-based, stable for the same file
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Article:
    """A parsed article: its title, publication date and numbered paragraphs."""

    doc_id: str  # file name relative to the corpus folder
    title: str
    date: str | None  # ISO date, or None when the text supports none
    paragraphs: tuple[Paragraph, ...]
    sha256: str  # of the file's bytes
    #: The line the publication date was read from ("News | 01 April 2022", or a front-matter
    #: ``date:`` line), as paragraph number 0: an exact slice of the file, so an answer about when
    #: the article was published can cite it. None when ``date`` was only inferred from the text
    #: (the first date it mentions, often an event's) or there is none.
    dateline: Paragraph | None = None

    def paragraph(self, number: int) -> Paragraph:
        """Paragraph ``number`` (1-based), or the dateline for ``DATELINE`` (0) when there is one."""
        if number == DATELINE and self.dateline is not None:
            return self.dateline
        if number < 1:
            raise IndexError(f"{self.doc_id} has no paragraph {number}")
        return self.paragraphs[number - 1]


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of text that is embedded and matched. It always belongs to one paragraph."""

    chunk_id: str
    doc_id: str
    paragraph: int
    kind: ChunkKind
    text: str  # the paragraph (or sentence/window) text itself
    embed_text: str  # what the embedder sees: text plus title/date context


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved paragraph, best first in a result list."""

    doc_id: str
    title: str
    date: str | None
    paragraph: int
    text: str
    start: int
    end: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Citation:
    """A numbered source of an answer: the paragraph's fields plus the supporting quote.

    ``quote`` is an exact substring of ``text`` (the paragraph). ``support`` is the reader's
    probability that the quote states the answer to the question (None when no reader scored it).
    """

    n: int
    doc_id: str
    title: str
    date: str | None
    paragraph: int
    text: str
    start: int
    end: int
    score: float
    quote: str
    support: float | None = None

    @classmethod
    def from_hit(cls, hit: Hit, n: int, quote: str, support: float | None = None) -> Citation:
        if quote not in hit.text:
            raise ValueError("a citation's quote must be an exact substring of its paragraph")
        return cls(n=n, quote=quote, support=support, **hit.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Grounding = Literal["stated", "closest", "none"]


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer whose claims end with ``[n]`` markers pointing into ``citations``.

    ``confidence``: the calibrated probability that the answer is right (``rag.confidence``),
    also set on an abstention (how close the best candidate came). ``closest``: on an
    abstention, the best passage found, which may not answer the question; shown as such.
    ``grounding`` says which of the three the user is looking at.
    """

    question: str
    text: str
    citations: tuple[Citation, ...] = ()
    abstained: bool = False
    mode: str = "extractive"
    standalone_question: str | None = None  # the rewritten question, when history was used
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    confidence: float | None = None
    closest: Citation | None = None

    @property
    def grounding(self) -> Grounding:
        """``stated``: the cited passages state the answer; ``closest``: abstained, with the
        nearest passage; ``none``: abstained with nothing close."""
        if not self.abstained:
            return "stated"
        return "closest" if self.closest is not None else "none"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["citations"] = [c.to_dict() for c in self.citations]
        data["closest"] = self.closest.to_dict() if self.closest is not None else None
        data["grounding"] = self.grounding
        return data
