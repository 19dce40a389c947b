"""The encoder window: 256 tokens keeping a long text's last 64 (the shipped default's) against 512
keeping the last 128, compared on validation only (512 lost; README, docs/window_variants.json).

Half of the Auto-J validation texts and of the judged training pairs are longer than 256 tokens
(a quarter longer than 512), so the 256-token window judged most of those answers by their start
and end alone. all-MiniLM-L6-v2 has 512 position embeddings, so a 512-token window costs only the
longer encoder pass (training features and scoring of long texts; Alpaca's records are short).
Each window is what would ship, the retrain command's data and recipe (two heads, seeds 42 and 43,
each kept at its best epoch by the mean of the four validation accuracies: CaR valid, Auto-J, the
LIMA and the Code Alpaca validation suites), and once more with seeds 44 and 45, to show how much
of a difference the seeds alone make. Nothing here looks at test data. Training features come from
the cache the retrain command fills; run it at both windows first (the README's command, 9 minutes,
and the same with `--max-length 512 --tail-tokens 128`, 14 minutes; both with the same --cache-dir),
then this takes about 25 minutes on 2 cores, most of it encoding the validation texts.

    python scripts/window_variants.py --out docs/window_variants.json [--cache-dir DIR]
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace

sys.path.insert(0, os.path.dirname(__file__))
from head_settings_variants import variant_figures  # noqa: E402
from scorer_variants import default_recipe_features, parse_args, record_seed_heads, write_results  # noqa: E402

from car_select.scoring.train import TrainSettings  # noqa: E402

WINDOWS = {  # name: (max_length, tail_tokens)
    "256 tokens, the last 64 kept": (256, 64),
    "512 tokens, the last 128 kept": (512, 128),
}


def main() -> int:
    args = parse_args(__doc__)
    results = {}
    for name, (max_length, tail_tokens) in WINDOWS.items():
        # The retrain command's data: every judged pair at weight 0.25, negatives of the training kinds,
        # off_topic ones at the recipe's weight; LIMA and Code Alpaca validation suites.
        data, settings, scorer, tf, tr, vf, vr = default_recipe_features(
            args, max_train_pairs=None, text_stats=TrainSettings.text_stats,
            settings_changes={"max_length": max_length, "tail_tokens": tail_tokens}, negative_kinds=None,
            train_weights=[1, 0.25], robustness=("lima-1k/lima.json", "code-alpaca/new_codealpaca.json"),
            off_topic_weight=TrainSettings.off_topic_weight)
        config = replace(scorer.head_config, members=1)
        for seeds in ((42, 43), (44, 45)):
            record_seed_heads(results, f"{name} (seeds {seeds[0]} and {seeds[1]})",
                              lambda scores: variant_figures(data.valid, vr, scores),
                              config, tf, tr, data.weights, data, vf, vr, settings, seeds=seeds)
    write_results(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
