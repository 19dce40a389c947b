"""Order and layout statistics, chosen on validation only: which text statistics the default head takes.

The default before these statistics missed one corruption kind by far on code: code answers with their
words shuffled (held-out Code Alpaca 0.81). The LIMA validation suite holds little code, so these
variants are judged on one more validation suite: degraded answers of Code Alpaca's `new_codealpaca.json`
(4,535 records; no request in common with the held-out `code_alpaca_2k.json`, 12 short answers such
as "1" or a factorial function in both; 150 sampled, as for LIMA). Data: docs/scorer.md's
retrain command (every judged pair at weight 0.25, negatives of all 12 kinds). Every variant is one
head (seed 42) over the same cached encoder features, kept at its best epoch by the mean of the four
validation accuracies; only the statistics the head takes differ (textstats.STAT_NAMES by name).
Nothing here looks at test data. With the retrain command's cache: about 7 minutes for the new
validation texts, then about 2 minutes per head (19.9 minutes for the nine heads on 2 cores, measured
with /usr/bin/time, the validation texts already encoded).

    python experiments/order_stat_variants.py --out experiments/results/order_stat_variants.json
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
from common import (default_recipe_features, head_scores, length_figures, parse_args, record_result, train_head,
                    write_results)

from car_select.scoring.textstats import STAT_NAMES
from car_select.training.corruptions import KINDS

FIRST = list(STAT_NAMES[:18])  # the statistics of the default these variants start from
WORD_ORDER = ["lowercase_after_sentence_end", "article_before_function_word"]
ORDER = ["order_compression_gain", "bracket_mismatch_share"]
LAYOUT = ["line_breaks_per_word"]
VARIANTS = {
    "18 statistics (the previous default's inputs)": FIRST,
    "+ 2 word-order statistics": FIRST + WORD_ORDER,
    "+ order_compression_gain": FIRST + ORDER[:1],
    "+ bracket_mismatch_share": FIRST + ORDER[1:],
    "+ line_breaks_per_word": FIRST + LAYOUT,
    "+ the 2 order statistics": FIRST + ORDER,
    "+ the 2 order statistics and line breaks": FIRST + ORDER + LAYOUT,
    "+ word order and the 2 order statistics": FIRST + WORD_ORDER + ORDER,
    "all 23 statistics": list(STAT_NAMES),
}


def main() -> int:
    args = parse_args(__doc__)
    data, settings, scorer, tf, tr, vf, vr = default_recipe_features(
        args, max_train_pairs=None, text_stats=len(STAT_NAMES), negative_kinds=tuple(KINDS),
        train_weights=[1, 0.25], robustness=("lima-1k/lima.json", "code-alpaca/new_codealpaca.json"))
    w = np.array(data.weights)
    every_t, every_v = tf.stats, vf.stats
    results = {}
    for name, stats in VARIANTS.items():
        columns = [STAT_NAMES.index(s) for s in stats]
        tf.stats, vf.stats = every_t[:, columns], every_v[:, columns]
        config = replace(scorer.head_config, members=1, text_stats=len(columns))
        head, epoch, s = train_head(config, tf, tr, w, data.valid, vf, vr, settings.epochs, settings.patience)
        record_result(results, name, {**s, **length_figures(data.valid, vr, head_scores(head, vf, len(vf.table)))},
                      epoch)
    write_results(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
