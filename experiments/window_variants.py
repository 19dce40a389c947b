"""The encoder window: 256 tokens keeping a long text's last 64 (the shipped default's) against 512
keeping the last 128, compared on validation only (512 lost; docs/scorer.md, experiments/results/window_variants.json).

Half of the Auto-J validation texts and of the judged training pairs are longer than 256 tokens
(a quarter longer than 512), so the 256-token window judged most of those answers by their start
and end alone. all-MiniLM-L6-v2 has 512 position embeddings, so a 512-token window costs only the
longer encoder pass (training features and scoring of long texts; Alpaca's records are short).
Each window is what would ship, the retrain command's data and recipe (two heads, seeds 42 and 43,
each kept at its best epoch by the mean of the four validation accuracies: CaR valid, Auto-J, the
LIMA and the Code Alpaca validation suites), and once more with seeds 44 and 45, to show how much
of a difference the seeds alone make. Nothing here looks at test data. Training features come from
the cache the retrain command fills; run it at both windows first (the command of docs/scorer.md, 9 minutes,
and the same with `--max-length 512 --tail-tokens 128`, 14 minutes; both with the same --cache-dir),
then this takes about 25 minutes on 2 cores, most of it encoding the validation texts.

    python experiments/window_variants.py --out experiments/results/window_variants.json [--cache-dir DIR]
"""

from __future__ import annotations

import sys

from common import retrain_command_variants

VARIANTS = {  # name: the window's TrainSettings
    "256 tokens, the last 64 kept": {"max_length": 256, "tail_tokens": 64},
    "512 tokens, the last 128 kept": {"max_length": 512, "tail_tokens": 128},
}

if __name__ == "__main__":
    sys.exit(retrain_command_variants(__doc__, VARIANTS))
