"""Cosine-similarity neighbours over the PCA-reduced embeddings, for the strategies that need them
(qd's coverage graph, near-duplicates). faiss inner product (BLAS) on unit rows.

Up to EXACT_ROWS rows every query is searched against every row. Above, the search runs per k-means
cluster of the run: a cluster's rows are searched against the rows of that cluster and of its SPILL
nearest clusters (by centroid), so 1M rows take about a minute on 2 cores; a neighbour lying in a
farther cluster is missed. (faiss's IVF index scans lists one query at a time, without BLAS: about
17 minutes for a 33-neighbour graph of 1M rows on 2 cores.)
"""

from __future__ import annotations

import numpy as np

EXACT_ROWS = 100_000
SPILL = 2  # nearby clusters searched besides a row's own, above EXACT_ROWS
SEARCH_ROWS = 16_384  # query rows per faiss call: bounds the result buffers


def unit_rows(x: np.ndarray) -> np.ndarray:
    """A float32 copy of `x` with each row scaled to length 1 (all-zero rows stay zero)."""
    out = np.array(x, dtype=np.float32, order="C", copy=True)
    norms = np.sqrt(np.einsum("ij,ij->i", out, out))[:, None]  # no squared copy of the whole matrix
    np.divide(out, norms, out=out, where=norms > 0)
    return out


def _flat(vectors: np.ndarray):
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def _blocks(unit: np.ndarray, queries: np.ndarray, labels: np.ndarray | None):
    """(query positions, database positions) pairs that together search every query: one block of all
    rows up to EXACT_ROWS (or without labels), else one per cluster holding queries."""
    if labels is None or len(unit) <= EXACT_ROWS:
        yield queries, None
        return
    labels = np.asarray(labels)
    names, members_of = np.unique(labels, return_inverse=True)
    centroids = np.zeros((len(names), unit.shape[1]), dtype=np.float64)
    np.add.at(centroids, members_of, unit)
    centroids = unit_rows(centroids)
    near = np.argsort(-(centroids @ centroids.T), axis=1, kind="stable")[:, :SPILL + 1]
    by_cluster = np.argsort(members_of, kind="stable")
    starts = np.searchsorted(members_of[by_cluster], np.arange(len(names) + 1))
    query_cluster = members_of[queries]
    for c in np.unique(query_cluster):
        rows = np.concatenate([by_cluster[starts[j]:starts[j + 1]] for j in np.unique(np.r_[c, near[c]])])
        yield queries[query_cluster == c], np.sort(rows)


def neighbours(unit: np.ndarray, queries: np.ndarray, k: int, labels: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """For each query (positions in `unit`), its k most similar rows of `unit`: (positions int32,
    similarities float32), most similar first; a slot with nothing found is position -1, similarity 0."""
    queries = np.asarray(queries, dtype=np.int64)
    pos = np.full((len(queries), k), -1, dtype=np.int32)
    sims = np.zeros((len(queries), k), dtype=np.float32)
    slot = np.empty(len(unit), dtype=np.int64)
    slot[queries] = np.arange(len(queries))  # queries are distinct positions
    for q, rows in _blocks(unit, queries, labels):
        index = _flat(unit if rows is None else unit[rows])
        for start in range(0, len(q), SEARCH_ROWS):
            part = q[start:start + SEARCH_ROWS]
            s, p = index.search(unit[part], k)
            found = p >= 0
            if rows is not None:
                p[found] = rows[p[found]]
            s[~found] = 0.0
            pos[slot[part]], sims[slot[part]] = p, s
    return pos, sims


def pairs_at_least(unit: np.ndarray, threshold: float, labels: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of distinct rows of `unit` with cosine similarity >= threshold: (rows, cols) int64."""
    # faiss keeps similarities strictly above its radius: the next float32 below keeps those equal to it
    radius = float(np.nextafter(np.float32(threshold), np.float32(-np.inf)))
    rows_out, cols_out = [], []
    for q, rows in _blocks(unit, np.arange(len(unit)), labels):
        index = _flat(unit if rows is None else unit[rows])
        for start in range(0, len(q), SEARCH_ROWS):
            part = q[start:start + SEARCH_ROWS]
            lims, _, found = index.range_search(unit[part], radius)
            rows_out.append(np.repeat(part, np.diff(lims.astype(np.int64))))
            cols_out.append(found.astype(np.int64) if rows is None else rows[found])
    r = np.concatenate(rows_out) if rows_out else np.zeros(0, dtype=np.int64)
    c = np.concatenate(cols_out) if cols_out else np.zeros(0, dtype=np.int64)
    keep = r != c
    return r[keep], c[keep]
