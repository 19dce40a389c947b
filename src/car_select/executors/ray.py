"""Runs the stages on a Ray cluster, on Ray Data.

- read: the project's readers (`formats/`) as a Ray Data datasource, one read task per file (a single
  file, a folder of shards or a glob); each record becomes a row holding its normalised Record and its
  raw row exactly as read. Hugging Face inputs are read on the driver.
- featurize: Featurize in an actor pool (one model per actor, a GPU each where the cluster has them).
- cluster: ClusterEstimator fitted on the driver on the seeded sample gathered from the workers, and
  applied to every block on the workers.
- write: the project's writer as a Ray Data datasink. The selected raw rows go from the read blocks to
  one write task on the driver's node (a selection is one file, or shards numbered in selection order,
  written to the run's temporary sibling there), which rebuilds them with `formats.sources.combine`
  and writes them with `write_selection`, the local executor's writer: so both engines write the same
  bytes.
- dedupe, the CaR rule and the report run on the driver, in `pipeline.select` and `api.run`, the same
  code the local executor runs.

What reaches the driver: the normalised records (dedupe, the CaR rule, the language sample and the
report still take them as a list, and Featurize's chunks are cut from that list as the local
executor cuts them), each file's layout, one score, label and reduced embedding per
distinct record, and the fit sample's embeddings. The raw rows and the full embeddings stay on the
workers (the raw rows do come to the driver with `score_field`, whose values are read from them).

Ray is imported lazily: without it every entry point raises a one-line CarSelectError.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import pickle
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import CarSelectError
from ..formats import Dataset
from ..formats.hf import HF_PREFIX
from ..formats.sources import combine, is_sharded, list_files, shell, split_rows, write_selection
from ..records import Record
from ..features import ENCODE_CHUNK
from ..stages import ClusterEstimator, Features, Featurize
from .base import Executor, ProgressBars

RAY_MISSING = "the Ray engine needs: pip install 'car-select[ray]'"
USER_ERROR_LINE = re.compile(r"^(?:car_select\.errors\.)?CarSelectError: (.+)$", re.MULTILINE)


def import_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise CarSelectError(RAY_MISSING) from None
    return ray


def _user_error(exc: BaseException) -> CarSelectError | None:
    """The CarSelectError a worker raised, however Ray wrapped it (a subclass whose message is a
    traceback, the original in `.cause`, or only its text)."""
    seen, chain, stack = set(), [], [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        chain.append(e)
        if type(e) is CarSelectError:
            return e
        if isinstance(e, CarSelectError) and getattr(e, "cause", None) is None and e.args:
            hits = USER_ERROR_LINE.findall(str(e))
            if hits:
                return CarSelectError(hits[-1])
        stack.extend([getattr(e, "cause", None), e.__cause__, e.__context__])
    for e in chain:
        hits = USER_ERROR_LINE.findall(str(e))
        if hits:
            return CarSelectError(hits[-1])
    return None


@contextlib.contextmanager
def _user_errors():
    try:
        yield
    except Exception as exc:
        if type(exc) is CarSelectError:
            raise
        # Ray re-raises a task's CarSelectError as a subclass whose message is the worker's traceback
        err = _user_error(exc)
        if err is None:
            raise
        raise CarSelectError(str(err)) from None


def _read_block(read_one: Callable[[str], Dataset], k: int, path: str) -> list:
    """File `k` read by the project's reader: one row per record (the Record and the raw row, pickled,
    as `split_rows` gives it), the file's layout (`shell`) on its first row."""
    import pyarrow as pa

    part = read_one(path)
    n = len(part)
    layout = [pickle.dumps(shell(part))] + [None] * (n - 1)
    return [pa.table({"file": pa.array(np.full(n, k), pa.int64()), "row": pa.array(np.arange(n), pa.int64()),
                      "record": pa.array([pickle.dumps(r) for r in part.records], pa.large_binary()),
                      "raw": pa.array([pickle.dumps(r) for r in split_rows(part)], pa.large_binary()),
                      "shell": pa.array(layout, pa.large_binary())})]


def _datasource(files: Sequence[str], read_one: Callable[[str], Dataset]):
    from ray.data import Datasource
    from ray.data.block import BlockMetadata
    from ray.data.datasource import ReadTask

    class FilesDatasource(Datasource):
        """The project's reader as a Ray Data datasource: one read task per file (`_read_block`)."""

        def estimate_inmemory_data_size(self):
            return None

        def get_read_tasks(self, parallelism, per_task_row_limit=None, data_context=None):
            return [ReadTask(functools.partial(_read_block, read_one, k, f),
                             BlockMetadata(num_rows=None, size_bytes=None, input_files=[f], exec_stats=None),
                             per_task_row_limit=per_task_row_limit)
                    for k, f in enumerate(files)]

    return FilesDatasource()


def _chosen(batch, pos_of: np.ndarray, offsets: np.ndarray):
    """The selected rows of a read block, with their position in the selection."""
    import pyarrow as pa

    pos = pos_of[offsets[batch.column("file").to_numpy()] + batch.column("row").to_numpy()]
    keep = pos >= 0
    return pa.table({"pos": pa.array(pos[keep], pa.int64()),
                     "record": batch.column("record").filter(pa.array(keep)),
                     "raw": batch.column("raw").filter(pa.array(keep))})


def _datasink(shells: list, path: str, target: str, folder: bool, file_format: str | None, rows_per_shard: int,
              expected: int):
    from ray.data import Datasink
    from ray.data.block import BlockAccessor

    class SelectionDatasink(Datasink):
        """The project's writer as a Ray Data datasink: one write task gets every selected row, puts
        them in selection order and writes them as the local executor would (`write_selection`)."""

        @property
        def supports_distributed_writes(self) -> bool:
            return False  # the run's temporary sibling is on the driver's filesystem

        def write(self, blocks, ctx) -> int:
            import pyarrow as pa

            tables = [BlockAccessor.for_block(b).to_arrow() for b in blocks]
            tables = [t for t in tables if t.num_rows]
            if not tables:
                return 0
            t = pa.concat_tables(tables)
            order = np.argsort(t.column("pos").to_numpy(), kind="stable")
            records = [pickle.loads(b) for b in t.column("record").take(order).to_pylist()]
            rows = [pickle.loads(b) for b in t.column("raw").take(order).to_pylist()]
            subset = combine(path, shells, records=records, rows=rows)
            write_selection(subset, range(len(rows)), target, folder, file_format, rows_per_shard)
            return len(rows)

        def on_write_complete(self, write_result) -> None:
            wrote = [n for n in write_result.write_returns if n]
            if wrote != [expected]:  # two tasks would each have written the whole target
                raise RuntimeError(f"the selection was written by {len(wrote)} write tasks ({wrote}), expected one "
                                   f"of {expected} rows")

    return SelectionDatasink()


@dataclass
class _Held:
    """A Dataset's raw rows left in the read blocks: the materialized read, each file's layout and
    first global row."""

    ds: Any
    shells: list
    offsets: np.ndarray


class _FeaturizeActor:
    """One Featurize stage (so one model) per actor."""

    def __init__(self, stage: Featurize, threads: int | None):
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.stage = stage

    def __call__(self, batch) -> dict[str, np.ndarray]:
        records = [pickle.loads(b) for b in batch.column("record").to_pylist()]
        f = self.stage(records)
        hits = np.zeros(len(records), dtype=np.int64)
        hits[:1] = f.cache_hits  # the call's total, summed over every call by the driver
        cut = np.zeros(len(records), dtype=np.int64)
        cut[:1] = -1 if f.texts_cut is None else f.texts_cut  # likewise; -1: not counted
        return {"rank": batch.column("rank").to_numpy(), "score": f.scores, "embedding": f.embeddings,
                "hits": hits, "passes": np.full(len(records), f.passes, dtype=np.int64), "cut": cut}


def _fit_rows(batch: dict, rows: np.ndarray) -> dict:
    keep = np.isin(batch["rank"], rows)
    return {"rank": batch["rank"][keep], "embedding": batch["embedding"][keep]}


def _predict(batch: dict, estimator: ClusterEstimator) -> dict:
    labels, reduced = estimator.predict(np.asarray(batch["embedding"], dtype=np.float32))
    return {"rank": batch["rank"], "label": labels, "reduced": reduced}


def _collect(ds, columns: Sequence[str]) -> dict[str, np.ndarray]:
    parts: dict[str, list] = {c: [] for c in columns}
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for c in columns:
            parts[c].append(np.asarray(batch[c]))
    return {c: np.concatenate(v) for c, v in parts.items()}


@dataclass
class _RayEmbeddings:
    """Embeddings left on the workers (a stages.HeldEmbeddings): the materialized Featurize output,
    rows tagged by rank."""

    ds: Any
    n: int

    def __len__(self) -> int:
        return self.n


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, address: str | None = None, *, actors: int | None = None, quiet: bool = True,
                 runtime_env: dict | None = None):
        self.address, self.actors, self.quiet = address, actors, quiet
        self.runtime_env = runtime_env
        import_ray()  # the one-line error first, whatever else is wrong

    # --- session --------------------------------------------------------------------------------

    def connect(self):
        """Join the cluster at `address`, or start a local one; a session already initialised in
        this process is reused as it is."""
        ray = import_ray()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"logging_level": logging.WARNING}
            if self.runtime_env:
                kwargs["runtime_env"] = self.runtime_env
            try:
                if self.address:
                    ray.init(address=self.address, **kwargs)
                else:
                    ray.init(include_dashboard=False, **kwargs)
            except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
                reason = " ".join(str(exc).split())[:300] or type(exc).__name__
                raise CarSelectError(f"cannot connect to the Ray cluster at {self.address or 'a new local cluster'}"
                                     f": {reason}") from None
        return ray

    @contextlib.contextmanager
    def _session(self):
        """Connected, ordered execution (deterministic row order), Ray's bars only when not quiet,
        worker errors unwrapped into one line; the data context restored afterwards."""
        ray = self.connect()
        ctx = ray.data.DataContext.get_current()
        saved = (ctx.execution_options.preserve_order, ctx.enable_progress_bars)
        loggers = [logging.getLogger("ray.data"), logging.getLogger("ray.data._internal.progress")]
        levels = [lg.level for lg in loggers]
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = not self.quiet
        loggers[0].setLevel(logging.WARNING)
        loggers[1].setLevel(logging.ERROR if self.quiet else logging.WARNING)
        try:
            with _user_errors():
                yield ray
        finally:
            ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)

    # --- stages ---------------------------------------------------------------------------------

    def read(self, path: str, read_one: Callable[[str], Dataset], *, keep_rows: bool = False) -> Dataset:
        """Every file of the input read by `read_one` in a Ray Data read task; the records come to the
        driver, the raw rows stay in the blocks (unless `keep_rows`)."""
        sharded = is_sharded(path)  # once: for a URL it asks the remote filesystem
        if not sharded and (path.startswith(HF_PREFIX) or os.path.isdir(path)):
            from .local import LocalExecutor  # a Hugging Face dataset: its own loader, on the driver

            return LocalExecutor().read(path, read_one)
        files = list_files(path) if sharded else [path]
        columns = ["file", "row", "record", "shell"] + (["raw"] if keep_rows else [])
        with self._session() as ray:
            ds = ray.data.read_datasource(_datasource(files, read_one)).materialize()
            got = _collect(ds.select_columns(columns), columns)
        order = np.lexsort((got["row"], got["file"]))
        shells = [pickle.loads(b) for b in got["shell"][order] if b is not None]
        sizes = np.bincount(got["file"], minlength=len(files))
        records = [pickle.loads(b) for b in got["record"][order]]
        if keep_rows:
            return combine(path, shells, records=records, rows=[pickle.loads(b) for b in got["raw"][order]])
        layout = combine(path, shells, records=records, rows=[])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        return dataclasses.replace(layout, _rows=None, _table=None, _held=_Held(ds, shells, offsets))

    def write(self, dataset: Dataset, indices: Sequence[int], target: str, folder: bool,
              file_format: str | None = None, rows_per_shard: int = 100_000) -> None:
        """The selection through the datasink (`_datasink`), or on the driver for a Dataset it did not read."""
        held = dataset._held
        if held is None:
            write_selection(dataset, indices, target, folder, file_format, rows_per_shard)
            return
        pos_of = np.full(len(dataset), -1, dtype=np.int64)
        pos_of[np.asarray(indices, dtype=np.int64)] = np.arange(len(indices))
        with self._session():
            chosen = held.ds.map_batches(_chosen, fn_kwargs={"pos_of": pos_of, "offsets": held.offsets},
                                         batch_size=None, batch_format="pyarrow")
            chosen.repartition(1).write_datasink(_datasink(held.shells, dataset.path, target, folder, file_format,
                                                           rows_per_shard, len(indices)))

    def pool(self, ray, stage: Featurize) -> dict:
        """Actors for Featurize: one per GPU where the stage wants GPUs, else CPU actors of up to 8
        threads filling the cluster (each no wider than the smallest node)."""
        resources = ray.cluster_resources()
        wants = stage.resources(int(resources.get("GPU", 0)))
        if wants.get("num_gpus"):
            return {"size": self.actors or int(resources["GPU"]), "num_cpus": 1, "num_gpus": 1, "threads": None}
        cpus = [int(n.get("Resources", {}).get("CPU", 0)) for n in ray.nodes() if n.get("Alive")]
        total = max(1, int(resources.get("CPU", 1)))
        threads = max(1, min(8, min([c for c in cpus if c > 0] or [1]), total))
        return {"size": self.actors or max(1, total // threads), "num_cpus": threads, "num_gpus": 0,
                "threads": threads}

    def featurize(self, stage: Featurize, records: Sequence[Record], progress: ProgressBars) -> Features:
        """Featurize in the actor pool, ENCODE_CHUNK records per call: the local executor's chunks."""
        import pyarrow as pa

        stage.shipped_scorer()  # a scorer object that cannot travel is refused here, before any work
        with self._session() as ray:
            step = ENCODE_CHUNK
            blocks = [pa.table({"rank": pa.array(np.arange(s, min(s + step, len(records))), pa.int64()),
                                "record": pa.array([pickle.dumps(r) for r in records[s:s + step]], pa.binary())})
                      for s in range(0, len(records), step)]
            plan = self.pool(ray, stage)
            with _without_cpu_warning():
                ds = ray.data.from_arrow(blocks).map_batches(
                    _FeaturizeActor, fn_constructor_kwargs={"stage": stage, "threads": plan["threads"]},
                    batch_size=step, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=plan["size"]),
                    num_cpus=plan["num_cpus"], num_gpus=plan["num_gpus"]).materialize()
            _wait_for_release(ray)
            columns = ["rank", "score", "hits", "passes", "cut"]
            got = _collect(ds.select_columns(columns), columns)
        order = np.argsort(got["rank"])
        if not np.array_equal(got["rank"][order], np.arange(len(records))):
            raise RuntimeError("the Featurize actors returned an incomplete set of rows")
        return Features(got["score"][order].astype(np.float32), _RayEmbeddings(ds, len(records)),
                        int(got["hits"].sum()), int(got["passes"].max(initial=1)),
                        None if (got["cut"] < 0).any() else int(got["cut"].sum()))

    def cluster(self, estimator: ClusterEstimator, features: Features) -> tuple[np.ndarray, np.ndarray]:
        emb = features.embeddings
        if not isinstance(emb, _RayEmbeddings):  # features computed elsewhere: nothing to distribute
            from .local import LocalExecutor

            return LocalExecutor().cluster(estimator, features)
        with self._session():
            rows = estimator.fit_rows(emb.n)
            sample = _collect(emb.ds.map_batches(_fit_rows, fn_kwargs={"rows": rows}, batch_size=None,
                                                 batch_format="numpy"), ["rank", "embedding"])
            order = np.argsort(sample["rank"], kind="stable")
            if not np.array_equal(sample["rank"][order], rows):
                raise RuntimeError("the fit sample gathered from the workers does not match fit_rows")
            estimator.fit(sample["embedding"][order], emb.n)
            got = _collect(emb.ds.map_batches(_predict, fn_kwargs={"estimator": estimator}, batch_size=None,
                                              batch_format="numpy"), ["rank", "label", "reduced"])
        order = np.argsort(got["rank"])
        return got["label"][order].astype(np.int64), np.asarray(got["reduced"], dtype=np.float32)[order]


class _NoCpuWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "does not have any available CPUs" not in record.getMessage()


@contextlib.contextmanager
def _without_cpu_warning():
    """The actor pool may hold every CPU of a small cluster, which makes Ray Data warn that the job
    "will hang": it cannot here (the pool's input is already in memory), so the warning is dropped."""
    logger, flt = logging.getLogger("ray.data.dataset"), _NoCpuWarning()
    logger.addFilter(flt)
    try:
        yield
    finally:
        logger.removeFilter(flt)


def _wait_for_release(ray, timeout: float = 10.0) -> None:
    """Wait briefly until the finished pool has handed its CPUs back, so the next stage starts at once."""
    deadline = time.monotonic() + timeout
    total = ray.cluster_resources().get("CPU", 0)
    while time.monotonic() < deadline and ray.available_resources().get("CPU", 0) < min(1, total):
        time.sleep(0.1)
