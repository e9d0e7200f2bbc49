"""The ``rag`` command: index, search, ask, eval, serve.

Expected failures (bad corpus, bad question, damaged index, missing model) print one clear line
and exit non-zero; set ``RAG_DEBUG=1`` to see tracebacks.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rag.domain import paragraph_label
from rag.errors import RagError

if TYPE_CHECKING:
    from rag.domain import Answer
    from rag.settings import Settings

EXIT_ERROR = 2
#: The public SQuAD 2.0 articles shared with the project (the reader's training data).
DEFAULT_SQUAD = Path("../shared/datasets/squad2-train-articles/squad2-train-10-articles.json")
EXIT_PARTIAL = 1  # the index was built, but some files were skipped


def _add_corpus_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", type=Path, default=None, help="folder of .txt/.md articles (default: seeds/)")
    parser.add_argument("--index", type=Path, default=None, help="index folder (default: index/)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Cited answers from a folder of news articles, offline.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="build or update the index (only changed files are re-embedded)")
    _add_corpus_args(p)
    p.add_argument("--rebuild", action="store_true", help="re-embed everything (recovers a damaged index)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local (default), or ray: parse/chunk as Ray Data tasks, embed on a pool of actors "
                   '(pip install -e ".[ray]")')
    p.add_argument("--address", default=None, help="a Ray cluster address (default: a local Ray runtime)")
    p.add_argument("--workers", type=int, default=2, help="embedding actors with --engine ray (default 2)")

    p = sub.add_parser("adapt", help="fine-tune the embedder on the corpus (CPU, a few minutes; no labels)")
    p.add_argument("--corpus", type=Path, default=None, help="folder of .txt/.md articles (default: seeds/)")
    p.add_argument("--out", type=Path, default=None, help="model folder (default: models/embedder-adapted)")
    p.add_argument("--epochs", type=int, default=None, help="passes over the data (default 2; with --squad 1)")
    p.add_argument("--base", default=None, help="model to start from (default: models/embedder-qa when present, "
                   "else the packaged all-MiniLM-L6-v2; with --squad the packaged one)")
    p.add_argument("--squad", type=Path, action="append", default=None,
                   help="train on the answerable questions of this SQuAD-format JSON instead (supervised; "
                   "repeatable; the shipped models/embedder-qa: `make embedder-qa`)")
    p.add_argument("--hold-out-corpus", type=Path, action="append", default=None,
                   help="with --squad: a corpus folder the evals score; its articles are never trained on "
                   "(repeatable; default: the shared SQuAD corpus and seeds/)")
    p.add_argument("--max-questions", type=int, default=0, help="with --squad: at most this many (0: all)")
    p.add_argument("--rounds", type=int, default=None,
                   help="with --squad: rounds of hard-negative mining, each with the model the round before "
                   "trained (default: rag.adapt.QuestionAdaptConfig's, the shipped model's)")

    p = sub.add_parser(
        "train-reader", help="train the reader (the cross-encoder that reranks) on SQuAD-format data, on the CPU"
    )
    p.add_argument("--squad", type=Path, default=DEFAULT_SQUAD, help=f"SQuAD 1.1/2.0 JSON (default: {DEFAULT_SQUAD})")
    p.add_argument("--out", type=Path, default=None, help="model folder (default: models/reader)")
    p.add_argument(
        "--hold-out-corpus", type=Path, action="append", default=None,
        help="a corpus folder the evals score: its articles are never trained on (repeatable; default: the "
        "shared SQuAD corpus)",
    )
    p.add_argument("--layers", type=int, default=6, help="encoder layers kept from the base (1-6; default 6)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-questions", type=int, default=2000, help="cap on training questions (0: all; default 2000)")
    p.add_argument("--learning-rate", type=float, default=7e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--base", default=None, help="encoder to start from (default: the packaged all-MiniLM-L6-v2)")
    p.add_argument("--init", default="", help="a trained reader folder to continue from (a second stage)")
    p.add_argument("--pair-kinds", default="", help="comma-separated pair kinds to train on (default: all)")
    p.add_argument("--max-length", type=int, default=256, help="tokens per (question, passage) pair (default 256)")
    p.add_argument("--exclude-sample", type=int, default=0,
                   help="leave out the questions a run with --max-questions N (same seed) sampled: e.g. 2000, the "
                   "shipped reader's, to continue on the questions it never saw")
    p.add_argument("--generated", default="", help="LLM-written questions to train on too (rag generate-questions)")
    p.add_argument("--generated-near-misses", action="store_true",
                   help="also train on the generated file's unanswerable near misses (as negatives)")

    p = sub.add_parser(
        "train-answer-types",
        help="count what kind of entity answers each kind of question (SQuAD-format data, spaCy NER): the answer-type check",
    )
    p.add_argument("--squad", type=Path, default=DEFAULT_SQUAD, help=f"SQuAD 1.1/2.0 JSON (default: {DEFAULT_SQUAD})")
    p.add_argument("--out", type=Path, default=None, help="model folder (default: models/answer-types)")
    p.add_argument(
        "--hold-out-corpus", type=Path, action="append", default=None,
        help="a corpus folder the evals score: its articles are never counted (repeatable; default: the shared "
        "SQuAD corpus)",
    )

    p = sub.add_parser(
        "generate-questions",
        help="the local LLM writes questions for each paragraph (cached, filtered by the searcher): reader training data",
    )
    _add_corpus_args(p)
    p.add_argument("--out", type=Path, default=None,
                   help="JSONL cache and output (default: data/generated/seeds-questions.jsonl)")
    p.add_argument("--top-k", type=int, default=3, help="keep a question only if the searcher ranks its paragraph "
                   "this high (default 3)")
    p.add_argument("--limit", type=int, default=0, help="only the first N paragraphs (0: all)")

    p = sub.add_parser("search", help="list the paragraphs that best match a query")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=5, help="number of paragraphs (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_corpus_args(p)

    p = sub.add_parser("ask", help="answer a question with cited sources")
    p.add_argument("question")
    p.add_argument("--mode", choices=["auto", "extractive", "llm"], default=None)
    p.add_argument("-k", type=int, default=None, help="paragraphs given to the answerer")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_corpus_args(p)

    # The eval's own parser (evals/run.py) owns its options: everything after "eval" goes there.
    sub.add_parser("eval", help="score retrieval and answers on a gold Q&A file (rag eval --help)", add_help=False)

    p = sub.add_parser("serve", help="start the chat UI (127.0.0.1 only unless --host says otherwise)")
    p.add_argument("--host", default=None, help="address to listen on (default: RAG_UI_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default: RAG_UI_PORT, 7860)")
    _add_corpus_args(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "eval":
        args.eval_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        return _run(args)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # disk full, no permission: the environment, not a bug (the old index stays)
        if os.environ.get("RAG_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so plainly; the traceback is one variable away
        if os.environ.get("RAG_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (set RAG_DEBUG=1 for details)", file=sys.stderr)
        return EXIT_ERROR


def _run(args: argparse.Namespace) -> int:
    if args.command == "index":
        return _cmd_index(args)
    if args.command == "search":
        return _cmd_search(args)
    if args.command == "adapt":
        return _cmd_adapt(args)
    if args.command == "ask":
        return _cmd_ask(args)
    if args.command == "train-reader":
        return _cmd_train_reader(args)
    if args.command == "train-answer-types":
        return _cmd_train_answer_types(args)
    if args.command == "generate-questions":
        return _cmd_generate_questions(args)
    if args.command == "eval":
        from evals.run import main as eval_main

        return eval_main(args.eval_args)
    if args.command == "serve":
        from ui.app import serve

        serve(corpus_dir=args.corpus, index_dir=args.index, host=args.host, port=args.port)
        return 0
    raise AssertionError(args.command)


def _cmd_index(args: argparse.Namespace) -> int:
    if args.engine == "ray":
        from rag.ray_build import build_with_ray
        from rag.settings import get_settings

        settings = get_settings()
        try:
            report = build_with_ray(args.corpus or settings.corpus_dir, args.index or settings.index_dir, settings,
                                    address=args.address, workers=args.workers, rebuild=args.rebuild)
        except ImportError as exc:
            raise RagError(f'--engine ray needs Ray: pip install -e ".[ray]" ({exc})') from exc
    else:
        from rag.knowledge import KnowledgeBase

        kb = KnowledgeBase(args.corpus, args.index)
        report = kb.store.build(kb.corpus_dir, rebuild=args.rebuild, progress=None)
    print(report.summary())
    for doc_id, reason in report.skipped.items():
        print(f"skipped {doc_id}: {reason}", file=sys.stderr)
    return EXIT_PARTIAL if report.skipped else 0


def _cmd_adapt_on_questions(args: argparse.Namespace, settings: Settings) -> int:
    from rag.adapt import QuestionAdaptConfig, adapt_on_questions
    from rag.settings import QA_EMBEDDER_DIR

    for squad in args.squad:
        if not squad.is_file():
            raise RagError(f"no SQuAD file at {squad}")
    hold_out = args.hold_out_corpus if args.hold_out_corpus is not None else [DEFAULT_SQUAD.parent / "corpus",
                                                                             Path("seeds")]
    try:
        config = QuestionAdaptConfig(epochs=args.epochs or 1, max_questions=args.max_questions,
                                     **({"rounds": args.rounds} if args.rounds is not None else {}))
    except ValueError as exc:
        raise RagError(str(exc)) from exc
    out = adapt_on_questions(args.squad, hold_out, args.out or QA_EMBEDDER_DIR, settings, config)
    print(f"question-tuned embedder written to {out}")
    return 0


def _cmd_adapt(args: argparse.Namespace) -> int:
    from rag.adapt import AdaptConfig, adapt_embedder
    from rag.settings import ADAPTED_EMBEDDER_DIR, QA_EMBEDDER_DIR, Settings, packaged_embedding_model

    if args.squad is not None:
        return _cmd_adapt_on_questions(args, Settings(embedding_model=args.base or packaged_embedding_model()))
    # The corpus adaptation starts from the product's own default embedder, so the adapted model
    # (which then takes precedence) does not fall back behind it. Not measured on this base yet.
    base = args.base or (str(QA_EMBEDDER_DIR) if (QA_EMBEDDER_DIR / "modules.json").is_file()
                         else packaged_embedding_model())
    settings = Settings(embedding_model=base)
    try:
        config = AdaptConfig(epochs=args.epochs or 2)
    except ValueError as exc:
        raise RagError(str(exc)) from exc
    out = adapt_embedder(args.corpus or settings.corpus_dir, args.out or ADAPTED_EMBEDDER_DIR, settings, config)
    print(f"adapted embedder written to {out}")
    if (args.out or ADAPTED_EMBEDDER_DIR).resolve() != ADAPTED_EMBEDDER_DIR.resolve():
        print(f"use it with RAG_EMBEDDING_MODEL={out.resolve()}")
    print("the index re-embeds with it on the next `rag index` (or first use)")
    return 0


def _cmd_train_reader(args: argparse.Namespace) -> int:
    from rag.reader_training import ReaderTrainConfig, train_reader
    from rag.settings import READER_DIR, packaged_embedding_model

    if not args.squad.is_file():
        raise RagError(f"no training file at {args.squad} (give one with --squad)")
    try:
        config = ReaderTrainConfig(layers=args.layers, epochs=args.epochs, max_questions=args.max_questions,
                                   learning_rate=args.learning_rate, seed=args.seed, max_length=args.max_length,
                                   init=args.init, pair_kinds=tuple(k for k in args.pair_kinds.split(",") if k),
                                   exclude_sample=args.exclude_sample, generated=args.generated,
                                   generated_near_misses=args.generated_near_misses)
    except ValueError as exc:
        raise RagError(str(exc)) from exc
    hold_out = args.hold_out_corpus if args.hold_out_corpus is not None else [DEFAULT_SQUAD.parent / "corpus"]
    out = args.out or READER_DIR
    report = train_reader(args.squad, out, args.base or packaged_embedding_model(), config,
                          hold_out_corpora=[p for p in hold_out if p.is_dir()])
    print(f"reader written to {out} ({report['training_seconds'] / 60:.1f} min; model card: {out / 'README.md'})")
    if out.resolve() != READER_DIR.resolve():
        print(f"use it with RAG_READER_MODEL={out.resolve()}")
    return 0


def _cmd_train_answer_types(args: argparse.Namespace) -> int:
    from rag.answer_type_training import train_answer_types
    from rag.settings import ANSWER_TYPES_DIR

    if not args.squad.is_file():
        raise RagError(f"no training file at {args.squad} (give one with --squad)")
    hold_out = args.hold_out_corpus if args.hold_out_corpus is not None else [DEFAULT_SQUAD.parent / "corpus"]
    out = args.out or ANSWER_TYPES_DIR
    report = train_answer_types(args.squad, out, [p for p in hold_out if p.is_dir()])
    print(f"answer types of {report['questions']} questions written to {out} ({report['seconds']:.0f} s; "
          f"never counted: {', '.join(report['held_out_articles']) or 'none'})")
    if out.resolve() != ANSWER_TYPES_DIR.resolve():
        print(f"use it with RAG_ANSWER_TYPE_MODEL={out.resolve()}")
    return 0


def _cmd_generate_questions(args: argparse.Namespace) -> int:
    from rag.knowledge import load
    from rag.question_generation import DEFAULT_OUT, generate_for_corpus

    out = args.out or DEFAULT_OUT
    report = generate_for_corpus(load(args.corpus, args.index), out, top_k=args.top_k, limit=args.limit)
    print(f"{report['kept']} questions kept of {report['written']} written for {report['paragraphs']} paragraphs "
          f"({report['unanswerable']} unanswerable near misses; {report['cached']} paragraphs from the cache; "
          f"{report['seconds']:.0f} s): {out}")
    if report["rejected"]:
        print("rejected: " + ", ".join(f"{n} {why}" for why, n in sorted(report["rejected"].items())))
    return 0


def _check_k(k: int | None) -> None:
    if k is not None and not 1 <= k <= 100:
        raise RagError(f"-k must be between 1 and 100 (got {k})")


def _cmd_search(args: argparse.Namespace) -> int:
    from rag.knowledge import load

    _check_k(args.k)
    kb = load(args.corpus, args.index)
    hits = kb.search(args.query, args.k)
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], ensure_ascii=False, indent=2))
        return 0
    for rank, hit in enumerate(hits, start=1):
        date = f", {hit.date}" if hit.date else ""
        print(f"{rank}. [{hit.score:.3f}] {hit.title}{date} — paragraph {hit.paragraph} ({hit.doc_id})")
        print(f"   {hit.text}\n")
    return 0


def _cmd_ask(args: argparse.Namespace) -> int:
    from rag.knowledge import load

    _check_k(args.k)
    kb = load(args.corpus, args.index)
    answer = kb.answer(args.question, mode=args.mode, k=args.k)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print_answer(answer)
    print(f"\n({answer.mode} mode)", file=sys.stderr)
    return 0


#: Below this confidence an answer given (not abstained on) is printed as weakly supported.
WEAK_CONFIDENCE = 0.5


def print_answer(answer: Answer) -> None:
    """An answer as ``rag ask`` prints it: the text, its confidence and grounding, the sources
    (with each one's support) and, for an abstention, the closest passage labelled as such."""
    print(answer.text)
    if answer.confidence is not None:
        weak = not answer.abstained and answer.confidence < WEAK_CONFIDENCE
        print(f"\nConfidence: {answer.confidence:.2f} ({answer.grounding})" + (" — weakly supported" if weak else ""))
    if answer.citations:
        print("\nSources:")
        for c in answer.citations:
            date = f", {c.date}" if c.date else ""
            support = f" · support {c.support:.2f}" if c.support is not None else ""
            print(f"[{c.n}] {c.title}{date} — {paragraph_label(c.paragraph)} ({c.doc_id}){support}")
            print(f"    “{c.quote}”")
    if answer.abstained and answer.closest is not None:
        c = answer.closest
        date = f", {c.date}" if c.date else ""
        where = f"{c.title}{date} — {paragraph_label(c.paragraph)} ({c.doc_id})"
        print(f"\nClosest passage (may not answer your question): {where}")
        print(f"    “{c.quote}”")


if __name__ == "__main__":
    sys.exit(main())
