"""The Markdown report (``report.md``) and the compact summary table printed after a run.

Both read the dict ``results.json`` holds (``evals.run.evaluate``), so a saved run can be
re-rendered without the system.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.0f}"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return lines


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


RETRIEVAL_COLUMNS = ("hit@1", "hit@3", "hit@5", "hit@10", "recall@5", "mrr@10", "ndcg@10")
ANSWER_COLUMNS = (
    "accuracy",
    "exact_match",
    "f1",
    "correct",
    "citation_precision",
    "citation_recall",
    "abstention_precision",
    "abstention_recall",
    "coverage",
    "false_abstention_rate",
)

#: The selective-answering columns (``evals.answers.selective_metrics`` and the decisions' scores).
SELECTIVE_COLUMNS = (
    "aurc",
    "aurc_oracle",
    "accuracy@80%",
    "accuracy@90%",
    "coverage",
    "risk",
    "abstention_precision",
    "abstention_recall",
    "false_abstention_rate",
)


def _selective_lines(mode: str, a: dict[str, Any], plots: dict[str, str]) -> list[str]:
    """The "Selective answering" part of one mode's section (absent in results written before it)."""
    m, c = a["metrics"], a["counts"]
    if "aurc" not in m:
        return []
    lines = ["", f"### Selective answering: {mode}", ""]
    lines += _md_table(list(SELECTIVE_COLUMNS), [[m.get(k) for k in SELECTIVE_COLUMNS]])
    with_confidence = c.get("with_confidence")
    lines += [
        "",
        f"{with_confidence if with_confidence is not None else '–'} of {c['items']} answers carry a confidence "
        "(a missing one ranks as 0); "
        f"{c.get('abstained_with_closest', '–')} abstention(s) came with a closest passage.",
    ]
    if with_confidence == 0:
        lines.append(
            "- No answer carries a confidence, so the ranking is flat: AURC is the overall risk, "
            "not a measure of the confidence."
        )
    if "risk_coverage" in plots:
        lines += ["", f"![risk–coverage]({plots['risk_coverage']})"]
    return lines


def render_report(results: dict[str, Any], plots: dict[str, str], baseline_lines: Sequence[str] = ()) -> str:
    cfg = results["config"]
    lines = [
        "# RAG evaluation report",
        "",
        f"- created {results['created']}, git `{results['git']}`; gold `{cfg.get('gold')}` "
        f"({cfg['items']} items, {cfg['answerable']} answerable), corpus `{cfg.get('corpus')}`",
        f"- answer modes: {', '.join(cfg['modes']) or 'none (retrieval only)'}; retrievers: {', '.join(cfg['retrievers'])}",
        f"- run time {cfg['seconds']:.0f} s (latencies are wall-clock on this machine; a shared machine inflates them)",
    ]
    if cfg.get("notes"):
        lines += [f"- {note}" for note in cfg["notes"]]
    lines += [
        "",
        "## How it is scored",
        "",
        "- **Relevance is paragraph-level.** Each gold quote is located in its file; the gold paragraphs are those "
        "whose `[start, end)` contains the quote (a quote crossing a paragraph break: each paragraph holding ≥25% "
        "of it). Hit@k / recall@k / MRR@10 / nDCG@10 (binary gains, ideal DCG over min(k, #gold paragraphs), "
        "repeated paragraphs in a ranking dropped, keeping the first).",
        "- **Queries.** `hybrid` is the system's own search on the question as the system sees it: follow-ups "
        "are rewritten first with `rag.followup.rewrite_followup` (as `kb.answer` does). `dense`, `bm25` and "
        "`langchain` get the raw question (a stock pipeline has no rewrite); `hybrid_raw` is the system's search "
        "on the raw question, to separate the rewrite's effect.",
    ]
    lc = cfg.get("langchain_baseline")
    if lc:
        lines.append(
            f"- **LangChain baseline mapping.** `RecursiveCharacterTextSplitter(chunk_size={lc['chunk_size']}, "
            f"chunk_overlap={lc['chunk_overlap']}, add_start_index=True)` over each file's full text "
            f"({lc['chunks']} chunks, {lc['mean_chars_per_chunk']:.0f} chars and "
            f"{lc['mean_paragraphs_per_chunk']:.1f} paragraphs per chunk on average), same embedder, "
            "`faiss.IndexFlatIP` on normalized vectors. A chunk is mapped to every paragraph its "
            "`[start_index, start_index+len)` span overlaps and **counts as a hit for every gold paragraph it "
            "overlaps**; k counts chunks. This is generous to the baseline: its top 5 carries more text "
            "(see the context columns)."
        )
    excluded = results["excluded_from_retrieval"]
    if excluded:
        lines.append(
            f"- {len(excluded)} answerable item(s) have no gold paragraph (their quotes sit in a title or dateline, "
            f"which is article metadata, not a paragraph) and are left out of retrieval and citation scores: "
            + ", ".join(excluded)
            + "."
        )
    lines.append(
        "- **Answers** are scored on the answer text with `[n]` markers removed: must-include accuracy (every group, "
        "any alternative, case-insensitive, numbers as digits or words), SQuAD EM / token F1 (max over aliases) — "
        "over answerable items, an abstention scores 0. `correct` = must-include for answerable items, abstention "
        "for unanswerable ones, over all items. Citation precision/recall: over answered, answerable items with "
        "gold paragraphs. Abstention precision/recall as usual; coverage = answered / all; false abstention rate "
        "over answerable items."
    )
    lines.append(
        "- **Selective answering.** Each item gets its answer's `confidence` (none: 0) and `correct_if_answered`: "
        "an answer given is graded as above (answering an unanswerable question is wrong); an abstention's "
        "closest passage is graded as if its quote were the answer (must-include; unanswerable: wrong; no "
        "closest passage: wrong). Sorted by confidence (ties: the expected risk over their orders), answering "
        "the top i of n gives coverage i/n and risk = 1 − accuracy among them. **AURC** = mean risk over the n "
        "points (lower is better; `aurc_oracle`: the same answers ranked perfectly). **accuracy@80%/90%**: "
        "accuracy of the ⌈0.8n⌉ / ⌈0.9n⌉ most confident. At the system's own decisions: `coverage` "
        "(answered / all), `risk` (wrong / answered), abstention precision/recall and false abstention rate "
        "as above."
    )

    summary = results["retrieval"]["summary"]
    if summary:
        lines += ["", "## Retrieval", ""]
        header = ["retriever", "n", *RETRIEVAL_COLUMNS, "ctx chars@5", "paras@5", "p50 ms", "p95 ms"]
        rows = [
            [
                name,
                s["n"],
                *[s["metrics"].get(c) for c in RETRIEVAL_COLUMNS],
                round(s["mean_context_chars@5"] or 0),
                _fmt(s["mean_paragraphs@5"], 1),
                _ms(s["latency"]["p50"]),
                _ms(s["latency"]["p95"]),
            ]
            for name, s in summary.items()
        ]
        lines += _md_table(header, rows)
        lines += ["", *[f"- `{name}`: {s['label']}" for name, s in summary.items()]]
        for key, title in (("hit_at_k", "hit@k"), ("retrieval_by_type", "hit@5 by type")):
            if key in plots:
                lines += ["", f"![{title}]({plots[key]})"]
        types = sorted({t for s in summary.values() for t in s["by_type"]})
        lines += ["", "hit@5 by type:", ""]
        lines += _md_table(
            ["type", *summary],
            [[t, *[(s["by_type"].get(t) or {}).get("hit@5") for s in summary.values()]] for t in types],
        )

    for mode, a in results["answers"].items():
        m, c = a["metrics"], a["counts"]
        lines += ["", f"## Answers: {mode}", ""]
        lines += _md_table(list(ANSWER_COLUMNS), [[m[k] for k in ANSWER_COLUMNS]])
        lines += [
            "",
            f"{c['items']} items ({c['answerable']} answerable, {c['unanswerable']} unanswerable); abstained on "
            f"{c['abstained']}; errors {c['errors']}; accuracy when answered {_fmt(m['accuracy_when_answered'])}; "
            f"citation precision over {c['with_citation_precision']} items.",
            "",
            "Latency per stage (ms):",
            "",
        ]
        lines += _md_table(
            ["stage", "n", "p50", "p95", "mean"],
            [[s, v["n"], _ms(v["p50"]), _ms(v["p95"]), _ms(v["mean"])] for s, v in a["latency"].items()],
        )
        lines += _selective_lines(mode, a, plots)
        lines += ["", "By type:", ""]
        lines += _md_table(
            ["type", "n", "correct", "accuracy", "f1", "abstained", "citation precision"],
            [
                [t, v["n"], v["correct"], v["accuracy"], v["f1"], v["abstained"], v["citation_precision"]]
                for t, v in a["by_type"].items()
            ],
        )
        lines += ["", f"### Failures ({len(a['failures'])})", ""]
        for f in a["failures"]:
            standalone = f" (rewritten: “{_one_line(f['standalone'])}”)" if f.get("standalone") else ""
            lines += [
                f"- **{f['id']}** [{f['type']}] {f['reason']}",
                f"  - Q: {_one_line(f['question'])}{standalone}",
                f"  - A: {_one_line(f['answer'])}",
                f"  - gold: {_one_line(' / '.join(f['gold_answers']) or '(unanswerable)')}",
                f"  - cited: {', '.join(f'{d}#{n}' for d, n in f['cited']) or '–'}; gold paragraphs: "
                f"{', '.join(f'{d}#{n}' for d, n in f['gold_paragraphs']) or '–'}",
            ]
    if results["answers"]:
        for key, title in (("accuracy_by_type", "correct by type"), ("latency", "latency")):
            if key in plots:
                lines += ["", f"![{title}]({plots[key]})"]
    elif "latency" in plots:
        lines += ["", f"![latency]({plots['latency']})"]
    if baseline_lines:
        lines += ["", "## Against the committed baseline (evals/baseline.json)", "", *baseline_lines]
    return "\n".join(lines) + "\n"


def summary_table(results: dict[str, Any]) -> str:
    """The compact table printed at the end of a run."""
    out: list[str] = []
    summary = results["retrieval"]["summary"]
    if summary:
        out.append(
            f"{'retriever':<12}{'n':>5}"
            + "".join(f"{c:>9}" for c in ("hit@1", "hit@3", "hit@5", "recall@5", "mrr@10", "ndcg@10", "p50 ms"))
        )
        for name, s in summary.items():
            m = s["metrics"]
            cells = [
                m.get("hit@1"),
                m.get("hit@3"),
                m.get("hit@5"),
                m.get("recall@5"),
                m.get("mrr@10"),
                m.get("ndcg@10"),
            ]
            out.append(
                f"{name:<12}{s['n']:>5}" + "".join(f"{_fmt(v):>9}" for v in cells) + f"{_ms(s['latency']['p50']):>9}"
            )
    for mode, a in results["answers"].items():
        m = a["metrics"]
        if not out or not out[-1].startswith("mode"):
            out.append("")
            out.append(
                f"{'mode':<12}"
                + "".join(
                    f"{c:>9}"
                    for c in (
                        "acc",
                        "EM",
                        "F1",
                        "correct",
                        "cit-P",
                        "cit-R",
                        "abst-P",
                        "abst-R",
                        "cover",
                        "p50 ms",
                        "p95 ms",
                    )
                )
            )
        lat = a["latency"].get("total") or a["latency"]["wall"]
        cells = [
            m["accuracy"],
            m["exact_match"],
            m["f1"],
            m["correct"],
            m["citation_precision"],
            m["citation_recall"],
            m["abstention_precision"],
            m["abstention_recall"],
            m["coverage"],
        ]
        out.append(
            f"{mode:<12}" + "".join(f"{_fmt(v):>9}" for v in cells) + f"{_ms(lat['p50']):>9}{_ms(lat['p95']):>9}"
        )
    selective = [(mode, a["metrics"]) for mode, a in results["answers"].items() if "aurc" in a["metrics"]]
    if selective:
        out.append("")
        out.append(
            f"{'selective':<12}"
            + "".join(f"{c:>9}" for c in ("AURC", "oracle", "acc@80", "acc@90", "cover", "risk", "abst-P", "abst-R"))
            + f"{'false-abst':>11}"
        )
        for mode, m in selective:
            cells = [m.get(k) for k in SELECTIVE_COLUMNS[:-1]]
            out.append(
                f"{mode:<12}" + "".join(f"{_fmt(v):>9}" for v in cells) + f"{_fmt(m['false_abstention_rate']):>11}"
            )
    return "\n".join(out)
