"""DEITA's score-first selection with a representation filter (Liu et al., arXiv 2312.15685): walk the
records best score first and keep one unless its cosine similarity to a record already kept exceeds
max_similarity, until the budget is kept. Similarity is over the PCA-reduced embeddings, unit rows.

Candidates are taken in blocks: a block is checked against the kept records at once (a faiss
inner-product index that grows as records are kept), then in order against its own earlier keeps.
"""

from __future__ import annotations

import numpy as np

from .knn import unit_rows
from .result import SelectionResult, rank_order

SCORE_FIRST = "score_first"
BLOCK = 1024


def deita_select(scores, reduced: np.ndarray, budget: int, max_similarity: float, *, candidates=None,
                 index=None) -> SelectionResult:
    """Up to `budget` of `candidates` (positions in `reduced`, one score each; default all), best score
    first (ties: lower index), no two with cosine similarity above `max_similarity`. Fewer than
    `budget` only where every other candidate is too similar to a kept one."""
    import faiss

    scores = np.asarray(scores, dtype=np.float64)
    candidates = np.arange(len(reduced)) if candidates is None else np.asarray(candidates, dtype=np.int64)
    index = np.arange(len(scores)) if index is None else np.asarray(index)
    if not len(scores) == len(candidates) == len(index):
        raise ValueError("scores, candidates and index must be equally long")
    unit = unit_rows(reduced)
    order = rank_order(scores, index)
    kept_index = faiss.IndexFlatIP(unit.shape[1])
    kept: list[int] = []
    for start in range(0, len(order), BLOCK):
        if len(kept) >= budget:
            break
        block = order[start:start + BLOCK]
        vectors = unit[candidates[block]]
        ok = np.ones(len(block), dtype=bool)
        if kept_index.ntotal:
            nearest, _ = kept_index.search(vectors, 1)
            ok = np.minimum(nearest[:, 0], 1.0) <= max_similarity  # rounding can pass 1 for a copy
        among = np.minimum(vectors @ vectors.T, 1.0)  # the block's own similarities, for records kept from it
        taken = []
        for i in np.flatnonzero(ok):
            if len(kept) + len(taken) >= budget:
                break
            if taken and among[i, taken].max() > max_similarity:
                continue
            taken.append(int(i))
        if taken:
            kept.extend(block[taken].tolist())
            kept_index.add(vectors[taken])
    chosen = np.asarray(kept, dtype=np.int64)
    return SelectionResult(indices=index[chosen], reasons=[SCORE_FIRST] * len(chosen))
