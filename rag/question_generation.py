"""Questions the local LLM writes for the paragraphs of a corpus: training data for the reader.

InPars (Bonifacio et al. 2022) and GPL (Wang et al. 2022) adapt a reranker to a new domain with
questions a language model writes for the domain's own passages. Here the local chat model
(``rag.llm.make_chat_model``, Qwen2.5-Coder-1.5B) reads one paragraph at a time and writes a few
questions the paragraph answers, each with its short answer copied from the paragraph,
and one question about the same subject that the paragraph does not answer (a near miss).

- **Cached.** Each paragraph's generation is one JSONL record keyed by the sha256 of the paragraph
  text, of the prompt (system, user template and sampling settings) and of the model file; a
  re-run skips every paragraph whose key is already there, so the file is generated once.
- **Filtered.** A question is kept only if its answer is a substring of the paragraph (an answer
  that matches only when case is ignored is replaced by the paragraph's own span) and the current
  hybrid searcher ranks the source paragraph in its top ``top_k`` for it (InPars' consistency
  filter: a question the searcher cannot connect to its paragraph is more often a bad question
  than a hard one). The filter is re-applied on every run (cheap), so it follows the searcher.

    rag generate-questions [--corpus seeds] [--out data/generated/seeds-questions.jsonl]

The records feed ``rag train-reader --generated FILE`` (``load_generated``).

>>> parse_generation("Q: Who spoke?\\nA: Ann\\nQ: When?\\nUNANSWERED: Who moderated?")
([('Who spoke?', 'Ann')], ['Who moderated?'])
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rag.files import write_text_atomic
from rag.prompts import QUESTION_GEN_SYSTEM_PROMPT, QUESTION_GEN_USER_PROMPT

#: Sampling: low temperature and a fixed seed (the local backend takes one), so a re-run without
#: the cache writes the same questions.
GENERATION_TEMPERATURE = 0.2
GENERATION_SEED = 0
GENERATION_MAX_TOKENS = 160
#: The searcher must rank the source paragraph this high for a question to be kept.
DEFAULT_TOP_K = 3
DEFAULT_OUT = Path("data/generated/seeds-questions.jsonl")


class ChatLike(Protocol):
    def invoke(self, messages: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class SourceParagraph:
    """One paragraph to write questions for."""

    doc_id: str
    number: int
    title: str
    text: str


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def prompt_fingerprint(temperature: float = GENERATION_TEMPERATURE, seed: int = GENERATION_SEED,
                       max_tokens: int = GENERATION_MAX_TOKENS) -> str:
    """The sha256 of everything about the prompt that changes what the model writes."""
    spec = {"system": QUESTION_GEN_SYSTEM_PROMPT, "user": QUESTION_GEN_USER_PROMPT,
            "temperature": temperature, "seed": seed, "max_tokens": max_tokens}
    return sha256_text(json.dumps(spec, sort_keys=True))


def cache_key(paragraph_text: str, prompt_sha: str, model_sha: str) -> str:
    return sha256_text(f"{sha256_text(paragraph_text)}:{prompt_sha}:{model_sha}")


def parse_generation(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(question, answer) pairs and unanswerable questions from the model's reply ("Q:", "A:",
    "UNANSWERED:" lines); a question without its answer line is dropped."""
    pairs, negatives, question = [], [], None
    for line in text.splitlines():
        line = line.strip().lstrip("-*0123456789. ").strip()
        label, _, value = line.partition(":")
        label, value = label.strip().upper(), value.strip()
        if not value:
            continue
        if label in {"Q", "QUESTION"}:
            question = value
        elif label in {"A", "ANSWER"} and question:
            pairs.append((question, value))
            question = None
        elif label.startswith("UNANSWER") or label.startswith("NOT ANSWERED"):
            negatives.append(value)
    return pairs, negatives


def answer_span(answer: str, paragraph: str) -> str | None:
    """The answer as it is written in the paragraph, or None when the paragraph does not hold it.

    >>> answer_span("march 3", "It opened on March 3, 2024.")
    'March 3'
    >>> answer_span("April", "It opened on March 3.") is None
    True
    """
    answer = answer.strip().strip("\"'“”").rstrip(".").strip()
    if not answer:
        return None
    if answer in paragraph:
        return answer
    at = paragraph.lower().find(answer.lower())
    return paragraph[at : at + len(answer)] if at >= 0 else None


def _question_ok(question: str) -> bool:
    return question.endswith("?") and len(question.split()) >= 4


def generate(
    paragraphs: Sequence[SourceParagraph],
    chat: ChatLike,
    model_sha: str,
    cache_path: Path,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Ask the model about every paragraph not yet in the cache; append each record as it comes.

    Returns counts and the seconds the new generations took.
    """
    from langchain_core.messages import HumanMessage, SystemMessage

    prompt_sha = prompt_fingerprint()
    cached = {r["key"] for r in read_records(cache_path)}
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    started, new = time.time(), 0
    for n, para in enumerate(paragraphs, start=1):
        key = cache_key(para.text, prompt_sha, model_sha)
        if key in cached:
            continue
        t0 = time.time()
        messages = [SystemMessage(QUESTION_GEN_SYSTEM_PROMPT),
                    HumanMessage(QUESTION_GEN_USER_PROMPT.format(title=para.title, text=para.text))]
        reply = chat.invoke(messages, temperature=GENERATION_TEMPERATURE, seed=GENERATION_SEED,
                            max_tokens=GENERATION_MAX_TOKENS)
        raw = reply.content if hasattr(reply, "content") else str(reply)
        pairs, negatives = parse_generation(str(raw))
        record = {
            "key": key, "paragraph_sha256": sha256_text(para.text), "prompt_sha256": prompt_sha,
            "model_sha256": model_sha, "doc_id": para.doc_id, "paragraph": para.number, "title": para.title,
            "text": para.text, "raw": str(raw), "generated": [{"question": q, "answer": a} for q, a in pairs],
            "unanswerable_generated": negatives, "seconds": round(time.time() - t0, 2),
        }
        with cache_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        cached.add(key)
        new += 1
        log(f"  [{n}/{len(paragraphs)}] {para.doc_id} ¶{para.number}: {len(pairs)} questions, "
            f"{len(negatives)} unanswerable ({record['seconds']:.1f} s)")
    return {"paragraphs": len(paragraphs), "generated": new, "cached": len(paragraphs) - new,
            "seconds": round(time.time() - started, 1)}


def read_records(path: Path) -> list[dict[str, Any]]:
    """The cache's records (a damaged line, from an interrupted run, is skipped)."""
    if not Path(path).is_file():
        return []
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "key" in record:
            out.append(record)
    return out


def apply_filter(
    records: list[dict[str, Any]],
    search: Callable[[str], Sequence[tuple[str, int]]],
    top_k: int = DEFAULT_TOP_K,
) -> list[dict[str, Any]]:
    """Each record with ``questions`` (kept: answer in the paragraph, source in the searcher's top
    ``top_k``), ``unanswerable`` (kept near misses) and ``rejected`` (with the reason)."""
    out = []
    for record in records:
        text, source = record["text"], (record["doc_id"], int(record["paragraph"]))
        kept, rejected, seen = [], [], set()
        for entry in record.get("generated", []):
            q, a = entry["question"], entry["answer"]
            span = answer_span(a, text)
            reason = None
            if q.lower() in seen:
                reason = "duplicate"
            elif not _question_ok(q):
                reason = "not a question"
            elif span is None:
                reason = "answer not in the paragraph"
            elif span.lower() in q.lower():
                reason = "answer in the question"
            else:
                ranked = [(d, int(p)) for d, p in search(q)][:top_k]
                if source not in ranked:
                    reason = f"source paragraph not in the searcher's top {top_k}"
            seen.add(q.lower())
            if reason:
                rejected.append({"question": q, "answer": a, "reason": reason})
            else:
                kept.append({"question": q, "answer": span, "answer_start": text.index(span or "")})
        negatives = []
        for q in record.get("unanswerable_generated", []):
            if _question_ok(q) and q.lower() not in seen:
                negatives.append(q)
                seen.add(q.lower())
        out.append({**record, "questions": kept, "unanswerable": negatives, "rejected": rejected})
    return out


def write_records(path: Path, records: Iterable[dict[str, Any]]) -> None:
    write_text_atomic(Path(path), "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def corpus_paragraphs(articles: Iterable[Any], min_chars: int = 80) -> list[SourceParagraph]:
    """The paragraphs worth asking about (long enough to answer something), taken from the articles
    in turn (first paragraphs of every article, then the second ones, ...), so that a run stopped
    early, or ``--limit``, still covers every article."""
    per_article = [[SourceParagraph(a.doc_id, p.number, a.title, p.text) for p in a.paragraphs
                    if len(p.text) >= min_chars] for a in articles]
    longest = max((len(ps) for ps in per_article), default=0)
    return [ps[i] for i in range(longest) for ps in per_article if i < len(ps)]


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    reasons: dict[str, int] = {}
    for r in records:
        for rej in r.get("rejected", []):
            reasons[rej["reason"]] = reasons.get(rej["reason"], 0) + 1
    return {
        "paragraphs": len(records),
        "written": sum(len(r.get("generated", [])) for r in records),
        "kept": sum(len(r.get("questions", [])) for r in records),
        "unanswerable": sum(len(r.get("unanswerable", [])) for r in records),
        "rejected": reasons,
        "generation_seconds": round(sum(float(r.get("seconds", 0)) for r in records), 1),
    }


def generate_for_corpus(kb: Any, out: Path, top_k: int = DEFAULT_TOP_K,
                        limit: int = 0, chat: ChatLike | None = None, model_sha: str | None = None,
                        log: Callable[[str], None] = print) -> dict[str, Any]:
    """``rag generate-questions``: generate (cached), filter with the corpus's searcher, write ``out``.

    ``kb``: a ready ``rag.KnowledgeBase`` over the corpus (its articles, search and settings; the
    command line loads it, so this stage never imports the facade)."""
    from rag.errors import ModelNotInstalledError

    paragraphs = corpus_paragraphs(kb.articles())
    if limit:
        paragraphs = paragraphs[:limit]
    if chat is None:
        from rag.llm import LocalLlamaChatModel, cached_sha256, make_chat_model

        chat = make_chat_model(kb.settings)
        if chat is None:
            raise ModelNotInstalledError("no chat model: install the local LLM (make install) or set RAG_LLM_BASE_URL")
        if model_sha is None:
            model_sha = (cached_sha256(Path(chat.model_path)) if isinstance(chat, LocalLlamaChatModel)
                         else sha256_text(f"{kb.settings.llm_base_url}:{kb.settings.llm_model_name}"))
    stats = generate(paragraphs, chat, model_sha or "unknown", out, log=log)
    wanted = {cache_key(p.text, prompt_fingerprint(), model_sha or "unknown") for p in paragraphs}
    records = read_records(out)  # every record stays (other models or prompts: their own keys)

    def search(question: str) -> list[tuple[str, int]]:
        return [(h.doc_id, h.paragraph) for h in kb.search(question, k=top_k)]

    filtered = apply_filter(records, search, top_k)
    write_records(out, filtered)
    return {**stats, **summarize([r for r in filtered if r["key"] in wanted])}


def load_generated(path: Path) -> list[dict[str, Any]]:
    """The kept questions of a generated file: dicts with title, text, question, answer,
    answer_start, doc_id, paragraph; and the near misses with ``answer`` None."""
    out = []
    for r in read_records(path):
        base = {"doc_id": r["doc_id"], "paragraph": int(r["paragraph"]), "title": r["title"], "text": r["text"]}
        for q in r.get("questions", []):
            out.append({**base, "question": q["question"], "answer": q["answer"], "answer_start": q["answer_start"]})
        for q in r.get("unanswerable", []):
            out.append({**base, "question": q, "answer": None, "answer_start": None})
    return out
