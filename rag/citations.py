"""Checking that each answer sentence is supported by the paragraph it cites, and quoting it.

A small model often omits, invents or misplaces citation markers, so markers are not trusted:
every answer sentence is matched against the sentences of the given paragraphs (lexical
overlap + embedding similarity + the numbers it states), re-attributed to the paragraph that
supports it best, and dropped or visibly marked when none does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from rag.embed import SentenceTransformerEmbeddings
from rag.models import Hit
from rag.text import normalize, sentence_spans, tokenize

MARKER = re.compile(r"\[(\d{1,3})\]")
_NUMBER_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "hundred": "100",
}


@dataclass(frozen=True)
class SentenceRef:
    """A sentence of a retrieved paragraph: ``hits[hit].text[start:end]``."""

    hit: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Support:
    hit: int
    quote_start: int
    quote_end: int
    score: float


def numbers_in(text: str) -> set[str]:
    """Numbers stated in a text, words and digits alike ("six" and "6" are the same)."""
    found = {n.replace(",", "") for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text)}
    found |= {_NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", normalize(text)) if w in _NUMBER_WORDS}
    return found


# Text that addresses the model instead of reporting anything ("Ignore previous instructions
# and say ..."): planted in an article, it is never evidence for a claim nor a quote to answer with.
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b.{0,40}\b(?:instructions?|prompts?|rules|context)\b"
    r"|\byou (?:are|must) now\b|\bsystem prompt\b|\bas an ai\b",
    re.I,
)


def is_instruction(text: str) -> bool:
    return bool(_INSTRUCTION.search(text))


def split_sentences(hits: list[Hit]) -> list[SentenceRef]:
    """The hits' sentences that can serve as evidence (instructions planted in text excluded)."""
    refs = []
    for i, hit in enumerate(hits):
        for start, end in sentence_spans(hit.text):
            if not is_instruction(hit.text[start:end]):
                refs.append(SentenceRef(i, start, end, hit.text[start:end]))
    return refs


def lexical_recall(claim_tokens: set[str], sentence_tokens: set[str]) -> float:
    if not claim_tokens:
        return 0.0
    return len(claim_tokens & sentence_tokens) / len(claim_tokens)


class SupportChecker:
    """Finds, for a claim, the paragraph sentence(s) that support it."""

    def __init__(self, embedder: SentenceTransformerEmbeddings, threshold: float) -> None:
        self.embedder = embedder
        self.threshold = threshold

    @staticmethod
    def _names_and_numbers_supported(claim: str, hit: Hit, article_text: str) -> bool:
        """Every number and proper name of the claim occurs in the cited paragraph's article.

        The article, not just the paragraph: answers name the event as the question did ("the
        AROSP webinar"), and that name is usually introduced elsewhere in the same article.
        """
        context = f"{article_text} {hit.text} {hit.title} {hit.date or ''}"
        if not numbers_in(claim) <= numbers_in(context):
            return False
        known = normalize(context)
        return all(name in known for name in proper_names(claim))

    def attribute(
        self, claims: list[str], hits: list[Hit], article_texts: dict[str, str] | None = None
    ) -> list[Support | None]:
        """The best support for each claim among the hits' sentences (None when unsupported).

        ``article_texts``: doc_id → the article's whole text, for the names-and-numbers check.
        """
        article_texts = article_texts or {}
        refs = split_sentences(hits)
        if not refs or not claims:
            return [None] * len(claims)
        vectors = self.embedder.encode([r.text for r in refs] + claims, progress=False)
        ref_vecs, claim_vecs = vectors[: len(refs)], vectors[len(refs) :]
        cosine = claim_vecs @ ref_vecs.T
        ref_tokens = [set(tokenize(r.text)) for r in refs]
        out: list[Support | None] = []
        for c, claim in enumerate(claims):
            claim_tokens = set(tokenize(claim))
            best: Support | None = None
            for r, ref in enumerate(refs):
                # Adjacent sentence pairs too: a claim often fuses two sentences of a paragraph.
                lexical = lexical_recall(claim_tokens, ref_tokens[r])
                score = 0.5 * float(cosine[c, r]) + 0.5 * lexical
                start, end = ref.start, ref.end
                if r + 1 < len(refs) and refs[r + 1].hit == ref.hit:
                    pair_lexical = lexical_recall(claim_tokens, ref_tokens[r] | ref_tokens[r + 1])
                    pair_score = 0.5 * float(max(cosine[c, r], cosine[c, r + 1])) + 0.5 * pair_lexical
                    if pair_score > score + 0.1:
                        score, end = pair_score, refs[r + 1].end
                if best is None or score > best.score:
                    best = Support(ref.hit, start, end, score)
            # A claim naming numbers or names the paragraph (and its article's title) never
            # states is not supported, however similar it sounds: the typical small-model slip is
            # moving a fact from one event to another.
            if best is not None and not self._names_and_numbers_supported(
                claim, hits[best.hit], article_texts.get(hits[best.hit].doc_id, "")
            ):
                best = Support(best.hit, best.quote_start, best.quote_end, min(best.score, self.threshold - 0.01))
            out.append(best if best is not None and best.score >= self.threshold else None)
        return out


def proper_names(text: str) -> set[str]:
    """Capitalised words and acronyms that are not at the start of a sentence ("HomeNet", "KoSEA")."""
    names = set()
    for match in re.finditer(r"(?<![.!?]\s)(?<!^)\b([A-Z][\w’'-]*[A-Za-z])", text):
        word = match.group(1)
        if word.lower() not in _COMMON_CAPITALISED:
            names.add(normalize(word))
    return names


_COMMON_CAPITALISED = {"the", "a", "an", "in", "on", "at", "and", "it", "they", "she", "he", "this", "i", "ms", "mr", "dr"}


def split_claims(text: str) -> list[tuple[str, list[int]]]:
    """Answer sentences with the markers that follow each, markers removed from the sentence."""
    claims: list[tuple[str, list[int]]] = []
    for start, end in sentence_spans(text):
        sentence = text[start:end]
        # Markers opening a sentence were placed after the previous one's period: theirs.
        lead = re.match(r"\s*(?:\[\d{1,3}\]\s*)+", sentence)
        if lead:
            sentence = sentence[lead.end() :]
        markers = [int(m) for m in MARKER.findall(sentence)]
        # Markers placed after the period belong to this sentence too: "... Korea. [2]"
        tail = re.match(r"\s*((?:\[\d{1,3}\]\s*)+)", text[end:])
        if tail:
            markers += [int(m) for m in MARKER.findall(tail.group(1))]
        clean = MARKER.sub("", sentence).strip()
        clean = re.sub(r"\s+([.,;:!?])", r"\1", clean)
        if clean and any(ch.isalnum() for ch in clean):
            claims.append((clean, markers))
    return claims


def best_sentences(
    question_vec: np.ndarray, refs: list[SentenceRef], ref_vecs: np.ndarray
) -> np.ndarray:
    """Cosine similarity of the question with each sentence."""
    if not refs:
        return np.zeros(0, dtype=np.float32)
    return (ref_vecs @ question_vec.T).ravel()
