"""Sentence splitting for edited news prose: spans with exact offsets, list items as sentences.

>>> sentences("Ms. Esim spoke first. Then 20 workers, i.e. most of them, joined.")
['Ms. Esim spoke first.', 'Then 20 workers, i.e. most of them, joined.']
"""

from __future__ import annotations

import re

from rag.lexicon import ABBREVIATIONS

_SENTENCE_END = re.compile(r"[.!?…]+[”\"’')\]]*(?=\s+|$)")
_LIST_ITEM = re.compile(r"^\s*(?:[•·▪◦●\-*–]|\d{1,3}[.)])\s+", re.MULTILINE)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (stripped; list items count as sentences).

    A rule-based splitter: the corpus is edited news prose, where periods after titles
    ("Ms.", "Dr.") and abbreviations ("i.e.") are the common traps.
    """
    spans: list[tuple[int, int]] = []
    # Line structure first: each line of a list (or a hard line break) is its own unit.
    for line in re.finditer(r"[^\n]+", text):
        _split_line(text, line.start(), line.end(), spans)
    return spans


def _split_line(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    sent_start = start
    marker = _LIST_ITEM.match(text, start, end)  # "1. item": the marker's period ends nothing
    for match in _SENTENCE_END.finditer(text, marker.end() if marker else start, end):
        stop = match.end()
        word = re.search(r"([\w.]+)[.!?…]*[”\"’')\]]*$", text[sent_start:stop])
        token = word.group(1).rstrip(".").lower() if word else ""
        if match.group().startswith(".") and (token in ABBREVIATIONS or (len(token) == 1 and token.isalpha())):
            continue  # "Ms." or an initial ("J."): not a sentence end; "phase 2." is
        nxt = text[stop:end].lstrip()
        if nxt and nxt[0].islower():
            continue  # "e.g. setting": the sentence goes on
        _append_stripped(text, sent_start, stop, spans)
        sent_start = stop
    _append_stripped(text, sent_start, end, spans)


def _append_stripped(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and (text[start].isspace() or text[start] in "•·▪◦●"):
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start and any(ch.isalnum() for ch in text[start:end]):
        spans.append((start, end))


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


def is_list_item(line: str) -> bool:
    return bool(_LIST_ITEM.match(line))
