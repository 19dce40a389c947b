"""The documented pairs recipe (docs/judge.md) on preference pairs split by prompt: train on one half,
measure pairwise accuracy on the other, beside the longer-answer baseline and the shipped default.

Pairs: Auto-J's human-judged test pairs (../shared/data/preference-dev/valid_autoj_human.jsonl, 971
pairs; the shipped default scorer never trained on them, though its epochs were chosen on them).
Split by SHA-256 of the prompt: even -> the training half (of which prompts with hash mod 10 == 0
validate), odd -> the held-out half. Two scorers, each with the CLI as a user runs it: with the
corruption negatives (the default) and with --no-negatives.

    nice -n 5 python experiments/judge_pairs_recipe.py --out experiments/results/judge_pairs_recipe.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
PAIRS = os.path.join(DATA, "preference-dev", "valid_autoj_human.jsonl")


def cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "car_select", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    return done.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="experiments/results/judge_pairs_recipe.json")
    args = ap.parse_args()
    rows = [json.loads(line) for line in open(PAIRS, encoding="utf-8") if line.strip()]
    parts = {"train": [], "valid": [], "test": []}
    for row in rows:
        h = int.from_bytes(hashlib.sha256(row["prompt"].encode("utf-8")).digest()[:8], "big")
        parts["test" if h % 2 else ("valid" if h % 10 == 0 else "train")].append(row)
    results = {"pairs": {k: len(v) for k, v in parts.items()}, "scorers": {}}
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for name, part in parts.items():
            files[name] = os.path.join(tmp, f"{name}.jsonl")
            with open(files[name], "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r) + "\n" for r in part)
        scorers = {"default (shipped)": None}
        for label, flags in (("pairs + corruption negatives", []), ("pairs alone (--no-negatives)", ["--no-negatives"])):
            out = os.path.join(tmp, label.split()[1])
            cli("train-scorer", "--train", files["train"], "--valid", files["valid"], "-o", out, "-q", *flags)
            scorers[label] = out
        for label, path in scorers.items():
            report = json.loads(cli("eval-scorer", "--test", files["test"], "--json",
                                    *(["--scorer", path] if path else [])))
            results["scorers"][label] = report["validation"]["test.jsonl"]
            print(label, json.dumps(results["scorers"][label]), flush=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
