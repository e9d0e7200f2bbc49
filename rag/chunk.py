"""Paragraph-aware chunking: every chunk belongs to exactly one paragraph.

For each paragraph the index holds
- one ``paragraph`` chunk (or overlapping ``window`` chunks when the paragraph is longer than
  ``max_chunk_chars``, so the embedder never silently truncates it), and
- optionally one ``sentence`` chunk per sentence, so a one-line answer buried in a long
  paragraph can still match a short question.
The embedded text is prefixed with the article title and date: questions usually name their
event ("the HomeNet workshop"), and that name often appears only in the title.
"""

from __future__ import annotations

from rag.domain import Article, Chunk, Paragraph
from rag.sentences import sentence_spans
from rag.settings import Settings


def context_header(article: Article) -> str:
    return f"{article.title} ({article.date})" if article.date else article.title


class ParagraphChunker:
    """Splits parsed articles into chunks that map back to one paragraph each.

    >>> from rag.parse import parse_text
    >>> from rag.settings import Settings
    >>> art = parse_text("a.txt", "Title\\n\\nOne sentence. Another one here.")
    >>> [c.kind for c in ParagraphChunker(Settings()).chunk(art)]
    ['paragraph', 'sentence', 'sentence']
    """

    def __init__(self, settings: Settings) -> None:
        self.max_chars = settings.max_chunk_chars
        self.title_header = settings.chunk_title_header
        self.sentence_chunks = settings.sentence_chunks
        self.sentence_title_header = settings.sentence_title_header

    def settings_fingerprint(self) -> dict[str, object]:
        """What the manifest records: a change here means every chunk must be rebuilt."""
        return {
            "chunker": "paragraph-v2",
            "max_chunk_chars": self.max_chars,
            "title_header": self.title_header,
            "sentence_chunks": self.sentence_chunks,
            "sentence_title_header": self.sentence_title_header,
        }

    def chunk(self, article: Article) -> list[Chunk]:
        header = context_header(article) if self.title_header else ""
        chunks: list[Chunk] = []
        for para in article.paragraphs:
            chunks.extend(self._paragraph_chunks(article, para, header))
        return chunks

    def _paragraph_chunks(self, article: Article, para: Paragraph, header: str) -> list[Chunk]:
        def make(kind: str, i: int, text: str) -> Chunk:
            # Sentences are embedded bare: with the title in front, every sentence of an article
            # looks alike to the embedder and the one that answers no longer stands out.
            with_header = header and (kind != "sentence" or self.sentence_title_header)
            embed_text = f"{header}\n{text}" if with_header else text
            return Chunk(
                chunk_id=f"{article.doc_id}#p{para.number}.{kind[0]}{i}",
                doc_id=article.doc_id,
                paragraph=para.number,
                kind=kind,  # type: ignore[arg-type]
                text=text,
                embed_text=embed_text,
            )

        spans = sentence_spans(para.text)
        out: list[Chunk] = []
        if len(para.text) <= self.max_chars:
            out.append(make("paragraph", 0, para.text))
        else:
            for i, window in enumerate(self._windows(para.text, spans)):
                out.append(make("window", i, window))
        if self.sentence_chunks and len(spans) > 1:
            for i, (start, end) in enumerate(spans):
                out.append(make("sentence", i, para.text[start:end][: self.max_chars]))
        return out

    def _windows(self, text: str, spans: list[tuple[int, int]]) -> list[str]:
        """Sentence-aligned windows of at most ``max_chars``, overlapping by one sentence.

        A sentence longer than ``max_chars`` is first cut at word boundaries, so the windows
        together always cover the whole paragraph.
        """
        spans = [piece for start, end in (spans or [(0, len(text))]) for piece in self._split_long(text, start, end)]
        windows: list[str] = []
        i = 0
        while i < len(spans):
            start = spans[i][0]
            j = i
            while j + 1 < len(spans) and spans[j + 1][1] - start <= self.max_chars:
                j += 1
            windows.append(text[start : spans[j][1]][: self.max_chars])
            if j + 1 >= len(spans):
                break
            i = j if j > i else j + 1  # overlap one sentence, but always advance
        return windows

    def _split_long(self, text: str, start: int, end: int) -> list[tuple[int, int]]:
        """``text[start:end]`` as pieces of at most ``max_chars``, cut at a space when there is one."""
        pieces: list[tuple[int, int]] = []
        while end - start > self.max_chars:
            cut = text.rfind(" ", start + 1, start + self.max_chars + 1)
            if cut <= start:
                cut = start + self.max_chars
            stop = cut
            while stop > start and text[stop - 1].isspace():
                stop -= 1
            pieces.append((start, stop))
            start = cut
            while start < end and text[start].isspace():
                start += 1
        if end > start:
            pieces.append((start, end))
        return pieces
