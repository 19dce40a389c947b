"""How many judge ratings does a distilled scorer need? A learning curve on Alpaca with AlpaGasus'
judge-approved subsets as 0/1 ratings (docs/judge.md).

Ratings: a record of Alpaca 52k is 1 when it is in AlpaGasus' helpfulness_t45 (2,022 records rated
>= 4.5 for helpfulness) or claude_t45 (5,305 records rated >= 4.5 by Claude), else 0
(../shared/data/alpagasus-subsets, SOURCE.md). Splits by record hash (training.ratings.record_hash:
SHA-256 of the rendered record, first 8 bytes, mod 10), so copies of a record share a split:
- test: hash mod 10 == 9, fixed (about 5,200 records);
- the issue's check: train on hash mod 10 == 0 (about 5,200 records);
- the learning curve: 1k, 2.5k, 5k and 26k records, nested: a seeded shuffle of the hash-0 records
  followed by a seeded shuffle of hash 1 to 7, its first n records (so the first three points are
  random subsets of the check's records and 26k adds 20.8k more). Hash mod 10 == 8 is never trained
  on: the validation records that choose each run's loss and epoch are 10% of its own labelled
  records, as a user's would be.
Each point: the distilled scorer's AUC on the test records beside output length and both shipped
scorers. Encoder features of every Alpaca record are computed once (one encoder pass) and cached by
`training.features.TrainingFeatures` in the car-select cache folder.

    nice -n 5 python experiments/judge_learning_curve.py --out experiments/results/judge_learning_curve.json
    # or in parallel processes (each run is merged into the JSON as it ends):
    for j in helpfulness claude; do for r in curve_26000 "check_hash_0 --run curve_1000 --run curve_2500 --run curve_5000"; do
        nice -n 5 python experiments/judge_learning_curve.py --judge $j --run $r & done; done; wait
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import time

# before torch loads: on cores shared with other jobs, OpenMP threads that sleep while they wait keep
# the small head's training from stalling at every operation (the CLI sets the same)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

from car_select.formats import read_dataset  # noqa: E402
from car_select.training.ratings import (RatingsSettings, agreement, by_record, default_scores, output_length,
                                         rated_texts, record_hash, text_features, train_on_ratings, head_scores)

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
ALPACA = os.path.join(DATA, "stanford-alpaca-52k", "alpaca_data.json")
SUBSETS = {"helpfulness": "helpfulness_t45.json", "claude": "claude_t45.json"}
SIZES = (1000, 2500, 5000, 26000)
TEST_BUCKET, NEVER_TRAINED = 9, 8


def _key(r) -> tuple:
    return (r.instruction, r.input, r.output)


def labels(records) -> dict[str, np.ndarray]:
    out = {}
    for name, file in SUBSETS.items():
        members = {_key(r) for r in read_dataset(os.path.join(DATA, "alpagasus-subsets", file)).records}
        out[name] = np.array([_key(r) in members for r in records], dtype=np.float64)
    return out


def valid_split(records_idx: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid): 10% of a run's labelled records, seeded, choose its loss and epoch."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(records_idx)
    n_valid = max(2, len(perm) // 10)
    return np.sort(perm[n_valid:]), np.sort(perm[:n_valid])


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def save(path: str, results: dict) -> None:
    """Merge `results` into the JSON at `path` (runs of other processes kept), under a lock."""
    import tempfile

    with open(os.path.join(tempfile.gettempdir(), "judge_learning_curve.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        merged = {}
        if os.path.exists(path):
            with open(path) as f:
                merged = json.load(f)
        runs = merged.get("runs", {})
        for judge, entries in results["runs"].items():
            runs.setdefault(judge, {}).update(entries)
        baselines = {**merged.get("baselines", {}), **results["baselines"]}
        positives = {**merged.get("positives_in_test", {}), **results["positives_in_test"]}
        merged.update(results)
        merged.update(runs=runs, baselines=baselines, positives_in_test=positives)
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            json.dump(merged, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="experiments/results/judge_learning_curve.json")
    ap.add_argument("--features-only", action="store_true", help="compute and cache the features, then stop")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--run", action="append", help="only this run (check_hash_0, curve_1000, ...; repeatable)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the head training (1)")
    ap.add_argument("--judge", choices=list(SUBSETS), action="append",
                    help="only this judge's subset (repeatable; default: both); one process per judge halves the "
                    "wall time on a shared machine")
    args = ap.parse_args()
    import torch

    from car_select.api import score_records
    from car_select.config import Config, default_cache_dir

    torch.set_num_threads(args.threads)

    records = read_dataset(ALPACA).records
    truth = {k: v for k, v in labels(records).items() if k in (args.judge or SUBSETS)}
    hashes = np.array([record_hash(r) % 10 for r in records])
    rng = np.random.default_rng(args.seed)
    order = np.concatenate([rng.permutation(np.flatnonzero(hashes == 0)),
                            rng.permutation(np.flatnonzero((hashes >= 1) & (hashes <= 7)))])
    runs = {"check_hash_0": np.flatnonzero(hashes == 0), **{f"curve_{n}": np.sort(order[:n]) for n in SIZES}}
    chosen = [r for r in runs if r in (args.run or runs)]
    test_all = np.flatnonzero(hashes == TEST_BUCKET)
    # only the records some run trains or tests on are encoded (one pass over about 31k texts)
    used = np.unique(np.concatenate([test_all, *runs.values()]))
    position = np.full(len(records), -1)
    position[used] = np.arange(len(used))
    settings = RatingsSettings(seed=args.seed)
    subset = [records[i] for i in used]
    started = time.perf_counter()
    scorer, feats = text_features(rated_texts(subset, np.zeros(len(subset))).items, settings,
                                  cache_dir=default_cache_dir(), desc="alpaca")
    feature_seconds = time.perf_counter() - started
    print(f"features of {len(used):,} texts in {feature_seconds:.0f}s", flush=True)
    if args.features_only:
        return
    test = position[test_all]  # rows of the feature table (one text per record: Alpaca is single-turn)
    owner = np.arange(len(used))

    # the baselines on the test records
    baselines = {"output_length": output_length(subset, test),
                 "default_scorer": default_scores(feats, test, owner[test])}
    started = time.perf_counter()
    baselines["car_paper_scorer"] = score_records([subset[i] for i in test], Config(scorer="car-paper"))
    print(f"car-paper scores of the test records in {time.perf_counter() - started:.0f}s", flush=True)

    results = {"test_records": int(len(test)), "test_bucket": TEST_BUCKET, "encoded_records": int(len(used)),
               "positives_in_test": {k: int(v[test_all].sum()) for k, v in truth.items()},
               "baselines": {judge: {name: agreement(s, truth[judge][test_all]) for name, s in baselines.items()}
                             for judge in truth},
               "runs": {}}
    for judge, y_all in truth.items():
        y = y_all[used]
        ratings_texts = rated_texts(subset, y)
        for run in chosen:
            labelled = runs[run]
            train_idx, valid_idx = valid_split(position[labelled], args.seed)
            train_mask = np.zeros(len(used), bool)
            train_mask[train_idx] = True
            valid_mask = np.zeros(len(used), bool)
            valid_mask[valid_idx] = True
            started = time.perf_counter()
            loss, head, trials = train_on_ratings(ratings_texts, feats, scorer, settings, train=train_mask,
                                                  valid=valid_mask)
            scores = by_record(owner[test], head_scores(head, feats, test))[1]
            entry = {"labelled_records": int(len(labelled)), "positives": int(y_all[labelled].sum()), "loss": loss,
                     "trials": trials, "test": agreement(scores, y[test]),
                     "seconds": round(time.perf_counter() - started, 1)}
            results["runs"].setdefault(judge, {})[run] = entry
            print(judge, run, json.dumps(entry), flush=True)
            results["machine"] = {"cpu": cpu_name(),
                                  "feature_seconds": round(feature_seconds)}
            save(args.out, results)
    print(json.dumps(results["baselines"], indent=1))


if __name__ == "__main__":
    main()
