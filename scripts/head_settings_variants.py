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

    python scripts/head_settings_variants.py --out docs/head_settings_variants.json
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from off_topic_weight_variants import figures  # noqa: E402
from scorer_variants import (  # noqa: E402
    parse_args,
    record_seed_heads,
    shipped_recipe_features,
    write_results,
)

from car_select.scoring.evaluate import spearman  # noqa: E402
from car_select.scoring.train import TrainSettings  # noqa: E402

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


def length_lean(valid: dict, rows: np.ndarray, scores: np.ndarray) -> dict:
    """Spearman of score with answer length (characters) over the real answers of the preference sets
    (CaR valid, Auto-J), each answer once: how much a head leans on length, on validation data (the
    card's figure is on Alpaca records, which these variants do not encode)."""
    length_of, start = {}, 0
    for name, pairs in valid.items():
        if not name.startswith("robustness:"):
            for p, (c, r) in zip(pairs, rows[start:start + len(pairs)]):
                length_of[c], length_of[r] = len(p.chosen), len(p.rejected)
        start += len(pairs)
    items = np.array(list(length_of))
    return {"length lean (Spearman, CaR valid and Auto-J answers)":
            round(spearman(scores[items], np.array(list(length_of.values()))), 4)}


def variant_figures(valid: dict, rows: np.ndarray, scores: np.ndarray) -> dict:
    return {**figures(valid, rows, scores), **length_lean(valid, rows, scores)}


def retrain_command_variants(doc: str, variants: dict) -> int:
    """Each variant (name: TrainSettings changes, text_stats among them) trained as what would ship on
    the retrain command's data (every judged pair at weight 0.25, negatives of the training kinds,
    off_topic ones at the recipe's weight; LIMA and Code Alpaca validation suites), twice: two heads
    from seeds 42 and 43, and from 44 and 45, so a difference can be set beside the seeds' own."""
    args = parse_args(doc)
    results = {}
    for name, changes in variants.items():
        changes = dict(changes)
        data, settings, scorer, tf, tr, vf, vr = shipped_recipe_features(
            args, text_stats=changes.pop("text_stats", TrainSettings.text_stats), **changes)
        config = replace(scorer.head_config, members=1)
        for seeds in ((42, 43), (44, 45)):
            record_seed_heads(results, f"{name} (seeds {seeds[0]} and {seeds[1]})",
                              lambda scores: variant_figures(data.valid, vr, scores),
                              config, tf, tr, data.weights, data, vf, vr, settings, seeds=seeds)
    write_results(results, args.out)
    return 0


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
