"""The head's own settings (width, depth, dropout, learning rate, weight decay), chosen on validation only.

Every earlier variant script changed what the head is trained on or looks at, and kept the head's
settings as the first recipe set them (one hidden layer of 1024, dropout 0.1, AdamW lr 1e-3, weight
decay 0.01). This one changes those alone, one at a time from the shipped recipe, over the retrain
command's data and cached features. Each variant is what would ship: two heads (seeds 42 and 43, each
kept at its best epoch by the mean of the four validation accuracies: CaR valid, Auto-J, the LIMA and
the Code Alpaca validation suites, as off_topic_weight_variants.py) and their mean; each head's own
figures are kept too, to show the seed's share of a difference. Nothing here looks at test data.
About 20 minutes on 2 cores once the retrain command has filled the cache and the Code Alpaca
validation texts are encoded.

    python experiments/head_settings_variants.py --out experiments/results/head_settings_variants.json
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
from common import parse_args, record_seed_heads, shipped_recipe_features, variant_figures, write_results

# name: (head config changes, training settings changes), each from the shipped recipe
VARIANTS = {
    "the shipped settings (1024, dropout 0.1, lr 1e-3, weight decay 0.01)": ({}, {}),
    "hidden 512": ({"hidden_sizes": [512]}, {}),
    "hidden 2048": ({"hidden_sizes": [2048]}, {}),
    "hidden 1024-512": ({"hidden_sizes": [1024, 512]}, {}),
    "dropout 0.3": ({"dropout": 0.3}, {}),
    "dropout 0.5": ({"dropout": 0.5}, {}),
    "lr 3e-4, up to 24 epochs": ({}, {"lr_head": 3e-4, "epochs": 24}),
    "lr 3e-3": ({}, {"lr_head": 3e-3}),
    "weight decay 0.1": ({}, {"weight_decay": 0.1}),
}


def main() -> int:
    args = parse_args(__doc__)
    data, settings, scorer, tf, tr, vf, vr = shipped_recipe_features(args)
    weights = np.array(data.weights)
    results = {}
    for name, (head_changes, settings_changes) in VARIANTS.items():
        config = replace(scorer.head_config, members=1, **head_changes)
        record_seed_heads(results, name, lambda scores: variant_figures(data.valid, vr, scores),
                          config, tf, tr, weights, data, vf, vr, replace(settings, **settings_changes))
    write_results(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
