"""PNG plots of an evaluation's results (the dict ``results.json`` holds): hit@k, hit@5 and
share correct by question type (whatever labels the gold file uses), the risk–coverage curve of
each answer mode, latency per question."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from evals.retrieval import K


def make_plots(results: dict[str, Any], out: Path) -> dict[str, str]:
    """PNG plots in ``out``; returns {name: file name}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files: dict[str, str] = {}
    summary = results["retrieval"]["summary"]
    if summary:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for name, s in summary.items():
            ax.plot(range(1, K + 1), s["hit_curve"], marker="o", label=name)
        ax.set_xlabel("k (paragraphs; chunks for langchain)")
        ax.set_ylabel("hit@k")
        ax.set_ylim(0, 1.02)
        ax.set_xticks(range(1, K + 1))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title("Retrieval: share of questions with a gold paragraph in the top k")
        fig.tight_layout()
        fig.savefig(out / "hit_at_k.png", dpi=110)
        plt.close(fig)
        files["hit_at_k"] = "hit_at_k.png"

        types = sorted({t for s in summary.values() for t in s["by_type"]})
        fig, ax = plt.subplots(figsize=(8, 4.2))
        width = 0.8 / max(len(summary), 1)
        for i, (name, s) in enumerate(summary.items()):
            values = [(s["by_type"].get(t) or {}).get("hit@5") or 0.0 for t in types]
            ax.bar(np.arange(len(types)) + i * width, values, width, label=name)
        ax.set_xticks(np.arange(len(types)) + width * (len(summary) - 1) / 2, types, rotation=20)
        ax.set_ylabel("hit@5")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7)
        ax.set_title("Retrieval hit@5 by question type")
        fig.tight_layout()
        fig.savefig(out / "retrieval_by_type.png", dpi=110)
        plt.close(fig)
        files["retrieval_by_type"] = "retrieval_by_type.png"

    answers = results["answers"]
    if answers:
        types = sorted({t for a in answers.values() for t in a["by_type"]})
        fig, ax = plt.subplots(figsize=(8, 4.2))
        width = 0.8 / len(answers)
        for i, (mode, a) in enumerate(answers.items()):
            values = [a["by_type"][t]["correct"] or 0.0 if t in a["by_type"] else 0.0 for t in types]
            ax.bar(np.arange(len(types)) + i * width, values, width, label=mode)
        ax.set_xticks(np.arange(len(types)) + width * (len(answers) - 1) / 2, types, rotation=20)
        ax.set_ylabel("correct (must-include; abstention for unanswerable)")
        ax.set_ylim(0, 1.05)
        ax.legend()
        ax.set_title("Answers: share correct by question type")
        fig.tight_layout()
        fig.savefig(out / "accuracy_by_type.png", dpi=110)
        plt.close(fig)
        files["accuracy_by_type"] = "accuracy_by_type.png"

    curves = {mode: a["risk_coverage"] for mode, a in answers.items() if (a.get("risk_coverage") or {}).get("coverage")}
    if curves:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for mode, rc in curves.items():
            (line,) = ax.plot(rc["coverage"], rc["risk"], label=f"{mode} (AURC {_aurc_label(answers[mode])})")
            point = rc.get("operating_point") or {}
            if point.get("coverage") is not None and point.get("risk") is not None:
                ax.plot([point["coverage"]], [point["risk"]], marker="o", color=line.get_color(), linestyle="none")
        ax.set_xlabel("coverage (share of questions answered, most confident first)")
        ax.set_ylabel("risk (share of those answers that are wrong)")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title("Selective answering: risk–coverage (dots: the system's own decisions)")
        fig.tight_layout()
        fig.savefig(out / "risk_coverage.png", dpi=110)
        plt.close(fig)
        files["risk_coverage"] = "risk_coverage.png"

    series: dict[str, list[float]] = {}
    for mode, a in answers.items():
        series[f"answer/{mode} total"] = [r["timings"].get("total", r["wall"]) * 1000 for r in a["items"]]
    for name, records in results["retrieval"]["items"].items():
        if name in ("hybrid", "dense", "bm25", "langchain"):
            series[f"retrieve/{name}"] = [r["seconds"] * 1000 for r in records]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    values = [v for vs in series.values() for v in vs]
    if values:
        bins = np.linspace(0, max(values) * 1.001 + 1e-9, 40)
        for label, vs in series.items():
            ax.hist(vs, bins=bins, alpha=0.5, label=label, histtype="stepfilled")
        ax.set_xlabel("milliseconds")
        ax.set_ylabel("questions")
        ax.legend(fontsize=8)
        ax.set_title("Latency per question")
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=110)
        files["latency"] = "latency.png"
    plt.close(fig)
    return files


def _aurc_label(answers: dict[str, Any]) -> str:
    value = answers["metrics"].get("aurc")
    return "–" if value is None else f"{value:.3f}"
