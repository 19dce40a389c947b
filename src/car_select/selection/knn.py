"""Cosine-similarity neighbours over the PCA-reduced embeddings, for the strategies that need them
(qd's coverage graph, deita's filter, near-duplicates). faiss inner product on unit rows.

Up to EXACT_ROWS rows the search is exact (IndexFlatIP, BLAS). Above, an inverted-file index
(IndexIVFFlat, sqrt(n) lists fitted on a seeded sample, IVF_PROBE lists searched per query) keeps
1M rows to minutes on 2 cores; it may miss a neighbour lying in a list it did not probe.
"""

from __future__ import annotations

import numpy as np

EXACT_ROWS = 100_000
IVF_PROBE = 8
IVF_TRAIN_PER_LIST = 40  # faiss k-means wants >= 39 training points per list
SEARCH_ROWS = 16_384  # query rows per faiss call: bounds the result buffers


def unit_rows(x: np.ndarray) -> np.ndarray:
    """A float32 copy of `x` with each row scaled to length 1 (all-zero rows stay zero)."""
    out = np.array(x, dtype=np.float32, order="C", copy=True)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


def build_index(unit: np.ndarray, seed: int = 42):
    """A faiss inner-product index over `unit` rows: exact up to EXACT_ROWS, IVF above."""
    import faiss

    n, d = unit.shape
    if n <= EXACT_ROWS:
        index = faiss.IndexFlatIP(d)
    else:
        lists = int(np.sqrt(n))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, lists, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(seed).choice(n, size=min(n, lists * IVF_TRAIN_PER_LIST), replace=False)
        index.cp.seed = seed
        index.train(unit[np.sort(sample)])
        index.nprobe = IVF_PROBE
    index.add(unit)
    return index


def neighbours(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k most similar indexed rows of every query row: (positions int32, similarities float32),
    most similar first. A slot with no neighbour (k above what IVF found) is position -1, similarity 0."""
    n = len(queries)
    pos = np.empty((n, k), dtype=np.int32)
    sims = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, SEARCH_ROWS):
        s, p = index.search(queries[start:start + SEARCH_ROWS], k)
        missing = p < 0
        s[missing] = 0.0
        pos[start:start + len(p)], sims[start:start + len(p)] = p, s
    return pos, sims


def pairs_at_least(index, queries: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Every (query row, indexed row) pair with cosine similarity >= threshold, itself excluded where the
    queries are the indexed rows: (rows int64, cols int64)."""
    # faiss keeps similarities strictly above its radius: the next float32 below keeps those equal to it
    radius = float(np.nextafter(np.float32(threshold), np.float32(-np.inf)))
    rows, cols = [], []
    for start in range(0, len(queries), SEARCH_ROWS):
        lims, _, found = index.range_search(queries[start:start + SEARCH_ROWS], radius)
        rows.append(start + np.repeat(np.arange(len(lims) - 1), np.diff(lims.astype(np.int64))))
        cols.append(found)
    rows = np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, dtype=np.int64)
    cols = np.concatenate(cols).astype(np.int64) if cols else np.zeros(0, dtype=np.int64)
    keep = rows != cols
    return rows[keep], cols[keep]
