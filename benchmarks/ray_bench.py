"""Ray engine against the local engine, measured; writes benchmarks/results/ray.json.

1. Alpaca 52k end to end on a local Ray cluster vs the local engine. The first run is the Ray engine
   on a cold feature cache (the encoder runs in the Ray actors and fills the cache); then the local
   engine and the Ray engine each run once on that warm cache, which isolates the engine overhead
   (dedupe, shipping rows, actor start-up, cache reads, clustering and selection as Ray tasks). The
   selections must be identical. A like-for-like cold comparison (both engines, fresh caches) runs on
   a slice (--cold-subset) to keep the shared CPUs free.
2. The clustering + selection stage on synthetic 384-d rows (1M by default) through Ray: rows are
   generated on the workers, PCA + k-means are fitted on the driver on Config.fit_sample rows
   gathered in row order, assignment and per-block candidates run in map_batches, the final CaR pass
   on the driver; the local path (same fitted model, all rows in one process) is timed beside it.

Usage (from the repository root, in the venv with car-select[ray] installed):
    python benchmarks/ray_bench.py                       # everything (tens of minutes on 2 CPUs)
    python benchmarks/ray_bench.py --alpaca-limit 2000 --synthetic-rows 50000 --out /tmp/ray.json  # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ALPACA = REPO.parent / "shared" / "data" / "stanford-alpaca-52k" / "alpaca_data.json"
DEFAULT_SCORER = REPO / "src" / "car_select" / "scorers" / "default" / "config.json"


def save(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, path)


def scorer_for_bench(workdir: Path) -> tuple[str | None, str]:
    """The shipped default scorer, else MiniLM with a seeded random head (same cost per text)."""
    if DEFAULT_SCORER.is_file():
        return None, "default"
    import torch

    from car_select.scoring.scorer import Scorer

    path = workdir / "scorer"
    torch.manual_seed(0)
    Scorer.new("all-MiniLM-L6-v2").save(path)
    return str(path), "all-MiniLM-L6-v2 + seeded random head (default scorer not shipped yet)"


def same_selection(a, b) -> bool:
    return (np.array_equal(a.indices, b.indices) and a.reasons == b.reasons
            and np.array_equal(a.clusters, b.clusters))


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def bench_alpaca(args, results: dict, out: Path, workdir: Path) -> None:
    from car_select.config import Config
    from car_select.engines.ray_engine import select_with_ray
    from car_select.formats import read_dataset
    from car_select.pipeline import select

    dataset = read_dataset(args.alpaca)
    records = dataset.records[: args.alpaca_limit] if args.alpaca_limit else dataset.records
    scorer, scorer_name = scorer_for_bench(workdir)
    cache = Path(args.cache_dir)
    base = Config(scorer=scorer, cache_dir=str(cache))  # the paper's n1=1000, n2=1, k=int(sqrt(n/2))
    section: dict = {"records": len(records), "scorer": scorer_name, "config": {"n1": base.n1, "n2": base.n2,
                     "fit_sample": base.fit_sample, "kmeans": base.kmeans_backend, "precision": base.precision}}
    results["alpaca"] = section

    ray_cold, t_ray_cold = timed(select_with_ray, records, base)
    section["ray_cold_full"] = {"seconds": round(t_ray_cold, 2), "stage_seconds": _rounded(ray_cold.stage_seconds),
                                "cache_hits": ray_cold.cache_hits}
    save(results, out)
    local_warm, t_local_warm = timed(select, records, base)
    ray_warm, t_ray_warm = timed(select_with_ray, records, base)
    section["warm"] = {
        "local_seconds": round(t_local_warm, 2),
        "ray_seconds": round(t_ray_warm, 2),
        "overhead_ratio_ray_over_local": round(t_ray_warm / t_local_warm, 2),
        "overhead_seconds": round(t_ray_warm - t_local_warm, 2),
        "local_stage_seconds": _rounded(local_warm.stage_seconds),
        "ray_stage_seconds": _rounded(ray_warm.stage_seconds),
        "local_cache_hits": local_warm.cache_hits,
        "ray_cache_hits": ray_warm.cache_hits,
        "identical_selection": same_selection(local_warm, ray_warm) and same_selection(local_warm, ray_cold),
        "selected": int(len(local_warm.indices)),
        "k": local_warm.k,
        "pca_components": local_warm.pca_components,
        "duplicates_dropped": local_warm.duplicates_dropped,
    }
    save(results, out)

    if args.cold_subset:
        part = records[: args.cold_subset]
        cold_cfg = {name: Config(scorer=scorer, cache_dir=str(workdir / f"cold-{name}"), n1=min(base.n1, 100))
                    for name in ("local", "ray")}
        local_cold, t_local_cold = timed(select, part, cold_cfg["local"])
        ray_cold_part, t_ray_cold_part = timed(select_with_ray, part, cold_cfg["ray"])
        section["cold_subset"] = {
            "records": len(part), "n1": cold_cfg["local"].n1,
            "local_seconds": round(t_local_cold, 2), "ray_seconds": round(t_ray_cold_part, 2),
            "ratio_ray_over_local": round(t_ray_cold_part / t_local_cold, 2),
            "local_stage_seconds": _rounded(local_cold.stage_seconds),
            "ray_stage_seconds": _rounded(ray_cold_part.stage_seconds),
            "max_abs_score_difference": float(np.abs(local_cold.scores - ray_cold_part.scores).max()),
            "identical_selection": same_selection(local_cold, ray_cold_part),
        }
        save(results, out)


def _gen_block(batch: dict, dim: int, centers: int, seed: int) -> dict:
    """Synthetic embeddings with cluster structure and a decaying spectrum (so PCA at 95% keeps a
    realistic ~100-200 components), unit-normalised like MiniLM's; deterministic per row id."""
    from car_select.engines.ray_engine import GID, RANK

    ids = np.asarray(batch["id"], dtype=np.int64)
    basis_rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(basis_rng.standard_normal((dim, dim)))
    scale = np.exp(-np.arange(dim) / 80.0).astype(np.float32)
    means = basis_rng.standard_normal((centers, dim)).astype(np.float32) * scale * 3
    rng = np.random.default_rng([seed, int(ids[0]) if len(ids) else 0])
    which = rng.integers(0, centers, size=len(ids))
    x = means[which] + rng.standard_normal((len(ids), dim)).astype(np.float32) * scale
    x = (x @ rotation.T.astype(np.float32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return {GID: ids, RANK: ids, "score": rng.random(len(ids)).astype(np.float32), "embedding": x,
            "hits": np.zeros(len(ids), dtype=np.int64), "passes": np.ones(len(ids), dtype=np.int64)}


def bench_synthetic(args, results: dict, out: Path) -> None:
    import ray

    from car_select.config import Config, n_clusters_for
    from car_select.engines import ray_engine as R
    from car_select.selection import car_select

    n = args.synthetic_rows
    config = Config(seed=42)  # n1=1000, n2=1, fit_sample=200,000, faiss k-means
    section: dict = {"rows": n, "dim": 384, "k": n_clusters_for(n), "fit_sample": min(n, config.fit_sample),
                     "n1": config.n1, "n2": config.n2}
    results["synthetic_cluster_select"] = section
    with R._data_context(ray, quiet=True):
        t = time.perf_counter()
        blocks = max(8, n // 50_000)
        features = ray.data.range(n, override_num_blocks=blocks).map_batches(
            _gen_block, fn_kwargs={"dim": 384, "centers": 2000, "seed": 7}, batch_size=None,
            batch_format="numpy").materialize()
        section["generate_seconds"] = round(time.perf_counter() - t, 2)
        model, t_fit = timed(R.fit_on_sample, features, n, config)
        assigned, t_assign = timed(R.assign, features, model)
        (chosen, _, n_cand, _, _), t_select = timed(R.select_candidates, assigned, config.n1, config.n2, model.k)
        section["ray"] = {"fit_seconds_gather_pca_kmeans": round(t_fit, 2), "assign_seconds": round(t_assign, 2),
                          "candidates_and_final_seconds": round(t_select, 2),
                          "total_seconds": round(t_fit + t_assign + t_select, 2), "candidates": n_cand,
                          "selected": int(len(chosen.indices)), "pca_components": model.n_components,
                          "kmeans_inertia_on_sample": round(model.inertia, 2)}
        save(results, out)

        # the local path on the same rows and the same fitted model: all rows in one process
        t = time.perf_counter()
        allrows = R._collect(features, [R.GID, "score", "embedding"])
        t_gather = time.perf_counter() - t
        emb = np.asarray(allrows["embedding"], dtype=np.float32)
        t = time.perf_counter()
        labels = model.assign(emb, model.transform(emb))
        local = car_select(allrows["score"], labels, config.n1, config.n2, index=allrows[R.GID])
        t_local = time.perf_counter() - t
        section["local_same_model"] = {
            "gather_to_driver_seconds": round(t_gather, 2), "assign_and_select_seconds": round(t_local, 2),
            "identical_selection": bool(np.array_equal(local.indices, chosen.indices) and local.reasons == chosen.reasons),
        }
        section["ray_assign_plus_select_over_local"] = round((t_assign + t_select) / t_local, 2)
        save(results, out)


def _rounded(d: dict) -> dict:
    return {k: round(v, 2) for k, v in d.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alpaca", default=str(ALPACA))
    parser.add_argument("--alpaca-limit", type=int, default=None, help="use only the first N records")
    parser.add_argument("--cold-subset", type=int, default=5000, help="records for the cold comparison (0: skip)")
    parser.add_argument("--synthetic-rows", type=int, default=1_000_000)
    parser.add_argument("--skip-alpaca", action="store_true")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    parser.add_argument("--cache-dir", default=None, help="feature cache for the Alpaca runs (default: a fresh temp dir)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "ray.json"))
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import logging

    import ray
    import torch

    out = Path(args.out)
    workdir = Path(tempfile.mkdtemp(prefix="car-select-ray-bench-"))
    args.cache_dir = args.cache_dir or str(workdir / "cache")
    results: dict = {
        "machine": {"cpus_visible": os.cpu_count(), "ray_cluster_cpus": args.cpus, "platform": platform.platform(),
                    "python": sys.version.split()[0], "ray": ray.__version__, "torch": torch.__version__,
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                    "note": "a shared machine: other jobs use the same CPUs, so absolute times are noisy"},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level=logging.WARNING)
    try:
        if not args.skip_alpaca:
            bench_alpaca(args, results, out, workdir)
        if not args.skip_synthetic:
            bench_synthetic(args, results, out)
    finally:
        results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        save(results, out)
        ray.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
