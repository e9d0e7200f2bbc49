"""The one definition of a relevant (gold) paragraph, shared by the eval and the weight tuner.

Each gold quote is located in its corpus file (decoded the way the parser reads it, so offsets
agree); the gold paragraphs are those of the indexed article that hold the quote's span, as
``evals.metrics.relevant_paragraphs`` decides (a quote crossing a paragraph break: each paragraph
holding a substantial share of it). A quote in the title or dateline has no gold paragraph; an
item is *scored* on retrieval only when it is answerable and has at least one gold paragraph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from evals import metrics as M
from evals.gold import GoldItem

if TYPE_CHECKING:
    from rag.domain import Article
    from rag.knowledge import KnowledgeBase


def read_source(path: Path) -> str:
    """A corpus file decoded the way the parser does (UTF-8, newlines untouched), so offsets agree."""
    return path.read_bytes().decode("utf-8")


def paragraph_spans(article: Article) -> list[tuple[int, int, int]]:
    """``(number, start, end)`` of each paragraph of a parsed article (offsets into its file)."""
    return [(p.number, p.start, p.end) for p in article.paragraphs]


def gold_paragraphs(
    item: GoldItem, kb: KnowledgeBase, corpus_dir: Path, cache: dict[str, str]
) -> tuple[set[M.ParaId], list[str]]:
    """The item's gold paragraphs and notes on quotes that map to no paragraph."""
    gold: set[M.ParaId] = set()
    notes: list[str] = []
    for src in item.sources:
        article = kb.article(src.file)
        if article is None:
            notes.append(f"{src.file}: not in the index")
            continue
        if src.file not in cache:
            cache[src.file] = read_source(corpus_dir / src.file)
        span = M.locate_quote(cache[src.file], src.quote)
        if span is None:  # e.g. CRLF files: fall back to the paragraph texts
            found = {p.number for p in article.paragraphs if src.quote in p.text}
            if not found:
                notes.append(f"{src.file}: quote not found: {src.quote[:60]!r}")
            gold |= {(src.file, n) for n in found}
            continue
        numbers = M.relevant_paragraphs(span, paragraph_spans(article))
        if not numbers:
            notes.append(f"{src.file}: quote outside every paragraph (title/dateline): {src.quote[:60]!r}")
        gold |= {(src.file, n) for n in numbers}
    return gold, notes


@dataclass
class GoldParagraphs:
    """Gold paragraphs of every item of a gold set, and notes on quotes that map to none."""

    paragraphs: dict[str, set[M.ParaId]]
    notes: dict[str, list[str]] = field(default_factory=dict)

    def __getitem__(self, item_id: str) -> set[M.ParaId]:
        return self.paragraphs[item_id]

    def scored(self, item: GoldItem) -> bool:
        """Whether retrieval is scored on ``item``: answerable, with at least one gold paragraph."""
        return item.answerable and bool(self.paragraphs[item.id])

    def excluded(self, items: Sequence[GoldItem]) -> list[str]:
        """Ids of answerable items left out of retrieval scores (no gold paragraph), sorted."""
        return sorted(i.id for i in items if i.answerable and not self.paragraphs[i.id])


def map_gold(items: Sequence[GoldItem], kb: KnowledgeBase, corpus_dir: Path) -> GoldParagraphs:
    """The gold paragraphs of ``items`` in ``kb``'s index (quotes read from ``corpus_dir``)."""
    cache: dict[str, str] = {}
    gold = GoldParagraphs({})
    for item in items:
        gold.paragraphs[item.id], item_notes = gold_paragraphs(item, kb, corpus_dir, cache)
        if item_notes:
            gold.notes[item.id] = item_notes
    return gold
