"""Scorer variants tried on validation only, on the 0.1 default's training data and features (3,000
judged pairs; the default since ships all of them, see all_judged_variants.py).

Every variant is one head (seed 42) over the same frozen multi-view features as the shipped default,
trained with the pairwise loss and kept at its best epoch by the mean validation accuracy (as
`train-scorer` does). What changes is which training pairs count and how much, or how two heads are
combined. Nothing here looks at test data. Features come from the cache `train-scorer` fills, so
after a `train-scorer` run on the same data (`--max-train-pairs 3000` in place of `--train-weights`
in the retrain command of docs/scorer.md) this takes minutes.

    python experiments/scorer_variants.py --out experiments/results/scorer_variants.json
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
from common import (CAR, JUDGED, default_recipe_features, head_scores, parse_args, record_result, summary,
                    train_head, write_results)

from car_select.training.train import prepare


def main() -> int:
    args = parse_args(__doc__)
    data, settings, scorer, tf, tr, vf, vr = default_recipe_features(args)
    config = replace(scorer.head_config, members=1)
    source = np.array(data.sources)
    results = {}

    def pairwise(name, weights, criterion=None, features=(tf, vf), head_config=config):
        w = np.array([weights.get(s, 0.0) for s in source])
        head, epoch, s = train_head(head_config, features[0], tr[w > 0], w[w > 0], data.valid, features[1], vr,
                                    settings.epochs, settings.patience, criterion=criterion)
        record_result(results, name, s, epoch)
        return head

    every = {CAR: 1, JUDGED: 1, "negatives": 1}
    joint = pairwise("every source, equal weights (the shipped recipe, one head)", every)
    # The same with the two word-order statistics of textstats.STAT_NAMES (the 19th and 20th): the
    # encoder features come from the same cache, only the statistics are recomputed.
    _, wide_tf, _, wide_vf, _ = prepare(data.train, data.valid, replace(settings, text_stats=20),
                                        cache_dir=args.cache_dir)
    pairwise("the same with all 20 statistics (+ 2 of word order)", every,
             features=(wide_tf, wide_vf), head_config=replace(config, text_stats=20))
    pairwise("expert pairs x2, judged pairs x0.5", {CAR: 2, JUDGED: 0.5, "negatives": 1})
    pairwise("expert pairs and negatives, no judged pairs", {CAR: 1, "negatives": 1})
    pairwise("judged pairs only", {JUDGED: 1})
    expert = pairwise("expert pairs only, epoch chosen on CaR valid", {CAR: 1},
                      criterion=lambda s: s["APE_score_valid.csv"])

    # Expert head plus a defect detector: score = expert - w * softplus(defect logit), i.e. the
    # expert's score plus w * log P(clean). Clean: every real answer; corrupted: the negatives' copies.
    neg = tr[source == "negatives"]
    clean = np.unique(np.concatenate([tr[source != "negatives"].ravel(), neg[:, 0]]))
    bad = np.setdiff1d(np.unique(neg[:, 1]), clean)
    items = np.concatenate([clean, bad])
    labels = np.concatenate([np.zeros(len(clean)), np.ones(len(bad))])
    defect, epoch, _ = train_head(config, tf, items, np.ones(len(items)), data.valid, vf, vr, settings.epochs,
                                  settings.patience, loss="classify",
                                  labels=labels, criterion=lambda s: s["robustness:lima.json"])
    e, dlogit = head_scores(expert, vf, len(vf.table)), head_scores(defect, vf, len(vf.table))
    for w in (2, 4, 8):
        record_result(results, f"expert head - {w} x softplus(defect detector logit)",
                      summary(data.valid, vr, e - w * np.logaddexp(0, dlogit)), epoch)

    # The joint head plus a bounded share of the expert head: tanh caps how far the expert's view
    # (which prefers longer, friendlier answers, filler included) can move a score.
    def z(x):
        return (x - x.mean()) / x.std()

    j = head_scores(joint, vf, len(vf.table))
    for w in (0.25, 0.5):
        record_result(results, f"joint head + {w} x tanh(2 x standardised expert head)",
                      summary(data.valid, vr, z(j) + w * np.tanh(2 * z(e))), None)

    write_results(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
