#!/usr/bin/env python
"""Clustering + selection at scale, on synthetic 384-d embeddings (what all-MiniLM-L6-v2 produces).

For each n (default 10k, 100k, 1M) a fresh subprocess (so peak RSS is that n's alone):
  1. makes n unit-normalised rows: a Gaussian mixture (k_true = 2 sqrt(n) centres) plus noise whose
     spectrum decays so that PCA needs ~200 components for 95% of the variance, as real MiniLM
     embeddings of Alpaca do (218-235 components on 1k-3k texts), and a random quality score per row;
  2. runs the ClusterEstimator stage exactly as the local executor does (PCA + k-means fitted on at
     most Config.fit_sample rows, then every row transformed and assigned), timing its parts;
  3. applies the CaR rule (n1 = 1000, n2 = 1).
Bars: 1M rows in <= 120 s and <= 8 GB peak RSS (the embeddings themselves are 1.5 GB of that).
With --strategies, then each strategy of issue 29 on the same rows (qd and deita at budget 1,000,
near-duplicates at 0.95): seconds and the peak RSS above what the process held before it (the
kernel's peak counter is reset per strategy; issue 29's bar is 4 GB at 1M rows).

    python benchmarks/bench_scale.py                     # 10k, 100k, 1M -> benchmarks/results/scale.json
    python benchmarks/bench_scale.py --sizes 10000,50000 --out /tmp/scale.json
    python benchmarks/bench_scale.py --sizes 1000000 --strategies --out benchmarks/results/scale_strategies.json
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
DIM = 384


def _proc_status_bytes(field: str) -> int | None:
    """A memory field of /proc/self/status (e.g. "VmRSS") in bytes; None where unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def vm_hwm() -> int:
    """This process's peak resident set in bytes (VmHWM; reset by exec, so it is ours alone)."""
    peak = _proc_status_bytes("VmHWM")
    if peak is not None:
        return peak
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def vm_rss() -> int:
    return _proc_status_bytes("VmRSS") or 0


def synthetic_embeddings(n: int, seed: int = 0, chunk: int = 65536) -> np.ndarray:
    """(n, 384) float32 unit rows: mixture centres + anisotropic noise, generated chunk by chunk."""
    rng = np.random.default_rng(seed)
    k_true = max(2, int(2 * np.sqrt(n)))
    basis, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
    scale = np.exp(-np.arange(DIM) / 140.0).astype(np.float32)  # ~95% of the variance in ~200 directions
    centres = (rng.standard_normal((k_true, DIM)).astype(np.float32) * scale * 0.8) @ basis.T.astype(np.float32)
    out = np.empty((n, DIM), dtype=np.float32)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        x = centres[rng.integers(0, k_true, m)]
        x += (rng.standard_normal((m, DIM)).astype(np.float32) * scale) @ basis.T.astype(np.float32)
        x += 0.15  # a shared offset, as sentence embeddings have (they are not centred)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s:s + m] = x
    return out


def reset_peak() -> bool:
    """Start VmHWM again from the current RSS (Linux: /proc/self/clear_refs); False where unavailable."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def run_strategies(scores: np.ndarray, labels: np.ndarray, reduced: np.ndarray, budget: int = 1000) -> dict:
    """Each strategy's selection step (selection.apply.apply_rule) on the clustered rows."""
    from car_select.selection.apply import apply_rule

    cases = {"car": {}, "qd": {"strategy": "qd"}, "deita": {"strategy": "deita"},
             "near_duplicates_0.95_then_car": {"near_duplicates_at": 0.95}}
    out = {}
    for name, options in cases.items():
        before = vm_rss()
        exact_peak = reset_peak()
        t = time.perf_counter()
        rule = apply_rule(scores, labels, n1=1000, n2=1, budget=budget, reduced=reduced, **options)
        out[name] = {"seconds": time.perf_counter() - t, "selected": int(len(rule.selection.indices)),
                     "near_duplicates_dropped": rule.near_duplicates_dropped,
                     "peak_rss_above_start_bytes": (vm_hwm() - before) if exact_peak else None,
                     "rss_at_start_bytes": before}
        print(f"  {name}: {out[name]['seconds']:.1f}s", file=sys.stderr, flush=True)
    return out


def run_one(n: int, seed: int, strategies: bool = False) -> dict:
    """Runs in the child process: generate, cluster through the pipeline, select; times and memory."""
    import car_select.clustering as clustering
    import car_select.stages as stages
    from car_select.config import Config, n_clusters_for
    from car_select.selection.car import car_rule

    t = time.perf_counter()
    emb = synthetic_embeddings(n, seed)
    scores = np.random.default_rng(seed + 1).standard_normal(n).astype(np.float32)
    gen_s = time.perf_counter() - t
    rss_data = vm_rss()

    timings: dict[str, float] = {}

    def timed(name, fn):
        def wrapper(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
        return wrapper

    # time the parts of the clustering stage without changing what it does
    stages.fit_cluster_model = timed("fit_pca_kmeans_on_sample", clustering.fit_cluster_model)
    clustering.fit_pca = timed("fit_pca", clustering.fit_pca)
    clustering.fit_kmeans = timed("fit_kmeans", clustering.fit_kmeans)
    clustering.ClusterModel.transform = timed("transform", clustering.ClusterModel.transform)
    clustering.ClusterModel.assign = timed("assign", clustering.ClusterModel.assign)

    config = Config()
    t = time.perf_counter()
    estimator = stages.ClusterEstimator(config)  # as LocalExecutor.cluster: fit on the seeded sample, assign all
    estimator.fit(emb[estimator.fit_rows(len(emb))], len(emb))
    labels, reduced = estimator.predict(emb)
    model = estimator.model
    cluster_s = time.perf_counter() - t
    t = time.perf_counter()
    chosen = car_rule(scores, labels, config.n1, config.n2)
    select_s = time.perf_counter() - t
    sizes = np.bincount(labels, minlength=model.k)
    strategy_runs = run_strategies(scores, labels, reduced) if strategies else None
    return {
        "n": n, "k": model.k, "k_expected": n_clusters_for(n), "fit_sample": min(n, config.fit_sample),
        "pca_components": model.n_components, "pca_variance_explained": model.explained_variance,
        "kmeans_backend": config.kmeans_backend, "inertia_on_sample": model.inertia,
        "generate_seconds": gen_s, "cluster_seconds": cluster_s, "select_seconds": select_s,
        "total_seconds": cluster_s + select_s, "parts_seconds": timings,
        "selected": int(len(chosen.indices)), "empty_clusters": int((sizes == 0).sum()),
        "largest_cluster": int(sizes.max()),
        "rss_after_data_bytes": rss_data, "peak_rss_bytes": vm_hwm(),
        "embeddings_bytes": int(emb.nbytes),
        **({"strategies": strategy_runs} if strategy_runs else {}),
    }


def machine() -> dict:
    import torch

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = None
    import faiss
    import sklearn

    return {"cpu_model": model, "cpu_cores": os.cpu_count(), "torch": torch.__version__,
            "faiss": getattr(faiss, "__version__", "?"), "sklearn": sklearn.__version__,
            "load_average_at_start": list(os.getloadavg()), "git_commit": commit,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}


def fmt_bytes(b: int) -> str:
    return f"{b / 2**30:.2f} GiB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000", help="comma list of row counts")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS / "scale.json"))
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # child mode
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per size before giving up")
    ap.add_argument("--strategies", action="store_true", help="also time each selection strategy (issue 29)")
    args = ap.parse_args(argv)

    if args.one is not None:
        print(json.dumps(run_one(args.one, args.seed, args.strategies)))
        return 0

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    result = {"benchmark": "bench_scale", "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
              "machine": machine(), "bars": {"rows": 1_000_000, "seconds": 120, "peak_rss_gib": 8}, "runs": []}
    for n in sizes:
        print(f"n = {n:,} ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, __file__, "--one", str(n), "--seed", str(args.seed),
                                   *(["--strategies"] if args.strategies else [])],
                                  capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            result["runs"].append({"n": n, "error": f"timed out after {args.timeout}s"})
            continue
        if proc.returncode != 0:
            result["runs"].append({"n": n, "error": proc.stderr[-2000:]})
            print(proc.stderr[-2000:], file=sys.stderr)
            continue
        run = json.loads(proc.stdout.strip().splitlines()[-1])
        run["process_wall_seconds"] = time.perf_counter() - t
        result["runs"].append(run)
    result["machine"]["load_average_at_end"] = list(os.getloadavg())

    rows = []
    for r in result["runs"]:
        if "error" in r:
            rows.append(f"| {r['n']:,} | error: {r['error'][:60]} |||||||")
            continue
        p = r["parts_seconds"]
        rows.append(
            f"| {r['n']:,} | {r['k']:,} | {r['pca_components']} | {r['fit_sample']:,} | {p.get('fit_pca', 0):.1f} | "
            f"{p.get('fit_kmeans', 0):.1f} | {p.get('transform', 0) + p.get('assign', 0):.1f} | {r['select_seconds']:.2f} | "
            f"**{r['total_seconds']:.1f}** | {fmt_bytes(r['rss_after_data_bytes'])} | **{fmt_bytes(r['peak_rss_bytes'])}** |")
    print("\n| rows | k | PCA comps | fit sample | PCA fit s | k-means fit s | transform+assign s | select s | "
          "total s | RSS with data | peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    big = [r for r in result["runs"] if r.get("n") == 1_000_000 and "error" not in r]
    if big:
        ok_t, ok_m = big[0]["total_seconds"] <= 120, big[0]["peak_rss_bytes"] <= 8 * 2**30
        result["bars"]["passes"] = ok_t and ok_m
        print(f"\n1M rows: {big[0]['total_seconds']:.1f}s (bar <= 120 s: {'PASS' if ok_t else 'FAIL'}), peak RSS "
              f"{fmt_bytes(big[0]['peak_rss_bytes'])} (bar <= 8 GiB: {'PASS' if ok_m else 'FAIL'})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
