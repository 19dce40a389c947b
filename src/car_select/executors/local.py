"""Runs the stages in this process."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..records import Record
from ..stages import ClusterEstimator, Features, Featurize


class LocalExecutor:
    name = "local"

    def map_files(self, fn: Callable, files: Sequence[str]) -> list:
        return [fn(f) for f in files]

    def featurize(self, stage: Featurize, records: Sequence[Record], progress) -> Features:
        with progress.bar("score+embed", stage.texts(records)) as tick:
            return stage(records, progress=tick)

    def cluster(self, estimator: ClusterEstimator, features: Features) -> tuple[np.ndarray, np.ndarray]:
        """Fit on the seeded sample rows, predict every row: (labels, reduced)."""
        emb = features.embeddings
        estimator.fit(emb[estimator.fit_rows(len(emb))], len(emb))
        return estimator.predict(emb)
