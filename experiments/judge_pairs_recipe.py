"""The documented pairs recipe (docs/judge.md) on preference pairs split by prompt: train on one half,
measure pairwise accuracy on the other, beside the longer-answer baseline and the shipped default.

Pairs: Auto-J's human-judged test pairs (../shared/data/preference-dev/valid_autoj_human.jsonl, 971
pairs; the shipped default scorer never trained on them, though its epochs were chosen on them).
Split by SHA-256 of the prompt: even -> the training half (of which prompts with hash mod 10 == 0
validate), odd -> the held-out half. Two scorers, each with the CLI as a user runs it: with the
corruption negatives (the default) and with --no-negatives.

    nice -n 5 python experiments/judge_pairs_recipe.py --out experiments/results/judge_pairs_recipe.json

--dataset preference-dev uses ../shared/data/preference-dev/train.jsonl instead (11,848 pairs, mostly
GPT-4-judged, ~790 repeating AlpacaEval prompts), split the same way by prompt hash, then subsampled with
--seed to --train-pairs / --valid-pairs / --test-pairs to bound the encoder's cost. Both shipped scorers
are measured too; the shipped default was trained on all of train.jsonl, so its held-out figure there is
optimistic. --variants picks which recipes to train (each costs an encoder pass over its pairs).

    nice -n 5 python experiments/judge_pairs_recipe.py --dataset preference-dev --variants no-negatives \
        --out experiments/results/judge_pairs_preference_dev.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
DATASETS = {
    "autoj": os.path.join(DATA, "preference-dev", "valid_autoj_human.jsonl"),
    "preference-dev": os.path.join(DATA, "preference-dev", "train.jsonl"),
}
VARIANTS = {
    "negatives": ("pairs + corruption negatives", []),
    "no-negatives": ("pairs alone (--no-negatives)", ["--no-negatives"]),
}


def cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "car_select", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    return done.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="experiments/results/judge_pairs_recipe.json")
    ap.add_argument("--dataset", choices=sorted(DATASETS), default="autoj")
    ap.add_argument("--variants", default="negatives,no-negatives",
                    help=f"comma-separated recipes to train, of {','.join(VARIANTS)}")
    ap.add_argument("--train-pairs", type=int, help="subsample the training half to this many pairs")
    ap.add_argument("--valid-pairs", type=int, help="subsample the validation prompts to this many pairs")
    ap.add_argument("--test-pairs", type=int, help="subsample the held-out half to this many pairs")
    ap.add_argument("--seed", type=int, default=0, help="seed of the subsamples")
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    if unknown := set(variants) - set(VARIANTS):
        ap.error(f"unknown --variants {sorted(unknown)}; choose from {list(VARIANTS)}")
    rows = [json.loads(line) for line in open(DATASETS[args.dataset], encoding="utf-8") if line.strip()]
    parts = {"train": [], "valid": [], "test": []}
    for row in rows:
        h = int.from_bytes(hashlib.sha256(row["prompt"].encode("utf-8")).digest()[:8], "big")
        parts["test" if h % 2 else ("valid" if h % 10 == 0 else "train")].append(row)
    prompts = {k: len({r["prompt"] for r in v}) for k, v in parts.items()}
    rng = random.Random(args.seed)
    for name, cap in (("train", args.train_pairs), ("valid", args.valid_pairs), ("test", args.test_pairs)):
        if cap is not None and cap < len(parts[name]):
            parts[name] = rng.sample(parts[name], cap)
    results = {"dataset": args.dataset, "seed": args.seed, "prompts_in_split": prompts,
               "pairs": {k: len(v) for k, v in parts.items()}, "scorers": {}}
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for name, part in parts.items():
            files[name] = os.path.join(tmp, f"{name}.jsonl")
            with open(files[name], "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r) + "\n" for r in part)
        scorers = {}
        for variant in variants:
            label, flags = VARIANTS[variant]
            out = os.path.join(tmp, variant)
            cli("train-scorer", "--train", files["train"], "--valid", files["valid"], "-o", out, "-q", *flags)
            scorers[label] = out
        scorers["default (shipped)"] = None
        if args.dataset != "autoj":
            scorers["car-paper (shipped)"] = "car-paper"
        for label, path in scorers.items():
            report = json.loads(cli("eval-scorer", "--test", files["test"], "--json",
                                    *(["--scorer", path] if path else [])))
            results["scorers"][label] = report["validation"]["test.jsonl"]
            print(label, json.dumps(results["scorers"][label]), flush=True)
            write(args.out, results)  # after each scorer, so a long run's partial figures survive


def write(path: str, results: dict) -> None:
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
