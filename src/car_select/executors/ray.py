"""Runs the stages on a Ray cluster: the project's readers as Ray tasks (one per file), Featurize in
an actor pool (one model per actor, a GPU each where the cluster has them), ClusterEstimator fitted
on the driver from the seeded sample gathered from the workers and applied to every block on the
workers. Dedupe, the CaR rule and writing run on the driver, in `pipeline.select` and `api.run`, the
same code the local executor runs, which is why both engines give the same bytes.

What reaches the driver: the records (as for the local engine), one score, label and reduced
embedding per distinct record, and the fit sample's embeddings; full embeddings stay on the workers.

Ray is imported lazily: without it every entry point raises a one-line CarSelectError.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import CarSelectError
from ..records import Record
from ..stages import ClusterEstimator, Features, Featurize

RAY_MISSING = "the Ray engine needs: pip install 'car-select[ray]'"
USER_ERROR_LINE = re.compile(r"^(?:car_select\.errors\.)?CarSelectError: (.+)$", re.MULTILINE)
# Records per actor call. The local executor encodes its texts in chunks of this many (FeatureExtractor
# .extract), and bf16 sums depend on the batch shapes: equal chunks give both engines the same numbers.
ENCODE_BATCH = 2048


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


def _read_file(fn: Callable, path: str):
    return fn(path)


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
        return {"rank": batch.column("rank").to_numpy(), "score": f.scores, "embedding": f.embeddings,
                "hits": hits, "passes": np.full(len(records), f.passes, dtype=np.int64)}


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
    """Embeddings left on the workers: the materialized Featurize output, rows tagged by rank."""

    ds: Any
    n: int

    def __len__(self) -> int:
        return self.n


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None = None, *, actors: int | None = None, quiet: bool = True,
                 runtime_env: dict | None = None, batch_size: int = ENCODE_BATCH):
        self.address, self.actors, self.quiet = address, actors, quiet
        self.runtime_env, self.batch_size = runtime_env, batch_size
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

    def map_files(self, fn: Callable, files: Sequence[str]) -> list:
        """`fn(path)` for every file as Ray tasks (the project's readers), results in file order."""
        with self._session() as ray:
            task = ray.remote(_read_file)
            return ray.get([task.remote(fn, f) for f in files])

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

    def featurize(self, stage: Featurize, records: Sequence[Record], progress) -> Features:
        import pyarrow as pa

        with self._session() as ray:
            step = self.batch_size
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
            got = _collect(ds.select_columns(["rank", "score", "hits", "passes"]), ["rank", "score", "hits", "passes"])
        order = np.argsort(got["rank"])
        if not np.array_equal(got["rank"][order], np.arange(len(records))):
            raise RuntimeError("the Featurize actors returned an incomplete set of rows")
        return Features(got["score"][order].astype(np.float32), _RayEmbeddings(ds, len(records)),
                        int(got["hits"].sum()), int(got["passes"].max(initial=1)))

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
