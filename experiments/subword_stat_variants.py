"""A 27th text statistic, prompt_words_in_text (the request's words found anywhere in the answer,
inside identifiers too), compared on validation only (not shipped; docs/scorer.md,
experiments/results/subword_stat_variants.json).

On code, another request's answer beat the right one about 2 times in 10 (Code Alpaca validation
suite 0.81): both are code, and the whole-word statistics of request words in the answer miss
`reverse_string` for "reverse a string". On that suite's off_topic pairs the new statistic alone
ranks the right answer higher in 0.94 of them, the whole-word `prompt_words_covered` in 0.85. A
head takes the first N statistics, so taking the 27th means taking the 26th too
(second_half_new_words, which lost on validation before: experiments/halves_variants.py); the
variants are 25 (the shipped head's), 26 and 27 statistics. Each is what would ship, the retrain command's data and
recipe, two heads (seeds 42 and 43, each kept at its best epoch by the mean of the four validation
accuracies: CaR valid, Auto-J, the LIMA and the Code Alpaca validation suites), and again with seeds 44
and 45. Nothing here looks at test data. About 20 minutes on 2 cores once the retrain command (and
experiments/window_variants.py, for the validation texts) has filled the cache.

    python experiments/subword_stat_variants.py --out experiments/results/subword_stat_variants.json [--cache-dir DIR]
"""

from __future__ import annotations

import sys

from common import retrain_command_variants

VARIANTS = {  # name: how many statistics the head takes (textstats.STAT_NAMES, then common.EXTRA_STAT_NAMES)
    "25 statistics (the shipped head's)": {"text_stats": 25},
    "26 statistics (+ second_half_new_words)": {"text_stats": 26},
    "27 statistics (+ second_half_new_words, prompt_words_in_text)": {"text_stats": 27},
}

if __name__ == "__main__":
    sys.exit(retrain_command_variants(__doc__, VARIANTS))
