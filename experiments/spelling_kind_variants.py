"""Which of three newer corruption kinds (misspellings, lowered case, dropped punctuation) to train
on, chosen on validation only.

Probes in the style of experiments/unseen_corruptions.py found the d3c62ea default (validation suites,
150 answers each) ranking an answer with 15-40% of its words misspelt above the original 1 time in 10
on LIMA and 4 in 10 on Code Alpaca's validation file, random letters in place of the words 1 in 4,
the answer stripped of punctuation 1 in 10, and lowercased code above the original 93 times in 100
(the uncased encoder cannot see case; the uppercase statistic, trained on shouting alone, learned
that fewer capitals is better). The kinds
typos, lowercased and punctuation_dropped (corruptions.py) are in the diagnostic suite; these
variants train on some of them. As new_kind_variants.py: negatives are drawn from every kind, a kind
left out of training weighs 0 (so every variant trains on the same cached features; keyword
stuffing, never a training kind, always weighs 0), and each variant is what would ship, two heads
(seeds 42 and 43) averaged. Validation suites (LIMA, Code Alpaca new_codealpaca.json) hold all 18
suite kinds in every variant; "mean of 4, first 15 kinds" is the mean with the suites cut to the 15
kinds earlier defaults were chosen on. About 25 minutes on 2 cores, 8 of them encoding.

    python experiments/spelling_kind_variants.py --out experiments/results/spelling_kind_variants.json
"""

from __future__ import annotations

import sys

import numpy as np
from common import left_out_variants, set_scores, variant_figures

from car_select.training.evaluate import evaluate_pairs, robustness_report

NEW_KINDS = ("typos", "lowercased", "punctuation_dropped")
SHOWN_KINDS = (*NEW_KINDS, "off_topic", "off_topic_appended", "prompt_words_stuffed")
VARIANTS = {  # name: the new kinds left out of training
    "none of the three (the shipped kinds)": NEW_KINDS,
    "all three": (),
    "typos and punctuation_dropped": ("lowercased",),
    "typos only": ("lowercased", "punctuation_dropped"),
}


def kind_figures(valid: dict, rows: np.ndarray, scores: np.ndarray) -> dict:
    """variant_figures, each suite's accuracy on SHOWN_KINDS, and the mean of the four validation
    accuracies with the suites cut to the kinds before these three."""
    out, accuracies = variant_figures(valid, rows, scores), []
    for name, pairs, chosen, rejected in set_scores(valid, rows, scores):
        if not name.startswith("robustness:"):
            accuracies.append(evaluate_pairs(pairs, chosen, rejected).pairwise_accuracy)
            continue
        per_kind = robustness_report(pairs, chosen, rejected)["per_kind"]
        out.update({f"{name} {k}": round(per_kind[k]["accuracy"], 4) for k in SHOWN_KINDS if k in per_kind})
        earlier = [i for i, p in enumerate(pairs) if p.kind not in NEW_KINDS]
        accuracies.append(robustness_report([pairs[i] for i in earlier], chosen[earlier], rejected[earlier])["accuracy"])
    out["mean of 4, first 15 kinds"] = round(float(np.mean(accuracies)), 4)
    return out


def main() -> int:
    # keyword stuffing, never a training kind, weighs 0 in every variant
    return left_out_variants(__doc__, VARIANTS, kind_figures, always_left_out=("prompt_words_stuffed",))


if __name__ == "__main__":
    sys.exit(main())
