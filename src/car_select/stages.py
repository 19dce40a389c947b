"""The stage objects an executor drives: Featurize (score + embed) and ClusterEstimator (PCA +
k-means: fit on a sample, predict every row). Reading and writing are `formats/`; the CaR rule is
`selection.apply_rule` (pure); `pipeline.select` wires them. Stages take and return plain lists and
numpy arrays, hold no file handles, and pickle small (a Ray actor builds its own model).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .clustering import ClusterModel, fit_cluster_model, sample_rows
from .config import Config, n_clusters_for
from .errors import CarSelectError
from .records import Record


@dataclass
class Features:
    """Per record: its score and clustering embedding; plus the batch's cache hits and encoder passes."""

    scores: np.ndarray  # (n,) float32
    embeddings: np.ndarray  # (n, d) float32
    cache_hits: int = 0
    passes: int = 1


class Featurize:
    """Records -> Features through the feature cache. The model loads on first use and only when a
    text is not cached, in whatever process calls the stage (one per Ray actor)."""

    def __init__(self, config: Config, scorer=None):
        self.config = config
        self._scorer = scorer  # an already loaded Scorer (API callers), else config.scorer on demand
        self._extractor = None
        self._cache = None

    def __getstate__(self):  # what travels to a worker: the settings, never a loaded model
        return {"config": self.config, "_scorer": None, "_extractor": None, "_cache": None}

    def resources(self, cluster_gpus: int) -> dict:
        """What one worker of this stage needs: a GPU where the cluster has them and the device allows."""
        if cluster_gpus > 0 and self.config.device != "cpu":
            return {"num_gpus": 1, "num_cpus": 1}
        return {"num_gpus": 0}

    def _setup(self):
        if self._extractor is None:
            from .cache import open_cache
            from .features import FeatureExtractor

            self._extractor = FeatureExtractor(self._scorer, self.config)
            self._cache = open_cache(self.config, self._extractor)
        return self._extractor

    def __call__(self, records: Sequence[Record], progress: Callable | None = None) -> Features:
        from .features import aggregate, segment_records

        extractor = self._setup()
        segments = segment_records(records)
        feats, hits = extractor.extract(segments, self._cache, progress=progress)
        scores, emb = aggregate(segments.owner, len(records), feats["scores"], feats["embeddings"],
                                feats["counts"], self.config.turn_aggregate)
        return Features(scores.astype(np.float32), np.ascontiguousarray(emb, dtype=np.float32), hits,
                        extractor.passes)

    def texts(self, records: Sequence[Record]) -> int:
        """How many encoder texts (exchanges) the records hold: the progress bar's total."""
        from .features import segment_records

        return len(segment_records(records).prompts)


class ClusterEstimator:
    """PCA(variance) + k-means(k), sklearn-style: `fit_rows(n)` says which rows to fit on (a seeded
    sample, the same on every executor), `fit(sample)` fits, `predict(batch)` gives (labels, reduced)."""

    def __init__(self, config: Config):
        self.config = config
        self.model: ClusterModel | None = None

    def k_for(self, n: int) -> int:
        k = self.config.clusters or n_clusters_for(n)
        if k > n:
            raise CarSelectError(f"clusters {k} is more than the {n} distinct records in the input")
        return k

    def fit_rows(self, n: int) -> np.ndarray:
        return sample_rows(n, self.config.fit_sample, self.config.seed)

    def fit(self, sample: np.ndarray, n: int) -> "ClusterEstimator":
        c = self.config
        self.model = fit_cluster_model(sample, self.k_for(n), c.pca_variance, c.seed, c.kmeans_backend,
                                       c.kmeans_n_init)
        return self

    def predict(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        reduced = self.model.transform(embeddings)
        return self.model.assign(embeddings, reduced), reduced
