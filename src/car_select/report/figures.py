"""The report's figures as PNG files (matplotlib, the optional `report` extra, imported lazily so that
the HTML page does not need it): the cluster map, the score histograms and, when the run compared its
selection with baselines, the bars against random and the quality-against-coverage plot."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_bytes
from ..selection.baselines import FIGURES, versus
from ..wording import count
from .data import DEFAULT_MAX_POINTS, ReportData, baseline_points, finite, hist_edges
from .svg import BETTER, LONGEST, NEUTRAL, RANDOM, SELECTION, TOP_SCORE, WORSE


def _mpl_colors(clusters: np.ndarray) -> np.ndarray:
    import colorsys

    out = np.zeros((len(clusters), 4))
    cache: dict[int, tuple] = {}
    for j, c in enumerate(clusters):
        c = int(c)
        if c not in cache:  # the same palette as the HTML page
            hue, sat, light = ((c * 137.508) % 360) / 360.0, (62 + (c % 3) * 12) / 100.0, (42 + (c % 4) * 7) / 100.0
            cache[c] = (*colorsys.hls_to_rgb(hue, light, sat), 1.0)
        out[j] = cache[c]
    return out


def _cluster_map(ax, data: ReportData, seed: int, max_points: int) -> None:
    clusters = np.asarray(data.clusters).reshape(-1).astype(np.int64)
    sel = np.asarray(data.selected, dtype=bool).reshape(-1)
    idx, xy = data.projection(seed=seed, max_points=max_points)
    if len(idx):
        cols = _mpl_colors(clusters[idx])
        s_mask = sel[idx]
        rest = ~s_mask
        ax.scatter(xy[rest, 0], xy[rest, 1], s=5, c=cols[rest], alpha=0.5, linewidths=0, label="not selected")
        top = np.array([data.reasons[i] == "top_n1" for i in idx], dtype=bool)
        others = ", ".join(r for r in data.reason_names() if r != "top_n1") or "selected"
        for mask, marker, label in ((s_mask & ~top, "o", f"selected: {others}"),
                                    (s_mask & top, "D", "selected: global top-n1")):
            if mask.any():
                ax.scatter(xy[mask, 0], xy[mask, 1], s=26, c=cols[mask], marker=marker, edgecolors="#111111",
                           linewidths=0.7, label=label, zorder=3)
        leg = ax.legend(loc="best", fontsize=8, framealpha=0.85, markerscale=1.2)
        for h in leg.legend_handles if hasattr(leg, "legend_handles") else leg.legendHandles:
            try:
                h.set_color("#8a8a8a")
                h.set_edgecolor("#111111")
            except AttributeError:
                pass
    n = len(clusters)
    note = f"{len(idx):,} of {count(n, 'record')}" if len(idx) < n else f"all {count(n, 'record')}"
    ax.set_title(f"Selection: t-SNE of {note}, {count(len(np.unique(clusters)) if n else 0, 'cluster')}, "
                 f"{int(sel.sum()):,} selected", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def _vs_random(fig, c: dict) -> bool:
    """Scores as a difference from random (they are signed), other figures as a ratio; False if neither."""
    differences, ratios = [], []
    for key, figure in FIGURES.items():
        if key not in c.get("selected", {}):
            continue
        sel, rnd = float(c["selected"][key]), float(c["random_mean"][key])
        if not (math.isfinite(sel) and math.isfinite(rnd)):
            continue
        kind, value = versus(key, sel, rnd)
        origin = 1.0 if kind == "ratio" else 0.0
        better = None if figure.higher_is_better is None or value == origin else (
            (value > origin) == figure.higher_is_better)
        color = NEUTRAL if better is None else BETTER if better else WORSE
        if kind == "ratio":
            ratios.append((figure.label, value, color))
        elif key in ("mean_score", "median_score"):  # one unit (the scorer's) on one axis
            differences.append((figure.label, value, color))
    panels = [(rows, origin, xlabel) for rows, origin, xlabel in (
        (differences, 0.0, "selection minus random mean (score units; 0 = random)"),
        (ratios, 1.0, "selection / random mean (1 = random)")) if rows]
    if not panels:
        return False
    heights = [len(rows) + 1.5 for rows, _, _ in panels]
    axes = fig.subplots(len(panels), 1, gridspec_kw={"height_ratios": heights}, squeeze=False)[:, 0]
    for ax, (rows, origin, xlabel) in zip(axes, panels, strict=True):
        labels, values, colors = [r[0] for r in rows][::-1], [r[1] for r in rows][::-1], [r[2] for r in rows][::-1]
        ax.barh(labels, [v - origin for v in values], left=origin, color=colors)
        ax.axvline(origin, color="#444444", linestyle="--", linewidth=1)
        for i, v in enumerate(values):  # a ratio's label right of the bar or the line, clear of the axis labels
            right = v >= origin or origin == 1.0
            ax.text(max(v, origin) if right else v, i, f" \u00d7{v:.2f} " if origin == 1.0 else f" {v:+.3g} ",
                    va="center", fontsize=8, ha="left" if right else "right")
        if origin == 0.0:
            span = max(abs(v) for v in values) * 1.35 or 1.0
            ax.set_xlim(-span, span)
        else:
            ax.set_xlim(0, max(max(values) * 1.15, 1.5))
        ax.set_xlabel(xlabel, fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
    axes[0].set_title(f"The selection of {c['size']:,} against {len(c['random_seeds'])} random subsets "
                      "(green: better, red: worse)", fontsize=10)
    return True


def _quality_coverage(ax, c: dict) -> bool:
    points = baseline_points(c)
    if not points:
        return False
    cloud = [p for p in points if p[0] == "random"]
    if cloud:
        ax.scatter([p[1] for p in cloud], [p[2] for p in cloud], s=30, color=RANDOM, label="random subsets")
    style = {"top score": (TOP_SCORE, "s"), "longest outputs": (LONGEST, "^"), "selection": (SELECTION, "o")}
    for name, x, y in points:
        if name in style:
            color, marker = style[name]
            ax.scatter([x], [y], s=90 if name == "selection" else 60, color=color, marker=marker,
                       edgecolors="#111111", linewidths=0.8, label=name, zorder=3)
    ax.set_xlabel("mean distance to the nearest kept record (lower = better coverage)")
    ax.set_ylabel("mean score")
    ax.set_title(f"Quality against coverage, subsets of {c['size']:,} (best: top left)", fontsize=10)
    ax.legend(loc="best", fontsize=8, framealpha=0.85)
    return True


def write_figures(out_dir, data: ReportData, seed: int = 42, max_points: int = DEFAULT_MAX_POINTS) -> list[Path]:
    """cluster_map.png and score_hist.png in `out_dir`, and with a comparison in the summary vs_random.png
    and quality_coverage.png; needs matplotlib (`car-select[report]`)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the environment
        from ..errors import CarSelectError

        raise CarSelectError("PNG figures need matplotlib: pip install 'car-select[report]'") from e

    data.validated()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scores = np.asarray(data.scores, dtype=np.float64).reshape(-1)
    sel = np.asarray(data.selected, dtype=bool).reshape(-1)
    paths = []

    def save(fig, name: str) -> None:
        FigureCanvasAgg(fig)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=130, bbox_inches="tight", facecolor="white")
        atomic_write_bytes(out / name, buf.getvalue())
        paths.append(out / name)

    fig = Figure(figsize=(8, 6.5))
    _cluster_map(fig.add_subplot(1, 1, 1), data, seed, max_points)
    save(fig, "cluster_map.png")

    fig = Figure(figsize=(8, 3.6))
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    edges = hist_edges(scores)
    ax1.hist(finite(scores), bins=edges, color="#9aa5b1")
    ax1.set_title(f"All records (n = {len(scores):,})", fontsize=10)
    ax2.hist(finite(scores[sel]), bins=edges, color=SELECTION)
    ax2.set_title(f"Selected (n = {int(sel.sum()):,})", fontsize=10)
    for ax in (ax1, ax2):
        ax.set_xlabel("quality score")
        ax.set_ylabel("records")
    fig.tight_layout()
    save(fig, "score_hist.png")

    c = (data.summary or {}).get("against_random")
    if c:
        fig = Figure(figsize=(7.5, 0.32 * len(FIGURES) + 2.2), layout="constrained")
        if _vs_random(fig, c):
            save(fig, "vs_random.png")
        fig = Figure(figsize=(7, 5))
        if _quality_coverage(fig.add_subplot(1, 1, 1), c):
            save(fig, "quality_coverage.png")
    return paths
