"""The CaR rule: keep the global top n1 by score plus the top n2 of every cluster, deduplicated.

Pure and engine-independent. Ties in score go to the earlier record (lower index). Unlike the
official script, whose per-cluster branch only ever takes one record, n2 > 1 takes n2 per cluster.
`car_rule_for_budget` finds, for a budget of N records, the smallest n1 whose selection has N records.
"""

from __future__ import annotations

import numpy as np

from .result import SelectionResult, rank_order

TOP_N1 = "top_n1"
CLUSTER_TOP = "cluster_top"


def car_rule(scores, clusters, n1: int, n2: int, index=None) -> SelectionResult:
    """Select from (scores, clusters). `index` optionally gives each row's global position, used for
    tie-breaking and returned in `indices`. Run on a shard, the result is that shard's candidates: the
    union of all shards' candidates contains the global selection, and selecting again from that
    union (with the same index) gives exactly the global selection. The Ray engine relies on this."""
    scores = np.asarray(scores, dtype=np.float64)
    clusters = np.asarray(clusters)
    index = np.arange(len(scores)) if index is None else np.asarray(index)
    if not (len(scores) == len(clusters) == len(index)):
        raise ValueError("scores, clusters and index must be equally long")
    order = rank_order(scores, index)
    reasons = np.full(len(scores), None, dtype=object)
    reasons[order[:n1]] = TOP_N1
    if n2 > 0:
        cluster_top = order[_rank_in_cluster(clusters[order]) < n2]
        fresh = cluster_top[reasons[cluster_top] == None]  # noqa: E711 (elementwise on object array)
        reasons[fresh] = CLUSTER_TOP
    chosen = order[reasons[order] != None]  # noqa: E711
    return SelectionResult(indices=index[chosen], reasons=[str(r) for r in reasons[chosen]], n1=n1)


def _rank_in_cluster(ordered_clusters: np.ndarray) -> np.ndarray:
    """For rows already in rank order: each row's rank within its own cluster (0 = the cluster's best)."""
    n = len(ordered_clusters)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    by_cluster = np.argsort(ordered_clusters, kind="stable")  # stable: keeps rank order inside a cluster
    sorted_clusters = ordered_clusters[by_cluster]
    starts = np.r_[0, np.flatnonzero(sorted_clusters[1:] != sorted_clusters[:-1]) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    rank = np.empty(n, dtype=np.int64)
    rank[by_cluster] = np.arange(n) - group_start
    return rank


def cluster_top_count(clusters, n2: int) -> int:
    """How many records the CaR rule keeps at n1 = 0: sum over clusters of min(n2, cluster size)."""
    _, sizes = np.unique(np.asarray(clusters), return_counts=True)
    return int(np.minimum(sizes, n2).sum())


def car_rule_for_budget(scores, clusters, budget: int, n2: int, index=None) -> SelectionResult:
    """Exactly `budget` records under the CaR rule: the smallest n1 whose global top-n1 plus the
    per-cluster top-n2 hold `budget` records, and that selection (it equals car_rule(..., n1, n2)).

    As n1 grows by one the union grows by one exactly when the n1-th ranked record is not already a
    cluster top, so the union's size is floor + (non-cluster-tops among the first n1 ranked) and the
    smallest n1 for a budget is found in one pass over the rank order (O(n log n) with the sort).
    Below the floor (fewer records than the cluster tops) no n1 gives the budget: the result is the
    `budget` best cluster tops, taking every cluster's best before any cluster's second (for n2 = 1:
    simply the best-scored cluster tops), reported with n1 = 0 and below_floor = True.

    The result is mergeable like car_rule: per-shard car_rule(..., n1=budget, n2) candidates
    contain the global budget selection, since the n1 used is never above the budget."""
    scores = np.asarray(scores, dtype=np.float64)
    clusters = np.asarray(clusters)
    index = np.arange(len(scores)) if index is None else np.asarray(index)
    if not (len(scores) == len(clusters) == len(index)):
        raise ValueError("scores, clusters and index must be equally long")
    n = len(scores)
    if budget < 0 or budget > n:
        raise ValueError(f"budget {budget} is outside 0..{n}")
    order = rank_order(scores, index)
    rank = _rank_in_cluster(clusters[order]) if n else np.zeros(0, dtype=np.int64)
    is_top = rank < n2  # per rank position: a cluster top
    floor = int(is_top.sum())
    if budget >= floor:
        need = budget - floor
        n1 = 0 if need == 0 else int(np.flatnonzero(~is_top)[need - 1]) + 1
        picked = car_rule(scores, clusters, n1, n2, index=index)
        picked.floor = floor
        return picked
    tops = np.flatnonzero(is_top)  # rank positions, best first
    keep = np.sort(tops[np.lexsort((tops, rank[tops]))[:budget]])  # by rank in cluster, then score
    chosen = order[keep]
    return SelectionResult(indices=index[chosen], reasons=[CLUSTER_TOP] * len(chosen), n1=0, floor=floor,
                           below_floor=True)
