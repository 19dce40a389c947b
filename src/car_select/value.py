"""What a selection bought: the selected records beside uniform random subsets of the same size.

Several studies find that many data-selection methods do not beat a random subset of the same size,
so every run reports, for the selection and for the mean of `seeds` random subsets (drawn from the
distinct records, seeds seed, seed+1, ...):

- mean and median quality score (the scorer's, or the user's --score-field);
- output length in words (mean, median, 10th and 90th percentile) over every assistant turn;
- clusters covered (of k);
- embedding coverage: the mean Euclidean distance, in the PCA space the clustering ran on, from every
  distinct record to its nearest selected record (lower: the subset leaves fewer regions of the data
  far from any kept example).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .records import Record

# Query rows per faiss search: bounds the (rows x subset) distance block.
_SEARCH_ROWS = 16_384


def output_words(records: Sequence[Record]) -> np.ndarray:
    """Words (whitespace-separated) in every assistant turn of each record."""
    return np.array([sum(len(a.split()) for _, _, a in r.exchanges()) for r in records], dtype=np.int64)


def coverage_distance(reduced: np.ndarray, chosen: np.ndarray) -> float:
    """Mean distance from every row of `reduced` to its nearest row among `chosen` (positions)."""
    import faiss

    x = np.ascontiguousarray(reduced, dtype=np.float32)
    if len(chosen) == 0 or len(x) == 0:
        return float("nan")
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(np.ascontiguousarray(x[np.asarray(chosen)]))
    total = 0.0
    for start in range(0, len(x), _SEARCH_ROWS):
        d2, _ = index.search(x[start:start + _SEARCH_ROWS], 1)
        total += float(np.sqrt(np.maximum(d2[:, 0].astype(np.float64), 0.0)).sum())
    return total / len(x)


def subset_stats(chosen: np.ndarray, scores: np.ndarray, clusters: np.ndarray, reduced: np.ndarray | None,
                 words: np.ndarray) -> dict:
    chosen = np.asarray(chosen, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)[chosen]
    w = np.asarray(words, dtype=np.float64)[chosen]
    empty = len(chosen) == 0
    out = {
        "mean_score": float(s.mean()) if not empty else float("nan"),
        "median_score": float(np.median(s)) if not empty else float("nan"),
        "output_words_mean": float(w.mean()) if not empty else float("nan"),
        "output_words_median": float(np.median(w)) if not empty else float("nan"),
        "output_words_p10": float(np.percentile(w, 10)) if not empty else float("nan"),
        "output_words_p90": float(np.percentile(w, 90)) if not empty else float("nan"),
        "clusters_covered": int(len(np.unique(np.asarray(clusters)[chosen]))),
    }
    if reduced is not None:
        out["coverage_distance"] = coverage_distance(reduced, chosen)
    return out


def _rounded(d: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}


def compare_with_random(scores: np.ndarray, clusters: np.ndarray, reduced: np.ndarray | None, words: np.ndarray,
                        chosen: np.ndarray, seeds: int = 5, seed: int = 42) -> dict:
    """The selection's statistics beside the mean (and standard deviation) over `seeds` uniform random
    subsets of the same size. Every array is over the distinct records; `chosen` are positions in them."""
    n, m = len(scores), len(chosen)
    selected = subset_stats(chosen, scores, clusters, reduced, words)
    runs = [subset_stats(np.random.default_rng(seed + i).choice(n, size=m, replace=False), scores, clusters,
                         reduced, words) for i in range(seeds)]
    keys = list(selected)
    mean = {k: float(np.mean([r[k] for r in runs])) for k in keys}
    std = {k: float(np.std([r[k] for r in runs])) for k in keys}
    return {"size": int(m), "records": int(n), "random_seeds": [seed + i for i in range(seeds)],
            "selected": _rounded(selected), "random_mean": _rounded(mean), "random_std": _rounded(std)}


LABELS = {  # key -> (label, higher is better?)
    "mean_score": ("mean score", True),
    "median_score": ("median score", True),
    "output_words_mean": ("output words, mean", None),
    "output_words_median": ("output words, median", None),
    "output_words_p10": ("output words, 10th pct", None),
    "output_words_p90": ("output words, 90th pct", None),
    "clusters_covered": ("clusters covered", True),
    "coverage_distance": ("distance to nearest kept (lower = better)", False),
}


def format_comparison(c: dict) -> list[str]:
    """Plain-text table lines: statistic, selection, random mean (± std)."""
    lines = [f"against random      selection of {c['size']:,} vs mean of {len(c['random_seeds'])} random subsets",
             f"  {'':38s}{'selection':>12s}{'random':>20s}"]
    for key, (label, _) in LABELS.items():
        if key not in c["selected"]:
            continue
        sel, rnd, sd = c["selected"][key], c["random_mean"][key], c["random_std"][key]
        lines.append(f"  {label:38s}{_num(sel):>12s}{_num(rnd) + ' ± ' + _num(sd):>20s}")
    return lines


def _num(v) -> str:
    if isinstance(v, int):
        return f"{v:,}"
    if v != v:  # nan
        return "n/a"
    return f"{v:,.1f}" if abs(v) >= 100 else f"{v:.2f}" if abs(v) >= 1 else f"{v:.4f}"
