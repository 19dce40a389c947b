"""The stage objects an executor drives: Featurize (score + embed) and ClusterEstimator (PCA +
k-means: fit on a sample, predict every row). Reading and writing are `formats/`; the CaR rule is
`selection.apply.apply_rule` (pure); `pipeline.select` wires them. Stages take and return plain lists and
numpy arrays, hold no file handles, and pickle small (a Ray actor builds its own model).

What an executor must give each stage (executors/base.py declares the executors' side):
- Featurize: the records of one call, in order, in calls of at most features.ENCODE_CHUNK records
  (memory; a record's features do not depend on its call), and a worker with `resources()`.
- ClusterEstimator: `fit` on exactly the rows `fit_rows(n)` names, in that order; `predict` on any
  split of the rows (it is row-wise once fitted).
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .clustering import ClusterModel, fit_cluster_model, sample_rows
from .config import Config, n_clusters_for
from .errors import CarSelectError
from .records import Record


class HeldEmbeddings(Protocol):
    """Embeddings an executor left where it computed them (RayExecutor: in the workers' blocks). Only
    the executor that made them reads them, in its `cluster`; everyone else sees their count."""

    def __len__(self) -> int: ...


@dataclass
class Features:
    """Per record: its score and clustering embedding; plus the batch's cache hits and encoder passes.
    `embeddings` is an (n, d) float32 array, or a handle to the same rows held by the executor that
    computed them (pass both to that executor's `cluster`)."""

    scores: np.ndarray  # (n,) float32
    embeddings: np.ndarray | HeldEmbeddings
    cache_hits: int = 0
    passes: int = 1
    # texts (exchanges) that filled the scorer's token window, so were cut (scored.py); None: not counted
    texts_cut: int | None = None


@dataclass(frozen=True)
class ShippedScorer:
    """A loaded Scorer as it travels to another process: the files `Scorer.save` writes (its head, and
    its encoder when that was trained), the precision it runs in, and its fingerprint, which the
    rebuilt scorer must reproduce."""

    files: dict[str, bytes]  # path relative to the scorer folder -> contents
    dtype: str  # torch dtype name, e.g. "float32"
    fingerprint: str

    @classmethod
    def of(cls, scorer) -> "ShippedScorer":
        from .scoring.model import QualityEstimator
        from .scoring.scorer import Scorer

        if type(scorer) is not Scorer or type(scorer.model) is not QualityEstimator:
            raise CarSelectError(f"scorer: a {type(scorer).__name__} object cannot be sent to Ray workers; "
                                 "pass its path or spec as Config.scorer instead")
        clone = copy.copy(scorer)  # save() resets the saved object's fingerprint: keep the caller's as it is
        with tempfile.TemporaryDirectory(prefix="car-select-scorer-") as tmp:
            clone.save(tmp)
            files = {str(p.relative_to(tmp)): p.read_bytes() for p in sorted(Path(tmp).rglob("*")) if p.is_file()}
        fresh = copy.copy(scorer)
        fresh._fingerprint = None  # from the weights themselves, as the rebuilt copy computes it
        return cls(files, str(scorer.dtype).removeprefix("torch."), fresh.fingerprint())

    def load(self, device: str):
        """The same scorer, on `device`, in the precision it ran in."""
        import torch

        from .scoring.scorer import Scorer

        with tempfile.TemporaryDirectory(prefix="car-select-scorer-") as tmp:
            for name, data in self.files.items():
                path = Path(tmp, name)
                os.makedirs(path.parent, exist_ok=True)
                path.write_bytes(data)
            scorer = Scorer.load(tmp)
        scorer._fingerprint = None
        if scorer.fingerprint() != self.fingerprint:  # a bug in save/load, never a user's mistake
            raise RuntimeError("the scorer rebuilt from its saved state differs from the one passed to select")
        scorer.to(device, "fp32")
        scorer.dtype = getattr(torch, self.dtype)
        return scorer


class Featurize:
    """Records -> Features through the feature cache. The model loads on first use and only when a
    text is not cached, in whatever process calls the stage (one per Ray actor).

    A scorer object (API callers) is used as it is in this process; in another process (a Ray actor)
    the same scorer is rebuilt from its saved state (`ShippedScorer`), on `config.device` and in the
    object's own precision. Only a car-select Scorer can travel: `shipped_scorer()` refuses others."""

    def __init__(self, config: Config, scorer=None):
        self.config = config
        self._scorer = scorer  # an already loaded Scorer (API callers), else config.scorer on demand
        self._shipped: ShippedScorer | None = None
        self._extractor = None
        self._cache = None

    def shipped_scorer(self) -> ShippedScorer | None:
        """The scorer object's saved state (None without one); a one-line CarSelectError for a scorer
        that cannot travel. Executors that run the stage elsewhere call it before any work starts."""
        if self._shipped is None and self._scorer is not None:
            self._shipped = ShippedScorer.of(self._scorer)
        return self._shipped

    def __getstate__(self):  # what travels to a worker: the settings, never a loaded model
        return {"config": self.config, "_scorer": None, "_shipped": self.shipped_scorer(), "_extractor": None,
                "_cache": None}

    def resources(self, cluster_gpus: int) -> dict:
        """What one worker of this stage needs: a GPU where the cluster has them and the device allows."""
        if cluster_gpus > 0 and self.config.device != "cpu":
            return {"num_gpus": 1, "num_cpus": 1}
        return {"num_gpus": 0}

    def _setup(self):
        if self._extractor is None:
            from .cache import open_cache
            from .features import FeatureExtractor

            if self._scorer is None and self._shipped is not None:
                self._scorer = self._shipped.load(self.config.device)
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
                        extractor.passes, self._texts_cut(extractor, feats["counts"]))

    def _texts_cut(self, extractor, counts: np.ndarray) -> int | None:
        """Texts whose token count fills the scorer's window; counted only where the scorer's own pass
        gave the counts (with a separate embedder they are the embedder's)."""
        from .scored import scorer_window

        window = scorer_window(self.config, self._scorer)
        if window is None or extractor.passes != 1:
            return None
        return int((np.asarray(counts) >= window["tokens"]).sum())

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
