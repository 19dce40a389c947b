"""How much the off-topic negatives weigh in the loss, chosen on validation only.

The default's worst held-out kind is an off-topic answer on code (another record's answer). On the
Code Alpaca validation suite the answers it ranks above the right one are fluent code for another
request that shares almost no word with this one (`prompt_words_covered` 0 against 0.2-0.5): the
head has the statistic but weighs it less than the pooled features that say "this is tidy code".
Off-topic negatives are 3 of the 12 kinds (off_topic, off_topic_padded, off_topic_similar), about a
quarter of the negatives. These variants weigh some of them more in the loss; nothing else changes,
so every variant reuses the same cached features. Kept: off_topic alone at weight 3
(TrainSettings.off_topic_weight; README "Off-topic negatives weighed more"). Data: the README's
retrain command. Each variant is what would ship: two heads (seeds 42 and 43, each kept at its best
epoch by the mean of the four validation accuracies: CaR valid, Auto-J, the LIMA and the Code Alpaca
validation suites, as order_stat_variants.py) and their mean; each head's own figures are kept too,
to show the seed's share of a difference. Nothing here looks at test data. About 10 minutes on 2
cores once the retrain command has filled the cache and the Code Alpaca validation texts are encoded.

    python scripts/off_topic_weight_variants.py --out docs/off_topic_weight_variants.json
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from order_stat_variants import length_figures  # noqa: E402
from scorer_variants import (default_recipe_features, parse_args, record_seed_heads,  # noqa: E402
                             set_scores, summary, write_results)

from car_select.scoring.corruptions import KINDS  # noqa: E402
from car_select.scoring.evaluate import robustness_report  # noqa: E402
from car_select.scoring.textstats import STAT_NAMES  # noqa: E402
from car_select.scoring.train import kind_weights  # noqa: E402

OFF_TOPIC_KINDS = ("off_topic", "off_topic_padded", "off_topic_similar")  # another request's answer
VARIANTS = {  # name: loss weight per negative kind (other negatives weigh 1)
    "off-topic negatives at weight 1 (the default)": {},
    "at weight 2": dict.fromkeys(OFF_TOPIC_KINDS, 2.0),
    "at weight 3": dict.fromkeys(OFF_TOPIC_KINDS, 3.0),
    "off_topic alone at weight 2": {"off_topic": 2.0},
    "off_topic alone at weight 3": {"off_topic": 3.0},
    "off_topic and off_topic_padded at weight 2": {"off_topic": 2.0, "off_topic_padded": 2.0},
}


def off_topic_figures(valid: dict, rows: np.ndarray, scores: np.ndarray) -> dict:
    """Each validation suite's off_topic accuracy, the kind these variants aim at."""
    return {f"{name} off_topic": round(robustness_report(pairs, chosen, rejected)["per_kind"]["off_topic"]["accuracy"], 4)
            for name, pairs, chosen, rejected in set_scores(valid, rows, scores) if name.startswith("robustness:")}


def figures(valid: dict, rows: np.ndarray, scores: np.ndarray) -> dict:
    return {**summary(valid, rows, scores), **off_topic_figures(valid, rows, scores), **length_figures(valid, rows, scores)}


def main() -> int:
    args = parse_args(__doc__)
    data, settings, scorer, tf, tr, vf, vr = default_recipe_features(
        args, max_train_pairs=None, text_stats=len(STAT_NAMES), negative_kinds=tuple(KINDS),
        train_weights=[1, 0.25], robustness=("lima-1k/lima.json", "code-alpaca/new_codealpaca.json"))
    config = replace(scorer.head_config, members=1)
    results = {}
    for name, by_kind in VARIANTS.items():
        w = np.array(kind_weights(data.train, by_kind)) * np.array(data.weights)
        record_seed_heads(results, name, lambda scores: figures(data.valid, vr, scores),
                          config, tf, tr, w, data, vf, vr, settings)
    write_results(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
