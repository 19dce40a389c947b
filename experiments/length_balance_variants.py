"""Length-balanced preference pairs, tried on validation only.

In the judged and the expert pairs the better answer is mostly the longer one (Auto-J: "longer
wins" 0.71; CaR valid 0.80), so a head can score well in training by reading length. These variants
reweigh each preference file's pairs so that the pairs whose better answer is the longer one and
those whose better answer is not weigh the same in all (the file's total weight unchanged);
corruption negatives keep their weights. Same data, features and selection of epochs as
off_topic_weight_variants.py (two heads, seeds 42 and 43, averaged), on top of the shipped recipe
(off_topic negatives at weight 3). Nothing here looks at test data.

    python experiments/length_balance_variants.py --out experiments/results/length_balance_variants.json
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
from common import CAR, JUDGED, default_recipe_features, figures, parse_args, record_result, seed_heads, write_results

from car_select.scoring.textstats import STAT_NAMES
from car_select.training.corruptions import KINDS
from car_select.training.train import TrainSettings

VARIANTS = {"shipped recipe": (), "judged pairs length-balanced": (JUDGED,),
            "judged and expert pairs length-balanced": (JUDGED, CAR)}


def balanced(weights: np.ndarray, sources: list[str], longer: np.ndarray, files) -> np.ndarray:
    """weights with each of `files`' pairs rescaled so that its better-is-longer pairs and its other
    pairs weigh the same in all, the file's total unchanged."""
    w = weights.copy()
    for name in files:
        in_file = np.array([s == name for s in sources])
        total = w[in_file].sum()
        for part in (in_file & longer, in_file & ~longer):
            w[part] *= total / 2 / w[part].sum()
    return w


def main() -> int:
    args = parse_args(__doc__)
    data, settings, scorer, tf, tr, vf, vr = default_recipe_features(
        args, max_train_pairs=None, text_stats=len(STAT_NAMES), negative_kinds=tuple(KINDS),
        train_weights=[1, 0.25], robustness=("lima-1k/lima.json", "code-alpaca/new_codealpaca.json"),
        off_topic_weight=TrainSettings().off_topic_weight)
    longer = np.array([len(p.chosen) > len(p.rejected) for p in data.train])
    config = replace(scorer.head_config, members=1)
    results = {}
    for name, files in VARIANTS.items():
        w = balanced(np.array(data.weights), data.sources, longer, files)
        member_scores, epochs = seed_heads(config, tf, tr, w, data, vf, vr, settings)
        record_result(results, name, figures(data.valid, vr, np.mean(member_scores, 0)), epochs)
    write_results(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
