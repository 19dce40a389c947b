"""The selection against random subsets of the same size on Alpaca 52k (issue 12), through the CLI.

    python benchmarks/alpaca_vs_random.py [--data ../shared/data/stanford-alpaca-52k/alpaca_data.json]

Runs `car-select run` for each setting below (the first run fills the feature cache; the others reuse
it) and writes every command with its summary's "against_random" block to
benchmarks/results/alpaca_vs_random.json. Rerun it whenever the default scorer changes.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "stanford-alpaca-52k" / "alpaca_data.json"
SETTINGS = {
    "paper defaults (n1 1000, n2 1)": [],
    "--budget 5000": ["--budget", "5000"],
    "--fraction 0.02": ["--fraction", "0.02"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "alpaca_vs_random.json"))
    ap.add_argument("--only", nargs="*", help="run only these setting names")
    args = ap.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, flags in SETTINGS.items():
            if args.only and name not in args.only:
                continue
            cmd = ["car-select", "run", args.data, "-o", str(Path(tmp) / "selected.json"), "--overwrite",
                   "--json", *flags]
            t = time.perf_counter()
            res = subprocess.run([sys.executable, "-m", "car_select", *cmd[1:]], capture_output=True, text=True)
            if res.returncode != 0:
                print(res.stderr, file=sys.stderr)
                return res.returncode
            summary = json.loads(res.stdout)
            runs.append({"setting": name, "command": " ".join(c if c != args.data else "alpaca_data.json"
                                                              for c in cmd[:2] + cmd[2:3] + flags),
                         "seconds": round(time.perf_counter() - t, 1),
                         "warnings": [line for line in res.stderr.splitlines() if "warning:" in line],
                         **{k: summary.get(k) for k in ("records_read", "k", "n1", "n2", "budget", "selected",
                                                        "selected_top_n1", "selected_cluster_top", "scorer",
                                                        "manifest", "against_random")}})
            print(f"{name}: {summary['selected']} selected in {runs[-1]['seconds']} s", file=sys.stderr)
    out = {"data": "stanford-alpaca-52k/alpaca_data.json", "python": platform.python_version(), "runs": runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
