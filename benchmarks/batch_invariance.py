#!/usr/bin/env python
"""What batch-invariant features cost: `car-select run` cold on Alpaca with the batching before batch
invariance (a git worktree of --base) and with the batching of --new (default: HEAD; a worktree too,
so edits in progress never reach the timed runs), interleaved in one invocation.

Before: texts sorted by length, cut into batches under a token budget, each padded to its longest
text, so a text's bf16 features depended on which texts shared its batch. Now (encoding/batching.py):
the linear layers run on every real token of a batch at once, attention and pooling length by length
with no padding, and the scoring head in fixed chunks of 64 rows.

Everything runs in ONE invocation on the same data and machine:

  check   each tree scores records 5,000-5,299 alone and inside 4,000-5,299 (the measurement of
          issue 33) and counts the scores and embeddings that differ (--skip-check to leave it out)
  timing  `python -m car_select run DATA -o ... --cache-dir <fresh> --json` per tree, --repeats
          times, alternating which tree goes first, so load from other processes falls on both alike;
          wall and CPU seconds (the child's user+sys) and the encoder pass's own seconds
          (stage_seconds.score_embed), the new/old ratio per pair and of the medians

    python benchmarks/batch_invariance.py --limit 10000 --repeats 2   # a fixed 10k slice (~15 min on 2 cores)
    python benchmarks/batch_invariance.py                              # Alpaca 52k (~25 min per pair on 2 idle cores)

Writes benchmarks/results/batch_invariance[-limit<N>].json.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "stanford-alpaca-52k" / "alpaca_data.json"
RESULTS = REPO / "benchmarks" / "results"
# the last commit with padded, mixed-length batches (the parent of "Batch-invariant features: ...")
DEFAULT_BASE = "6236a19^"

CHECK_SCRIPT = r"""
import json, sys
import numpy as np
from car_select.config import Config
from car_select.records import Record
from car_select.stages import Featurize
rows = json.load(open(sys.argv[1]))
recs = [Record(instruction=r["instruction"], input=r.get("input") or "", output=r["output"]) for r in rows]
config = Config(use_cache=False)
alone = Featurize(config)(recs[5000:5300])
inside = Featurize(config)(recs[4000:5300])
s_a, s_i = alone.scores, inside.scores[1000:]
e_a, e_i = np.asarray(alone.embeddings), np.asarray(inside.embeddings)[1000:]
print(json.dumps({"records": 300, "scores_differing": int((s_a != s_i).sum()),
                  "score_max_abs_difference": float(np.abs(s_a - s_i).max()),
                  "embeddings_differing": int((e_a != e_i).any(1).sum()),
                  "embedding_max_abs_difference": float(np.abs(e_a - e_i).max())}))
"""


def tree_env(tree: Path) -> dict:
    """The environment that makes `python -m car_select` import `tree`'s package."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = str(tree / "src") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_child(args: list[str], env: dict, cwd: Path) -> dict:
    """Run a child process: wall seconds, its own CPU seconds (user + sys, from wait4) and its stdout."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, env=env, cwd=cwd, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{stderr[-4000:]}")
    return {"wall_seconds": wall, "cpu_seconds": usage.ru_utime + usage.ru_stime, "stdout": stdout}


def cold_run(tree: Path, data: Path, work: Path, tag: str) -> dict:
    cache, out = work / f"cache-{tag}", work / f"out-{tag}.json"
    got = run_child([sys.executable, "-m", "car_select", "run", str(data), "-o", str(out), "--cache-dir", str(cache),
                     "--json"], tree_env(tree), work)
    summary = json.loads(got.pop("stdout").strip().splitlines()[-1])
    got["score_embed_seconds"] = summary["stage_seconds"]["score_embed"]
    got["selected"] = summary.get("selected")
    out.unlink(missing_ok=True)
    return got


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--limit", type=int, default=None, help="the first N records only (a fixed slice)")
    ap.add_argument("--repeats", type=int, default=2, help="cold runs per tree (alternating order)")
    ap.add_argument("--base", default=DEFAULT_BASE, help="the commit with the old batching (default: %(default)s)")
    ap.add_argument("--new", default="HEAD", help="the commit with the new batching (default: %(default)s)")
    ap.add_argument("--skip-check", action="store_true", help="leave out the alone-vs-superset check")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if not args.data.is_file():
        print(f"skipped: {args.data} is absent (the Alpaca data lives in ../shared/data)")
        return 0
    from bench_pipeline import cpu_family, cpu_model

    base, new = (subprocess.run(["git", "rev-parse", c], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip() for c in (args.base, args.new))
    result = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "cpu_model": cpu_model(), "cpu_family_model": cpu_family(), "cpu_cores": os.cpu_count(),
              "load_average_at_start": list(os.getloadavg()), "new_commit": new, "old_commit": base,
              "data": str(args.data), "limit": args.limit,
              "command": "python benchmarks/batch_invariance.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    runs: dict[str, list] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory(prefix="car-batch-invariance-") as tmp:
        work = Path(tmp)
        trees = {"old": work / "old-tree", "new": work / "new-tree"}
        for name, commit in (("old", base), ("new", new)):
            subprocess.run(["git", "worktree", "add", "--detach", str(trees[name]), commit], cwd=REPO, check=True,
                           capture_output=True)
        try:
            data = args.data
            if args.limit:
                data = work / f"alpaca-first-{args.limit}.json"
                data.write_text(json.dumps(json.loads(args.data.read_text())[: args.limit]))
            if not args.skip_check:
                result["check"] = {}
                for name, tree in trees.items():
                    got = run_child([sys.executable, "-c", CHECK_SCRIPT, str(args.data)], tree_env(tree), work)
                    result["check"][name] = json.loads(got["stdout"].strip().splitlines()[-1])
                    print(f"check {name}: {result['check'][name]}", flush=True)
            for r in range(args.repeats):
                for name in (("old", "new") if r % 2 == 0 else ("new", "old")):
                    got = cold_run(trees[name], data, work, f"{name}-{r}")
                    got["load_average"] = list(os.getloadavg())
                    runs[name].append(got)
                    print(f"repeat {r} {name}: wall {got['wall_seconds']:.1f} s, cpu {got['cpu_seconds']:.1f} s, "
                          f"encoder pass {got['score_embed_seconds']:.1f} s", flush=True)
                save(result, runs, args.out or default_out(args.limit))
        finally:
            for tree in trees.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, capture_output=True)
    print(f"wrote {save(result, runs, args.out or default_out(args.limit))}")
    return 0


def default_out(limit: int | None) -> Path:
    return RESULTS / f"batch_invariance{f'-limit{limit}' if limit else ''}.json"


def save(result: dict, runs: dict, out: Path) -> str:
    """Summarise the runs so far (new/old per pair and of the medians) and write the JSON: after every
    run, so an interrupted benchmark keeps its finished pairs."""
    result["runs"] = runs
    result["load_average_at_end"] = list(os.getloadavg())
    summary = {}
    pairs = min(len(runs["old"]), len(runs["new"]))
    for key in ("wall_seconds", "cpu_seconds", "score_embed_seconds") if pairs else ():
        old = [x[key] for x in runs["old"][:pairs]]
        new = [x[key] for x in runs["new"][:pairs]]
        summary[key] = {"old_median": statistics.median(old), "new_median": statistics.median(new),
                        "ratio_of_medians": statistics.median(new) / statistics.median(old),
                        "paired_ratios": [n / o for n, o in zip(new, old)],
                        "old_range": [min(old), max(old)], "new_range": [min(new), max(new)]}
    result["summary"] = summary
    if summary:
        print(f"\n{'':22s}{'old (median)':>14s}{'new (median)':>14s}{'new/old':>9s}   paired ratios", flush=True)
        for key, s in summary.items():
            print(f"{key:22s}{s['old_median']:14.1f}{s['new_median']:14.1f}{s['ratio_of_medians']:9.3f}   "
                  + ", ".join(f"{x:.3f}" for x in s["paired_ratios"]), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return str(out.relative_to(REPO) if out.is_relative_to(REPO) else out)


if __name__ == "__main__":
    raise SystemExit(main())
