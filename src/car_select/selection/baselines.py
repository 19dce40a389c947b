"""What a selection bought: the chosen records beside naive subsets of the same size.

Several studies find that many data-selection methods do not beat a random subset of the same size,
and that output length alone is a strong baseline. So every run describes its selection (any
strategy's: only the chosen positions are needed) beside three baselines of its size N, drawn from
the distinct records:

- random: the mean and standard deviation over `seeds` uniform random subsets (seeds seed, seed+1, ...);
- top score: the N best-scored records (score alone, no diversity);
- longest: the N records with the longest outputs.

Figures per subset:

- mean and median quality score;
- output length in words (mean, median, 10th and 90th percentile) over every assistant turn;
- clusters covered (of k), and cluster balance: the entropy of the kept records' cluster distribution
  divided by the entropy of the input's (1: spread over the clusters as evenly as the input; below 1:
  concentrated in fewer clusters; above 1: more even than the input, e.g. one record per cluster);
- coverage, in the PCA space the clustering ran on: the mean Euclidean distance from every distinct
  record to its nearest kept record (lower: fewer regions of the data far from any kept example), the
  k-center radius (the largest such distance) and the facility-location value (the mean over every
  record of its highest cosine similarity to a kept record; higher: better covered).

Scores are signed and have no natural zero (the default scorer's run from about -8 to 20), so they are
compared by difference; a ratio is given only for a quantity that is positive on both sides.
"""

from __future__ import annotations

import re

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..records import Record
from ..wording import decimals_for, number
from .result import rank_order

# Query rows per faiss search: bounds the (rows x 1) result and the normalised copy of a block.
_SEARCH_ROWS = 16_384


class Figure(NamedTuple):
    label: str
    higher_is_better: bool | None  # None: neither direction is better
    signed: bool  # compared by difference (True) or, where both sides are positive, by ratio
    integer: bool = False  # a count: whole numbers for a subset, one decimal for a mean over subsets


FIGURES = {
    "mean_score": Figure("mean score", True, True),
    "median_score": Figure("median score", True, True),
    "output_words_mean": Figure("output words, mean", None, False),
    "output_words_median": Figure("output words, median", None, False),
    "output_words_p10": Figure("output words, 10th pct", None, False),
    "output_words_p90": Figure("output words, 90th pct", None, False),
    "clusters_covered": Figure("clusters covered", True, False, integer=True),
    "cluster_balance": Figure("cluster balance (entropy / input's)", None, False),
    "coverage_distance": Figure("distance to nearest kept, mean", False, False),
    "k_center_radius": Figure("distance to nearest kept, largest", False, False),
    "facility_location": Figure("similarity to nearest kept, mean", True, True),
}

BASELINES = {"top_score": "top score", "longest_output": "longest"}  # summary key -> column name


# Scripts written without spaces between words (Thai, Lao, Myanmar, Khmer, Japanese kana, CJK ideographs,
# half-width katakana): there each character counts as a word, since splitting on spaces would count a
# whole Chinese paragraph as one word.
_UNSPACED = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
_WORD = re.compile(f"[{_UNSPACED}]|[^\\s{_UNSPACED}]+")


def output_words(records: Sequence[Record]) -> np.ndarray:
    """Words in every assistant turn of each record: runs of non-space characters, and each character
    of a script written without spaces (Chinese, Japanese, Thai, ...)."""
    return np.array([sum(len(_WORD.findall(a)) for _, _, a in r.exchanges()) for r in records], dtype=np.int64)


def _nearest_kept(x: np.ndarray, chosen: np.ndarray, cosine: bool) -> np.ndarray:
    """Per row of x: the Euclidean distance to the nearest chosen row, or (cosine) the highest cosine
    similarity to one. faiss, exact, in blocks of rows so memory stays bounded at any n."""
    import faiss

    kept = np.array(x[chosen], dtype=np.float32)  # a copy: normalised in place below
    if cosine:
        faiss.normalize_L2(kept)
    index = faiss.IndexFlatIP(x.shape[1]) if cosine else faiss.IndexFlatL2(x.shape[1])
    index.add(kept)
    out = np.empty(len(x), dtype=np.float64)
    for start in range(0, len(x), _SEARCH_ROWS):
        block = np.array(x[start:start + _SEARCH_ROWS], dtype=np.float32)
        if cosine:
            faiss.normalize_L2(block)
        found, _ = index.search(block, 1)
        found = found[:, 0].astype(np.float64)
        out[start:start + len(block)] = found if cosine else np.sqrt(np.maximum(found, 0.0))
    return out


def _as_rows(reduced: np.ndarray) -> np.ndarray:
    x = np.asarray(reduced)
    return x.reshape(len(x), -1)


def coverage_distance(reduced: np.ndarray, chosen: np.ndarray) -> float:
    """Mean distance from every row of `reduced` to its nearest row among `chosen` (positions)."""
    x = _as_rows(reduced)
    if len(chosen) == 0 or len(x) == 0:
        return float("nan")
    return float(_nearest_kept(x, np.asarray(chosen, dtype=np.int64), cosine=False).mean())


def coverage_figures(reduced: np.ndarray, chosen: np.ndarray) -> dict[str, float]:
    """coverage_distance, k_center_radius and facility_location of the rows `chosen` (see the module doc)."""
    x = _as_rows(reduced)
    chosen = np.asarray(chosen, dtype=np.int64)
    if len(chosen) == 0 or len(x) == 0:
        return {"coverage_distance": float("nan"), "k_center_radius": float("nan"), "facility_location": float("nan")}
    distance = _nearest_kept(x, chosen, cosine=False)
    # a cosine needs a direction: with every row at the origin (one distinct record, centred by PCA) the
    # similarity is undefined, not 0
    similarity = _nearest_kept(x, chosen, cosine=True).mean() if np.any(x) else float("nan")
    return {"coverage_distance": float(distance.mean()), "k_center_radius": float(distance.max()),
            "facility_location": float(similarity)}


def _entropy(labels: np.ndarray) -> float:
    _, counts = np.unique(labels, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def cluster_balance(clusters: np.ndarray, chosen: np.ndarray) -> float:
    """Entropy of the chosen rows' clusters over the entropy of every row's (nan when either is undefined)."""
    clusters = np.asarray(clusters)
    if len(chosen) == 0 or len(clusters) == 0:
        return float("nan")
    whole = _entropy(clusters)
    return _entropy(clusters[np.asarray(chosen, dtype=np.int64)]) / whole if whole > 0 else float("nan")


def subset_stats(chosen: np.ndarray, scores: np.ndarray, clusters: np.ndarray, reduced: np.ndarray | None,
                 words: np.ndarray) -> dict:
    """Every figure of FIGURES for the rows `chosen` (the coverage ones only with `reduced`)."""
    chosen = np.asarray(chosen, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)[chosen]
    w = np.asarray(words, dtype=np.float64)[chosen]
    nan = float("nan")
    empty = len(chosen) == 0
    out = {
        "mean_score": float(s.mean()) if not empty else nan,
        "median_score": float(np.median(s)) if not empty else nan,
        "output_words_mean": float(w.mean()) if not empty else nan,
        "output_words_median": float(np.median(w)) if not empty else nan,
        "output_words_p10": float(np.percentile(w, 10)) if not empty else nan,
        "output_words_p90": float(np.percentile(w, 90)) if not empty else nan,
        "clusters_covered": int(len(np.unique(np.asarray(clusters)[chosen]))),
        "cluster_balance": cluster_balance(clusters, chosen),
    }
    if reduced is not None:
        out.update(coverage_figures(reduced, chosen))
    return out


def _rounded(d: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}


def compare_with_random(scores: np.ndarray, clusters: np.ndarray, reduced: np.ndarray | None, words: np.ndarray,
                        chosen: np.ndarray, seeds: int = 5, seed: int = 42) -> dict:
    """The selection's figures beside the mean (and standard deviation) of `seeds` uniform random subsets
    of the same size, each random subset's own figures (`random_runs`), and the two naive baselines
    (`top_score`, `longest_output`). Every array is over the distinct records; `chosen` are positions in them."""
    n, m = len(scores), len(chosen)
    selected = subset_stats(chosen, scores, clusters, reduced, words)
    runs = [subset_stats(np.random.default_rng(seed + i).choice(n, size=m, replace=False), scores, clusters,
                         reduced, words) for i in range(seeds)]
    keys = list(selected)
    mean = {k: float(np.mean([r[k] for r in runs])) for k in keys}
    std = {k: float(np.std([r[k] for r in runs])) for k in keys}
    naive = {"top_score": rank_order(scores)[:m], "longest_output": rank_order(words)[:m]}
    return {"size": int(m), "records": int(n), "random_seeds": [seed + i for i in range(seeds)],
            "selected": _rounded(selected), "random_mean": _rounded(mean), "random_std": _rounded(std),
            "random_runs": [_rounded(r) for r in runs],
            **{name: _rounded(subset_stats(rows, scores, clusters, reduced, words)) for name, rows in naive.items()}}


def versus(key: str, value: float, reference: float) -> tuple[str, float]:
    """("ratio", value / reference) where the figure is unsigned and both sides are positive, else
    ("difference", value - reference): a ratio of signed numbers (scores) says nothing about which is larger."""
    if not FIGURES[key].signed and value > 0 and reference > 0:
        return "ratio", value / reference
    return "difference", value - reference


def versus_text(key: str, value: float, reference: float, decimals: int | None = None) -> str:
    """`versus` as text: "x1.12" for a ratio, "+0.76" for a difference (to `decimals`, default: its own
    size's), "n/a" where either is missing."""
    if value != value or reference != reference:  # nan
        return "n/a"
    kind, v = versus(key, value, reference)
    return f"\u00d7{v:.2f}" if kind == "ratio" else f"{'+' if v >= 0 else '-'}{number(float(abs(v)), decimals)}"


def row_decimals(key: str, values) -> int:
    """One number of decimals for a figure's whole row (the selection, random's mean and sd, the
    baselines): a count's mean over subsets gets one, any other figure what its largest value needs."""
    return 1 if FIGURES[key].integer else decimals_for(*values)


def format_comparison(c: dict) -> list[str]:
    """Plain-text table lines: each figure for the selection, the random subsets' mean (± std), the two
    naive baselines, and the selection against random (a difference, or a ratio, as `versus_text` says)."""
    baselines = [key for key in BASELINES if key in c]
    head = f"subsets of {c['size']:,}: the selection, {len(c['random_seeds'])} random (mean ± sd)" + "".join(
        {"top_score": ", the best-scored (top score)", "longest_output": ", the longest outputs (longest)"}[b]
        for b in baselines)
    lines = [f"against baselines   {head}",
             f"  {'':36s}{'selection':>11s}{'random':>19s}" + "".join(f"{BASELINES[b]:>11s}" for b in baselines)
             + f"{'vs random':>11s}"]
    for key, figure in FIGURES.items():
        if key not in c["selected"]:
            continue
        sel, rnd, sd = c["selected"][key], c["random_mean"][key], c["random_std"][key]
        places = row_decimals(key, [sel, rnd, sd, *(c[b][key] for b in baselines)])

        def one(v):  # one subset's figure: a count is a whole number
            return number(int(v) if figure.integer and v == v else v, places)

        lines.append(f"  {figure.label:36s}{one(sel):>11s}{number(rnd, places) + ' ± ' + number(sd, places):>19s}"
                     + "".join(f"{one(c[b][key]):>11s}" for b in baselines)
                     + f"{versus_text(key, sel, rnd, places):>11s}")
    lines.append("  vs random: scores and similarities as a difference (they are signed), others as a ratio")
    return lines

