"""Runs the stages in this process."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..formats import Dataset
from ..formats.sources import is_sharded, read_sharded, write_selection
from ..records import Record
from ..stages import ClusterEstimator, Features, Featurize
from .base import Executor, ProgressBars


class LocalExecutor(Executor):
    name = "local"

    def read(self, path: str, read_one: Callable[[str], Dataset], *, keep_rows: bool = False) -> Dataset:
        """A file, a Hugging Face folder or hub id, or a sharded input, read by `read_one` per file."""
        return read_sharded(path, read_one) if is_sharded(path) else read_one(path)

    def write(self, dataset: Dataset, indices: Sequence[int], target: str, folder: bool,
              file_format: str | None = None, rows_per_shard: int = 100_000) -> None:
        write_selection(dataset, indices, target, folder, file_format, rows_per_shard)

    def featurize(self, stage: Featurize, records: Sequence[Record], progress: ProgressBars) -> Features:
        with progress.bar("score+embed", stage.texts(records)) as tick:
            return stage(records, progress=tick)

    def cluster(self, estimator: ClusterEstimator, features: Features) -> tuple[np.ndarray, np.ndarray]:
        """Fit on the seeded sample rows, predict every row: (labels, reduced)."""
        emb = features.embeddings
        if not isinstance(emb, np.ndarray):
            raise TypeError(f"LocalExecutor clusters embeddings in memory, not {type(emb).__name__}: "
                            "give the features to the executor that computed them")
        estimator.fit(emb[estimator.fit_rows(len(emb))], len(emb))
        return estimator.predict(emb)
