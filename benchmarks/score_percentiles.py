"""What a score means: percentiles of each shipped scorer's scores on Alpaca 52k.

A score is a number on the scorer's own scale (neither shipped scorer's scores are probabilities or
bounded), so a threshold such as ``--min-score`` only means something next to the distribution of
scores on data you know. This script scores every record of Alpaca 52k with each shipped scorer
through the Python API (``car_select.score_records``, the same code ``car-select score`` runs) and
writes the percentiles to ``benchmarks/results/score_percentiles.json``.

    python benchmarks/score_percentiles.py                       # both shipped scorers
    python benchmarks/score_percentiles.py --scorers default     # one of them
    python benchmarks/score_percentiles.py --limit 2000          # a quick check on the first records

Time on 2 cores: a few seconds per scorer once its features are cached (a `car-select run` on the
same file fills the cache), about 10 minutes per scorer from an empty cache.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

import car_select

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "stanford-alpaca-52k" / "alpaca_data.json"
OUT = ROOT / "benchmarks" / "results" / "score_percentiles.json"
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
SHIPPED = ("default", "car-paper")


def percentile_table(scores: np.ndarray) -> dict:
    values = np.percentile(scores, PERCENTILES)
    return {
        "n_records": int(scores.size),
        "min": round(float(scores.min()), 4),
        "max": round(float(scores.max()), 4),
        "mean": round(float(scores.mean()), 4),
        "std": round(float(scores.std()), 4),
        "percentiles": {str(p): round(float(v), 4) for p, v in zip(PERCENTILES, values)},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="Alpaca-format file (default: %(default)s)")
    ap.add_argument("--scorers", default=",".join(SHIPPED), help="comma-separated scorers (default: %(default)s)")
    ap.add_argument("--limit", type=int, default=None, help="score only the first N records")
    ap.add_argument("--out", type=Path, default=None, help=f"JSON output (default: {OUT.relative_to(ROOT)})")
    args = ap.parse_args(argv)

    if not args.data.exists():
        print(f"skipped: {args.data} not found", file=sys.stderr)
        return 0
    out = args.out or (OUT if args.limit is None else OUT.with_name(f"score_percentiles-limit{args.limit}.json"))

    ds = car_select.read_dataset(str(args.data))
    records = ds.records[: args.limit] if args.limit else ds.records
    result = {
        "what": "percentiles of each shipped scorer's score over every record of the file (duplicates included)",
        "command": "python benchmarks/score_percentiles.py" + (f" --data {args.data}" if args.data != DATA else "")
        + (f" --limit {args.limit}" if args.limit else ""),
        "data": args.data.name,
        "data_sha256": hashlib.sha256(args.data.read_bytes()).hexdigest(),
        "car_select_version": car_select.__version__,
        "percentiles_of": list(PERCENTILES),
        "scorers": {},
    }
    for name in [s.strip() for s in args.scorers.split(",") if s.strip()]:
        t0 = time.perf_counter()
        scores = np.asarray(car_select.score_records(records, car_select.Config(scorer=name), quiet=False), dtype=float)
        entry = percentile_table(scores)
        entry["seconds"] = round(time.perf_counter() - t0, 1)
        result["scorers"][name] = entry
        print(f"{name}: " + ", ".join(f"p{p} {v:.3f}" for p, v in entry["percentiles"].items()), file=sys.stderr)

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
