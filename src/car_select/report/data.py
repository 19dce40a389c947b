"""What the report draws: the per-record arrays (ReportData), the 2-D map, and the per-cluster rows.

Nothing here writes a file or knows HTML or matplotlib; html.py and figures.py draw from it.
"""

from __future__ import annotations

import inspect
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ReportData", "project_2d", "record_example"]

# Points drawn on the map at most: t-SNE of 8,000 rows (50 PCA dims, 750 iterations, angle 0.8, one
# thread) takes about 20 s on a busy 2-core machine (5,000 rows: about 14 s), so Alpaca (52k records,
# ~1,000 selected) maps in well under a minute.
DEFAULT_MAX_POINTS = 8000
# Up to this many rows t-SNE runs on ONE OpenMP thread: sklearn's Barnes-Hut loop synchronises its
# threads every iteration, and on a shared machine two threads were 3x (small inputs: 100x) slower.
TSNE_SINGLE_THREAD_UP_TO = 20000
TSNE_MAX_DIMS = 50  # t-SNE runs on the first (highest-variance) PCA dims, as is customary
TSNE_MAX_ITER = 750
TSNE_ANGLE = 0.8
HIST_BINS = 30
# The CaR rule's reasons come first, in this order; any other strategy's reasons follow, sorted.
CAR_REASONS = ("top_n1", "cluster_top")
TURN_SEPARATOR = " \u25b8 "  # between a conversation's turns in record_example


@dataclass
class ReportData:
    scores: np.ndarray  # (n,) float, per input record
    clusters: np.ndarray  # (n,) int, cluster id per record
    selected: np.ndarray  # (n,) bool
    reasons: list[str | None]  # why each record was kept ("top_n1", "cluster_top", ...), None if not
    instructions: list[str]  # the instruction text per record (for tooltips / examples)
    reduced: np.ndarray  # (n, d) PCA-reduced embeddings (d >= 2) the clustering ran on
    summary: dict[str, Any]  # records_read, duplicates_dropped, k, pca_components, ... stage_seconds
    # Memo of project_2d results per (seed, max_points), so the HTML report and the figures share one t-SNE.
    _projections: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def validated(self) -> "ReportData":
        """Check the per-record arrays agree in length; returns self. ValueError (a caller's bug) if not."""
        n = len(self.scores)
        lengths = {
            "clusters": len(self.clusters),
            "selected": len(self.selected),
            "reasons": len(self.reasons),
            "instructions": len(self.instructions),
            "reduced": len(self.reduced),
        }
        bad = {k: v for k, v in lengths.items() if v != n}
        if bad:
            raise ValueError(f"ReportData: scores has {n} rows but {bad}")
        if n and np.ndim(self.reduced) != 2:
            raise ValueError(f"ReportData.reduced must be 2-D (n, d), got shape {np.shape(self.reduced)}")
        return self

    def projection(
        self, seed: int = 42, max_points: int = DEFAULT_MAX_POINTS
    ) -> tuple[np.ndarray, np.ndarray]:
        key = (int(seed), int(max_points))
        if key not in self._projections:
            self._projections[key] = project_2d(self.reduced, self.selected, seed=seed, max_points=max_points)
        return self._projections[key]

    def reason_names(self) -> list[str]:
        """The reasons the selected records were kept for: the CaR rule's first, then any others, sorted."""
        present = {r for r, s in zip(self.reasons, self.selected, strict=True) if s and r}
        return [r for r in CAR_REASONS if r in present] + sorted(present - set(CAR_REASONS))

    def reason_counts(self) -> Counter:
        return Counter(r for r, s in zip(self.reasons, self.selected, strict=True) if s and r)


# ----------------------------------------------------------------------------------------------
# 2-D projection


def _first_two_dims(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    out = np.zeros((len(x), 2))
    d = min(2, x.shape[1])
    out[:, :d] = x[:, :d]
    return out


def project_2d(
    reduced: np.ndarray, selected: np.ndarray, seed: int = 42, max_points: int = DEFAULT_MAX_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """t-SNE map of (a sample of) the PCA-reduced embeddings.

    Returns (indices, xy): the sorted row indices drawn and their (m, 2) coordinates. The sample
    holds every selected row plus unselected rows drawn at random (seeded) up to `max_points` in
    all; when more than `max_points` rows are selected, all of them are still drawn. t-SNE (sklearn,
    PCA init, Barnes-Hut, seeded) runs on the first 50 PCA dims; with fewer than 5 rows the first two
    PCA dims are returned as they are.
    """
    reduced = np.asarray(reduced)
    n = len(reduced)
    sel = np.asarray(selected, dtype=bool).reshape(-1)
    if len(sel) != n:
        raise ValueError(f"project_2d: {n} rows in reduced but {len(sel)} in selected")
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 2))
    x = np.asarray(reduced, dtype=np.float64).reshape(n, -1)
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)

    rng = np.random.default_rng(seed)
    sel_idx = np.flatnonzero(sel)
    rest = np.flatnonzero(~sel)
    room = max(int(max_points) - len(sel_idx), 0)
    if room < len(rest):
        rest = rng.choice(rest, size=room, replace=False)
    idx = np.sort(np.concatenate([sel_idx, rest]).astype(np.int64))
    if len(idx) == 0:
        return idx, np.zeros((0, 2))
    sub = x[idx]
    if len(idx) < 5:
        return idx, _first_two_dims(sub)

    from sklearn.manifold import TSNE

    sub = sub[:, :TSNE_MAX_DIMS].astype(np.float32)
    if float(np.ptp(sub, axis=0).max(initial=0.0)) == 0.0:  # all rows identical: nothing to map
        return idx, _first_two_dims(sub)
    m = len(idx)
    perplexity = float(min(30.0, max(2.0, (m - 1) / 3.0)))
    kwargs: dict[str, Any] = dict(
        n_components=2,
        perplexity=perplexity,
        init="pca",
        learning_rate="auto",
        angle=TSNE_ANGLE,
        random_state=seed,
    )
    params = inspect.signature(TSNE).parameters
    kwargs["max_iter" if "max_iter" in params else "n_iter"] = TSNE_MAX_ITER
    if m <= TSNE_SINGLE_THREAD_UP_TO:
        from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

        with threadpool_limits(limits=1):
            xy = TSNE(**kwargs).fit_transform(sub)
    else:
        xy = TSNE(**kwargs).fit_transform(sub)
    return idx, np.asarray(xy, dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# per-cluster rows and histogram bins, shared by the page and the figures


def finite(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    return x[np.isfinite(x)]


def hist_edges(scores: np.ndarray) -> np.ndarray:
    s = finite(scores)
    if len(s) == 0:
        return np.linspace(0.0, 1.0, HIST_BINS + 1)
    lo, hi = float(s.min()), float(s.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, HIST_BINS + 1)


def record_example(record) -> str:
    """What the report shows of a record (tooltips, a cluster's example): a single-turn record's
    instruction; a conversation's earlier turns, then its last user message, so that a reply such as
    "That sounds cool." is read in its context (every exchange was scored, render.py)."""
    if not record.history:
        return record.instruction
    turns = [f"{role}: {text}" for user, reply in record.history for role, text in (("user", user),
                                                                                     ("assistant", reply))]
    return TURN_SEPARATOR.join([*turns, f"user: {record.instruction}"])


def cluster_rows(data: ReportData) -> list[dict[str, Any]]:
    """Per cluster: size, selected, a count per reason (keys of data.reason_names()), best and mean score,
    and the best-scored instruction as its example."""
    clusters = np.asarray(data.clusters).reshape(-1).astype(np.int64)
    scores = np.asarray(data.scores, dtype=np.float64).reshape(-1)
    sel = np.asarray(data.selected, dtype=bool).reshape(-1)
    safe = np.where(np.isfinite(scores), scores, -np.inf)
    names = data.reason_names()
    rows = []
    for c in np.unique(clusters):
        members = np.flatnonzero(clusters == c)
        best = members[np.argmax(safe[members])]
        kept = Counter(data.reasons[i] for i in members if sel[i])
        fin = finite(scores[members])
        rows.append(
            {
                "cluster": int(c),
                "size": int(len(members)),
                "selected": int(sel[members].sum()),
                "reasons": {name: kept.get(name, 0) for name in names},
                "best": float(scores[best]),
                "mean": float(fin.mean()) if len(fin) else float("nan"),
                "example": "" if data.instructions[best] is None else str(data.instructions[best]),
            }
        )
    return rows


def baseline_points(c: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(name, coverage distance, mean score) of each subset in a comparison that has both figures:
    the selection first, then the naive baselines, then each random subset ("random")."""
    def point(name, stats):
        x, y = stats.get("coverage_distance"), stats.get("mean_score")
        ok = x is not None and y is not None and np.isfinite(x) and np.isfinite(y)
        return [(name, float(x), float(y))] if ok else []

    points = point("selection", c.get("selected", {}))
    for key, name in (("top_score", "top score"), ("longest_output", "longest outputs")):
        if key in c:
            points += point(name, c[key])
    for run in c.get("random_runs", []):
        points += point("random", run)
    return points
