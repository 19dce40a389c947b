"""The executor contract: what `pipeline.select` and `api.run` ask of whatever runs the stages.

An executor reads an input into a `Dataset`, runs Featurize over the distinct records, fits and
applies the ClusterEstimator, and writes a selection of the Dataset's raw rows. It knows no file format
(`read_one` and the writers in `formats/` do) and no selection rule (the driver applies it). What each
stage needs from an executor is said in `car_select.stages`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

import numpy as np

from ..formats import Dataset
from ..records import Record
from ..stages import ClusterEstimator, Features, Featurize

TickFn = Callable[..., None]  # (texts done[, tokens done]) increments


class ProgressBars(Protocol):
    """Where an executor reports progress (pipeline.Progress: tqdm on stderr, or nothing)."""

    def bar(self, desc: str, total: int, unit: str = "text") -> AbstractContextManager[TickFn]: ...


class Executor(abc.ABC):
    name: str  # "local", "ray": what a run's summary and manifest call it

    @abc.abstractmethod
    def read(self, path: str, read_one: Callable[[str], Dataset], *, keep_rows: bool = False) -> Dataset:
        """Every file of `path` (a file, a folder of shards, a glob, a Hugging Face dataset) read by
        `read_one`, as one Dataset in file then row order. The raw rows may stay with the executor
        (then only its `write` can write them) unless `keep_rows`."""

    @abc.abstractmethod
    def featurize(self, stage: Featurize, records: Sequence[Record], progress: ProgressBars) -> Features:
        """`stage` over `records`: one score and one embedding per record, in the records' order."""

    @abc.abstractmethod
    def cluster(self, estimator: ClusterEstimator, features: Features) -> tuple[np.ndarray, np.ndarray]:
        """`estimator` fitted on its `fit_rows` of the features' embeddings and applied to every row:
        (cluster label per record (n,) int64, reduced embeddings (n, c) float32). Features from another
        executor are clustered as the local executor would."""

    @abc.abstractmethod
    def write(self, dataset: Dataset, indices: Sequence[int], target: str, folder: bool,
              file_format: str | None = None, rows_per_shard: int = 100_000) -> None:
        """The raw rows at `indices`, in that order, to `target` (a file, or a folder of shards) in the
        input's format unless `file_format` says otherwise; the same bytes on every executor."""
