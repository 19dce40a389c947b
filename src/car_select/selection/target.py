"""Selection toward target examples (`--target`): a few examples of the tasks the data is wanted for.

Relevance: cosine similarity, in the run's PCA-reduced embedding space, between each record and each
target example (rendered and embedded like a record, then reduced by the run's PCA).

The rule, RDS+ round-robin (Ivison et al. 2025, "Large-scale data selection for instruction tuning")
followed by the run's strategy:
1. the relevant pool: target examples take turns, each adding its most similar candidate not yet in
   the pool, until the pool holds POOL_FACTOR x budget records (or every candidate);
2. the strategy (CaR's rule for a budget, qd, deita) keeps the budget from that pool, by its own quality
   and diversity rule.
Round-robin gives every target example the same share of the pool, so a target set mixing tasks is
covered task by task rather than by whichever task has the most similar records; the pool, twice the
budget, leaves the strategy half of it to drop by quality and diversity while bounding how far from
the targets the selection can drift. (Facility location over the target examples was the
alternative: with 40 examples and a budget of 300 it is saturated after about 40 picks and says
nothing about the other 260.)

Pure: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np

from .knn import unit_rows

TARGET = "target"
POOL_FACTOR = 2.0


def similarities(rows: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(n, t) cosine similarities between `rows` and `targets` (any scale; float32)."""
    return unit_rows(rows) @ unit_rows(targets).T


def round_robin_pool(rows: np.ndarray, targets: np.ndarray, size: int, index: np.ndarray | None = None
                     ) -> np.ndarray:
    """Positions in `rows` of the relevant pool, in the order they joined it: the target examples take
    turns (in their order), each adding its most similar row not yet taken (ties: lower `index`)."""
    import faiss

    n = len(rows)
    size = min(size, n)
    if size <= 0 or len(targets) == 0:
        return np.zeros(0, dtype=np.int64)
    index = np.arange(n) if index is None else np.asarray(index)
    unit, tunit = unit_rows(rows), unit_rows(targets)
    db = faiss.IndexFlatIP(unit.shape[1])
    db.add(unit)
    depth = min(n, int(np.ceil(size / len(targets))) * 2 + 16)
    while True:
        sims, ranked = db.search(tunit, depth)
        # faiss orders equal similarities arbitrarily: order each list by (-similarity, index) ourselves
        for t in range(len(targets)):
            ok = ranked[t] >= 0
            r, s = ranked[t][ok], sims[t][ok]
            ranked[t, :ok.sum()] = r[np.lexsort((index[r], -s))]
        taken = np.zeros(n, dtype=bool)
        pool: list[int] = []
        cursor = np.zeros(len(targets), dtype=np.int64)
        exhausted = False
        while len(pool) < size:
            added = False
            for t in range(len(targets)):
                if len(pool) >= size:
                    break
                while cursor[t] < depth and (ranked[t, cursor[t]] < 0 or taken[ranked[t, cursor[t]]]):
                    cursor[t] += 1
                if cursor[t] >= depth:
                    exhausted = exhausted or depth < n
                    continue
                j = int(ranked[t, cursor[t]])
                taken[j] = True
                pool.append(j)
                added = True
            if not added:
                break
        if len(pool) >= size or not exhausted or depth >= n:
            return np.asarray(pool, dtype=np.int64)
        depth = min(n, depth * 4)  # a list ran dry before the pool filled: search deeper and start again


def nearest_target(rows: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: (the most similar target example, that similarity)."""
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    sims = similarities(rows, targets)
    best = np.argmax(sims, axis=1)
    return best.astype(np.int64), sims[np.arange(len(rows)), best]


def target_coverage(selected: np.ndarray, targets: np.ndarray) -> float:
    """How well a selection covers the target set: the mean over target examples of their highest
    cosine similarity to a selected record (1.0: every example has an identical record selected)."""
    if len(selected) == 0 or len(targets) == 0:
        return 0.0
    return float(similarities(targets, selected).max(axis=1).mean())


def random_coverage(reduced: np.ndarray, candidates: np.ndarray, size: int, targets: np.ndarray, seeds: int,
                    seed: int) -> float:
    """`target_coverage` of uniform random subsets of `size` candidates (positions in `reduced`),
    averaged over `seeds` seeded draws."""
    if seeds <= 0 or size <= 0 or len(candidates) == 0:
        return 0.0
    rng = np.random.default_rng(seed)
    size = min(size, len(candidates))
    return float(np.mean([target_coverage(reduced[rng.choice(candidates, size, replace=False)], targets)
                          for _ in range(seeds)]))
