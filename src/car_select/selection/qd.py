"""Quality-diversity selection (QDIT, Bukharin et al., arXiv 2311.14736): greedily maximise

    F(S) = coverage(S) + quality_weight x sum of normalised quality over S

coverage(S) is facility location over a sparse cosine k-nearest-neighbour graph of the PCA-reduced
embeddings: each candidate j can cover its own GRAPH_NEIGHBOURS most similar records (itself
included, similarity 1), a record i counts the best similarity any kept record gives it (negative
similarities count 0), and the sum is divided by the neighbourhood size so that one record's coverage
gain is at most 1. Quality is the score min-max scaled to [0, 1] over the candidates, so
quality_weight is what the best score is worth against covering a whole neighbourhood afresh.

F is monotone submodular (a gain can only shrink as S grows), so lazy greedy (a heap of stale gains,
recompute the top until it stays on top) picks exactly what plain greedy picks; ties go to the lower
position. The graph is int32 positions + float32 similarities, 2 x 4 x (k + 1) bytes a row.
"""

from __future__ import annotations

import heapq

import numpy as np

from .knn import neighbours, unit_rows
from .result import SelectionResult

COVERAGE = "coverage"
GRAPH_NEIGHBOURS = 32  # besides the record itself


def coverage_graph(reduced: np.ndarray, candidates: np.ndarray, k: int = GRAPH_NEIGHBOURS,
                   clusters: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For each candidate (positions in `reduced`), its k + 1 most similar rows of `reduced`
    (itself among them at similarity 1): (positions int32, similarities float32 clipped at 0).
    `clusters` (one per row) lets a large input be searched cluster by cluster (knn.py)."""
    unit = unit_rows(reduced)
    k_all = min(k + 1, len(unit))
    pos, sims = neighbours(unit, candidates, k_all, clusters)
    cand = np.asarray(candidates, dtype=np.int32)[:, None]
    own = pos == cand
    sims[own] = 1.0
    alone = ~own.any(axis=1)  # itself pushed out by identical rows (or missed by IVF): in the last slot
    pos[alone, -1], sims[alone, -1] = cand[alone, 0], 1.0
    empty = pos < 0  # IVF found fewer than k + 1: the slot points at the record itself, similarity 0
    pos[empty], sims[empty] = np.broadcast_to(cand, pos.shape)[empty], 0.0
    np.maximum(sims, 0.0, out=sims)
    return pos, sims


def gains(rows: np.ndarray, pos: np.ndarray, sims: np.ndarray, covered: np.ndarray, quality: np.ndarray,
          weight: float) -> np.ndarray:
    """F's gain from adding each of `rows` (candidate numbers) given the current `covered` levels."""
    fresh = np.maximum(sims[rows].astype(np.float64) - covered[pos[rows]], 0.0).sum(axis=1)
    return fresh / pos.shape[1] + weight * quality[rows]


def normalised_quality(scores: np.ndarray) -> np.ndarray:
    """Scores min-max scaled to [0, 1] (all zero when every score is equal)."""
    s = np.asarray(scores, dtype=np.float64)
    if len(s) == 0:
        return s
    span = float(s.max() - s.min())
    return (s - s.min()) / span if span > 0 else np.zeros_like(s)


def lazy_greedy(pos: np.ndarray, sims: np.ndarray, quality: np.ndarray, weight: float, budget: int,
                n_rows: int) -> np.ndarray:
    """Candidate numbers (rows of pos) in the order greedy picks them; `n_rows` rows can be covered."""
    covered = np.zeros(n_rows, dtype=np.float64)
    n = len(pos)
    budget = min(budget, n)
    start = gains(np.arange(n), pos, sims, covered, quality, weight)
    heap = list(zip((-start).tolist(), range(n)))
    heapq.heapify(heap)
    fresh_at = np.zeros(n, dtype=np.int64)  # the pick count when each heap entry's gain was computed
    picked: list[int] = []
    while len(picked) < budget:
        neg, j = heapq.heappop(heap)
        if fresh_at[j] != len(picked):
            g = float(gains(np.array([j]), pos, sims, covered, quality, weight)[0])
            fresh_at[j] = len(picked)
            if heap and (-g, j) > heap[0]:
                heapq.heappush(heap, (-g, j))
                continue
        picked.append(j)
        np.maximum.at(covered, pos[j], sims[j].astype(np.float64))
    return np.asarray(picked, dtype=np.int64)


def plain_greedy(pos: np.ndarray, sims: np.ndarray, quality: np.ndarray, weight: float, budget: int,
                 n_rows: int) -> np.ndarray:
    """The reference lazy_greedy must equal: every gain recomputed at every step (O(budget x n))."""
    covered = np.zeros(n_rows, dtype=np.float64)
    taken = np.zeros(len(pos), dtype=bool)
    picked = []
    for _ in range(min(budget, len(pos))):
        g = gains(np.arange(len(pos)), pos, sims, covered, quality, weight)
        g[taken] = -np.inf
        j = int(np.argmax(g))  # the first of equal gains: the lower position
        taken[j] = True
        picked.append(j)
        np.maximum.at(covered, pos[j], sims[j].astype(np.float64))
    return np.asarray(picked, dtype=np.int64)


def qd_select(scores, reduced: np.ndarray, budget: int, quality_weight: float, *, candidates=None,
              index=None, k: int = GRAPH_NEIGHBOURS, clusters: np.ndarray | None = None) -> SelectionResult:
    """`budget` records among `candidates` (positions in `reduced`; default all) maximising coverage of
    every row of `reduced` plus quality_weight x normalised score. `scores` are per candidate; `index`
    gives each candidate's position to return (default: its position in `reduced`); `clusters`, one per
    row of `reduced`, splits the neighbour search above knn.EXACT_ROWS rows."""
    n_rows = len(reduced)
    candidates = np.arange(n_rows) if candidates is None else np.asarray(candidates, dtype=np.int64)
    index = candidates if index is None else np.asarray(index)
    if not len(scores) == len(candidates) == len(index):
        raise ValueError("scores, candidates and index must be equally long")
    if budget <= 0 or len(candidates) == 0:
        return SelectionResult(indices=np.zeros(0, dtype=np.int64), reasons=[])
    pos, sims = coverage_graph(reduced, candidates, k, clusters)
    picked = lazy_greedy(pos, sims, normalised_quality(scores), quality_weight, budget, n_rows)
    return SelectionResult(indices=index[picked], reasons=[COVERAGE] * len(picked))
