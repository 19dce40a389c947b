"""Reduce and cluster: PCA keeping a share of the variance, then k-means, as in CaR.

Both are fitted on a bounded sample (all rows when n <= fit_sample) and then applied to every row,
so cost grows linearly in n beyond the sample; engines (local, Ray) reuse the same fitted model.
faiss k-means is the default (seconds instead of a minute for Alpaca, inertia within a fraction of a
percent of sklearn's); sklearn's KMeans(n_init=10), the official code's choice, stays available.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ClusterModel:
    """A fitted PCA + k-means, small and picklable, applied batch by batch to any number of rows."""

    mean: np.ndarray  # (d,)
    components: np.ndarray  # (c, d)
    explained_variance: float  # share of variance the kept components explain
    centroids: np.ndarray  # (k, c)
    inertia: float  # k-means objective on the fit sample

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        return ((np.asarray(embeddings, dtype=np.float32) - self.mean) @ self.components.T).astype(np.float32)

    def assign(self, embeddings: np.ndarray, reduced: np.ndarray | None = None) -> np.ndarray:
        """Nearest centroid per row (exact, by faiss brute-force L2 search)."""
        import faiss

        x = np.ascontiguousarray(self.transform(embeddings) if reduced is None else reduced, dtype=np.float32)
        index = faiss.IndexFlatL2(x.shape[1])
        index.add(np.ascontiguousarray(self.centroids, dtype=np.float32))
        _, labels = index.search(x, 1)
        return labels[:, 0].astype(np.int64)


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted positions of a uniform sample without replacement (all rows when n <= size)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def fit_pca(x: np.ndarray, variance: float, seed: int):
    if len(x) < 2 or not np.ptp(x, axis=0).any():
        # one row (or identical rows) has no variance to explain: keep one axis, which explains all of
        # it (sklearn would return nan ratios here)
        components = np.zeros((1, x.shape[1]), dtype=np.float32)
        components[0, 0] = 1.0
        return x.mean(axis=0).astype(np.float32), components, 1.0
    from sklearn.decomposition import PCA

    pca = PCA(n_components=variance if variance < 1.0 else None, random_state=seed, svd_solver="full")
    pca.fit(x)
    return pca.mean_.astype(np.float32), pca.components_.astype(np.float32), float(pca.explained_variance_ratio_.sum())


def fit_kmeans(x: np.ndarray, k: int, seed: int, backend: str = "faiss", n_init: int = 10) -> tuple[np.ndarray, float]:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if backend == "sklearn":
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=k, random_state=seed, n_init=n_init).fit(x)
        return km.cluster_centers_.astype(np.float32), float(km.inertia_)
    import faiss

    # One k-means++-free run of 50 iterations: on Alpaca (k=161) its inertia is within 0.25% of sklearn's
    # KMeans(n_init=10) at 1/30 of the time; n_init applies to the sklearn backend only.
    # max_points_per_centroid bounds the work per iteration.
    km = faiss.Kmeans(x.shape[1], k, niter=50, nredo=1, seed=seed,
                      max_points_per_centroid=512, min_points_per_centroid=1, verbose=False)
    km.train(x)
    _, labels = km.index.search(x, 1)
    inertia = float(((x - km.centroids[labels[:, 0]]) ** 2).sum())
    return km.centroids.copy(), inertia


def fit_cluster_model(sample: np.ndarray, k: int, variance: float = 0.95, seed: int = 42,
                      backend: str = "faiss", n_init: int = 10) -> ClusterModel:
    """Fit PCA(variance) and k-means(k) on `sample` (rows = embeddings)."""
    sample = np.asarray(sample, dtype=np.float32)
    if k > len(sample):
        raise ValueError(f"k={k} is more than the {len(sample)} rows to fit on")
    mean, components, explained = fit_pca(sample, variance, seed)
    reduced = (sample - mean) @ components.T
    centroids, inertia = fit_kmeans(reduced, k, seed, backend, n_init)
    return ClusterModel(mean, components, explained, centroids, inertia)
