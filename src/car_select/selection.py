"""The CaR rule: keep the global top n1 by score plus the top n2 of every cluster, deduplicated.

Pure and engine-independent. Ties in score go to the earlier record (lower index). Unlike the
official script, whose per-cluster branch only ever takes one record, n2 > 1 takes n2 per cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOP_N1 = "top_n1"
CLUSTER_TOP = "cluster_top"


@dataclass
class SelectionResult:
    indices: np.ndarray  # selected positions, best score first (ties: earlier first)
    reasons: list[str]  # TOP_N1 or CLUSTER_TOP, parallel to indices


def rank_order(scores: np.ndarray, index: np.ndarray | None = None) -> np.ndarray:
    """Positions sorted by descending score, ties by ascending (global) index."""
    scores = np.asarray(scores, dtype=np.float64)
    index = np.arange(len(scores)) if index is None else np.asarray(index)
    return np.lexsort((index, -scores))


def car_select(scores, clusters, n1: int, n2: int, index=None) -> SelectionResult:
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
        ordered_clusters = clusters[order]
        # rank of each row within its cluster, in global rank order (stable sort keeps score order)
        by_cluster = np.argsort(ordered_clusters, kind="stable")
        sorted_clusters = ordered_clusters[by_cluster]
        starts = np.r_[0, np.flatnonzero(sorted_clusters[1:] != sorted_clusters[:-1]) + 1]
        group_start = np.repeat(starts, np.diff(np.r_[starts, len(sorted_clusters)]))
        rank_in_cluster = np.empty(len(order), dtype=np.int64)
        rank_in_cluster[by_cluster] = np.arange(len(order)) - group_start
        cluster_top = order[rank_in_cluster < n2]
        fresh = cluster_top[reasons[cluster_top] == None]  # noqa: E711 (elementwise on object array)
        reasons[fresh] = CLUSTER_TOP
    chosen = order[reasons[order] != None]  # noqa: E711
    return SelectionResult(indices=index[chosen], reasons=[str(r) for r in reasons[chosen]])

