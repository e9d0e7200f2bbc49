"""Grounded answers with citations, or an honest abstention, as a LangChain retrieval chain.

Two answerers behind one API:

- ``extractive``: no LLM. Scores the sentences of the retrieved paragraphs against the question
  (embedding similarity, the question's terms, whether the sentence holds the kind of thing asked
  for) and answers with the best one or two, each cited. Fast (tens of milliseconds).
- ``llm``: a chat model (local GGUF or an OpenAI-compatible server) writes the answer from a
  compact, numbered context of the most relevant sentences; its sentences are then checked
  against the paragraphs and re-attributed (``rag.support``), since small models misplace or
  forget markers.
- ``auto``: ``llm`` when a model is installed or a server is configured, else ``extractive``.

The chain as Runnables: ``rewrite follow-up → retrieve → build context → answer → verify``.

>>> import rag
>>> kb = rag.load()
>>> ans = kb.answer("Who funded the 2021 workshop?", mode="extractive")
>>> ans.citations[0].doc_id
'003_21bb20fa281d6cc8.txt'
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough

from rag.answerability import Answerability, article_evidence, check_answer
from rag.domain import Answer, Article, Citation, Hit
from rag.errors import ModelNotInstalledError, QueryError
from rag.evidence import SentenceRef, split_sentences
from rag.followup import rewrite_followup
from rag.lexicon import DEPENDENT_SENTENCE_OPENERS, tokenize, without_dates
from rag.llm import install_command, llm_available, make_chat_model
from rag.prompts import (
    ABSTAIN_TEXT,
    ANSWER_SYSTEM_PROMPT,
    ANSWER_USER_PROMPT,
    CONTEXT_ITEM,
    UNSUPPORTED_MARK,
)
from rag.question import Question, analyze_question, holds_answer_type
from rag.settings import ANSWER_MODES, Settings
from rag.support import SupportChecker, split_claims

History = Sequence[dict[str, Any]] | None
AnswerEvent = str | Answer

# The model's ways of saying the articles do not answer.
_MODEL_ABSTAINS = re.compile(
    r"not in the articles|not (?:mentioned|stated|specified|provided|given|included|available|found)"
    r"|(?:do|does|did) not (?:say|mention|specify|state|provide|contain|include)"
    r"|no (?:information|mention|details?)\b|cannot (?:be )?(?:determined|found|answer)|unknown from",
    re.I,
)


class ParagraphSearcher(Protocol):
    """What answering needs from search: one loaded index, searched and read consistently."""

    def check_query(self, query: str) -> str: ...

    def search(self, query: str | Question, k: int | None = None) -> list[Hit]: ...

    def focus_term_weights(self, terms: Iterable[str], doc_id: str) -> dict[str, float]: ...

    def sentence_vectors(self, hits: Sequence[Hit], sentence_texts: Sequence[str]) -> np.ndarray: ...

    def article(self, doc_id: str) -> Article | None: ...


class QueryEmbedder(Protocol):
    """What answering needs from the embedder (``rag.embed.SentenceTransformerEmbeddings``)."""

    def encode(self, texts: list[str], *, progress: bool | None = None) -> np.ndarray: ...

    def encode_query(self, text: str) -> np.ndarray: ...


@dataclass
class Prepared:
    """What the answerers start from: one question, searched on one index snapshot."""

    question: str
    standalone: str
    hits: list[Hit]
    mode: str
    searcher: ParagraphSearcher
    analysis: Question
    timings: dict[str, float] = field(default_factory=dict)
    sentences: list[SentenceRef] = field(default_factory=list)
    sentence_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    confidence: float = 0.0
    #: Filled on first use by the answerability checks, then shared by every candidate answer:
    #: doc_id → the article as evidence text, and the articles that may be the question's subject.
    evidence: dict[str, str] = field(default_factory=dict)
    subject_doc_ids: list[str] | None = None


def validate_history(history: History) -> list[dict[str, str]]:
    if history is None:
        return []
    if not isinstance(history, (list, tuple)):
        raise QueryError("history must be a list of {'role': 'user'|'assistant', 'content': str} turns")
    turns = []
    for turn in history:
        if not isinstance(turn, dict) or turn.get("role") not in ("user", "assistant"):
            raise QueryError("each history turn must be {'role': 'user'|'assistant', 'content': str}")
        turns.append({"role": str(turn["role"]), "content": str(turn.get("content") or "")})
    return turns


class Answerer:
    """Cited answers (or abstentions) from what a searcher finds. Thread-safe; the chat model is shared.

    ``searcher``: the live ``ParagraphSearcher``, or a function returning it (a knowledge base
    swaps its index on refresh: each question takes one snapshot and keeps it to the end).
    ``chat_model``: any LangChain chat model; by default the configured one (``rag.llm``),
    created on first use.
    """

    def __init__(
        self,
        searcher: ParagraphSearcher | Callable[[], ParagraphSearcher],
        embedder: QueryEmbedder,
        settings: Settings,
        chat_model: BaseChatModel | None = None,
    ) -> None:
        self._searcher = searcher
        self.embedder = embedder
        self.settings = settings
        self._chat_model = chat_model
        self._chat_model_checked = chat_model is not None
        self._model_lock = threading.Lock()
        self.support = SupportChecker(
            embedder, settings.support_threshold, settings.support_similarity_weight, settings.support_pair_margin
        )

    def searcher(self) -> ParagraphSearcher:
        return self._searcher() if callable(self._searcher) else self._searcher

    # --- the chat model -------------------------------------------------------------

    def chat_model(self) -> BaseChatModel | None:
        with self._model_lock:
            if not self._chat_model_checked:
                self._chat_model = make_chat_model(self.settings)
                self._chat_model_checked = True
            return self._chat_model

    def llm_available(self) -> bool:
        if self._chat_model is not None:
            return True
        return llm_available(self.settings)

    def resolve_mode(self, mode: str | None) -> str:
        mode = mode or self.settings.answer_mode
        if mode not in ANSWER_MODES:
            raise QueryError(f"unknown answer mode {mode!r}: use auto, extractive or llm")
        if mode == "auto":
            return "llm" if self.llm_available() else "extractive"
        if mode == "llm" and self.chat_model() is None:
            raise ModelNotInstalledError(
                "llm mode needs the local model or an OpenAI-compatible server (RAG_LLM_BASE_URL). "
                f"Install the local model with `make model` or: {install_command()}"
            )
        return mode

    # --- chain steps ----------------------------------------------------------------

    def prepare(self, question: str, history: History = None, mode: str | None = None, k: int | None = None) -> Prepared:
        """Rewrite a follow-up, retrieve, and score the retrieved sentences against the question."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        searcher = self.searcher()
        question = searcher.check_query(question)
        turns = validate_history(history)
        resolved = self.resolve_mode(mode)
        standalone = rewrite_followup(question, turns)
        analysis = analyze_question(standalone)
        timings["rewrite"] = time.perf_counter() - t0

        t1 = time.perf_counter()
        hits = searcher.search(analysis, k or self.settings.answer_context_k)
        timings["retrieve"] = time.perf_counter() - t1

        t2 = time.perf_counter()
        sentences = split_sentences(hits)
        texts = [s.text for s in sentences]
        question_vec = self.embedder.encode_query(standalone)
        sentence_vecs = searcher.sentence_vectors(hits, texts)
        cosine = sentence_vecs @ question_vec if texts else np.zeros(0, dtype=np.float32)
        scores = self._sentence_scores(searcher, analysis, hits, sentences, cosine)
        timings["score_sentences"] = time.perf_counter() - t2
        confidence = self._confidence(analysis, hits, cosine)
        return Prepared(
            question, standalone, hits, resolved, searcher, analysis, timings, sentences, scores, confidence
        )

    def _sentence_scores(
        self,
        searcher: ParagraphSearcher,
        question: Question,
        hits: list[Hit],
        sentences: list[SentenceRef],
        cosine: np.ndarray,
    ) -> np.ndarray:
        """How well each sentence answers: similarity, the question's terms, the answer type, rank."""
        if not sentences:
            return np.zeros(0, dtype=np.float32)
        kinds = question.answer_types
        ranks = np.array([s.hit for s in sentences], dtype=np.float32)
        # The question's terms weighted as the retriever weighs them inside each article: words
        # that name the event (in the article's opening) say little about which sentence answers.
        weights = {h.doc_id: searcher.focus_term_weights(question.terms, h.doc_id) for h in hits}
        overlap = np.array(
            [_weighted_overlap(weights[hits[s.hit].doc_id], set(tokenize(s.text))) for s in sentences],
            dtype=np.float32,
        )
        # Dates and years hold digits but never the count a "how many" question asks for.
        answer_type = np.array(
            [holds_answer_type(without_dates(s.text) if "number" in kinds else s.text, kinds) for s in sentences],
            dtype=np.float32,
        )
        s = self.settings
        return (
            s.sentence_weight_cosine * cosine
            + s.sentence_weight_overlap * overlap
            + s.sentence_weight_answer_type * answer_type
            - s.sentence_weight_rank * ranks / max(len(hits), 1)
        ).astype(np.float32)

    def _confidence(self, question: Question, hits: list[Hit], cosine: np.ndarray) -> float:
        """Whether the retrieved text can answer at all: best sentence similarity and term coverage."""
        if not hits or not len(cosine):
            return 0.0
        q_terms = set(question.terms)
        top_terms = set(tokenize(" ".join(h.text + " " + h.title for h in hits[:2])))
        coverage = len(q_terms & top_terms) / max(len(q_terms), 1)
        w = self.settings.confidence_similarity_weight
        return float(w * float(cosine.max()) + (1 - w) * coverage)

    def _gate(self, prepared: Prepared) -> bool:
        """True when retrieval is too weak to answer from (abstain before answering)."""
        return prepared.confidence < self.settings.abstain_threshold

    # --- extractive -----------------------------------------------------------------

    def extractive(self, prepared: Prepared) -> Answer:
        t0 = time.perf_counter()
        if self._gate(prepared) or not prepared.sentences:
            return self._abstain(prepared, "extractive")
        order = [int(i) for i in np.argsort(-prepared.sentence_scores, kind="stable")]
        top = float(prepared.sentence_scores[order[0]])
        if top < self.settings.extractive_min_score:
            return self._abstain(prepared, "extractive")
        # The best sentence, unless it fails the answerability checks (another event's article,
        # no number for "how many"): then a nearly-as-good one that passes, else abstain.
        ratio = self.settings.extractive_contender_ratio
        contenders = [i for i in order[: self.settings.extractive_contenders] if prepared.sentence_scores[i] >= ratio * top]
        answer = None
        for best in contenders:
            answer = self._extractive_from(prepared, best, order)
            if self._check(prepared, answer).ok:
                break
        else:
            prepared.timings["answer"] = time.perf_counter() - t0
            return self._abstain(prepared, "extractive")
        prepared.timings["answer"] = time.perf_counter() - t0
        return answer

    def _extractive_from(self, prepared: Prepared, best: int, order: list[int]) -> Answer:
        """The answer quoting sentence ``best`` (and a second one when it is nearly as good)."""
        chosen = [best]
        # A second sentence when it is nearly as good: lists and answers spread over two places.
        for idx in [i for i in order if i != best][:2]:
            if prepared.sentence_scores[idx] >= self.settings.extractive_second_ratio * prepared.sentence_scores[best]:
                chosen.append(idx)
                break
        claims: list[tuple[int, int, int]] = []  # (hit, start, end)
        for idx in chosen:
            ref = prepared.sentences[idx]
            start, end = ref.start, ref.end
            # A sentence opening with a pronoun needs the one before it to make sense.
            if DEPENDENT_SENTENCE_OPENERS.match(ref.text) and idx > 0:
                prev = prepared.sentences[idx - 1]
                if prev.hit == ref.hit:
                    start = prev.start
            claims.append((ref.hit, start, end))
        claims.sort()
        merged: list[tuple[int, int, int]] = []
        for claim in claims:  # overlapping spans of one paragraph become one quote
            if merged and merged[-1][0] == claim[0] and claim[1] <= merged[-1][2]:
                merged[-1] = (claim[0], merged[-1][1], max(claim[2], merged[-1][2]))
            else:
                merged.append(claim)
        citations: list[Citation] = []
        parts: list[str] = []
        for hit_index, start, end in merged:
            hit = prepared.hits[hit_index]
            quote = hit.text[start:end]
            citation = next((c for c in citations if (c.doc_id, c.paragraph) == (hit.doc_id, hit.paragraph)), None)
            if citation is None:
                citation = Citation.from_hit(hit, n=len(citations) + 1, quote=quote)
                citations.append(citation)
            parts.append(f"{_one_line(quote)} [{citation.n}]")
        return self._answer(prepared, "extractive", " ".join(parts), citations)

    def _evidence(self, prepared: Prepared, doc_id: str) -> str:
        text = prepared.evidence.get(doc_id)
        if text is None:
            article = prepared.searcher.article(doc_id)
            text = "" if article is None else article_evidence(article.title, article.date, [p.text for p in article.paragraphs])
            prepared.evidence[doc_id] = text
        return text

    def _check(self, prepared: Prepared, answer: Answer) -> Answerability:
        """The answerability checks on a candidate answer (``rag.answerability``)."""
        if not self.settings.answerability_checks or answer.abstained:
            return Answerability(True)
        if prepared.subject_doc_ids is None:
            # A wider net than the answer's context: the article that names the question's event
            # may rank below the ones the answer was built from.
            wider = prepared.searcher.search(
                prepared.analysis, max(len(prepared.hits), self.settings.answerability_search_k)
            )
            prepared.subject_doc_ids = list(dict.fromkeys(h.doc_id for h in [*prepared.hits, *wider]))
        cited = [self._evidence(prepared, d) for d in dict.fromkeys(c.doc_id for c in answer.citations)]
        retrieved = [self._evidence(prepared, d) for d in prepared.subject_doc_ids]
        return check_answer(prepared.analysis, answer.text, cited, retrieved)

    # --- llm ------------------------------------------------------------------------

    def context_items(self, prepared: Prepared) -> list[tuple[int, str]]:
        """The compact context: per paragraph, its best sentences (prompt tokens are slow on a CPU)."""
        budget = self.settings.llm_context_chars
        by_hit: dict[int, list[int]] = {}
        order = np.argsort(-prepared.sentence_scores, kind="stable")
        used = 0
        for idx in order:
            ref = prepared.sentences[int(idx)]
            if used + len(ref.text) > budget:
                continue  # every prompt token costs ~12 ms on 2 cores (see Settings.llm_context_chars): strict
            if len(by_hit.get(ref.hit, [])) >= self.settings.llm_sentences_per_paragraph:
                continue
            by_hit.setdefault(ref.hit, []).append(int(idx))
            used += len(ref.text)
        if not by_hit and len(order):  # even the best sentence is over budget: cut it at a word
            best = prepared.sentences[int(order[0])]
            return [(best.hit, best.text[:budget].rsplit(" ", 1)[0])]
        items = []
        for hit_index in sorted(by_hit):
            picked = sorted(by_hit[hit_index])
            text = " ".join(_one_line(prepared.sentences[i].text) for i in picked)
            items.append((hit_index, text))
        return items

    def llm_inputs(self, prepared: Prepared) -> tuple[dict[str, str], list[int]]:
        items = self.context_items(prepared)
        lines = []
        numbering: list[int] = []  # context number n -> hit index
        for n, (hit_index, text) in enumerate(items, start=1):
            hit = prepared.hits[hit_index]
            date = f", {hit.date}" if hit.date else ""
            lines.append(CONTEXT_ITEM.format(n=n, title=_short_title(hit.title), date=date, text=text))
            numbering.append(hit_index)
        return {"context": "\n".join(lines), "question": prepared.standalone}, numbering

    def llm_chain(self) -> Runnable:
        model = self.chat_model()
        if model is None:
            raise ModelNotInstalledError("no chat model configured")
        prompt = ChatPromptTemplate.from_messages([("system", ANSWER_SYSTEM_PROMPT), ("human", ANSWER_USER_PROMPT)])
        return prompt | model | StrOutputParser()

    def llm_stream(self, prepared: Prepared) -> Iterator[AnswerEvent]:
        if self._gate(prepared) or not prepared.sentences:
            yield (answer := self._abstain(prepared, "llm")).text
            yield answer
            return
        inputs, numbering = self.llm_inputs(prepared)
        t0 = time.perf_counter()
        raw_parts: list[str] = []
        first = None
        for token in self.llm_chain().stream(inputs):
            if first is None:
                first = time.perf_counter() - t0
                prepared.timings["llm_first_token"] = first
            raw_parts.append(token)
            yield token
        prepared.timings["llm"] = time.perf_counter() - t0
        yield self.finalize_llm(prepared, "".join(raw_parts), numbering)

    def finalize_llm(self, prepared: Prepared, raw: str, numbering: list[int]) -> Answer:
        """Check markers and support of every sentence; renumber citations in marker order."""
        t0 = time.perf_counter()
        raw = raw.strip()
        refused = not raw or (_MODEL_ABSTAINS.search(raw) and len(raw) < 400 and not re.search(r"\[\d", raw))
        claims = [] if refused else [(t, m) for t, m in split_claims(raw) if not _MODEL_ABSTAINS.search(t)]
        if not claims:
            if not self.settings.llm_refusal_fallback:
                return self._abstain(prepared, "llm")
            return self._fallback(prepared, t0)
        given = [prepared.hits[i] for i in sorted(set(numbering))]
        article_texts = {}
        for hit in given:
            article = prepared.searcher.article(hit.doc_id)
            if article is not None:
                article_texts[hit.doc_id] = article.title + "\n" + "\n".join(p.text for p in article.paragraphs)
        supports = self.support.attribute([c for c, _ in claims], given, article_texts)
        citations: list[Citation] = []
        parts: list[str] = []
        for (claim, _markers), support in zip(claims, supports, strict=True):
            # The model's markers are a hint only; the checked support decides the citation.
            if support is None:
                if self.settings.drop_unsupported:
                    continue
                parts.append(f"{claim} {UNSUPPORTED_MARK}")
                continue
            hit = given[support.hit]
            quote = hit.text[support.quote_start : support.quote_end]
            existing = next((c for c in citations if (c.doc_id, c.paragraph) == (hit.doc_id, hit.paragraph)), None)
            if existing is None:
                existing = Citation.from_hit(hit, n=len(citations) + 1, quote=quote)
                citations.append(existing)
            elif quote not in existing.quote:
                merged = _merge_quote(hit.text, existing.quote, quote)
                citations[existing.n - 1] = Citation.from_hit(hit, n=existing.n, quote=merged)
            parts.append(f"{claim} [{existing.n}]")
        if not citations:
            return self._fallback(prepared, t0)
        prepared.timings["verify"] = time.perf_counter() - t0
        answer = self._answer(prepared, "llm", " ".join(parts), citations)
        if not self._check(prepared, answer).ok:
            return self._abstain(prepared, "llm")
        return answer

    def _fallback(self, prepared: Prepared, started: float) -> Answer:
        """The model said "not in the articles", or none of its sentences verified.

        A small model refuses often when the answer is in front of it (about one answerable gold
        question in eight), so its refusal is a hint, not a verdict: when the best sentence scores
        high and the extractive answer passes the answerability checks, that cited quote is the
        answer; otherwise abstain.
        """
        prepared.timings["verify"] = time.perf_counter() - started
        best = float(prepared.sentence_scores.max(initial=0.0))
        if best < self.settings.fallback_min_score:
            return self._abstain(prepared, "llm")
        answer = self.extractive(prepared)
        return self._abstain(prepared, "llm") if answer.abstained else answer

    # --- shared ---------------------------------------------------------------------

    def _abstain(self, prepared: Prepared, mode: str) -> Answer:
        return self._answer(prepared, mode, ABSTAIN_TEXT, [], abstained=True)

    @staticmethod
    def _answer(
        prepared: Prepared, mode: str, text: str, citations: list[Citation], abstained: bool = False
    ) -> Answer:
        return Answer(
            question=prepared.question,
            text=text,
            citations=tuple(citations),
            abstained=abstained,
            mode=mode,
            standalone_question=prepared.standalone if prepared.standalone != prepared.question else None,
            timings=dict(prepared.timings),
        )

    def stream(self, question: str, history: History = None, mode: str | None = None, k: int | None = None) -> Iterator[AnswerEvent]:
        """Incremental answer text (str), then the final ``Answer``."""
        started = time.perf_counter()
        prepared = self.prepare(question, history, mode, k)
        if prepared.mode == "llm":
            events = self.llm_stream(prepared)
        else:
            answer = self.extractive(prepared)
            events = iter([answer.text, answer])
        for event in events:
            if isinstance(event, Answer):
                event.timings["total"] = time.perf_counter() - started
            yield event

    def answer(self, question: str, history: History = None, mode: str | None = None, k: int | None = None) -> Answer:
        final: Answer | None = None
        for event in self.stream(question, history, mode, k):
            if isinstance(event, Answer):
                final = event
        assert final is not None
        return final

    def as_runnable(self, mode: str | None = None) -> Runnable:
        """The whole chain as a Runnable: ``{"question", "history"?}`` → ``Answer``."""
        retrieve = RunnableLambda(
            lambda x: self.prepare(x["question"], x.get("history"), x.get("mode", mode), x.get("k"))
        )
        answer = RunnableLambda(self._answer_prepared)
        return RunnablePassthrough() | retrieve | answer

    def _answer_prepared(self, prepared: Prepared) -> Answer:
        if prepared.mode == "extractive":
            return self.extractive(prepared)
        final = None
        for event in self.llm_stream(prepared):
            if isinstance(event, Answer):
                final = event
        assert final is not None
        return final


def _weighted_overlap(weights: dict[str, float], tokens: set[str]) -> float:
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in tokens) / total if total else 0.0


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _short_title(title: str, words: int = 7) -> str:
    parts = title.split()
    return " ".join(parts[:words]) + ("…" if len(parts) > words else "")


def _merge_quote(paragraph: str, a: str, b: str) -> str:
    """The smallest span of the paragraph that contains both quotes (still an exact substring)."""
    ia, ib = paragraph.find(a), paragraph.find(b)
    start, end = min(ia, ib), max(ia + len(a), ib + len(b))
    return paragraph[start:end]
