"""Issue 34: train on the copy kinds (the input pasted as the answer, alone or followed by more text; a
role marker leaked into the reply; a summary longer than its source) and/or give the head the
copied_from_prompt_share statistic? Chosen on validation only; at most 6 trained variants.

Data: the retrain command's (docs/scorer.md: CaR pairs, every judged pair at weight 0.25, corruption
negatives of the training kinds, off_topic ones at weight 3), whose features it caches. The copy-kind
negatives are the recipe's second draw (TrainSettings.extra_negative_kinds), encoded on their own and
appended, so every variant reads the same features (`--encode-only` encodes them, and the two extra
validation suites, while the retrain command runs).

Variants are trained by train-scorer itself (`--extra-negative-kinds`, `--text-stats`) on the features
`--assemble` writes, so each is what the retrain command with those settings gives, chosen on its
validation sets (CaR valid, Auto-J, LIMA). `--evaluate NAME=DIR ...` figures each on the validation sets:
CaR valid, Auto-J, the LIMA and Code Alpaca (new_codealpaca.json) corruption suites of the kinds the
default had, and one suite of the copy kinds: LIMA's and Code Alpaca's copy-kind pairs and every copy
kind of 150 GPTeacher roleplay records with an input and of 100 Alpaca summary requests with an input
of 100+ characters outside the training negatives' sample (eval-pool wordings). A variant is better
when its copy-kind accuracy rises and none of the four others falls by more than one CaR validation
pair (0.004).

    python experiments/copy_kind_variants.py --encode-only          # while the retrain command runs
    python experiments/copy_kind_variants.py --assemble
    car-select train-scorer ...the retrain command... --extra-negative-kinds input_pasted,... --text-stats 26 -o V
    python experiments/copy_kind_variants.py --evaluate shipped=DIR V=DIR ... --out experiments/results/copy_kind_variants.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import replace

import numpy as np
import torch

from common import DATA, variant_figures, write_results
from car_select.scoring.textstats import STAT_NAMES
from car_select.training.corruptions import COPY_KINDS, build_suite, prompt_input
from car_select.training.data import answer_items, training_data
from car_select.training.evaluate import robustness_report
from car_select.training.train import TrainSettings, prepare

COPY_SET = "robustness:copy kinds"


def copy_suite(data: str, negatives_sample: set) -> list:
    roleplay = [it for it in answer_items(f"{data}/gpteacher/roleplay-simple-deduped-roleplay-dataset.json", None)
                if len(prompt_input(it[0])) >= 100]
    roleplay = [roleplay[i] for i in sorted(random.Random(0).sample(range(len(roleplay)), 150))]
    from car_select.training.corruptions import _SUMMARY_REQUEST

    alpaca = [it for it in answer_items(f"{data}/stanford-alpaca-52k/alpaca_data.json", None)
              if it not in negatives_sample and len(prompt_input(it[0])) >= 100
              and _SUMMARY_REQUEST.search(it[0].partition(" Input: ")[0]) and len(it[1]) < len(prompt_input(it[0]))]
    alpaca = [alpaca[i] for i in sorted(random.Random(0).sample(range(len(alpaca)), min(100, len(alpaca))))]
    return build_suite(roleplay + alpaca, COPY_KINDS, seed=0, pool="eval")


def copy_kind_figures(pairs, chosen, rejected) -> dict:
    rep = robustness_report(pairs, chosen, rejected)
    return {f"copy kinds {k}": round(v["accuracy"], 4) for k, v in rep["per_kind"].items()}


def recipe_data(d: str, extra_negative_kinds=()):
    """The retrain command's data (docs/scorer.md), as `car-select train-scorer` assembles it."""
    return training_data([f"{d}/car-expert-revised/expert-revised/APE_score_train.csv", f"{d}/preference-dev/train.jsonl"],
                         [f"{d}/car-expert-revised/expert-revised/APE_score_valid.csv",
                          f"{d}/preference-dev/valid_autoj_human.jsonl"],
                         robustness_paths=[f"{d}/lima-1k/lima.json"],
                         negatives_from=[f"{d}/stanford-alpaca-52k/alpaca_data.json"], negatives_max_records=500,
                         seed=42, train_weights=[1, 0.25], off_topic_weight=TrainSettings.off_topic_weight,
                         extra_negative_kinds=extra_negative_kinds)


def extra_inputs(d: str):
    """(recipe data, copy negatives, their weights, the extra validation suites)."""
    from car_select.training.data import robustness_pairs

    base = recipe_data(d)
    full = recipe_data(d, COPY_KINDS)
    n = len(base.train)
    assert full.train[:n] == base.train, "the copy draw must leave the first draw as it was"
    negatives_sample = set(answer_items(f"{d}/stanford-alpaca-52k/alpaca_data.json", 500, 42))
    more_valid = {"robustness:new_codealpaca.json": robustness_pairs(f"{d}/code-alpaca/new_codealpaca.json", 150, seed=0),
                  "copy suite": copy_suite(d, negatives_sample)}
    return base, full, full.train[n:], full.weights[n:], more_valid


def assemble(base, full, settings, tf, tf_extra, extra, cache_dir) -> str:
    """Write the features of the retrain command's data with the copy negatives (`--extra-negative-kinds`)
    where train-scorer looks for them: each text's row from the command's own features or the copy
    negatives'. Features are batch-invariant (a text's bits do not depend on what it is batched with),
    so these are the bytes a fresh computation gives; texts in both tables are checked to agree."""
    from car_select.atomic import atomic_path
    from car_select.training.features import TrainingFeatures, pair_texts

    base_items = {it: i for i, it in enumerate(pair_texts(base.train, "pairwise")[0])}
    extra_items = {it: i for i, it in enumerate(pair_texts(extra, "pairwise")[0])}
    shared = [(base_items[it], j) for it, j in extra_items.items() if it in base_items]
    same = all(torch.equal(tf.table[i], tf_extra.table[j]) for i, j in shared)
    assert same, "a text's features differ between the two tables: not batch-invariant"
    items = pair_texts(full.train, "pairwise")[0]
    table = torch.stack([tf.table[base_items[it]] if it in base_items else tf_extra.table[extra_items[it]]
                         for it in items])
    probe = TrainingFeatures.__new__(TrainingFeatures)
    probe.scorer, probe.multi_view = tf.scorer, tf.multi_view
    path = probe._cache_file(cache_dir, items, settings.batch_tokens)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(table, tmp)
    print(f"{len(shared)} texts in both tables agree bit for bit; wrote {len(items)} rows to {path}", file=sys.stderr)
    return str(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--cache-dir", default=None, help="train-scorer's cache folder (default: the usual one)")
    ap.add_argument("--encode-only", action="store_true",
                    help="encode what the retrain command does not (copy negatives, the extra validation suites) and stop")
    ap.add_argument("--assemble", action="store_true",
                    help="after the retrain command: write the features of its data with the copy negatives")
    ap.add_argument("--evaluate", nargs="*", default=[], metavar="NAME=DIR",
                    help="scorer folders trained by train-scorer, to figure on the validation sets")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.cache_dir is None:
        from car_select.config import default_cache_dir

        args.cache_dir = default_cache_dir()
    d = args.data
    base, full, extra, extra_weights, more_valid = extra_inputs(d)
    settings = TrainSettings(seed=42, text_stats=len(STAT_NAMES))
    # what the retrain command does not encode: the copy negatives and the two extra validation suites
    scorer, tf_extra, _, vf_more, vr_more = prepare(extra, more_valid, settings, cache_dir=args.cache_dir)
    if args.encode_only:
        return 0
    _, tf, _, vf, vr = prepare(base.train, base.valid, settings, cache_dir=args.cache_dir)  # the command's cache
    if args.assemble:
        assemble(base, full, settings, tf, tf_extra, extra, args.cache_dir)
    if not args.evaluate:
        return 0
    vr_more = vr_more + len(vf.table)
    # validation sets: CaR valid, Auto-J, LIMA and Code Alpaca of the kinds the default had, and the copy kinds
    row_sets = {}
    for (name, pairs), rows in zip([*base.valid.items(), *more_valid.items()], _split(
            [*base.valid.values(), *more_valid.values()], np.concatenate([vr, vr_more]))):
        for p, r in zip(pairs, rows):
            target = COPY_SET if name == "copy suite" or getattr(p, "kind", "") in COPY_KINDS else name
            row_sets.setdefault(target, ([], []))
            row_sets[target][0].append(p)
            row_sets[target][1].append(r)
    order = [k for k in row_sets if k != COPY_SET] + [COPY_SET]
    valid = {k: row_sets[k][0] for k in order}
    vrows = np.concatenate([np.array(row_sets[k][1]) for k in order])
    table = torch.cat([vf.table, vf_more.table])
    stats = torch.cat([vf.stats, vf_more.stats])
    results = {"train_pairs": len(base.train), "copy_negatives": len(extra),
               "valid_pairs": {k: len(v) for k, v in valid.items()}, "variants": {}}
    from car_select.scoring.scorer import Scorer

    for spec in args.evaluate:
        name, _, folder = spec.partition("=")
        trained = Scorer.load(folder)
        head = trained.model.head.eval()
        k = trained.head_config.text_stats
        with torch.no_grad():
            scores = torch.cat([head(table[i:i + 1024], stats[i:i + 1024, :k])
                                for i in range(0, len(table), 1024)]).float().numpy()
        out = variant_figures(valid, vrows, scores)
        copy_rows = vrows[len(vrows) - len(valid[COPY_SET]):]
        out.update(copy_kind_figures(valid[COPY_SET], scores[copy_rows[:, 0]], scores[copy_rows[:, 1]]))
        out["settings"] = {"text_stats": k, "extra_negative_kinds":
                           trained.meta.get("training", {}).get("extra_negative_kinds", []),
                           "best_epochs": trained.meta.get("training", {}).get("best_epochs")}
        results["variants"][name] = out
        print(json.dumps({name: out}), file=sys.stderr, flush=True)
    write_results(results, args.out)
    return 0


def _split(sets, rows):
    start = 0
    for pairs in sets:
        yield rows[start:start + len(pairs)]
        start += len(pairs)


if __name__ == "__main__":
    sys.exit(main())
