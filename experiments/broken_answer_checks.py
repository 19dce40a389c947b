"""Issue 34's "How we check", rebuilt on data here: pasted inputs, emptied and cut last replies.

- Pasted input: 78 Alpaca records with an input of 100+ characters answered with that input pasted
  verbatim and their own answer after it, among 2,000 other Alpaca records (sampled with the seed;
  none of the scorer's 500 training-negative records): their median percentile among the 2,078 scores
  (bar: <= 50) and how many are in the top decile (bar: <= 5).
- Empty last reply: 200 multi-turn conversations (100 each of MT-Bench-101 and ShareGPT-zh) and a copy
  of each with its last reply emptied, selected together with `fraction 0.5` (the CaR rule, default
  settings): how many emptied copies are kept (bar: 0).
- Copy kinds: every copy kind (corruptions.COPY_KINDS) of 150 GPTeacher roleplay records with an
  input of 100+ characters (held out: no scorer was chosen on GPTeacher), original above its copy.
- Cut last reply: the same 200 conversations against a copy whose last reply is cut (the `truncate`
  kind: 25-60% of its words kept; replies of fewer than 8 words are left out): the share of pairs whose
  cut copy scores below its original (bar: >= 0.90).

    python experiments/broken_answer_checks.py --out experiments/results/broken_answer_checks.json [--scorer DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import warnings

import numpy as np

from car_select import Config, Record, select
from car_select.api import score_records
from car_select.formats import read_dataset
from car_select.render import render_exchanges
from car_select.training.corruptions import corrupt
from car_select.training.data import answer_items

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def percentile_ranks(scores: np.ndarray) -> np.ndarray:
    order = np.argsort(np.argsort(scores, kind="stable"), kind="stable")
    return 100.0 * order / max(1, len(scores) - 1)


def with_last(record: Record, reply: str) -> Record:
    return Record(instruction=record.instruction, output=reply, input=record.input, history=record.history,
                  system=record.system)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--scorer", default=None, help="scorer folder (default: the shipped default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pool", type=int, default=2000, help="other Alpaca records beside the 78 pasted ones")
    ap.add_argument("--conversations", type=int, default=100, help="conversations per set (MT-Bench-101, ShareGPT-zh)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    cache = tempfile.mkdtemp(prefix="broken-answer-checks-")
    config = Config(scorer=args.scorer, cache_dir=cache, language_sample=0, compare_seeds=0)
    results: dict = {"scorer": args.scorer or "default", "seed": args.seed}

    alpaca_path = f"{args.data}/stanford-alpaca-52k/alpaca_data.json"
    records = read_dataset(alpaca_path).records
    trained = set(answer_items(alpaca_path, 500, 42))  # the retrain command's negatives sample
    usable = [r for r in records if r.output.strip() and render_exchanges(r)[0] not in trained]
    with_input = [r for r in usable if len(r.input.strip()) >= 100]
    pasted_src = rng.sample(with_input, 78)
    chosen_src = set(map(id, pasted_src))
    others = rng.sample([r for r in usable if id(r) not in chosen_src], args.pool)
    pasted = [Record(instruction=r.instruction, input=r.input, output=f"{r.input.strip()}\n\n{r.output}")
              for r in pasted_src]
    scores = score_records(others + pasted, config)
    ranks = percentile_ranks(scores)[len(others):]
    results["pasted_input"] = {"records": len(pasted), "pool": len(others) + len(pasted),
                               "median_percentile": round(float(np.median(ranks)), 1),
                               "in_top_decile": int((ranks >= 90).sum()),
                               "originals_median_percentile": None}
    originals = score_records(others + pasted_src, config)
    results["pasted_input"]["originals_median_percentile"] = round(float(np.median(
        percentile_ranks(originals)[len(others):])), 1)
    results["pasted_input"]["below_own_original"] = round(float((scores[len(others):] < originals[len(others):]).mean()), 4)

    convs = []
    for rel in ("mt-bench-101/mtbench101.jsonl", "sharegpt-zh-1k/sharegpt_zh_1K_format.jsonl"):
        pool = [r for r in read_dataset(f"{args.data}/{rel}").records
                if r.is_multi_turn and all(a.strip() for _, _, a in r.exchanges())]
        convs += rng.sample(pool, args.conversations)
    emptied = [with_last(r, "") for r in convs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sel = select(convs + emptied, config.replace(fraction=0.5))
    kept = int(np.isin(sel.indices, np.arange(len(convs), 2 * len(convs))).sum())
    results["empty_last_reply"] = {"conversations": len(convs), "emptied_kept_at_fraction_0.5": kept,
                                   "selected": int(len(sel.indices))}

    cut = []
    for position, r in enumerate(convs):
        prompt = render_exchanges(r)[-1][0]
        short = corrupt(prompt, r.output, "truncate", seed=args.seed, position=position)
        if short is not None:
            cut.append((r, with_last(r, short)))
    both = score_records([r for r, _ in cut] + [c for _, c in cut], config)
    n = len(cut)
    results["cut_last_reply"] = {"pairs": n, "cut_below_original": round(float((both[n:] < both[:n]).mean()), 4),
                                 "turn_aggregate": config.turn_aggregate}
    for how in ("mean",):
        other = score_records([r for r, _ in cut] + [c for _, c in cut], config.replace(turn_aggregate=how))
        results["cut_last_reply"][f"cut_below_original with {how}"] = round(float((other[n:] < other[:n]).mean()), 4)
    # the copy kinds on GPTeacher roleplay records with an input (eval-pool wordings), as eval-scorer --robustness
    from car_select.scoring.scorer import Scorer
    from car_select.training.corruptions import COPY_KINDS, build_suite, prompt_input
    from car_select.training.evaluate import robustness_report

    teacher = [it for it in answer_items(f"{args.data}/gpteacher/roleplay-simple-deduped-roleplay-dataset.json", None)
               if len(prompt_input(it[0])) >= 100]
    teacher = [teacher[i] for i in sorted(random.Random(args.seed).sample(range(len(teacher)), 150))]
    suite = build_suite(teacher, COPY_KINDS, seed=args.seed, pool="eval")
    scorer = Scorer.load(args.scorer).to("cpu", "auto")
    texts = list(dict.fromkeys([(p.prompt, p.chosen) for p in suite] + [(p.prompt, p.rejected) for p in suite]))
    got = dict(zip(texts, scorer.score_pairs([p for p, _ in texts], [r for _, r in texts])))
    report = robustness_report(suite, np.array([got[(p.prompt, p.chosen)] for p in suite]),
                               np.array([got[(p.prompt, p.rejected)] for p in suite]))
    results["copy_kinds_gpteacher"] = {"accuracy": round(report["accuracy"], 4), "n_pairs": len(suite),
                                       "per_kind": {k: round(v["accuracy"], 4) for k, v in report["per_kind"].items()}}
    text = json.dumps(results, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
