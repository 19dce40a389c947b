"""Near-duplicates: records whose cosine similarity (PCA-reduced embeddings, unit rows) to a
better-scored kept record is at least a threshold. Exact copies are dropped earlier
(pipeline.dedupe); this catches lightly edited ones (whitespace, case, punctuation, a short prefix).

Walking the records best score first (ties: lower index), each record not yet dropped is kept and
drops every undecided record at least that similar to it; so every dropped record names, as
`duplicate_of`, a kept record it is that similar to, and no two kept records are.
"""

from __future__ import annotations

import numpy as np

from .knn import pairs_at_least, unit_rows
from .result import rank_order

NEAR_DUPLICATE = "near_duplicate"


def near_duplicates(scores, reduced: np.ndarray, threshold: float, *, index=None,
                    clusters: np.ndarray | None = None) -> np.ndarray:
    """Per row: the row (position in the input arrays) it is a near-duplicate of, or -1 where kept.
    `index` breaks score ties (default: position); `clusters` splits the search of a large input (knn.py)."""
    from scipy.sparse import coo_matrix

    n = len(reduced)
    duplicate_of = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return duplicate_of
    unit = unit_rows(reduced)
    rows, cols = pairs_at_least(unit, threshold, clusters)
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n)).tocsr()
    graph = (graph + graph.T).tocsr()  # either direction's similarity counts (float rounding may differ)
    has_pair = np.diff(graph.indptr) > 0
    decided = ~has_pair  # a record with no near-duplicate is kept
    for i in rank_order(scores, index):
        if decided[i]:
            continue
        decided[i] = True  # kept
        others = graph.indices[graph.indptr[i]:graph.indptr[i + 1]]
        fresh = others[~decided[others]]
        duplicate_of[fresh] = i
        decided[fresh] = True
    return duplicate_of
