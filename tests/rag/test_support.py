"""Claim splitting, marker parsing and support checking."""

from __future__ import annotations

from rag.domain import Hit
from rag.embed import SentenceTransformerEmbeddings
from rag.lexicon import numbers_in, proper_names
from rag.support import SupportChecker, split_claims


def _hit(text: str, title: str = "Workshop on SSE policy", doc: str = "a.txt", n: int = 1) -> Hit:
    return Hit(doc_id=doc, title=title, date="2021-03-31", paragraph=n, text=text, start=0, end=len(text), score=1.0)


def test_split_claims_reads_markers_before_and_after_the_period() -> None:
    claims = split_claims("KoSEA implemented it [2]. It was funded by MOEL. [1][3] Unmarked sentence.")
    assert claims == [
        ("KoSEA implemented it.", [2]),
        ("It was funded by MOEL.", [1, 3]),
        ("Unmarked sentence.", []),
    ]


def test_numbers_in_treats_words_and_digits_alike() -> None:
    assert numbers_in("six countries and 37 participants") == {"6", "37"}


def test_proper_names_skip_sentence_starts() -> None:
    assert proper_names("The workshop was held by KoSEA in Seoul.") == {"kosea", "seoul"}


def test_support_checker_attributes_and_rejects(embedder: SentenceTransformerEmbeddings) -> None:
    funded = _hit("The workshop was funded by the Korean Ministry of Employment and Labour. It ran three days.")
    other = _hit("Participants visited farms in Hongsung.", n=2)
    checker = SupportChecker(embedder, threshold=0.45)
    supports = checker.attribute(
        [
            "The Korean Ministry of Employment and Labour funded the workshop.",  # supported by hit 0
            "The workshop was funded by the World Bank.",  # a name the article never states
            "The workshop had 500 participants.",  # a number the article never states
        ],
        [funded, other],
        {"a.txt": funded.text + "\n" + other.text},
    )
    assert supports[0] is not None and supports[0].hit == 0
    quote = funded.text[supports[0].quote_start : supports[0].quote_end]
    assert "Korean Ministry" in quote and quote in funded.text
    assert supports[1] is None
    assert supports[2] is None
