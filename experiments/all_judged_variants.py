"""All 11,848 judged pairs instead of a 3,000-pair sample, on validation only.

Same data, head and epoch rule as scorer_variants.py (one head, seed 42, the epoch kept on the mean
validation accuracy), but every pair of preference-dev/train.jsonl is used, so the judged pairs'
answers also give more corruption negatives. The weights are per source (CaR pairs, judged pairs,
negatives). The encoder pass covers 27,097 training texts: 19.5 minutes on 2 idle cores, the five
heads included and the validation features already cached (measured with /usr/bin/time).

    python experiments/all_judged_variants.py --out experiments/results/all_judged_variants.json
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
from common import CAR, JUDGED, default_recipe_features, parse_args, record_result, train_head, write_results

WEIGHTS = {"equal": {CAR: 1, JUDGED: 1, "negatives": 1},
           "judged x0.25": {CAR: 1, JUDGED: 0.25, "negatives": 1},
           "judged x0.5": {CAR: 1, JUDGED: 0.5, "negatives": 1},
           "car x2 judged x0.25": {CAR: 2, JUDGED: 0.25, "negatives": 1},
           "judged only": {JUDGED: 1}}


def main() -> int:
    args = parse_args(__doc__)
    data, settings, scorer, tf, tr, vf, vr = default_recipe_features(args, max_train_pairs=None)
    config = replace(scorer.head_config, members=1)
    source = np.array(data.sources)
    results = {}
    for name, weights in WEIGHTS.items():
        w = np.array([weights.get(s, 0.0) for s in source])
        _, epoch, s = train_head(config, tf, tr[w > 0], w[w > 0], data.valid, vf, vr, settings.epochs,
                                 settings.patience)
        record_result(results, name, s, epoch)
    write_results(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
