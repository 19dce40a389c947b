"""How good is a scorer: pairwise accuracy on preference pairs, next to what length alone achieves.

Expert revisions are usually longer than the originals, so "the longer answer wins" already scores
about 74% on the CaR test pairs. The length-controlled accuracy looks only at pairs whose revised
answer is NOT longer than the original, where a length detector is at or below chance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from .pairs import PreferencePair


def pairwise_accuracy(chosen_scores: Sequence[float], rejected_scores: Sequence[float]) -> float:
    """Share of pairs where the chosen answer scores higher; a tie counts half."""
    chosen = np.asarray(chosen_scores, dtype=np.float64)
    rejected = np.asarray(rejected_scores, dtype=np.float64)
    if chosen.shape != rejected.shape or chosen.size == 0:
        raise ValueError("need two equally long, non-empty score arrays")
    return float(((chosen > rejected) + 0.5 * (chosen == rejected)).mean())


@dataclass
class ScorerEvaluation:
    pairwise_accuracy: float
    length_baseline_accuracy: float
    length_controlled_accuracy: float | None  # None when no pair has a revised answer that is not longer
    n_pairs: int
    n_length_controlled: int

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_pairs(pairs: Sequence[PreferencePair], chosen_scores, rejected_scores) -> ScorerEvaluation:
    chosen = np.asarray(chosen_scores, dtype=np.float64)
    rejected = np.asarray(rejected_scores, dtype=np.float64)
    chosen_len = np.array([len(p.chosen_text) for p in pairs], dtype=np.float64)
    rejected_len = np.array([len(p.rejected_text) for p in pairs], dtype=np.float64)
    controlled = chosen_len <= rejected_len
    return ScorerEvaluation(
        pairwise_accuracy=pairwise_accuracy(chosen, rejected),
        length_baseline_accuracy=pairwise_accuracy(chosen_len, rejected_len),
        length_controlled_accuracy=(
            pairwise_accuracy(chosen[controlled], rejected[controlled]) if controlled.any() else None
        ),
        n_pairs=len(pairs),
        n_length_controlled=int(controlled.sum()),
    )


def robustness_report(pairs, chosen_scores, rejected_scores) -> dict:
    """Accuracy (original above its degraded copy; a tie counts half) per corruption kind and overall,
    beside what "the longer answer wins" gets on the same pairs."""
    chosen = np.asarray(chosen_scores, dtype=np.float64)
    rejected = np.asarray(rejected_scores, dtype=np.float64)
    kinds = np.array([p.kind for p in pairs])
    longer = np.array([len(p.chosen) for p in pairs], dtype=np.float64)
    degraded_len = np.array([len(p.rejected) for p in pairs], dtype=np.float64)
    per_kind = {}
    for kind in dict.fromkeys(kinds.tolist()):
        m = kinds == kind
        per_kind[kind] = {"accuracy": round(pairwise_accuracy(chosen[m], rejected[m]), 4),
                          "length_baseline": round(pairwise_accuracy(longer[m], degraded_len[m]), 4),
                          "n_pairs": int(m.sum())}
    return {"accuracy": round(pairwise_accuracy(chosen, rejected), 4),
            "length_baseline": round(pairwise_accuracy(longer, degraded_len), 4),
            "worst_kind_accuracy": min(v["accuracy"] for v in per_kind.values()),
            "n_pairs": len(pairs), "per_kind": per_kind}


def spearman(a, b) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def score_pairs(scorer, pairs: Sequence[PreferencePair], batch_tokens: int = 16384):
    """(chosen scores, rejected scores) for evaluation with any scorer; every distinct
    (prompt, answer) is scored once."""
    keys = [(p.prompt, p.chosen) for p in pairs] + [(p.rejected_prompt or p.prompt, p.rejected) for p in pairs]
    unique = list(dict.fromkeys(keys))
    scores = scorer.score_pairs([k[0] for k in unique], [k[1] for k in unique], batch_tokens)
    where = {k: i for i, k in enumerate(unique)}
    s = np.array([scores[where[k]] for k in keys])
    return s[: len(pairs)], s[len(pairs):]
