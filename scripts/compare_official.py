"""Compare a car-select run on Alpaca 52k with the official CaR selection.

    car-select run ../shared/data/stanford-alpaca-52k/alpaca_data.json -o out/alpaca_selected.json \
        --annotated out/alpaca_annotated.jsonl
    python scripts/compare_official.py out/alpaca_annotated.jsonl [--json out/alpaca_vs_official.json]

Reports (a) how many of the official selection's top 1,000 by its IQS score are also in our scorer's
top 1,000 (agreement of the rankers; random shares about 19), (b) the overlap of our whole selection
with the official 1,013 records (random shares about 20), and the clusters our selection covers.
"""

import argparse
import json
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def key(r: dict) -> tuple:
    return (r["instruction"], r.get("input", ""), r["output"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("annotated", help="the --annotated JSONL of a run on alpaca_data.json")
    ap.add_argument("--alpaca", default=str(DATA / "stanford-alpaca-52k" / "alpaca_data.json"))
    ap.add_argument("--official", default=str(DATA / "car-official-selection" / "CaR_selected_result.json"))
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args()

    alpaca = json.loads(Path(args.alpaca).read_text())
    official = json.loads(Path(args.official).read_text())
    rows = [json.loads(line) for line in Path(args.annotated).read_text().splitlines()]
    if len(rows) != len(alpaca):
        sys.exit(f"{args.annotated} has {len(rows)} rows but {args.alpaca} has {len(alpaca)} records")
    position = {}
    for i, r in enumerate(alpaca):
        position.setdefault(key(r), i)
    official_idx = [position[key(r)] for r in official]
    official_top = {position[key(r)] for r in sorted(official, key=lambda r: -r["score"])[:1000]}
    ours_ranked = sorted(rows, key=lambda r: (-r["score"], r["index"]))
    our_top = {r["index"] for r in ours_ranked[:1000]}
    selected = {r["index"] for r in rows if r["selected"]}
    n = len(alpaca)
    result = {
        "records": n,
        "official_selected": len(official_idx),
        "our_selected": len(selected),
        "top1000_overlap_with_official_top1000": len(our_top & official_top),
        "top1000_overlap_expected_at_random": round(1000 * 1000 / n, 1),
        "selection_overlap_with_official": len(selected & set(official_idx)),
        "selection_overlap_expected_at_random": round(len(selected) * len(official_idx) / n, 1),
        "clusters": len({r["cluster"] for r in rows}),
        "clusters_covered_by_selection": len({r["cluster"] for r in rows if r["selected"]}),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
