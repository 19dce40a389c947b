"""Which of the four newer corruption kinds to train on, chosen on validation only.

The four kinds (off_topic_appended, prompt_words_stuffed, whitespace_pad, all_caps) fill holes found
by experiments/unseen_corruptions.py-style probes on LIMA: another answer appended after the right one,
the request's words stuffed after it, trailing whitespace (which fooled every scorer before the text
statistics learnt to ignore it) and capitals. With all four drawn as training negatives the retrain
command lost 33 Auto-J pairs; these variants drop some of them from training (their negatives get
weight 0, so every variant reuses the retrain command's cached features) and keep everything else.
Validation suites (LIMA, Code Alpaca new_codealpaca.json) hold all 15 suite kinds in every variant.
Each variant is what would ship: two heads (seeds 42 and 43, each kept at its best epoch on the mean
of the four validation accuracies) averaged, with the length lean of head_settings_variants.py.
About 15 minutes on 2 cores once the retrain command has filled the cache.

    python experiments/new_kind_variants.py --out experiments/results/new_kind_variants.json
"""

from __future__ import annotations

import sys

from common import left_out_variants, variant_figures

NEW_KINDS = ("off_topic_appended", "prompt_words_stuffed", "whitespace_pad", "all_caps")
VARIANTS = {  # name: the new kinds left out of training
    "all four new kinds": (),
    "without off_topic_appended and prompt_words_stuffed": ("off_topic_appended", "prompt_words_stuffed"),
    "without off_topic_appended": ("off_topic_appended",),
    "without prompt_words_stuffed": ("prompt_words_stuffed",),
    "none of the four (whitespace-tidy statistics only)": NEW_KINDS,
}


def main() -> int:
    return left_out_variants(__doc__, VARIANTS, variant_figures)


if __name__ == "__main__":
    sys.exit(main())
