"""Does the head gain from the response's two halves, and from a statistic of its second half?
Chosen on validation only.

The shipped head pooled the response whole, so another record's answer appended after the right one
was averaged into it: the previous default ranked such an answer above the plain one 4 to 5 times in
10. Two new inputs look at the response's second half:
- the halves views (common.HALF_VIEWS) pool the first and the second half of the response's tokens
  apart, and the head (common.HalvesHead) takes their per-layer cosines with the prompt and with each
  other (inside the encoder's window only);
- the statistic second_half_new_words (common.EXTRA_STAT_NAMES) reads the whole response.
Every variant trains on the same cached five-view features (a three-view head reads the first three
views, the same bytes three-view features are; a 25-statistic head the first 25 columns), with the
retrain command's data and training kinds, the LIMA and Code Alpaca validation suites, and two seeds
averaged as the shipped scorer does. Figures include the length lean of head_settings_variants.py.
About 40 minutes on 2 cores once the features are cached (computing them adds about 8); variants
already in --out are kept.

    python experiments/halves_variants.py --out experiments/results/halves_variants.json
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from common import HalvesHead, parse_args, record_seed_heads, shipped_recipe_features, variant_figures, write_results

from car_select.training.corruptions import KINDS, TRAINING_KINDS
from car_select.training.data import kind_weights

THREE, FIVE = 3, 5  # the shipped views (whole text, prompt, response); with the response's halves


class Sliced:
    """Features restricted to their first `views` views and `stats` statistics."""

    def __init__(self, feats, views: int, stats: int):
        self.feats, self.views, self.stats, self.table = feats, views, stats, feats.table

    def __call__(self, rows):
        pooled, stats = self.feats(rows)
        return pooled[:, :self.views], stats[:, :self.stats]


VARIANTS = {  # name: (views, statistics, off_topic_appended negatives' loss weight, only those in the window)
    "three views, 25 statistics (the previous default)": (THREE, 25, 1.0, False),
    "three views, 26 statistics (second_half_new_words)": (THREE, 26, 1.0, False),
    "five views (the response's halves), 26 statistics": (FIVE, 26, 1.0, False),
    "five views, 26 statistics, off_topic_appended negatives at weight 3": (FIVE, 26, 3.0, False),
    "three views, 25 statistics, off_topic_appended negatives at weight 3": (THREE, 25, 3.0, False),
    "three views, 26 statistics, off_topic_appended negatives at weight 3": (THREE, 26, 3.0, False),
    # Half the appended negatives append past the encoder's window, where only length and the
    # statistics show them: do they teach "longer is worse", against the judged pairs?
    "three views, 25 statistics, only the appended negatives the window shows": (THREE, 25, 1.0, True),
    "three views, 25 statistics, only the appended negatives the window shows, at weight 3": (THREE, 25, 3.0, True),
}
WINDOW_MARGIN = 16  # tokens of the appended answer the window must show


def main() -> int:
    args = parse_args(__doc__)
    # tail_tokens 0: these variants were run before the window kept a long text's end
    # negatives drawn from every kind, and every kind TRAINING_KINDS leaves out weighs 0 (as recorded)
    data, settings, scorer, tf, tr, vf, vr = shipped_recipe_features(args, text_stats=26, halves=True,
                                                                     tail_tokens=0, negative_kinds=tuple(KINDS))
    left_out = {kind: 0.0 for kind in KINDS if kind not in TRAINING_KINDS}
    # variants already in --out are kept, not rerun (each takes about 5 minutes)
    results = json.loads(Path(args.out).read_text()) if args.out and os.path.exists(args.out) else {}
    hidden = np.array([getattr(p, "kind", "") == "off_topic_appended"
                       and len(tf.ids[r[0]]) >= scorer.max_length - WINDOW_MARGIN for p, r in zip(data.train, tr)])
    for name, (views, stats, appended_weight, window_only) in VARIANTS.items():
        if f"{name}, both seeds" in results:
            continue
        by_kind = {**left_out, "off_topic_appended": appended_weight}
        w = np.array(data.weights) * np.array(kind_weights(data.train, by_kind))
        if window_only:
            w[hidden] = 0.0
        config = replace(scorer.head_config, members=1, text_stats=stats)
        train, valid = Sliced(tf, views, stats), Sliced(vf, views, stats)
        record_seed_heads(results, name, lambda scores: variant_figures(data.valid, vr, scores),
                          config, train, tr[w > 0], w[w > 0], data, valid, vr, settings,
                          make_head=(lambda: HalvesHead(config)) if views == FIVE else None)
    write_results(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
