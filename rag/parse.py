"""Parse an article file into title, date and numbered paragraphs with exact character offsets.

The offsets index the file's decoded text, so ``text[p.start:p.end] == p.text`` for every
paragraph: citations can always point at the exact place in the source.

>>> from rag.parse import parse_text
>>> art = parse_text("a.txt", "My title\\n\\nLead line.\\n\\nNews | 01 April 2022\\nBody one.\\n\\nBody two.")
>>> art.title, art.date, [p.text for p in art.paragraphs]
('My title', '2022-04-01', ['Lead line.', 'Body one.', 'Body two.'])
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from rag.domain import DATELINE, Article, Paragraph
from rag.errors import CorpusError
from rag.lexicon import MONTH_NUMBERS
from rag.sentences import is_list_item, sentences

_MONTH = r"(?P<month>" + "|".join(sorted(MONTH_NUMBERS, key=len, reverse=True)) + r")\.?"
# "01 April 2022", "18-19 June 2024", "2nd November 2022"
_DAY_MONTH_YEAR = re.compile(
    r"\b(?P<day>\d{1,2})(?:st|nd|rd|th)?(?:\s*[-–]\s*\d{1,2}(?:st|nd|rd|th)?)?\s+" + _MONTH
    + r",?\s+(?P<year>(?:19|20)\d\d)\b",
    re.IGNORECASE,
)
# "March 30, 2022", "October 6 and 7, 2022", "March 29-31, 2021"
_MONTH_DAY_YEAR = re.compile(
    r"\b" + _MONTH + r"\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?"
    r"(?:\s*(?:[-–]|and|to)\s*\d{1,2})?,?\s+(?P<year>(?:19|20)\d\d)\b",
    re.IGNORECASE,
)
_ISO_DATE = re.compile(r"\b(?P<year>(?:19|20)\d\d)-(?P<month>\d\d)-(?P<day>\d\d)\b")
# A dateline such as "News | 01 April 2022" or "Press release | 3 May 2023".
_DATELINE = re.compile(r"^\s*(?:[A-Za-z][\w ]{0,40}\|\s*)?(?P<date>.{6,40}?)\s*$")
# Page furniture copied along with articles: never content, never a paragraph.
_DEBRIS = re.compile(
    r"^\s*(?:you are here|picture credits?\b.*|photo(?:graph)? credits?\b.*|image:.*|share(?: this)?"
    r"|print|tweet|email|skip to (?:main )?content|back to top|read more|advertisement"
    r"|related (?:articles|content|news)|home\s*[>›].*)\s*$",
    re.IGNORECASE,
)
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(?P<body>.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
_TITLE_MAX_CHARS = 200


@dataclass(frozen=True, slots=True)
class _Block:
    """A run of non-blank lines: ``text[start:end]``, whitespace trimmed."""

    start: int
    end: int


def parse_file(path: Path, doc_id: str | None = None, max_bytes: int | None = None) -> Article:
    """Read and parse one article file (UTF-8; a clear ``CorpusError`` otherwise)."""
    doc_id = doc_id or path.name
    try:
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise CorpusError(f"{doc_id}: file is larger than {max_bytes} bytes; not an article?")
        data = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{doc_id}: cannot read the file ({exc.strerror or exc})") from exc
    return parse_bytes(doc_id, data)


def parse_bytes(doc_id: str, data: bytes) -> Article:
    """Parse an article file's bytes (UTF-8; a clear ``CorpusError`` otherwise)."""
    if b"\x00" in data[:8192]:
        raise CorpusError(f"{doc_id}: looks like a binary file, not a text article")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{doc_id}: not valid UTF-8 (byte {exc.start}); save the file as UTF-8"
        ) from exc
    return parse_text(doc_id, text, sha256=hashlib.sha256(data).hexdigest())


def parse_text(doc_id: str, text: str, sha256: str | None = None) -> Article:
    """Parse an article's text. Raises ``CorpusError`` when it holds no paragraph."""
    if sha256 is None:
        sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    meta_title, meta_date, dateline, body_start = _front_matter(text)
    blocks = _blocks(text, body_start)

    title: str | None = meta_title
    date_iso: str | None = meta_date
    paragraphs: list[_Block] = []
    for block in blocks:
        first_line = _first_line(text[block.start : block.end])
        # A Markdown file often repeats its front-matter title as a "# heading": not content.
        body_heading = meta_title is not None and _MD_HEADING.match(first_line) is not None
        if (title is None or body_heading) and not paragraphs and _looks_like_title(text, block):
            title = title if body_heading else _strip_heading(first_line)
            rest = _after_first_line(text, block)
            if rest is None:
                continue
            block = rest
        for piece, found in _split_datelines(text, block):
            if found is not None and date_iso is None:
                date_iso, dateline = found
            if piece is not None:
                paragraphs.append(piece)

    paragraphs = _merge_lists(text, paragraphs)
    if not paragraphs:
        raise CorpusError(f"{doc_id}: no paragraphs found (empty or only page furniture)")
    numbered = tuple(
        Paragraph(doc_id=doc_id, number=i, text=text[b.start : b.end], start=b.start, end=b.end)
        for i, b in enumerate(paragraphs, start=1)
    )
    if title is None:
        title = _derive_title(numbered[0].text)
    published = (
        None if dateline is None
        else Paragraph(doc_id=doc_id, number=DATELINE, text=text[dateline.start : dateline.end],
                       start=dateline.start, end=dateline.end)
    )
    if date_iso is None:
        date_iso = find_first_date(text)
    return Article(doc_id=doc_id, title=title, date=date_iso, paragraphs=numbered, sha256=sha256, dateline=published)


def parse_date(value: str) -> str | None:
    """An ISO date from a date expression ("01 April 2022", "March 30, 2022", "2022-04-01")."""
    for pattern in (_ISO_DATE, _DAY_MONTH_YEAR, _MONTH_DAY_YEAR):
        match = pattern.search(value)
        if match:
            iso = _to_iso(match)
            if iso:
                return iso
    return None


def find_first_date(text: str) -> str | None:
    """The earliest-placed full date mentioned in the text (the event date of an undated article)."""
    found: list[tuple[int, str]] = []
    for pattern in (_ISO_DATE, _DAY_MONTH_YEAR, _MONTH_DAY_YEAR):
        for match in pattern.finditer(text):
            iso = _to_iso(match)
            if iso:
                found.append((match.start(), iso))
    return min(found)[1] if found else None


def _to_iso(match: re.Match[str]) -> str | None:
    month_raw = match.group("month")
    month = int(month_raw) if month_raw.isdigit() else MONTH_NUMBERS.get(month_raw.lower().rstrip("."))
    try:
        return date(int(match.group("year")), month or 0, int(match.group("day"))).isoformat()
    except ValueError:
        return None


def _front_matter(text: str) -> tuple[str | None, str | None, _Block | None, int]:
    """Title, date and the date's line from Markdown front matter (``---`` YAML-ish block), if any."""
    offset = 1 if text.startswith("\ufeff") else 0
    match = _FRONT_MATTER.match(text, offset)
    if not match:
        return None, None, None, offset
    title = date_iso = None
    date_line: _Block | None = None
    pos = match.start("body")
    for line in match.group("body").splitlines(keepends=True):
        line_start, pos = pos, pos + len(line)
        key, _, value = line.partition(":")
        value = value.strip().strip("\"'")
        if key.strip().lower() == "title" and value:
            title = value
        elif key.strip().lower() in ("date", "published") and value and date_iso is None:
            date_iso = parse_date(value)
            date_line = _trim(text, line_start, pos) if date_iso else None
    return title, date_iso, date_line, match.end()


def _blocks(text: str, start: int) -> list[_Block]:
    """Blank-line separated blocks (lines of only spaces or NBSP count as blank), debris removed."""
    blocks: list[_Block] = []
    block_start: int | None = None
    block_end = start
    pos = start
    for line in text[start:].splitlines(keepends=True):
        line_start, pos = pos, pos + len(line)
        content = line.strip()
        if not content or _DEBRIS.match(content) or (content.startswith("\ufeff") and not content[1:].strip()):
            if block_start is not None:
                blocks.append(_trim(text, block_start, block_end))
                block_start = None
            continue
        if block_start is None:
            block_start = line_start
        block_end = line_start + len(line.rstrip("\r\n"))
    if block_start is not None:
        blocks.append(_trim(text, block_start, block_end))
    # A block without a letter or digit ("* * *", "---", "•") is a separator, not a paragraph.
    return [b for b in blocks if b.end > b.start and _has_alnum(text[b.start : b.end])]


def _has_alnum(value: str) -> bool:
    return any(ch.isalnum() for ch in value)


def _first_line(value: str) -> str:
    """The first line, with the same line breaks as ``str.splitlines`` (so CR-only files work)."""
    lines = value.splitlines()
    return lines[0] if lines else ""


def _trim(text: str, start: int, end: int) -> _Block:
    while start < end and (text[start].isspace() or text[start] == "\ufeff"):
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return _Block(start, end)


def _looks_like_title(text: str, block: _Block) -> bool:
    first_line = _first_line(text[block.start : block.end]).strip()
    if not _has_alnum(first_line):
        return False  # "#" or "***" is no title
    if _MD_HEADING.match(first_line):
        return True
    if len(first_line) > _TITLE_MAX_CHARS or is_list_item(first_line):
        return False
    # A title is a short line that is not a sentence of running text.
    return not first_line.endswith((".", ":", ";", ",")) and len(sentences(first_line)) <= 1


def _strip_heading(line: str) -> str:
    return _MD_HEADING.sub("", line).strip().strip("#").strip()


def _after_first_line(text: str, block: _Block) -> _Block | None:
    lines = text[block.start : block.end].splitlines(keepends=True)
    if len(lines) < 2:
        return None
    rest = _trim(text, block.start + len(lines[0]), block.end)
    return rest if rest.end > rest.start else None


def _split_datelines(text: str, block: _Block) -> list[tuple[_Block | None, tuple[str, _Block] | None]]:
    """Split a block around dateline lines ("News | 01 April 2022"), which are not content: each
    piece of content, or a dateline's ISO date with the line's span."""
    out: list[tuple[_Block | None, tuple[str, _Block] | None]] = []
    piece_start = block.start
    pos = block.start
    for line in text[block.start : block.end].splitlines(keepends=True):
        line_start, pos = pos, pos + len(line)
        iso = _dateline(line)
        if iso is None:
            continue
        if line_start > piece_start:
            out.append((_trim(text, piece_start, line_start), None))
        out.append((None, (iso, _trim(text, line_start, pos))))
        piece_start = min(pos, block.end)
    if piece_start < block.end:
        out.append((_trim(text, piece_start, block.end), None))
    return [(b, d) for b, d in out if b is None or (b.end > b.start and _has_alnum(text[b.start : b.end]))]


def _dateline(line: str) -> str | None:
    stripped = line.strip()
    if len(stripped) > 60:
        return None
    match = _DATELINE.match(stripped)
    if not match:
        return None
    iso = parse_date(match.group("date"))
    # Only a line that is essentially just a date (with an optional "Kind |" prefix) is a dateline.
    if iso and (("|" in stripped) or len(match.group("date")) <= 25):
        return iso
    return None


def _merge_lists(text: str, blocks: list[_Block]) -> list[_Block]:
    """Keep a bulleted list together, with the sentence that introduces it ("... aim to:")."""
    merged: list[_Block] = []
    for block in blocks:
        first_line = _first_line(text[block.start : block.end])
        if merged and is_list_item(first_line):
            previous = merged[-1]
            prev_text = text[previous.start : previous.end]
            prev_last_line = prev_text.splitlines()[-1]
            if prev_text.rstrip().endswith(":") or is_list_item(prev_last_line):
                merged[-1] = _Block(previous.start, block.end)
                continue
        merged.append(block)
    return merged


def _derive_title(first_paragraph: str) -> str:
    """For an article without a title line: its first sentence, shortened at a word boundary."""
    first = (sentences(first_paragraph) or [first_paragraph])[0].strip()
    # An event article often names its event in quotes: 'the workshop on "SSE for the SDGs"'.
    quoted = re.search(r"[\"“]([^\"”]{20,160})[\"”]", first)
    if quoted and len(quoted.group(1).split()) >= 4:
        return quoted.group(1).strip()
    if len(first) <= 120:
        return first.rstrip(".")
    cut = first[:120].rsplit(" ", 1)[0].rstrip(",;:-– ")
    return cut + "…"
