"""How much the off-topic negatives weigh in the loss, chosen on validation only.

The default's worst held-out kind is an off-topic answer on code (another record's answer). On the
Code Alpaca validation suite the answers it ranks above the right one are fluent code for another
request that shares almost no word with this one (`prompt_words_covered` 0 against 0.2-0.5): the
head has the statistic but weighs it less than the pooled features that say "this is tidy code".
Off-topic negatives are 3 of the 12 kinds (off_topic, off_topic_padded, off_topic_similar), about a
quarter of the negatives. These variants weigh some of them more in the loss; nothing else changes,
so every variant reuses the same cached features. Kept: off_topic alone at weight 3
(TrainSettings.off_topic_weight; docs/scorer.md). Data: docs/scorer.md's
retrain command. Each variant is what would ship: two heads (seeds 42 and 43, each kept at its best
epoch by the mean of the four validation accuracies: CaR valid, Auto-J, the LIMA and the Code Alpaca
validation suites, as order_stat_variants.py) and their mean; each head's own figures are kept too,
to show the seed's share of a difference. Nothing here looks at test data. About 10 minutes on 2
cores once the retrain command has filled the cache and the Code Alpaca validation texts are encoded.

    python experiments/off_topic_weight_variants.py --out experiments/results/off_topic_weight_variants.json
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
from common import default_recipe_features, figures, parse_args, record_seed_heads, write_results

from car_select.scoring.textstats import STAT_NAMES
from car_select.training.corruptions import KINDS
from car_select.training.data import kind_weights

OFF_TOPIC_KINDS = ("off_topic", "off_topic_padded", "off_topic_similar")  # another request's answer
VARIANTS = {  # name: loss weight per negative kind (other negatives weigh 1)
    "off-topic negatives at weight 1 (the default)": {},
    "at weight 2": dict.fromkeys(OFF_TOPIC_KINDS, 2.0),
    "at weight 3": dict.fromkeys(OFF_TOPIC_KINDS, 3.0),
    "off_topic alone at weight 2": {"off_topic": 2.0},
    "off_topic alone at weight 3": {"off_topic": 3.0},
    "off_topic and off_topic_padded at weight 2": {"off_topic": 2.0, "off_topic_padded": 2.0},
}


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
