"""Text utilities shared by several stages: sentence spans, tokens for lexical matching."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Abbreviations after which a period does not end a sentence ("Ms. Esim", "i.e. setting").
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "st", "no", "vs", "etc", "e.g", "i.e", "inc", "ltd",
    "co", "jr", "sr", "gen", "gov", "dept", "fig", "approx", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.n", "a.m", "p.m",
}
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
        if match.group().startswith(".") and (token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha())):
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


# --- tokens for lexical retrieval -------------------------------------------------------

STOPWORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves", "also", "did", "does", "many", "much", "within", "without", "s", "t", "don", "many", "whose"]
)
_TOKEN = re.compile(r"[\w’']+", re.UNICODE)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light English suffix stripper: enough to match plural/verb forms, never aggressive."""
    if len(word) <= 3 or not word.isalpha():
        return word
    base = word
    for suffix, replacement in (
        ("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word
            if suffix == "ed" and word.endswith("eed"):
                continue  # "proceed", "exceed" are not past tenses
            base = word[: -len(suffix)] + replacement
            if suffix in ("ing", "ed") and len(base) > 3 and base[-1] == base[-2] and base[-1] not in "lsz":
                base = base[:-1]  # "planned" -> "plan"
            break
    # A final "e" goes too, so "cooperative"/"cooperatives" and "organize"/"organized" meet.
    if base.endswith("e") and len(base) >= 4:
        base = base[:-1]
    return base


def normalize(text: str) -> str:
    """Case-fold, strip accents and unify apostrophes, for matching only."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.replace("’", "'").casefold()


def tokenize(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """Lexical tokens: normalized, stemmed, stopwords dropped."""
    tokens = []
    for raw in _TOKEN.findall(normalize(text)):
        word = raw.strip("'")
        if word.endswith("'s"):
            word = word[:-2]
        if not word or (not keep_stopwords and word in STOPWORDS):
            continue
        tokens.append(stem(word))
    return tokens
