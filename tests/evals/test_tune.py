"""evals.tune scores weight vectors exactly as the searcher ranks (first stage, then the reader)."""

from __future__ import annotations

import numpy as np

from evals.tune import FIRST_STAGE, READER, SuiteData, evaluate, search_weights
from rag.settings import RETRIEVAL_SIGNALS


def _naive(features: np.ndarray, gold: np.ndarray, w: np.ndarray, rerank: int) -> tuple[float, float, float]:
    first = features[:, FIRST_STAGE] @ w[FIRST_STAGE]
    score = first.copy()
    top = np.argsort(-first, kind="stable")[:rerank]
    score[top] += w[READER] * features[top, READER]
    order = np.argsort(-score, kind="stable")
    rank = next(i + 1 for i, j in enumerate(order) if gold[j])
    return float(rank == 1), float(rank <= 5), 1.0 / rank if rank <= 10 else 0.0


def test_vectorized_scoring_matches_a_plain_ranking() -> None:
    rng = np.random.default_rng(0)
    n_q, n_c, n_f = 40, 25, len(RETRIEVAL_SIGNALS)
    feats = rng.random((n_q, n_c, n_f)).astype(np.float32)
    valid = np.ones((n_q, n_c), dtype=bool)
    valid[:, 20:] = rng.random((n_q, 5)) < 0.5  # ragged candidate lists
    feats[~valid] = 0
    gold = np.zeros((n_q, n_c), dtype=bool)
    gold[np.arange(n_q), rng.integers(0, 20, n_q)] = True
    data = SuiteData("s", feats, valid, gold, [f"a{i % 3}" for i in range(n_q)])
    w = rng.random(n_f).astype(np.float32)
    for rerank in (3, 10):
        got = evaluate(data, w, rerank)
        expected = np.mean(
            [_naive(feats[i][valid[i]], gold[i][valid[i]], w, rerank) for i in range(n_q)], axis=0
        )
        assert np.allclose([got["hit@1"], got["hit@5"], got["mrr@10"]], expected)


def test_the_search_finds_the_signal_that_matters() -> None:
    rng = np.random.default_rng(1)
    n_q, n_c, n_f = 30, 12, len(RETRIEVAL_SIGNALS)
    feats = rng.random((n_q, n_c, n_f)).astype(np.float32) * 0.2
    gold = np.zeros((n_q, n_c), dtype=bool)
    gold[:, 0] = True
    feats[:, 0, RETRIEVAL_SIGNALS.index("bm25")] = 1.0  # only BM25 knows the answer
    data = SuiteData("s", feats, np.ones((n_q, n_c), dtype=bool), gold, ["a"] * n_q)
    grid = {name: [0.0, 1.0] for name in RETRIEVAL_SIGNALS}
    w = search_weights([data], rerank=5, grid=grid)
    assert w[RETRIEVAL_SIGNALS.index("bm25")] == 1.0
    assert evaluate(data, w, 5)["hit@1"] == 1.0
