"""What every selection strategy returns, and the score order they share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SelectionResult:
    """One strategy's picks over (scores, ...): positions and why each was kept."""

    indices: np.ndarray  # selected positions in the strategy's order (CaR, deita: best score first)
    reasons: list[str]  # why each was kept ("top_n1", "cluster_top", "coverage", "score_first")
    n1: int | None = None  # CaR only: the n1 used (with a budget: the smallest that reaches it)
    floor: int | None = None  # CaR with a budget: records kept at n1 = 0 (the cluster tops)
    below_floor: bool = False  # CaR budget < floor: the best cluster tops, not the rule for any n1


def rank_order(scores: np.ndarray, index: np.ndarray | None = None) -> np.ndarray:
    """Positions sorted by descending score, ties by ascending (global) index."""
    scores = np.asarray(scores, dtype=np.float64)
    index = np.arange(len(scores)) if index is None else np.asarray(index)
    return np.lexsort((index, -scores))
