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
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough

from rag.answerability import Answerability, article_evidence, check_answer
from rag.confidence import AnswerFeatures, ConfidenceModel, sigmoid
from rag.domain import CITATION_MARKER, DATELINE, Answer, Article, Citation, Hit
from rag.entities import AnswerTypeModel, EntityTagger
from rag.errors import ModelNotInstalledError, QueryError
from rag.evidence import SentenceRef, split_sentences
from rag.followup import rewrite_followup
from rag.lexicon import DEPENDENT_SENTENCE_OPENERS, spell_date, tokenize, without_dates
from rag.llm import install_command, llm_available, make_chat_model, supports_logprobs, yes_log_odds
from rag.prompts import (
    ABSTAIN_TEXT,
    ANSWER_SYSTEM_PROMPT,
    ANSWER_USER_PROMPT,
    CONTEXT_ITEM,
    JUDGE_AFTER_PROMPT,
    JUDGE_BEFORE_PROMPT,
    UNSUPPORTED_MARK,
)
from rag.question import Question, analyze_question, holds_answer_type
from rag.reader import Reader, reader_passage
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


@dataclass(frozen=True)
class Candidate:
    """A candidate answer, what its confidence was computed from, and the confidence."""

    answer: Answer
    features: AnswerFeatures
    confidence: float


@dataclass(frozen=True)
class LLMTrial:
    """LLM mode's steps for one question, with no threshold applied (what calibration fits on)."""

    #: The best extractive quote did not reach the threshold: the model was not asked.
    gated: bool
    #: The model's raw answer, and its judgment in each form asked (log-odds; None: not given).
    raw: str = ""
    judgments: dict[str, float | None] = field(default_factory=dict)
    #: The model's answer as a candidate (features, confidence without the judgment); None when it
    #: refused or none of its sentences held.
    candidate: Candidate | None = None
    #: What LLM mode answers without the judgment (the extractive fallback, when it stands in).
    final: Answer | None = None
    seconds: dict[str, float] = field(default_factory=dict)


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
    #: The most confident extractive candidate (``Answerer.best_candidate``), once computed.
    best: Candidate | None = None
    #: LLM mode: the model's yes/no judgment (log-odds; ``Settings.llm_judge``), None if not asked.
    judgment: float | None = None
    #: LLM mode: the model's answer as a candidate before the threshold (for calibration).
    llm_candidate: Candidate | None = None


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
    created on first use. ``reader``: the cross-encoder that scores each quote against the
    question (``rag.reader``); without one, the confidence rests on the other features.
    ``answer_types``: what kind of entity answers which question (``rag.entities``), read with
    ``tagger``'s NER; without it the ``answer_type`` feature is 1 (no opinion).
    """

    def __init__(
        self,
        searcher: ParagraphSearcher | Callable[[], ParagraphSearcher],
        embedder: QueryEmbedder,
        settings: Settings,
        chat_model: BaseChatModel | None = None,
        reader: Reader | None = None,
        answer_types: AnswerTypeModel | None = None,
        tagger: EntityTagger | None = None,
    ) -> None:
        self._searcher = searcher
        self.reader = reader
        self.answer_types = answer_types
        self.tagger = tagger or (EntityTagger() if answer_types is not None else None)
        self.confidence_model = ConfidenceModel(settings.confidence_weights, settings.confidence_bias)
        # The LLM answer's confidence: the same model plus the model's own judgment.
        self.llm_confidence_model = ConfidenceModel(
            {**settings.confidence_weights, "judgment": settings.llm_judge_weight},
            settings.confidence_bias + settings.llm_judge_bias,
        )
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

    # --- the article's own date ------------------------------------------------------

    def publication(self, prepared: Prepared) -> Answer | None:
        """For a question about when the article itself came out (``Question.asks_publication``):
        its dateline, cited, or an abstention when that article has none. None for any other
        question.

        No sentence can answer it: the dateline is not content, and the closest sentences give an
        event's date (all four such gold questions were answered with one, in both modes). The
        article is the one the best quote comes from; the confidence is that quote's, with the
        checks run on this answer.
        """
        if not prepared.analysis.asks_publication or not prepared.hits:
            return None
        t0 = time.perf_counter()
        best = self.best_candidate(prepared)
        if best is None or not best.answer.citations:
            return self._abstain(prepared, prepared.mode, best)
        doc_id = best.answer.citations[0].doc_id
        article = prepared.searcher.article(doc_id)
        published_on = spell_date(article.date) if article is not None else None
        if article is None or article.dateline is None or published_on is None:
            return self._abstain(prepared, prepared.mode, best)
        line = article.dateline
        hit = Hit(doc_id=doc_id, title=article.title, date=article.date, paragraph=DATELINE, text=line.text,
                  start=line.start, end=line.end, score=best.answer.citations[0].score)
        text = f"“{_one_line(article.title)}” was published on {published_on} [1]."
        answer = self._answer(prepared, "extractive", text, [Citation.from_hit(hit, n=1, quote=line.text)])
        features = replace(best.features, checks=float(self._check(prepared, answer).ok),
                           answer_type=self._answer_type_matches(prepared, [[answer.text]])[0])
        candidate = Candidate(answer, features, self._confidence_of(features))
        prepared.timings["answer"] = time.perf_counter() - t0
        if not self.answers(candidate):
            return self._abstain(prepared, prepared.mode, best)
        return replace(answer, confidence=candidate.confidence, timings=dict(prepared.timings))

    # --- extractive -----------------------------------------------------------------

    def extractive(self, prepared: Prepared) -> Answer:
        """The most probably right of the candidate quotes, or an abstention showing the closest one."""
        t0 = time.perf_counter()
        best = self.best_candidate(prepared)
        prepared.timings["answer"] = time.perf_counter() - t0
        if best is None:
            return self._abstain(prepared, "extractive")
        if not self.answers(best):
            return self._abstain(prepared, "extractive", best)
        return replace(best.answer, confidence=best.confidence)

    def answers(self, candidate: Candidate) -> bool:
        """Whether a candidate is given as the answer: its confidence reaches the one threshold and
        it passes the answerability checks. The checks stay a veto because the ablation says so
        (``python -m evals.calibrate``): as a feature alone they leave the gold set's unanswerable
        questions answered (abstention 0.09); as a veto 0.41, at the same false abstentions."""
        return candidate.confidence >= self.settings.answer_threshold and candidate.features.checks >= 1.0

    def best_candidate(self, prepared: Prepared) -> Candidate | None:
        """The candidate that passes the checks with the highest calibrated confidence, else the
        most confident one (computed once per question)."""
        if prepared.best is None and prepared.sentences:
            candidates = self.extractive_candidates(prepared)
            prepared.best = max(candidates, key=lambda c: (c.features.checks, c.confidence)) if candidates else None
        return prepared.best

    def extractive_candidates(self, prepared: Prepared) -> list[Candidate]:
        """An answer per contender sentence (the best few by sentence score), each with its features
        and calibrated confidence. The reader reads every quote once, in one batch."""
        if not prepared.sentences:
            return []
        order = [int(i) for i in np.argsort(-prepared.sentence_scores, kind="stable")]
        top = float(prepared.sentence_scores[order[0]])
        ratio = self.settings.extractive_contender_ratio
        contenders = [i for i in order[: self.settings.extractive_contenders]
                      if prepared.sentence_scores[i] >= ratio * top or i == order[0]]
        seconds = {best: self._second_sentence(prepared, best, order) for best in contenders}
        span = {i: self._claim_span(prepared, i) for i in {*contenders, *seconds.values()} if i is not None}
        spans = list(dict.fromkeys(span[i] for best in contenders for i in (best, seconds[best]) if i is not None))
        logits = dict(zip(spans, self._reader_logits(prepared, spans), strict=True))
        margin = _hit_margin(prepared.hits)
        answers: list[tuple[int, tuple[tuple[int, int, int], ...], Answer]] = []
        seen: set[tuple[tuple[int, int, int], ...]] = set()
        for best in contenders:
            chosen = [best]
            second = seconds[best]
            # A second sentence joins only when the reader says it answers too (not just scores near).
            if second is not None and sigmoid(logits[span[second]]) >= self.settings.citation_min_support:
                chosen.append(second)
            quotes = tuple(sorted(span[i] for i in chosen))
            if quotes in seen:
                continue  # the same quotes as an earlier contender's answer
            seen.add(quotes)
            answers.append((best, quotes, self._extractive_answer(prepared, list(quotes), logits)))
        kinds = self._answer_type_matches(prepared, [[c.quote for c in answer.citations] for _, _, answer in answers])
        candidates: list[Candidate] = []
        for (best, quotes, answer), kind in zip(answers, kinds, strict=True):
            claim_logits = [logits[q] for q in quotes]
            features = AnswerFeatures(
                reader=min(claim_logits),
                reader_best=max(claim_logits),
                sentence=float(prepared.sentence_scores[best]),
                retrieval=prepared.confidence,
                checks=float(self._check(prepared, answer).ok),
                hit_margin=margin,
                answer_type=kind,
            )
            candidates.append(Candidate(answer, features, self._confidence_of(features)))
        return candidates

    def _answer_type_matches(self, prepared: Prepared, answers: Sequence[Sequence[str]]) -> list[float]:
        """For each answer (its claims: an extractive answer's quotes, an LLM answer's text), the
        probability that it holds the kind of thing asked for, its weakest claim's (1 without the
        answer-type model): every claim's named entities, read in one batch. The weakest claim,
        because on the answer's whole text a second quote that adds names raised it and the most
        confident candidate became a two-paragraph one (cross-validated citation precision 0.70 ->
        0.62 on the gold set, 0.60 -> 0.49 on SQuAD)."""
        if self.answer_types is None or self.tagger is None or not answers:
            return [1.0] * len(answers)
        t0 = time.perf_counter()
        claims = [[re.sub(r"\s+", " ", CITATION_MARKER.sub(" ", c)).strip() for c in a] for a in answers]
        entities = dict(zip(
            (flat := list(dict.fromkeys(c for a in claims for c in a))), self.tagger.entities(flat), strict=True
        ))
        prepared.timings["answer_type"] = prepared.timings.get("answer_type", 0.0) + time.perf_counter() - t0
        return [min((self.answer_types.match(prepared.analysis, entities[c]) for c in a), default=1.0) for a in claims]

    def _confidence_of(self, features: AnswerFeatures, model: ConfidenceModel | None = None) -> float:
        """The calibrated probability; for a candidate the checks veto, never more than an answer
        could show (measured: 8 of the 43 dev candidates failing the checks were right, 19%)."""
        p = (model or self.confidence_model).probability(features)
        return p if features.checks >= 1.0 else min(p, max(0.0, self.settings.answer_threshold - 0.01))

    def _second_sentence(self, prepared: Prepared, best: int, order: list[int]) -> int | None:
        """The sentence that may join ``best``: lists and answers spread over two places of one
        article. Never from another article: "around 100 participants", from the 2024 workshop's
        article, joined an answer about the HomeNet workshop and carried its headcount past the
        checks (the trust issue's near miss)."""
        doc_id = prepared.hits[prepared.sentences[best].hit].doc_id
        for idx in [i for i in order if i != best][:2]:
            if prepared.hits[prepared.sentences[idx].hit].doc_id != doc_id:
                continue
            if prepared.sentence_scores[idx] >= self.settings.extractive_second_ratio * prepared.sentence_scores[best]:
                return idx
        return None

    @staticmethod
    def _claim_span(prepared: Prepared, idx: int) -> tuple[int, int, int]:
        """(hit, start, end) of sentence ``idx``, with the sentence before it when it opens with a
        pronoun (it needs that one to make sense)."""
        ref = prepared.sentences[idx]
        start = ref.start
        if DEPENDENT_SENTENCE_OPENERS.match(ref.text) and idx > 0:
            prev = prepared.sentences[idx - 1]
            if prev.hit == ref.hit:
                start = prev.start
        return (ref.hit, start, ref.end)

    def _reader_logits(self, prepared: Prepared, spans: Sequence[tuple[int, int, int]]) -> list[float]:
        """The reader's logit that each quote answers the question (0 for all without a reader)."""
        if self.reader is None or not spans:
            return [0.0] * len(spans)
        passages = [reader_passage(prepared.hits[h].title, prepared.hits[h].text[a:b]) for h, a, b in spans]
        t0 = time.perf_counter()
        logits = self.reader.score(prepared.standalone, passages).tolist()
        prepared.timings["reader"] = prepared.timings.get("reader", 0.0) + time.perf_counter() - t0
        return [float(x) for x in logits]

    def _extractive_answer(
        self, prepared: Prepared, claims: list[tuple[int, int, int]], logits: dict[tuple[int, int, int], float]
    ) -> Answer:
        """The answer quoting these spans, in text order, one citation per paragraph."""
        support = {span: sigmoid(logit) for span, logit in logits.items()}
        claims = sorted(claims)
        merged: list[tuple[int, int, int]] = []
        merged_support: list[float] = []
        for claim in claims:  # overlapping spans of one paragraph become one quote
            if merged and merged[-1][0] == claim[0] and claim[1] <= merged[-1][2]:
                merged[-1] = (claim[0], merged[-1][1], max(claim[2], merged[-1][2]))
                merged_support[-1] = max(merged_support[-1], support.get(claim, 0.0))
            else:
                merged.append(claim)
                merged_support.append(support.get(claim, 0.0))
        citations: list[Citation] = []
        parts: list[str] = []
        for (hit_index, start, end), quote_support in zip(merged, merged_support, strict=True):
            hit = prepared.hits[hit_index]
            quote = hit.text[start:end]
            citation = next((c for c in citations if (c.doc_id, c.paragraph) == (hit.doc_id, hit.paragraph)), None)
            if citation is None:
                citation = Citation.from_hit(hit, n=len(citations) + 1, quote=quote, support=quote_support)
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
        return _ANSWER_PROMPT | model | StrOutputParser()

    def judge(self, inputs: dict[str, str], raw: str, when: str | None = None) -> float | None:
        """The model's log-odds that the paragraphs state the answer (``rag.llm.yes_log_odds``).

        ``after`` (the default setting) asks about the model's own answer, as the next turn of the
        same conversation; ``before`` asks with the question, ahead of any answer. Either prompt
        starts with the answer prompt's tokens, so the runtime's cache spares all but ~30 of them.
        """
        when = when or self.settings.llm_judge
        model = self.chat_model()
        if when == "off" or model is None or not supports_logprobs(model):
            return None
        messages: list[BaseMessage] = _ANSWER_PROMPT.format_messages(**inputs)
        if when == "before":
            messages[-1] = HumanMessage(content=f"{messages[-1].content}{JUDGE_BEFORE_PROMPT}")
        else:
            messages += [AIMessage(content=raw), HumanMessage(content=JUDGE_AFTER_PROMPT)]
        return yes_log_odds(model, messages)

    def llm_trial(
        self, question: str, history: History = None, judges: Sequence[str] = ("after", "before")
    ) -> LLMTrial:
        """Run LLM mode's steps once and ask every form of the judgment in ``judges``."""
        prepared = self.prepare(question, history, mode="llm")
        best = self.best_candidate(prepared)
        if best is None or not self.answers(best):
            return LLMTrial(gated=True)
        inputs, numbering = self.llm_inputs(prepared)
        t0 = time.perf_counter()
        raw = self.llm_chain().invoke(inputs)
        t1 = time.perf_counter()
        judgments = {when: self.judge(inputs, raw, when) for when in judges}
        seconds = {"llm": t1 - t0, "judge": time.perf_counter() - t1}
        final = self.finalize_llm(prepared, raw, numbering)  # prepared.judgment is None: the base confidence
        return LLMTrial(False, raw, judgments, prepared.llm_candidate, final, seconds)

    def llm_stream(self, prepared: Prepared) -> Iterator[AnswerEvent]:
        # One threshold for both modes: when not even the best quote is likely to answer, the
        # model is not asked (it would write ~8 s of text that could only be checked away).
        best = self.best_candidate(prepared)
        if best is None or not self.answers(best):
            yield (answer := self._abstain(prepared, "llm", best)).text
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
        raw = "".join(raw_parts)
        if not _refused(raw.strip()):  # judge() itself returns None when switched off
            t1 = time.perf_counter()
            prepared.judgment = self.judge(inputs, raw)
            if prepared.judgment is not None:
                prepared.timings["llm_judge"] = time.perf_counter() - t1
        yield self.finalize_llm(prepared, raw, numbering)

    def finalize_llm(self, prepared: Prepared, raw: str, numbering: list[int]) -> Answer:
        """Check markers and support of every sentence; renumber citations in marker order.

        Each sentence is attributed to the paragraph sentence that supports it (``rag.support``),
        then the reader scores that quote against the question: under ``citation_min_support`` the
        sentence is dropped (or marked, with ``drop_unsupported`` off). The answer's confidence is
        computed from what is left, like an extractive answer's; below the threshold (or failing
        the checks) the answer abstains. A refusal, or no sentence left, falls back to the
        extractive answer when that qualifies (``_fallback``).
        """
        t0 = time.perf_counter()
        raw = raw.strip()
        refused = _refused(raw)
        claims = [] if refused else [(t, m) for t, m in split_claims(raw) if not _MODEL_ABSTAINS.search(t)]
        if not claims:
            return self._fallback(prepared, t0) if self.settings.llm_refusal_fallback else self._abstain(prepared, "llm")
        given_indices = sorted(set(numbering))
        given = [prepared.hits[i] for i in given_indices]
        article_texts = {}
        for hit in given:
            article = prepared.searcher.article(hit.doc_id)
            if article is not None:
                article_texts[hit.doc_id] = article.title + "\n" + "\n".join(p.text for p in article.paragraphs)
        supports = self.support.attribute([c for c, _ in claims], given, article_texts)
        spans = [
            None if sup is None else (given_indices[sup.hit], sup.quote_start, sup.quote_end) for sup in supports
        ]
        logits = dict(zip(
            [sp for sp in spans if sp is not None],
            self._reader_logits(prepared, [sp for sp in spans if sp is not None]), strict=True,
        ))
        citations: list[Citation] = []
        parts: list[str] = []
        kept: list[float] = []
        for (claim, _markers), span in zip(claims, spans, strict=True):
            # The model's markers are a hint only; the checked support decides the citation.
            weak = span is None or (self.reader is not None and sigmoid(logits[span]) < self.settings.citation_min_support)
            if weak:
                if self.settings.drop_unsupported:
                    continue
                parts.append(f"{claim} {UNSUPPORTED_MARK}")
                kept.append(-10.0)  # an unsupported sentence left in sinks the answer's confidence
                continue
            assert span is not None
            hit = prepared.hits[span[0]]
            quote = hit.text[span[1] : span[2]]
            support = sigmoid(logits[span])
            kept.append(logits[span])
            existing = next((c for c in citations if (c.doc_id, c.paragraph) == (hit.doc_id, hit.paragraph)), None)
            if existing is None:
                existing = Citation.from_hit(hit, n=len(citations) + 1, quote=quote, support=support)
                citations.append(existing)
            elif quote not in existing.quote:
                merged = _merge_quote(hit.text, existing.quote, quote)
                citations[existing.n - 1] = Citation.from_hit(
                    hit, n=existing.n, quote=merged, support=max(support, existing.support or 0.0)
                )
            parts.append(f"{claim} [{existing.n}]")
        if not citations:
            return self._fallback(prepared, t0)
        prepared.timings["verify"] = time.perf_counter() - t0
        answer = self._answer(prepared, "llm", " ".join(parts), citations)
        best = self.best_candidate(prepared)
        features = AnswerFeatures(
            reader=min(kept), reader_best=max(kept),
            sentence=best.features.sentence if best else 0.0, retrieval=prepared.confidence,
            checks=float(self._check(prepared, answer).ok), hit_margin=_hit_margin(prepared.hits),
            answer_type=self._answer_type_matches(prepared, [[answer.text]])[0], judgment=prepared.judgment or 0.0,
        )
        judged = self.llm_confidence_model if prepared.judgment is not None else self.confidence_model
        candidate = Candidate(answer, features, self._confidence_of(features, judged))
        prepared.llm_candidate = candidate
        # Preferring whichever of the two is more confident returned the extractive quote for 33 of
        # the first 60 gold questions (its quote is the one chosen for the highest confidence), and
        # citation precision fell 0.94 -> 0.79: the model's answer stands whenever it qualifies.
        # One that does not qualify is an abstention, not a cue for the quote: the model read the
        # same passages and what it made of them failed (the quote is shown as the closest).
        if not self.answers(candidate):
            return self._abstain(prepared, "llm", best)
        return replace(answer, confidence=candidate.confidence)

    def _fallback(self, prepared: Prepared, started: float) -> Answer:
        """The model said "not in the articles", none of its sentences verified, or its answer is
        less likely right than the best quote.

        A small model refuses often when the answer is in front of it (about one answerable gold
        question in eight), so its refusal is a hint, not a verdict: the extractive answer stands
        when its calibrated confidence reaches the threshold; otherwise abstain.
        """
        prepared.timings["verify"] = time.perf_counter() - started
        answer = self.extractive(prepared)
        return replace(answer, mode="llm") if answer.abstained else answer

    # --- shared ---------------------------------------------------------------------

    def _abstain(self, prepared: Prepared, mode: str, closest: Candidate | None = None) -> Answer:
        """The plain "the articles don't say", with the closest passage found (shown as such)."""
        if closest is None and prepared.sentences:
            closest = self.best_candidate(prepared)
        return self._answer(
            prepared, mode, ABSTAIN_TEXT, [], abstained=True,
            confidence=closest.confidence if closest else 0.0,
            closest=closest.answer.citations[0] if closest and closest.answer.citations else None,
        )

    @staticmethod
    def _answer(
        prepared: Prepared, mode: str, text: str, citations: list[Citation], abstained: bool = False,
        confidence: float | None = None, closest: Citation | None = None,
    ) -> Answer:
        return Answer(
            question=prepared.question,
            text=text,
            citations=tuple(citations),
            abstained=abstained,
            mode=mode,
            standalone_question=prepared.standalone if prepared.standalone != prepared.question else None,
            timings=dict(prepared.timings),
            confidence=confidence,
            closest=closest,
        )

    def stream(self, question: str, history: History = None, mode: str | None = None, k: int | None = None) -> Iterator[AnswerEvent]:
        """Incremental answer text (str), then the final ``Answer``."""
        started = time.perf_counter()
        prepared = self.prepare(question, history, mode, k)
        published = self.publication(prepared)
        if published is not None:
            events: Iterator[AnswerEvent] = iter([published.text, published])
        elif prepared.mode == "llm":
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
        published = self.publication(prepared)
        if published is not None:
            return published
        if prepared.mode == "extractive":
            return self.extractive(prepared)
        final = None
        for event in self.llm_stream(prepared):
            if isinstance(event, Answer):
                final = event
        assert final is not None
        return final


_ANSWER_PROMPT = ChatPromptTemplate.from_messages([("system", ANSWER_SYSTEM_PROMPT), ("human", ANSWER_USER_PROMPT)])


def _refused(raw: str) -> bool:
    """The model's "not in the articles" (or nothing at all), rather than an answer."""
    return not raw or bool(_MODEL_ABSTAINS.search(raw) and len(raw) < 400 and not re.search(r"\[\d", raw))


def _hit_margin(hits: Sequence[Hit]) -> float:
    """How far the first hit is ahead of the second (fused scores)."""
    return float(hits[0].score - hits[1].score) if len(hits) > 1 else float(hits[0].score) if hits else 0.0


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
