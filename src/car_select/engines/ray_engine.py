"""The Ray engine: the local engine's stages (render -> score+embed -> PCA + k-means -> CaR rule) on
Ray Data, for datasets larger than one machine handles comfortably.

What runs where:

- workers: reading files, parsing + rendering records, hashing rendered texts (dedupe), the encoder
  (an actor pool, one scorer per actor, ``num_gpus=1`` per actor where the cluster has GPUs),
  PCA projection + nearest-centroid assignment, per-block CaR candidates, writing the outputs;
- driver: the fit sample (PCA + k-means on at most ``Config.fit_sample`` rows, gathered in global
  row order), the final CaR pass over the merged candidates, and small bookkeeping (the duplicate
  list, the selected ids).

The result is exactly the local engine's: the same dedupe rule (identical rendered text, the first
copy is kept), the same fit rows in the same order (`clustering.sample_rows` over the unique rows),
the same `ClusterModel`, and a selection made in two steps whose union provably equals the global
rule (see `selection.car_select`). Scores and embeddings come from the same `FeatureExtractor`
through the same feature cache, so a warm cache gives bit-identical features in both engines.

Two entry points:

- `select_with_ray(records, config)`: in-memory records (what ``car-select run --engine ray`` and
  `api.run(engine="ray")` call); returns a `pipeline.Selection`.
- `run_ray_files(input, output_dir, config)`: JSON Lines / JSON / Parquet files or folders of shards
  on any pyarrow filesystem (local, ``s3://``, ``gs://``, ``hdfs://``...); writes the selected raw
  records as shards plus the annotated rows, and returns a summary dict.

Ray is imported lazily: without it every entry point raises a one-line `CarSelectError`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import inspect
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..clustering import ClusterModel, fit_cluster_model, sample_rows
from ..config import Config, n_clusters_for
from ..errors import CarSelectError
from ..records import Record
from ..render import render_exchanges, render_record
from ..selection import SelectionResult, car_select

RAY_MISSING = "the Ray engine needs: pip install 'car-select[ray]'"
USER_ERROR_LINE = re.compile(r"^(?:car_select\.errors\.)?CarSelectError: (.+)$", re.MULTILINE)

# internal column names (prefixed so they never collide with a dataset's own fields)
GID = "_car_gid"  # global row id: position in the input (files in sorted path order, rows in file order)
RANK = "_car_rank"  # position among the unique rows (what sample_rows indexes)
HASH = "_car_hash"  # hex SHA-256 prefix of the rendered record
ERROR = "_car_error"  # a record that does not parse: its message (null for good records)
BAD = "!"  # the HASH of a record that does not parse (never a hex digest)
PROMPTS = "_car_prompts"
RESPONSES = "_car_responses"
ORDER = "_car_order"  # position in the selection (best first), for writing in selection order

ENCODE_BATCH = 2048  # rows per encoder call, the local engine's cache chunk
CANDIDATE_BATCH = 262_144  # at least this many rows per per-block candidate pass
DRIVER_GATHER = 1_000_000  # selections up to this size are put in order on the driver before writing
DATA_SUFFIXES = {".jsonl": "json", ".json": "json", ".ndjson": "json", ".parquet": "parquet", ".pq": "parquet"}
COMPRESSED = (".gz", ".bz2", ".zst", ".lz4", ".br")


# --------------------------------------------------------------------------------------------------
# Ray plumbing


def import_ray():
    """`ray` with `ray.data`, or a one-line CarSelectError naming the extra to install."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise CarSelectError(RAY_MISSING) from None
    return ray


def connect(address: str | None = None, runtime_env: dict | None = None):
    """Join the Ray cluster at `address` ("auto", "ray://head:10001", "head:6379"), or start a local
    one when None; a session already initialised in this process is reused as it is."""
    ray = import_ray()
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"logging_level": logging.WARNING}
        if runtime_env:
            kwargs["runtime_env"] = runtime_env
        try:
            if address:
                ray.init(address=address, **kwargs)
            else:
                ray.init(include_dashboard=False, **kwargs)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            # no cluster at `address`, a malformed address, a cluster that does not answer
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise CarSelectError(f"cannot connect to the Ray cluster at {address or 'a new local cluster'}: "
                                 f"{reason}") from None
    return ray


@contextlib.contextmanager
def _ordered(ray):
    """Ordered execution for the datasets created inside (each copies the context when created)."""
    ctx = ray.data.DataContext.get_current()
    saved = ctx.execution_options.preserve_order
    ctx.execution_options.preserve_order = True
    try:
        yield ctx
    finally:
        ctx.execution_options.preserve_order = saved


@contextlib.contextmanager
def _data_context(ray, quiet: bool):
    """Ordered execution (so row ids and every collected result are deterministic), Ray's progress
    bars only when not quiet, and no INFO chatter; restored afterwards."""
    ctx = ray.data.DataContext.get_current()
    saved = (ctx.execution_options.preserve_order, ctx.enable_progress_bars)
    loggers = {logging.getLogger("ray.data"): logging.WARNING,
               # "Progress bars disabled" is what quiet asked for, not news
               logging.getLogger("ray.data._internal.progress"): logging.ERROR if quiet else logging.WARNING}
    levels = {logger: logger.level for logger in loggers}
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = not quiet
    for logger, level in loggers.items():
        logger.setLevel(level)
    try:
        yield ctx
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved
        for logger, level in levels.items():
            logger.setLevel(level)


def _user_error(exc: BaseException) -> CarSelectError | None:
    """The CarSelectError a worker raised, however deeply Ray wrapped it (Ray re-raises it as a
    subclass whose message is a traceback; the original sits in `.cause`)."""
    seen, found, chain, stack = set(), [], [], [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        chain.append(e)
        if isinstance(e, CarSelectError):
            found.append(e)
        stack.extend([getattr(e, "cause", None), e.__cause__, e.__context__])
    exact = [e for e in found if type(e) is CarSelectError]
    if exact:
        return exact[0]
    # Ray Data re-raises a UDF's exception as UserCodeException / ActorDiedError whose text holds the
    # original traceback, ending in "car_select.errors.CarSelectError: <message>".
    for e in chain:
        hits = USER_ERROR_LINE.findall(str(e))
        if hits:
            return CarSelectError(hits[-1])
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    out, e = [], exc
    while e is not None and e not in out:
        out.append(e)
        e = getattr(e, "cause", None) or e.__cause__ or e.__context__
    return out


@contextlib.contextmanager
def _user_errors():
    try:
        yield
    except CarSelectError:
        raise
    except Exception as exc:  # a worker's CarSelectError arrives wrapped in Ray's exceptions
        err = _user_error(exc)
        if err is None:
            raise
        raise CarSelectError(str(err)) from None


def _min_node_cpus(ray) -> int:
    cpus = [int(n.get("Resources", {}).get("CPU", 0)) for n in ray.nodes() if n.get("Alive")]
    cpus = [c for c in cpus if c > 0]
    return min(cpus) if cpus else 1


def encoder_pool(ray, config: Config, actors: int | None = None) -> dict[str, Any]:
    """How many encoder actors and what each holds: one GPU each where the cluster has GPUs (and the
    device is not forced to CPU); else CPU actors of up to 8 threads, filling the cluster."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus > 0 and config.device != "cpu":
        return {"size": actors or gpus, "num_cpus": 1, "num_gpus": 1, "threads": None}
    total = max(1, int(resources.get("CPU", 1)))
    threads = max(1, min(8, _min_node_cpus(ray), total))
    return {"size": actors or max(1, total // threads), "num_cpus": threads, "num_gpus": 0, "threads": threads}


# --------------------------------------------------------------------------------------------------
# worker-side functions (module level so workers import them by name)


class _Encoder:
    """One scorer (+ embedder when needed) per actor; `__call__` turns a batch of rows with their
    rendered exchanges into one score and one embedding per row, through the feature cache."""

    def __init__(self, config: Config, threads: int | None = None):
        if threads:
            import torch

            torch.set_num_threads(threads)
        from ..cache import open_cache
        from ..features import FeatureExtractor, load_scorer

        self.config = config
        self.extractor = FeatureExtractor(load_scorer(config), config)
        self.cache = open_cache(config, self.extractor)

    def __call__(self, batch) -> dict[str, np.ndarray]:
        from ..features import Segments, aggregate

        gids = batch.column(GID).to_numpy()
        ranks = batch.column(RANK).to_numpy()
        prompts = batch.column(PROMPTS).to_pylist()
        responses = batch.column(RESPONSES).to_pylist()
        n = len(gids)
        owner = np.repeat(np.arange(n, dtype=np.int64), [len(p) for p in prompts])
        segments = Segments([p for ps in prompts for p in ps], [r for rs in responses for r in rs], owner)
        feats, hits = self.extractor.extract(segments, self.cache)
        scores, emb = aggregate(owner, n, feats["scores"], feats["embeddings"], feats["counts"],
                                self.config.turn_aggregate)
        hit_col = np.zeros(n, dtype=np.int64)
        if n:
            hit_col[0] = hits  # the batch's total, summed over rows later
        return {GID: gids, RANK: ranks, "score": scores.astype(np.float32),
                "embedding": np.ascontiguousarray(emb, dtype=np.float32), "hits": hit_col,
                "passes": np.full(n, self.extractor.passes, dtype=np.int64)}


def _take_fit_rows(batch: dict, rows: np.ndarray | None) -> dict:
    keep = slice(None) if rows is None else np.isin(batch[RANK], rows)
    return {RANK: batch[RANK][keep], "embedding": batch["embedding"][keep]}


def _assign(batch: dict, model: ClusterModel, with_reduced: bool) -> dict:
    emb = np.asarray(batch["embedding"], dtype=np.float32)
    reduced = model.transform(emb)
    out = {GID: batch[GID], RANK: batch[RANK], "score": batch["score"], "cluster": model.assign(emb, reduced),
           "hits": batch["hits"], "passes": batch["passes"]}
    if with_reduced:
        out["reduced"] = reduced
    return out


def _candidates(batch: dict, n1: int, n2: int) -> dict:
    """This block's CaR candidates (tie-broken by global id): a superset of its share of the result.
    The block's cache hits and encoder passes ride along on one extra row with id -1 (so the run's
    totals need no separate pass over the data)."""
    gids = np.asarray(batch[GID], dtype=np.int64)
    chosen = car_select(batch["score"], batch["cluster"], n1, n2, index=gids).indices
    order = np.argsort(gids)
    at = order[np.searchsorted(gids[order], chosen)]
    m = len(at)
    stats = np.zeros(m + 1, dtype=np.int64)
    stats[m] = int(np.sum(batch["hits"]))
    passes = np.zeros(m + 1, dtype=np.int64)
    passes[m] = int(np.max(batch["passes"], initial=1))
    return {GID: np.r_[gids[at], -1], "score": np.r_[np.asarray(batch["score"], dtype=np.float32)[at], 0.0],
            "cluster": np.r_[np.asarray(batch["cluster"], dtype=np.int64)[at], -1], "hits": stats, "passes": passes}


def _render(batch, schema: str, fields: dict, source: str):
    """Raw rows -> (gid, hash of the rendered record, rendered exchanges), with the project's parser."""
    import pyarrow as pa

    from ..formats.schemas import PARSERS, FieldError, Names

    names = Names(fields)
    parse = PARSERS[schema]
    wanted = [c for c in dict.fromkeys(names.all()) if c in batch.column_names]
    gids = batch.column(GID).to_numpy()
    rows = batch.select(wanted).to_pylist() if wanted else [{}] * len(gids)
    hashes, prompts, responses, errors = [], [], [], []
    for gid, row in zip(gids.tolist(), rows):
        try:
            record = parse(row, names, False)
        except FieldError as exc:  # reported by the driver (the lowest id first), not raised in a worker
            hashes.append(BAD)
            prompts.append([])
            responses.append([])
            errors.append(f"{source}: record {gid}: {exc}")
            continue
        pairs = render_exchanges(record)
        hashes.append(hashlib.sha256(render_record(record).encode("utf-8")).hexdigest()[:32])
        prompts.append([p for p, _ in pairs])
        responses.append([r for _, r in pairs])
        errors.append(None)
    return pa.table({GID: pa.array(gids, pa.int64()), HASH: pa.array(hashes, pa.string()),
                     PROMPTS: pa.array(prompts, pa.list_(pa.string())),
                     RESPONSES: pa.array(responses, pa.list_(pa.string())), ERROR: pa.array(errors, pa.string())})


def _duplicate_rows(batch, first_of: dict[str, int]):
    """Rows whose hash was seen at a lower id: (gid, first gid)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    mask = pc.is_in(batch.column(HASH), value_set=pa.array(list(first_of), pa.string()))
    hit = batch.filter(mask)
    gids = hit.column(GID).to_numpy()
    firsts = np.array([first_of[h] for h in hit.column(HASH).to_pylist()], dtype=np.int64)
    dup = gids != firsts
    return {GID: gids[dup], "first": firsts[dup]}


def _unique_rows(batch, dups: np.ndarray):
    """Drop duplicate rows; RANK = position among the unique rows (ids minus earlier duplicates)."""
    import pyarrow as pa

    gids = batch.column(GID).to_numpy()
    keep = ~np.isin(gids, dups) if len(dups) else np.ones(len(gids), dtype=bool)
    kept = batch.filter(pa.array(keep)).drop_columns([HASH, ERROR])
    ranks = gids[keep] - np.searchsorted(dups, gids[keep])
    return kept.append_column(RANK, pa.array(ranks, pa.int64()))


def _pick(batch, gids: np.ndarray, order: np.ndarray):
    """The selected raw rows, with their position in the selection."""
    import pyarrow as pa

    ids = batch.column(GID).to_numpy()
    keep = np.isin(ids, gids)
    picked = batch.filter(pa.array(keep))
    at = np.searchsorted(gids, ids[keep])
    return picked.append_column(ORDER, pa.array(order[at], pa.int64()))


@contextlib.contextmanager
def _timed(seconds: dict, name: str):
    t = time.perf_counter()
    yield
    seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t


def _collect(ds, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """A (small) dataset's columns on the driver as numpy arrays."""
    parts: dict[str, list] = {c: [] for c in columns}
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for c in columns:
            parts[c].append(np.asarray(batch[c]))
    return {c: (np.concatenate(v) if v else np.zeros(0)) for c, v in parts.items()}


# --------------------------------------------------------------------------------------------------
# the shared stages: unique rows -> features -> clusters -> selection


def encode(ray, unique_ds, config: Config, *, actors: int | None = None, batch_size: int = ENCODE_BATCH):
    """Score + embed every unique row in an actor pool; returns the materialized features
    (GID, RANK, score, embedding, hits, passes)."""
    pool = encoder_pool(ray, config, actors)
    with _without_cpu_warning():
        features = unique_ds.map_batches(
            _Encoder, fn_constructor_kwargs={"config": config, "threads": pool["threads"]},
            batch_size=batch_size, batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=pool["size"]), num_cpus=pool["num_cpus"],
            num_gpus=pool["num_gpus"],
        ).materialize()
    _wait_for_release(ray)
    return features


class _NoCpuWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "does not have any available CPUs" not in record.getMessage()


@contextlib.contextmanager
def _without_cpu_warning():
    """The encoder pool may hold every CPU of a small cluster, which makes Ray Data warn that the
    job "will hang": it cannot here (the pool's input is materialized), so that warning is dropped
    while the pool runs."""
    logger, flt = logging.getLogger("ray.data.dataset"), _NoCpuWarning()
    logger.addFilter(flt)
    try:
        yield
    finally:
        logger.removeFilter(flt)


def _wait_for_release(ray, timeout: float = 10.0) -> None:
    """Wait (briefly) until the finished actor pool has handed its CPUs back, so the next stage's
    tasks can start at once."""
    deadline = time.monotonic() + timeout
    total = ray.cluster_resources().get("CPU", 0)
    while time.monotonic() < deadline and ray.available_resources().get("CPU", 0) < min(1, total):
        time.sleep(0.1)


def fit_on_sample(features, n_unique: int, config: Config) -> ClusterModel:
    """PCA + k-means on exactly the local engine's fit rows (`sample_rows` over the unique rows), in
    global row order."""
    k = config.clusters or n_clusters_for(n_unique)
    if k > n_unique:
        raise CarSelectError(f"--clusters {k} is more than the {n_unique} distinct records in the input")
    rows = sample_rows(n_unique, config.fit_sample, config.seed)
    sample = _collect(features.map_batches(_take_fit_rows, fn_kwargs={"rows": None if len(rows) == n_unique else rows},
                                           batch_size=None, batch_format="numpy"), [RANK, "embedding"])
    order = np.argsort(sample[RANK], kind="stable")
    if not np.array_equal(sample[RANK][order], rows):
        raise RuntimeError("the fit sample gathered from the workers does not match sample_rows")
    return fit_cluster_model(sample["embedding"][order], k, config.pca_variance, config.seed,
                             config.kmeans_backend, config.kmeans_n_init)


def assign(features, model: ClusterModel, *, with_reduced: bool = False):
    """Project + assign every row (workers); materialized (GID, RANK, score, cluster[, reduced])."""
    return features.map_batches(_assign, fn_kwargs={"model": model, "with_reduced": with_reduced},
                                batch_size=None, batch_format="numpy").materialize()


@dataclass
class RayOutcome:
    """What the shared stages produce: the fitted model, the assigned rows (materialized on the
    workers: GID, RANK, score, cluster[, reduced]), the selection over global ids with each selected
    row's cluster, and run statistics."""

    model: ClusterModel
    assigned: Any
    chosen: SelectionResult
    chosen_clusters: np.ndarray
    candidates: int
    cache_hits: int
    encoder_passes: int


def select_candidates(assigned, n1: int, n2: int, k: int):
    """Per-block candidates on the workers, then the final CaR pass on the driver: exactly the global
    rule. Returns (SelectionResult over global ids, their clusters, candidates, cache hits, passes)."""
    block = max(CANDIDATE_BATCH, 16 * (n1 + k * n2))
    cols = [GID, "score", "cluster", "hits", "passes"]
    cand = _collect(assigned.select_columns(cols).map_batches(
        _candidates, fn_kwargs={"n1": n1, "n2": n2}, batch_size=block, batch_format="numpy"), cols)
    real = cand[GID] >= 0
    hits, passes = int(cand["hits"].sum()), int(cand["passes"].max(initial=1))
    gids = cand[GID][real].astype(np.int64)
    scores, clusters = cand["score"][real].astype(np.float32), cand["cluster"][real].astype(np.int64)
    chosen = car_select(scores, clusters, n1, n2, index=gids)
    order = np.argsort(gids)
    chosen_clusters = clusters[order[np.searchsorted(gids[order], chosen.indices)]]
    return chosen, chosen_clusters, len(gids), hits, passes


def cluster_and_select(features, n_unique: int, config: Config, *, with_reduced: bool = False,
                       seconds: dict | None = None) -> RayOutcome:
    """Fit on the sample, assign every row, select. `features` has GID, RANK, score, embedding,
    hits, passes (what `encode` returns)."""
    seconds = {} if seconds is None else seconds
    with _timed(seconds, "cluster"):
        model = fit_on_sample(features, n_unique, config)
        assigned = assign(features, model, with_reduced=with_reduced)
    with _timed(seconds, "select"):
        chosen, chosen_clusters, n_candidates, hits, passes = select_candidates(
            assigned, config.n1, config.n2, model.k)
    return RayOutcome(model, assigned, chosen, chosen_clusters, n_candidates, hits, passes)


# --------------------------------------------------------------------------------------------------
# entry point 1: in-memory records (api.run / car-select run --engine ray)


def select_with_ray(records: Sequence[Record], config: Config | None = None, address: str | None = None,
                    progress=None, *, actors: int | None = None, batch_size: int = ENCODE_BATCH,
                    runtime_env: dict | None = None):
    """`pipeline.select` on a Ray cluster: the same `Selection`, field for field."""
    import pyarrow as pa

    from ..pipeline import Selection, dedupe

    import_ray()  # the one-line error first, whatever else is wrong
    config = (config or Config()).validate()
    quiet = getattr(progress, "quiet", True)
    if not records:
        raise CarSelectError("the dataset has no records")
    seconds: dict[str, float] = {}
    with _timed(seconds, "ray_init"):
        ray = connect(address, runtime_env)
    with _data_context(ray, quiet), _user_errors():
        with _timed(seconds, "render"):
            unique, duplicate_of = dedupe(records)
            n_unique = len(unique)
            config.validate(n_unique)
            pairs = [render_exchanges(records[i]) for i in unique]
            blocks = []
            for start in range(0, n_unique, batch_size):
                part = pairs[start:start + batch_size]
                blocks.append(pa.table({
                    GID: pa.array(unique[start:start + batch_size], pa.int64()),
                    RANK: pa.array(np.arange(start, start + len(part)), pa.int64()),
                    PROMPTS: pa.array([[p for p, _ in x] for x in part], pa.list_(pa.string())),
                    RESPONSES: pa.array([[r for _, r in x] for x in part], pa.list_(pa.string())),
                }))
            unique_ds = ray.data.from_arrow(blocks)
        with _timed(seconds, "score_embed"):
            features = encode(ray, unique_ds, config, actors=actors, batch_size=batch_size)
        out = cluster_and_select(features, n_unique, config, with_reduced=True, seconds=seconds)
        model, chosen = out.model, out.chosen
        with _timed(seconds, "select"):
            rows = _collect(out.assigned.select_columns([RANK, "score", "cluster", "reduced"]),
                            [RANK, "score", "cluster", "reduced"])
            order = np.argsort(rows[RANK])
            if not np.array_equal(rows[RANK][order], np.arange(n_unique)):
                raise RuntimeError("the workers returned an incomplete set of rows")
            scores_u = rows["score"][order].astype(np.float32)
            labels_u = rows["cluster"][order].astype(np.int64)
            reduced = np.asarray(rows["reduced"], dtype=np.float32)[order]
            source = np.where(duplicate_of >= 0, duplicate_of, np.arange(len(records)))
            position = np.empty(len(records), dtype=np.int64)
            position[unique] = np.arange(n_unique)
    return Selection(
        indices=chosen.indices.astype(np.int64), reasons=chosen.reasons, scores=scores_u[position[source]],
        clusters=labels_u[position[source]], duplicate_of=duplicate_of, reduced=reduced, unique=unique, k=model.k,
        pca_components=model.n_components, pca_variance_explained=model.explained_variance,
        inertia=model.inertia, stage_seconds=seconds, cache_hits=out.cache_hits, encoder_passes=out.encoder_passes,
    )


# --------------------------------------------------------------------------------------------------
# entry point 2: files and folders of shards on any pyarrow filesystem


def _data_format(path: str) -> str | None:
    name = path.lower()
    for suffix in COMPRESSED:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return DATA_SUFFIXES.get(os.path.splitext(name)[1])


def _hidden(path: str, base: str) -> bool:
    rel = os.path.relpath(path, base) if base else path
    return any(part.startswith((".", "_")) for part in rel.split("/"))


def resolve_files(inputs: str | os.PathLike | Sequence[str], file_format: str | None = None):
    """(filesystem, sorted file paths, "json" | "parquet") for a file, a folder of shards (searched
    recursively; hidden and _-prefixed entries skipped), a glob, or a list of these; local paths or
    URIs of any pyarrow filesystem (s3://, gs://, hdfs://, file://)."""
    import pyarrow.fs as pafs

    items = [os.fspath(inputs)] if isinstance(inputs, (str, os.PathLike)) else [os.fspath(p) for p in inputs]
    if not items:
        raise CarSelectError("no input files given")
    fs, files, listed = None, [], False
    for item in items:
        if "://" in item:
            try:
                item_fs, path = pafs.FileSystem.from_uri(item)
            except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for unknown schemes
                raise CarSelectError(f"{item}: cannot open this filesystem: {exc}") from None
        else:
            item_fs, path = pafs.LocalFileSystem(), os.path.abspath(item)
        if fs is None:
            fs = item_fs
        elif type(item_fs) is not type(fs):
            raise CarSelectError("all inputs must be on the same filesystem")
        if any(ch in path for ch in "*?["):
            base = path[: min(path.find(ch) for ch in "*?[" if ch in path)].rsplit("/", 1)[0] or "/"
            found = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
            matched = [i.path for i in found if i.type == pafs.FileType.File and fnmatch.fnmatch(i.path, path)]
            if not matched:
                raise CarSelectError(f"{item}: no files match")
            files.extend(matched)
            continue
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise CarSelectError(f"{item}: no such file or directory")
        if info.type == pafs.FileType.Directory:
            found = fs.get_file_info(pafs.FileSelector(path, recursive=True))
            shards = [i.path for i in found if i.type == pafs.FileType.File and not _hidden(i.path, path)
                      and (file_format is not None or _data_format(i.path) is not None)]
            if not shards:
                raise CarSelectError(f"{item}: no .jsonl, .json or .parquet files in this folder")
            files.extend(shards)
            listed = True
        else:
            files.append(path)
    files = sorted(dict.fromkeys(files))
    if file_format is not None:
        fmt = {"json": "json", "jsonl": "json", "parquet": "parquet"}.get(file_format.strip().lower())
        if fmt is None:
            raise CarSelectError(f"--format {file_format!r}: the Ray engine reads json, jsonl or parquet files "
                                 "(use the local engine for csv and Hugging Face datasets)")
        return fs, files, fmt
    kinds = {_data_format(f) for f in files}
    if None in kinds:
        bad = next(f for f in files if _data_format(f) is None)
        raise CarSelectError(f"{bad}: cannot tell the file format from the name (expected .jsonl, .json or "
                             ".parquet; pass file_format)")
    if len(kinds) > 1:
        raise CarSelectError("the input mixes JSON and Parquet files; select one kind"
                             + (" (or pass file_format)" if listed else ""))
    return fs, files, kinds.pop()


def _block_info(table) -> tuple[int, list[str]]:
    return table.num_rows, list(table.column_names)


def _add_row_ids(table, offset: int):
    import pyarrow as pa

    if GID in table.column_names:
        raise CarSelectError(f"the input has a field named {GID!r}, which the Ray engine uses itself")
    return table.append_column(GID, pa.array(np.arange(offset, offset + table.num_rows, dtype=np.int64)))


def read_with_ids(ray, fs, files: list[str], fmt: str):
    """The raw rows with a dense global id GID in input order (files in sorted path order, rows in file
    order), and the union of their columns. The read runs on the workers with ordered execution; its
    blocks stay in the object store (Ray spills them to disk when they do not fit) and get their ids
    block by block, from offsets computed on the driver out of the block row counts."""
    with _ordered(ray):
        if fmt == "parquet":
            ds = ray.data.read_parquet(files, filesystem=fs, file_extensions=None)
        else:
            ds = ray.data.read_json(files, filesystem=fs, file_extensions=None)
    try:
        refs = ds.to_arrow_refs()
    except Exception as exc:  # unreadable or inconsistent files: say which reader failed and why
        if _user_error(exc) is not None:
            raise
        last = [line for e in _chain(exc) for line in str(e).strip().splitlines()[-1:] if line.strip()]
        hint = (" (a field whose values change type between records, e.g. string and number, cannot be read"
                " by Ray's JSON reader; fix the field or use the local engine)" if fmt == "json" else "")
        raise CarSelectError(f"cannot read the input {fmt} files: {last[-1] if last else type(exc).__name__}"
                             f"{hint}") from None
    info = ray.get([ray.remote(_block_info).remote(r) for r in refs])
    counts = [c for c, _ in info]
    columns = list(dict.fromkeys(c for _, cols in info for c in cols))
    offsets = np.r_[0, np.cumsum(counts)[:-1]].astype(np.int64)
    add = ray.remote(_add_row_ids)
    table = ray.data.from_arrow_refs([add.remote(r, int(o)) for r, o in zip(refs, offsets)])
    return table, int(sum(counts)), columns


def _repeated(batch: dict) -> dict:
    keep = (np.asarray(batch["copies"]) > 1) | (np.asarray(batch[HASH]) == BAD)
    return {HASH: np.asarray(batch[HASH])[keep], "first": np.asarray(batch["first"])[keep]}


def find_duplicates(ray, rendered, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(duplicate ids, the id of their first copy), sorted by duplicate id: rows whose rendered text
    hashes like a row with a lower id. A hash-partitioned count per hash finds the duplicated hashes
    (only those reach the driver); one more pass lists their rows. Records that did not parse share
    the hash BAD: the first of them is raised as the run's error."""
    from ray.data.aggregate import Count, Min

    slim = rendered.select_columns([GID, HASH])
    # few shuffle partitions for small inputs (Ray's default, 200, costs seconds of pure overhead)
    partitions = {"num_partitions": max(1, min(1024, -(-n // 500_000)))} \
        if "num_partitions" in inspect.signature(slim.groupby).parameters else {}
    grouped = slim.groupby(HASH, **partitions).aggregate(
        Count(alias_name="copies"), Min(GID, alias_name="first"))
    repeated = _collect(grouped.map_batches(_repeated, batch_size=None, batch_format="numpy"), [HASH, "first"])
    bad = repeated["first"][repeated[HASH] == BAD]
    if len(bad):  # the first record that does not parse, as the local reader reports it
        found = _collect(rendered.select_columns([GID, ERROR]).map_batches(
            _take_ids, fn_kwargs={"gids": bad[:1]}, batch_size=None, batch_format="numpy"), [ERROR])
        raise CarSelectError(str(found[ERROR][0]))
    if not len(repeated[HASH]):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    first_of = {str(h): int(f) for h, f in zip(repeated[HASH], repeated["first"])}
    rows = _collect(rendered.select_columns([GID, HASH]).map_batches(
        _duplicate_rows, fn_kwargs={"first_of": first_of}, batch_size=None, batch_format="pyarrow"), [GID, "first"])
    order = np.argsort(rows[GID])
    return rows[GID][order].astype(np.int64), rows["first"][order].astype(np.int64)


def _annotations(batch: dict, gids: np.ndarray, reasons: np.ndarray):
    """Annotated rows (index, score, cluster, selected, reason) of a block of unique rows; `gids` are
    the selected ids, sorted, and `reasons` their reasons."""
    import pyarrow as pa

    ids = np.asarray(batch[GID], dtype=np.int64)
    if len(gids):
        at = np.clip(np.searchsorted(gids, ids), 0, len(gids) - 1)
        hit = gids[at] == ids
        reason = [str(reasons[a]) if h else None for a, h in zip(at.tolist(), hit.tolist())]
    else:
        hit, reason = np.zeros(len(ids), dtype=bool), [None] * len(ids)
    return pa.table({"index": pa.array(ids, pa.int64()),
                     "score": pa.array(np.asarray(batch["score"], dtype=np.float64), pa.float64()),
                     "cluster": pa.array(np.asarray(batch["cluster"], dtype=np.int64), pa.int64()),
                     "selected": pa.array(hit, pa.bool_()), "reason": pa.array(reason, pa.string())})


def _plan_outputs(input_path, output_dir, annotated_dir, overwrite: bool, cli: bool):
    """The run's output folders, checked against the input and each other as files before any work;
    written to temporary sibling folders and committed together at the end (never deleting an old
    folder before its replacement is complete). Remote URIs are written in place and must not exist."""
    import pyarrow.fs as pafs

    from ..outputs import RunOutputs

    def label(name: str) -> str:
        return f"--{name}" if cli else f"{name}="

    inputs = [input_path] if isinstance(input_path, (str, os.PathLike)) else list(input_path)
    outs = RunOutputs(inputs=[("input", os.fspath(p)) for p in inputs], overwrite=overwrite)
    remote = []
    for name, path in (("output", output_dir), ("annotated", annotated_dir)):
        if path is None:
            continue
        path = os.fspath(path)
        if "://" in path:
            try:
                fs, where = pafs.FileSystem.from_uri(path)
            except Exception as exc:
                raise CarSelectError(f"{label(name)} {path}: cannot open this filesystem: {exc}") from None
            if fs.get_file_info(where).type != pafs.FileType.NotFound:
                raise CarSelectError(f"{label(name)} {path}: already exists; a remote output must be a new path")
            remote.append((name, fs, where))
        else:
            outs.add(label(name), path, kind="dir")
    return outs.check(), remote


def run_ray_files(input_path_or_glob: str | os.PathLike | Sequence[str], output_dir: str | os.PathLike,
                  config: Config | None = None, address: str | None = None,
                  annotated_dir: str | os.PathLike | None = None, file_format: str | None = None, *,
                  schema: str | None = None, fields: Mapping[str, str] | None = None,
                  output_format: str | None = None, overwrite: bool = False, actors: int | None = None,
                  batch_size: int = ENCODE_BATCH, rows_per_shard: int = 100_000, progress=None,
                  runtime_env: dict | None = None, cli: bool = False) -> dict:
    """Select from JSON Lines / JSON / Parquet files (a file, a folder of shards, a glob, or a list;
    local or any pyarrow filesystem URI) on a Ray cluster. Writes the selected records, exactly as
    read, as shards under `output_dir` (JSON Lines for JSON input, else Parquet; `output_format`
    "jsonl"/"json"/"parquet" overrides), in selection order (best score first) when the shards are
    read in name order; and, when `annotated_dir` is given, one JSON Lines row per input record
    (index = global row id, score, cluster, selected, reason). Returns the run summary."""
    import pyarrow.fs as pafs

    from ..formats.schemas import SCHEMAS, Names, check_fields, detect_schema

    import_ray()  # the one-line error first, whatever else is wrong
    config = (config or Config()).validate()
    quiet = getattr(progress, "quiet", True)
    fields = check_fields(fields)
    names = Names(fields)
    if schema is not None:
        schema = schema.strip().lower()
        if schema not in SCHEMAS:
            raise CarSelectError(f"--schema: unknown schema {schema!r} (expected one of {', '.join(SCHEMAS)})")
    out_fmt = None if output_format is None else output_format.strip().lower()
    if out_fmt not in (None, "json", "jsonl", "parquet"):
        raise CarSelectError(f"--output-format {output_format!r}: the Ray engine writes jsonl or parquet shards")
    source = os.fspath(input_path_or_glob) if isinstance(input_path_or_glob, (str, os.PathLike)) else "input"
    seconds: dict[str, float] = {}
    fs, files, fmt = resolve_files(input_path_or_glob, file_format)
    out_fmt = {"json": "jsonl", None: "jsonl" if fmt == "json" else "parquet"}.get(out_fmt, out_fmt)
    outputs, remote = _plan_outputs(input_path_or_glob, output_dir, annotated_dir, overwrite, cli)
    targets = {o.label.strip("-=").rstrip("="): (pafs.LocalFileSystem(), outputs.temp(o))
               for o in outputs.outputs}
    targets.update({name: (fs, where) for name, fs, where in remote})
    out_fs, out_path = targets["output"]
    ann_fs, ann_path = targets.get("annotated", (None, None))
    with _timed(seconds, "ray_init"):
        ray = connect(address, runtime_env)
    with outputs.transaction(), _data_context(ray, quiet), _user_errors():
        with _timed(seconds, "read"):
            table, n, columns = read_with_ids(ray, fs, files, fmt)
        if n == 0:
            raise CarSelectError(f"{source}: no records (the dataset is empty)")
        columns = [c for c in columns if c != GID]
        if schema is None:
            schema = detect_schema(columns, names, names.history in columns)
            if schema is None:
                shown = ", ".join(f'"{k}"' for k in columns[:8]) + (", ..." if len(columns) > 8 else "")
                raise CarSelectError(
                    f"{source}: cannot tell the schema from its fields ({shown or 'none'}): expected "
                    "instruction/output, conversations, messages or history; map your names with --fields "
                    "(e.g. instruction=prompt,output=response) or pass --schema")
        with _timed(seconds, "render"):
            rendered = table.map_batches(_render, fn_kwargs={"schema": schema, "fields": fields, "source": source},
                                         batch_size=None, batch_format="pyarrow").materialize()
        with _timed(seconds, "dedupe"):
            dups, firsts = find_duplicates(ray, rendered, n)
            n_unique = n - len(dups)
            config.validate(n_unique)
            unique_ds = rendered.map_batches(_unique_rows, fn_kwargs={"dups": dups}, batch_size=None,
                                             batch_format="pyarrow").materialize()
        with _timed(seconds, "score_embed"):
            features = encode(ray, unique_ds, config, actors=actors, batch_size=batch_size)
        out = cluster_and_select(features, n_unique, config, seconds=seconds)
        model, chosen = out.model, out.chosen
        with _timed(seconds, "write"):
            write_selected(ray, table, chosen, out_fs, out_path, out_fmt, rows_per_shard)
            if ann_path is not None:
                write_annotations(ray, out.assigned, chosen, dups, firsts, ann_fs, ann_path)
    summary = {
        "records_read": n,
        "duplicates_dropped": int(len(dups)),
        "k": model.k,
        "pca_components": model.n_components,
        "pca_variance_explained": round(model.explained_variance, 4),
        "selected": int(len(chosen.indices)),
        "selected_top_n1": chosen.reasons.count("top_n1"),
        "selected_cluster_top": chosen.reasons.count("cluster_top"),
        "clusters_covered": int(len(np.unique(out.chosen_clusters))),
        "cache_hits": out.cache_hits,
        "encoder_passes": out.encoder_passes,
        "candidates": int(out.candidates),
        "input_files": len(files),
        "input_format": fmt,
        "schema": schema,
        "stage_seconds": {k: round(v, 3) for k, v in seconds.items()},
        "output": os.fspath(output_dir),
        "output_format": out_fmt,
    }
    if annotated_dir:
        summary["annotated"] = os.fspath(annotated_dir)
    return summary


def write_selected(ray, table, chosen: SelectionResult, fs, path: str, fmt: str, rows_per_shard: int = 100_000):
    """Write the selected raw rows (every field as read) as shards, in selection order across the
    shards' name order. Up to DRIVER_GATHER rows are put in order on the driver (no shuffle); a
    larger selection is sorted on the workers."""
    import pyarrow as pa

    sel = chosen.indices.astype(np.int64)
    by_id = np.argsort(sel, kind="stable")
    picked = table.map_batches(_pick, fn_kwargs={"gids": sel[by_id], "order": by_id.astype(np.int64)},
                               batch_size=None, batch_format="pyarrow")
    if len(sel) <= DRIVER_GATHER:
        parts = [t for t in ray.get(picked.to_arrow_refs()) if t.num_rows]
        if not parts:
            fs.create_dir(path)
            return
        rows = pa.concat_tables(parts, promote_options="permissive")
        rows = rows.take(pa.array(np.argsort(rows.column(ORDER).to_numpy()))).drop_columns([GID, ORDER])
        step = max(1, rows_per_shard)
        out = ray.data.from_arrow([rows.slice(i, step) for i in range(0, rows.num_rows, step)])
    else:
        out = picked.sort(ORDER).drop_columns([GID, ORDER])
    if fmt == "parquet":
        out.write_parquet(path, filesystem=fs)
    else:
        out.write_json(path, filesystem=fs, force_ascii=False)


def write_annotations(ray, assigned, chosen: SelectionResult, dups: np.ndarray, firsts: np.ndarray, fs, path: str):
    """One JSON Lines row per input record (index, score, cluster, selected, reason), in input order;
    written by the workers from the assigned rows, plus the dropped duplicates (their first copy's
    score and cluster), which are sorted into place when there are any."""
    sel = chosen.indices.astype(np.int64)
    by_id = np.argsort(sel, kind="stable")
    ann = assigned.select_columns([GID, "score", "cluster"]).map_batches(
        _annotations, fn_kwargs={"gids": sel[by_id], "reasons": np.asarray(chosen.reasons, dtype=object)[by_id]},
        batch_size=None, batch_format="numpy")
    if len(dups):
        ann = ann.union(ray.data.from_arrow(_duplicate_annotations(assigned, dups, firsts))).sort("index")
    ann.write_json(path, filesystem=fs, force_ascii=False, double_precision=15)


def _take_ids(batch: dict, gids: np.ndarray) -> dict:
    keep = np.isin(batch[GID], gids)
    return {key: np.asarray(value)[keep] for key, value in batch.items()}


def _duplicate_annotations(assigned, dups: np.ndarray, firsts: np.ndarray):
    """Annotated rows of the dropped duplicates: their first copy's score and cluster, not selected."""
    import pyarrow as pa

    wanted = np.unique(firsts)
    got = _collect(assigned.select_columns([GID, "score", "cluster"]).map_batches(
        _take_ids, fn_kwargs={"gids": wanted}, batch_size=None, batch_format="numpy"), [GID, "score", "cluster"])
    order = np.argsort(got[GID])
    at = order[np.searchsorted(got[GID][order], firsts)]
    return pa.table({"index": pa.array(dups, pa.int64()), "score": pa.array(got["score"][at].astype(np.float64)),
                     "cluster": pa.array(got["cluster"][at].astype(np.int64)),
                     "selected": pa.array(np.zeros(len(dups), dtype=bool)),
                     "reason": pa.array([None] * len(dups), pa.string())})
