"""A small synthetic ReportData for the report tests (6 clusters, 20 selected, one hostile instruction)."""

from __future__ import annotations

import numpy as np

from car_select.report import ReportData

N, K, N_SEL = 300, 6, 20
EVIL = '</script><script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2"><b>bold</b> & \u2028 done'
SUMMARY = {
    "input": "data/alpaca<&>.jsonl",
    "scorer": "default",
    "records_read": 31337,
    "duplicates_dropped": 4242,
    "k": K,
    "pca_components": 17,
    "pca_variance_explained": 0.9517,
    "selected": N_SEL,
    "stage_seconds": {"score": 12.25, "embed": 3.5},
}
EVIL_ROW = 7  # the best score overall: its instruction is its cluster's example


def make_data(n: int = N, k: int = K, n_sel: int = N_SEL, seed: int = 0) -> ReportData:
    """k Gaussian clusters in 8 dims; the n_sel best-scored selected (the last 3 as cluster tops)."""
    rng = np.random.default_rng(seed)
    d = 8
    clusters = np.arange(n) % k
    centers = rng.normal(size=(k, d)) * 5
    reduced = centers[clusters] + rng.normal(size=(n, d))
    scores = rng.random(n)
    scores[EVIL_ROW % n] = 2.0
    order = np.argsort(-scores)
    selected = np.zeros(n, dtype=bool)
    selected[order[:n_sel]] = True
    reasons: list[str | None] = [None] * n
    for r, i in enumerate(order[:n_sel]):
        reasons[i] = "top_n1" if r < n_sel - 3 else "cluster_top"
    instructions = [f"Instruction number {i} about topic {clusters[i]}" for i in range(n)]
    instructions[EVIL_ROW % n] = EVIL
    return ReportData(scores=scores, clusters=clusters, selected=selected, reasons=reasons,
                      instructions=instructions, reduced=reduced, summary=dict(SUMMARY))
