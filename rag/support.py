"""Checking that each answer sentence is supported by the paragraph it cites, and quoting it.

A small model often omits, invents or misplaces citation markers, so markers are not trusted:
every answer sentence is matched against the sentences of the given paragraphs (lexical
overlap + embedding similarity + the numbers it states), re-attributed to the paragraph that
supports it best, and dropped or visibly marked when none does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.domain import CITATION_MARKER, Hit
from rag.embed import SentenceTransformerEmbeddings
from rag.evidence import split_sentences
from rag.lexicon import normalize, numbers_in, proper_names, tokenize
from rag.sentences import sentence_spans


@dataclass(frozen=True)
class Support:
    hit: int
    quote_start: int
    quote_end: int
    score: float


def lexical_recall(claim_tokens: set[str], sentence_tokens: set[str]) -> float:
    if not claim_tokens:
        return 0.0
    return len(claim_tokens & sentence_tokens) / len(claim_tokens)


class SupportChecker:
    """Finds, for a claim, the paragraph sentence(s) that support it."""

    def __init__(
        self, embedder: SentenceTransformerEmbeddings, threshold: float, similarity_weight: float = 0.5,
        pair_margin: float = 0.1,
    ) -> None:
        self.embedder = embedder
        self.threshold = threshold
        self.similarity_weight = similarity_weight
        self.pair_margin = pair_margin

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
        w = self.similarity_weight
        for c, claim in enumerate(claims):
            claim_tokens = set(tokenize(claim))
            best: Support | None = None
            for r, ref in enumerate(refs):
                # Adjacent sentence pairs too: a claim often fuses two sentences of a paragraph.
                lexical = lexical_recall(claim_tokens, ref_tokens[r])
                score = w * float(cosine[c, r]) + (1 - w) * lexical
                start, end = ref.start, ref.end
                if r + 1 < len(refs) and refs[r + 1].hit == ref.hit:
                    pair_lexical = lexical_recall(claim_tokens, ref_tokens[r] | ref_tokens[r + 1])
                    pair_score = w * float(max(cosine[c, r], cosine[c, r + 1])) + (1 - w) * pair_lexical
                    if pair_score > score + self.pair_margin:
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


def split_claims(text: str) -> list[tuple[str, list[int]]]:
    """Answer sentences with the markers that follow each, markers removed from the sentence."""
    claims: list[tuple[str, list[int]]] = []
    for start, end in sentence_spans(text):
        sentence = text[start:end]
        # Markers opening a sentence were placed after the previous one's period: theirs.
        lead = re.match(r"\s*(?:\[\d{1,3}\]\s*)+", sentence)
        if lead:
            sentence = sentence[lead.end() :]
        markers = [int(m) for m in CITATION_MARKER.findall(sentence)]
        # Markers placed after the period belong to this sentence too: "... Korea. [2]"
        tail = re.match(r"\s*((?:\[\d{1,3}\]\s*)+)", text[end:])
        if tail:
            markers += [int(m) for m in CITATION_MARKER.findall(tail.group(1))]
        clean = CITATION_MARKER.sub("", sentence).strip()
        clean = re.sub(r"\s+([.,;:!?])", r"\1", clean)
        if clean and any(ch.isalnum() for ch in clean):
            claims.append((clean, markers))
    return claims

