"""The Ray engine against the local engine, measured in the same run; writes benchmarks/results/ray.json.

`car-select run` through the Python API (`api.run`), on the first --limit Alpaca records written as a
JSON Lines file, with -o and --annotated:
1. cold: each engine with its own fresh feature cache (the encoder runs in the Ray actors, or here);
2. warm: each engine again on its filled cache, which leaves the engine's own overhead (Ray start-up
   of the read, Featurize pool and write tasks, moving rows and columns between processes).
The local engine is the baseline: every Ray time is printed as a ratio to it. Both engines must
write the same bytes (selection and annotated rows); the script fails otherwise.

Usage (repository root, venv with car-select[ray] and the bench extra):
    python benchmarks/ray_bench.py                       # 2,000 records, a few minutes on 2 CPUs
    python benchmarks/ray_bench.py --limit 52002 --out benchmarks/results/ray-52k.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ALPACA = REPO.parent / "shared" / "data" / "stanford-alpaca-52k" / "alpaca_data.json"


def save(results: dict, path: Path) -> None:
    from car_select.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(results, indent=2) + "\n")


def run_once(engine: str, src: Path, out: Path, cache: Path, n1: int) -> dict:
    from car_select import api
    from car_select.config import Config

    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    result = api.run(str(src), Config(cache_dir=str(cache), n1=n1), engine=engine, output=str(out / "sel.jsonl"),
                     annotated=str(out / "ann.jsonl"))
    seconds = time.perf_counter() - t
    summary = result.summary()
    return {"seconds": round(seconds, 2), "stage_seconds": summary["stage_seconds"],
            "cache_hits": summary["cache_hits"], "selected": summary["selected"], "k": summary["k"],
            "bytes": {name: (out / name).read_bytes() for name in ("sel.jsonl", "ann.jsonl")}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ALPACA))
    parser.add_argument("--limit", type=int, default=2000, help="the first N records (default 2,000)")
    parser.add_argument("--n1", type=int, default=None, help="default: the paper's 1,000, or limit/20 when smaller")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "ray.json"))
    args = parser.parse_args()
    if not Path(args.data).is_file():
        print(f"skipped: {args.data} not found", file=sys.stderr)
        return 0
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import ray
    import torch

    rows = json.loads(Path(args.data).read_text())[: args.limit]
    n1 = args.n1 or min(1000, max(1, len(rows) // 20))
    out = Path(args.out)
    work = Path(tempfile.mkdtemp(prefix="car-select-ray-bench-"))
    src = work / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    results: dict = {
        "machine": {"cpus_visible": os.cpu_count(), "ray_cluster_cpus": args.cpus, "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(), "python": sys.version.split()[0],
                    "ray": ray.__version__, "torch": torch.__version__,
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "input": {"data": Path(args.data).name, "records": len(rows), "format": "jsonl", "n1": n1, "n2": 1,
                  "scorer": "default"},
    }
    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level=logging.WARNING)
    try:
        runs = {}
        for phase in ("cold", "warm"):
            for engine in ("local", "ray"):
                runs[phase, engine] = run_once(engine, src, work / phase / engine, work / f"cache-{engine}", n1)
            local, on_ray = runs[phase, "local"], runs[phase, "ray"]
            results[phase] = {
                "local_seconds": local["seconds"], "ray_seconds": on_ray["seconds"],
                "ratio_ray_over_local": round(on_ray["seconds"] / local["seconds"], 2),
                "local_stage_seconds": local["stage_seconds"], "ray_stage_seconds": on_ray["stage_seconds"],
                "cache_hits": {"local": local["cache_hits"], "ray": on_ray["cache_hits"]},
                "selected": local["selected"], "k": local["k"],
                "identical_bytes": local["bytes"] == on_ray["bytes"],
            }
            save(results, out)
    finally:
        results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        save(results, out)
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    print(f"| {len(rows):,} records | local (baseline) | Ray | Ray / local | same bytes |")
    print("|---|---|---|---|---|")
    for phase in ("cold", "warm"):
        r = results[phase]
        print(f"| {phase} | {r['local_seconds']} s | {r['ray_seconds']} s | {r['ratio_ray_over_local']}x "
              f"| {r['identical_bytes']} |")
    print(f"results: {out}")
    return 0 if all(results[p]["identical_bytes"] for p in ("cold", "warm")) else 1


if __name__ == "__main__":
    sys.exit(main())
