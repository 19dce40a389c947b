"""The CaR rule: keep the global top n1 by score plus the top n2 of every cluster, deduplicated.

Pure and engine-independent. Ties in score go to the earlier record (lower index). Unlike the
official script, whose per-cluster branch only ever takes one record, n2 > 1 takes n2 per cluster.
`car_select_budget` finds, for a budget of N records, the smallest n1 whose selection has N records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import CarSelectError

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
        cluster_top = order[_rank_in_cluster(clusters[order]) < n2]
        fresh = cluster_top[reasons[cluster_top] == None]  # noqa: E711 (elementwise on object array)
        reasons[fresh] = CLUSTER_TOP
    chosen = order[reasons[order] != None]  # noqa: E711
    return SelectionResult(indices=index[chosen], reasons=[str(r) for r in reasons[chosen]])


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


@dataclass
class BudgetResult:
    """A selection of exactly `budget` records under the CaR rule."""

    selection: SelectionResult
    n1: int  # the n1 the rule used: the smallest whose top-n1 plus cluster tops reach the budget
    floor: int  # records the rule keeps at n1 = 0 (every cluster's top n2): the smallest exact budget
    below_floor: bool  # budget < floor: the `budget` best cluster tops, not the CaR rule for any n1


def cluster_top_count(clusters, n2: int) -> int:
    """How many records the CaR rule keeps at n1 = 0: sum over clusters of min(n2, cluster size)."""
    _, sizes = np.unique(np.asarray(clusters), return_counts=True)
    return int(np.minimum(sizes, n2).sum())


def car_select_budget(scores, clusters, budget: int, n2: int, index=None) -> BudgetResult:
    """Exactly `budget` records under the CaR rule: the smallest n1 whose global top-n1 plus the
    per-cluster top-n2 hold `budget` records, and that selection (it equals car_select(..., n1, n2)).

    As n1 grows by one the union grows by one exactly when the n1-th ranked record is not already a
    cluster top, so the union's size is floor + (non-cluster-tops among the first n1 ranked) and the
    smallest n1 for a budget is found in one pass over the rank order (O(n log n) with the sort).
    Below the floor (fewer records than the cluster tops) no n1 gives the budget: the result is the
    `budget` best cluster tops, taking every cluster's best before any cluster's second (for n2 = 1:
    simply the best-scored cluster tops), reported with n1 = 0 and below_floor = True.

    The result is mergeable like car_select: per-shard car_select(..., n1=budget, n2) candidates
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
        return BudgetResult(car_select(scores, clusters, n1, n2, index=index), n1, floor, False)
    tops = np.flatnonzero(is_top)  # rank positions, best first
    keep = np.sort(tops[np.lexsort((tops, rank[tops]))[:budget]])  # by rank in cluster, then score
    chosen = order[keep]
    return BudgetResult(SelectionResult(indices=index[chosen], reasons=[CLUSTER_TOP] * len(chosen)), 0, floor, True)


# --- the rule as a run applies it: n1 or a budget, after an optional score threshold ---------------


@dataclass
class RuleOutcome:
    selection: SelectionResult
    n1: int  # the n1 the CaR rule used (with a budget: the smallest that reaches it)
    n2: int
    budget: int | None  # the number of records asked for (--budget, or --fraction resolved), else None
    floor: int  # records the rule keeps at n1 = 0 (the cluster tops among the eligible records)
    eligible: int  # distinct records the rule chose from (those scoring at least min_score)
    warnings: list[str] = field(default_factory=list)


def budget_for(budget: int | None, fraction: float | None, n_records: int) -> int | None:
    """The number of records asked for: `budget`, or round(fraction x n_records) (halves round up)."""
    if budget is not None:
        return int(budget)
    if fraction is not None:
        return int(math.floor(fraction * n_records + 0.5))
    return None


def apply_rule(scores, clusters, *, n1: int, n2: int, budget: int | None = None, fraction: float | None = None,
               min_score: float | None = None, n_records: int | None = None, index=None) -> RuleOutcome:
    """The selection step of a run, over the distinct records: keep those scoring at least `min_score`,
    then the CaR rule with `n1`, or with the smallest n1 that gives exactly `budget` records (or
    round(fraction x n_records), n_records = records read, duplicates included). Returns the selection,
    the n1 used and one-line warnings (the caller shows them); user errors raise CarSelectError."""
    scores = np.asarray(scores, dtype=np.float64)
    clusters = np.asarray(clusters)
    index = np.arange(len(scores)) if index is None else np.asarray(index)
    n_distinct = len(scores)
    n_records = n_distinct if n_records is None else n_records
    warnings: list[str] = []
    target = budget_for(budget, fraction, n_records)
    if budget is not None and budget > n_distinct:
        raise CarSelectError(f"--budget {budget:,} is more than the {n_distinct:,} distinct records in the input")
    if fraction is not None and target > n_distinct:
        warnings.append(f"--fraction {fraction:g} of {n_records:,} records is {target:,}, more than the "
                        f"{n_distinct:,} distinct records: keeping all {n_distinct:,}")
        target = n_distinct
    keep = np.ones(n_distinct, dtype=bool) if min_score is None else scores >= min_score
    eligible = int(keep.sum())
    if min_score is not None and eligible == 0:
        best = float(scores.max()) if n_distinct else float("nan")
        raise CarSelectError(f"--min-score {min_score:g}: no record scores that high (the best scores {best:.4g})")
    s, c, ix = scores[keep], clusters[keep], index[keep]
    above = f" scoring at least {min_score:g}" if min_score is not None else ""
    if target is not None:
        if target > eligible:
            warnings.append(f"only {eligible:,} distinct records score at least {min_score:g}, fewer than the "
                            f"budget of {target:,}: keeping all {eligible:,}")
            target = eligible
        b = car_select_budget(s, c, target, n2, index=ix)
        if b.below_floor:
            warnings.append(f"budget {target:,} is below the {b.floor:,} cluster tops (k x n2): keeping the "
                            f"{target:,} best cluster tops, so some clusters have no record")
        return RuleOutcome(b.selection, b.n1, n2, target, b.floor, eligible, warnings)
    if n1 >= eligible and eligible > 0:
        warnings.append(f"--n1 {n1:,} is not below the {eligible:,} distinct records{above}: every one is kept "
                        f"(use --budget N or --fraction F to keep a share)")
    return RuleOutcome(car_select(s, c, n1, n2, index=ix), n1, n2, None, cluster_top_count(c, n2), eligible, warnings)
