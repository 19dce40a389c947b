"""Compare a car-select run on Alpaca 52k with the official CaR selection.

    car-select run ../shared/data/stanford-alpaca-52k/alpaca_data.json -o out/alpaca_selected.json \
        --annotated out/alpaca_annotated.jsonl
    python experiments/compare_official.py out/alpaca_annotated.jsonl [--json out/alpaca_vs_official.json] \
        [--versus out/other_annotated.jsonl ...]

Reports (a) how many of the official selection's top 1,000 by its IQS score are also in our scorer's
top 1,000 (agreement of the rankers; random shares about 19), (b) the overlap of our whole selection
with the official 1,013 records (random shares about 20), and the clusters our selection covers;
(c) what the selection looks like beside all records: median output length, and the share of records
whose output is mostly repetition (over half its word 4-grams repeated, or one word over a third of
it); (d) with --versus (repeatable), the overlap with other runs' selections (e.g. other scorers').
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

from car_select.scoring.textstats import STAT_NAMES, text_stats

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def key(r: dict) -> tuple:
    return (r["instruction"], r.get("input", ""), r["output"])


def mostly_repeated(output: str) -> bool:
    stats = dict(zip(STAT_NAMES, text_stats("", output)))
    return stats["repeated_4gram_share"] > 0.5 or (stats["top_word_share"] > 1 / 3 and len(output.split()) >= 10)


def profile(records: list[dict], indices) -> dict:
    outputs = [records[i]["output"] for i in indices]
    return {"records": len(outputs), "median_output_chars": statistics.median(len(o) for o in outputs),
            "mostly_repeated_share": round(sum(map(mostly_repeated, outputs)) / len(outputs), 5)}


def selected_indices(path: str, n: int) -> set[int]:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    if len(rows) != n:
        sys.exit(f"{path} has {len(rows)} rows but the dataset has {n} records")
    return {r["index"] for r in rows if r["selected"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("annotated", help="the --annotated JSONL of a run on alpaca_data.json")
    ap.add_argument("--alpaca", default=str(DATA / "stanford-alpaca-52k" / "alpaca_data.json"))
    ap.add_argument("--official", default=str(DATA / "car-official-selection" / "CaR_selected_result.json"))
    ap.add_argument("--json", help="also write the numbers to this file")
    ap.add_argument("--versus", action="append", default=[],
                    help="another run's --annotated JSONL on the same data, to compare selections (repeatable)")
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
    official_set = set(official_idx)
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
        "selection_overlap_with_official": len(selected & official_set),
        "selection_overlap_expected_at_random": round(len(selected) * len(official_idx) / n, 1),
        "clusters": len({r["cluster"] for r in rows}),
        "clusters_covered_by_selection": len({r["cluster"] for r in rows if r["selected"]}),
        "all_records": profile(alpaca, range(n)),
        "selection": profile(alpaca, sorted(selected)),
        "official_selection": profile(alpaca, official_idx),
    }
    result["versus"] = []
    for path in args.versus:
        other = selected_indices(path, n)
        result["versus"].append({"annotated": path, "selected": len(other), "overlap": len(selected & other),
                                 "overlap_with_official": len(other & official_set),
                                 "selection": profile(alpaca, sorted(other))})
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
