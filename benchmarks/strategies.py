#!/usr/bin/env python
"""Every selection strategy over the same scores and embeddings (issue 29), on Stanford Alpaca.

For each case the pipeline runs once (features from the default cache: run `car-select run` on
alpaca_data.json first, or the first call encodes), then the selection step (selection.apply.apply_rule)
runs once per strategy on the same distinct records; its seconds are the step's alone. Each subset is
described beside random subsets, the top-N by score and the N longest outputs (selection.baselines).

Cases: Alpaca 52k at budget 1,000 and 5,000; the issue's bar, the first 6,000 records at 300; and
the quality_weight search (at most 6 weights) on records 6,000-11,999, a sample distinct from the bar's.

    python benchmarks/strategies.py                  # -> benchmarks/results/strategies.json
    python benchmarks/strategies.py --only bar tune  # some cases only (prints, writes --out)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "stanford-alpaca-52k" / "alpaca_data.json"
STRATEGIES = ("car", "qd", "deita")
TUNE_WEIGHTS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)  # the bounded search: at most 6 weights
FIGURE_KEYS = ("mean_score", "median_score", "output_words_mean", "clusters_covered", "cluster_balance",
               "coverage_distance", "k_center_radius", "facility_location")


def distinct_features(records, budget: int):
    """One pipeline run (CaR at `budget`): the distinct records' scores, clusters, reduced embeddings, words."""
    from car_select import Config, select
    from car_select.selection.baselines import output_words

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        sel = select(records, Config(budget=budget, language_sample=0, compare_seeds=0))
        seconds = time.perf_counter() - t
    unique = sel.unique
    return {"scores": sel.scores[unique], "clusters": sel.clusters[unique], "reduced": sel.reduced,
            "words": output_words([records[i] for i in unique]), "unique": unique, "k": sel.k,
            "pipeline_seconds": round(seconds, 1), "cache_hits": sel.cache_hits}


def run_strategy(f: dict, strategy: str, budget: int, **options) -> tuple[np.ndarray, float]:
    """Positions (in the distinct records) the strategy keeps, and the selection step's seconds."""
    from car_select.config import Config
    from car_select.selection.apply import apply_rule

    c = Config()
    opts = {"quality_weight": c.quality_weight, "max_similarity": c.max_similarity, **options}
    t = time.perf_counter()
    rule = apply_rule(f["scores"], f["clusters"], n1=c.n1, n2=c.n2, budget=budget, strategy=strategy,
                      reduced=f["reduced"], **opts)
    seconds = time.perf_counter() - t
    chosen = rule.selection.indices
    assert len(chosen) == budget, (strategy, len(chosen), budget)
    return chosen, seconds


def figures(f: dict, chosen: np.ndarray, seeds: int = 5) -> dict:
    from car_select.selection.baselines import compare_with_random

    c = compare_with_random(f["scores"], f["clusters"], f["reduced"], f["words"], chosen, seeds=seeds)
    pick = lambda d: {k: d[k] for k in FIGURE_KEYS if k in d}  # noqa: E731
    return {"selected": pick(c["selected"]), "random_mean": pick(c["random_mean"]),
            "random_std": pick(c["random_std"]), "top_score": pick(c["top_score"]),
            "longest_output": pick(c["longest_output"])}


def case(records, budget: int, label: str, strategies=STRATEGIES, **options) -> dict:
    f = distinct_features(records, budget)
    out = {"case": label, "records": len(records), "distinct": len(f["unique"]), "k": f["k"], "budget": budget,
           "pipeline_seconds_with_cache": f["pipeline_seconds"], "cache_hits": f["cache_hits"], "strategies": {}}
    baselines = None
    for strategy in strategies:
        chosen, seconds = run_strategy(f, strategy, budget, **options)
        fig = figures(f, chosen)
        baselines = baselines or {k: fig[k] for k in ("random_mean", "random_std", "top_score", "longest_output")}
        out["strategies"][strategy] = {"seconds": round(seconds, 2), **fig["selected"]}
        s = out["strategies"][strategy]
        print(f"{label} {strategy:6s} {seconds:6.2f}s score {s['mean_score']:.3f} "
              f"coverage {s['coverage_distance']:.4f} (random {fig['random_mean']['mean_score']:.3f} / {fig['random_mean']['coverage_distance']:.4f})",
              file=sys.stderr, flush=True)
    out.update(baselines)
    return out


def bar_check(c: dict) -> dict:
    """The issue's bar for qd: coverage distance below random's mean, mean score above it, and at least
    0.8 of CaR's score lift over random; every strategy keeps exactly the budget (asserted in run_strategy)."""
    rnd, car, qd = c["random_mean"], c["strategies"]["car"], c["strategies"]["qd"]
    kept = (qd["mean_score"] - rnd["mean_score"]) / (car["mean_score"] - rnd["mean_score"])
    return {"qd_coverage_below_random": qd["coverage_distance"] < rnd["coverage_distance"],
            "qd_score_above_random": qd["mean_score"] > rnd["mean_score"],
            "qd_share_of_car_score_lift": round(kept, 4), "passes": bool(
                qd["coverage_distance"] < rnd["coverage_distance"] and kept >= 0.8)}


def tune(records) -> dict:
    """qd at each of TUNE_WEIGHTS on records 6,000-11,999 at 300, beside CaR and random there."""
    sample = records[6000:12000]
    f = distinct_features(sample, 300)
    car, _ = run_strategy(f, "car", 300)
    base = figures(f, car)
    rnd_score, car_score = base["random_mean"]["mean_score"], base["selected"]["mean_score"]
    rows = []
    for w in TUNE_WEIGHTS:
        chosen, seconds = run_strategy(f, "qd", 300, quality_weight=w)
        s = figures(f, chosen, seeds=1)["selected"]
        rows.append({"quality_weight": w, "seconds": round(seconds, 2), "mean_score": s["mean_score"],
                     "coverage_distance": s["coverage_distance"], "facility_location": s["facility_location"],
                     "share_of_car_score_lift": round((s["mean_score"] - rnd_score) / (car_score - rnd_score), 4)})
        print(f"tune w={w}: {rows[-1]}", file=sys.stderr, flush=True)
    return {"case": "quality_weight search: Alpaca records 6,000-11,999 at budget 300", "car": base["selected"],
            "random_mean": base["random_mean"], "weights": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "strategies.json"))
    ap.add_argument("--only", nargs="*", choices=["tune", "bar", "52k-1000", "52k-5000"])
    args = ap.parse_args(argv)
    from car_select.config import Config
    from car_select.formats import read_dataset

    records = read_dataset(args.data).records
    want = set(args.only or ["tune", "bar", "52k-1000", "52k-5000"])
    out: dict = {"benchmark": "strategies", "data": "stanford-alpaca-52k/alpaca_data.json",
                 "defaults": {"quality_weight": Config().quality_weight, "max_similarity": Config().max_similarity},
                 "python": platform.python_version(), "cpu_cores": os.cpu_count(), "cases": []}
    if "tune" in want:
        out["tune"] = tune(records)
    if "bar" in want:
        c = case(records[:6000], 300, "bar: first 6,000 Alpaca records at budget 300")
        c["bar"] = bar_check(c)
        print(f"bar: {c['bar']}", file=sys.stderr)
        out["cases"].append(c)
    for budget in (1000, 5000):
        if f"52k-{budget}" in want:
            out["cases"].append(case(records, budget, f"Alpaca 52k at budget {budget:,}"))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
