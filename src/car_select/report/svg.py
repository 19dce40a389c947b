"""The report page's charts as inline SVG: score histograms, bar charts against random, and the
quality-against-coverage scatter. Every text drawn is escaped; nothing is loaded from anywhere."""

from __future__ import annotations

import html
import math

import numpy as np

from .data import finite

BETTER, WORSE, NEUTRAL = "#2b8a3e", "#c92a2a", "#868e96"  # bar colours: better than random, worse, neither
SELECTION, TOP_SCORE, LONGEST, RANDOM = "#d9480f", "#1c7ed6", "#7048e8", "#adb5bd"


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def fmt(value) -> str:
    """Numbers as text: ints with thousands separators, floats to 4 significant digits."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return str(v)
        if v == int(v) and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def hist_svg(values: np.ndarray, edges: np.ndarray, title: str, color: str) -> str:
    counts, _ = np.histogram(finite(values), bins=edges)
    w, h, left, right, top, bottom = 460, 190, 46, 10, 26, 34
    pw, ph = w - left - right, h - top - bottom
    cmax = max(int(counts.max(initial=0)), 1)
    bw = pw / len(counts)
    parts = [
        f'<svg class="hist" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{esc(title)}">',
        f'<text x="{left}" y="16" class="t">{esc(title)}</text>',
    ]
    for i, c in enumerate(counts):
        bh = ph * c / cmax
        x = left + i * bw
        parts.append(
            f'<rect x="{x + 0.5:.1f}" y="{top + ph - bh:.1f}" width="{max(bw - 1, 0.5):.1f}" '
            f'height="{bh:.1f}" fill="{color}"><title>{esc(fmt(edges[i]))} to '
            f"{esc(fmt(edges[i + 1]))}: {int(c):,}</title></rect>"
        )
    parts.append(
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#444"/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#444"/>'
    )
    for frac in (0.0, 0.5, 1.0):
        v = edges[0] + frac * (edges[-1] - edges[0])
        anchor = "start" if frac == 0 else "end" if frac == 1 else "middle"
        parts.append(f'<text x="{left + frac * pw:.1f}" y="{top + ph + 16}" text-anchor="{anchor}" '
                     f'class="a">{esc(fmt(v))}</text>')
    parts.append(f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" class="a">{cmax:,}</text>')
    parts.append(f'<text x="{left - 4}" y="{top + ph}" text-anchor="end" class="a">0</text>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{h - 2}" text-anchor="middle" class="a">quality score</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_color(better: bool | None) -> str:
    return NEUTRAL if better is None else BETTER if better else WORSE


def bars_svg(rows: list[tuple[str, float, bool | None]], title: str, origin: float, aria: str) -> str:
    """Horizontal bars from `origin` (1 for ratios, 0 for differences) to each row's value; a row is
    (label, value, better than random: True, False or None). Green better, red worse, grey neither."""
    if not rows:
        return ""
    w, left, right, row_h, top = 560, 240, 56, 20, 30
    h = top + row_h * len(rows) + 24
    values = [v for _, v, _ in rows] + [origin]
    lo, hi = min(values), max(values)
    if origin == 1.0:  # ratios: draw from 0 so that the bars' lengths compare
        lo, hi = 0.0, max(hi * 1.08, 1.5)
    else:
        span = max(abs(lo - origin), abs(hi - origin)) * 1.1 or 1.0
        lo, hi = origin - span, origin + span
    pw = w - left - right
    x = lambda v: left + pw * (v - lo) / (hi - lo)  # noqa: E731
    parts = [f'<svg class="hist" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{esc(aria)}">',
             f'<text x="4" y="15" class="t">{esc(title)}</text>']
    for i, (label, value, better) in enumerate(rows):
        y = top + i * row_h
        a, b = sorted((x(origin), x(value)))
        text = f"\u00d7{value:.2f}" if origin == 1.0 else f"{value:+.3g}"
        tx, anchor = (b + 4, "start") if value >= origin or origin == 1.0 else (a - 4, "end")
        parts.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end" class="a">{esc(label)}</text>'
                     f'<rect x="{a:.1f}" y="{y + 3}" width="{max(b - a, 0.5):.1f}" height="{row_h - 6}" '
                     f'fill="{bar_color(better)}"><title>{esc(label)}: {esc(text)}</title></rect>'
                     f'<text x="{tx:.1f}" y="{y + 13}" text-anchor="{anchor}" class="a">{esc(text)}</text>')
    mark = "\u00d71 = random" if origin == 1.0 else "0 = random"
    parts.append(f'<line x1="{x(origin):.1f}" y1="{top - 2}" x2="{x(origin):.1f}" y2="{h - 20}" stroke="#444" '
                 f'stroke-dasharray="3,2"/><text x="{x(origin):.1f}" y="{h - 6}" text-anchor="middle" '
                 f'class="a">{mark}</text></svg>')
    return "".join(parts)


def quality_coverage_svg(points: list[tuple[str, float, float]]) -> str:
    """Mean score (y) against mean distance to the nearest kept record (x, lower covers better) for the
    selection, the naive baselines and each random subset (the grey cloud)."""
    if not points:
        return ""
    w, h, left, right, top, bottom = 560, 360, 58, 120, 28, 44
    pw, ph = w - left - right, h - top - bottom
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    padx, pady = (x1 - x0) * 0.08 or 0.05 * abs(x0) or 0.1, (y1 - y0) * 0.08 or 0.05 * abs(y0) or 0.1
    x0, x1, y0, y1 = x0 - padx, x1 + padx, y0 - pady, y1 + pady
    px = lambda v: left + pw * (v - x0) / (x1 - x0)  # noqa: E731
    py = lambda v: top + ph * (1 - (v - y0) / (y1 - y0))  # noqa: E731
    parts = [f'<svg class="hist" id="quality-coverage" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
             'aria-label="quality against coverage">',
             '<text x="4" y="15" class="t">Quality against coverage (best: top left)</text>',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>']
    for frac in (0.0, 1.0):
        xv, yv = x0 + frac * (x1 - x0), y0 + frac * (y1 - y0)
        parts.append(f'<text x="{px(xv):.1f}" y="{top + ph + 14}" text-anchor="{"start" if frac == 0 else "end"}" '
                     f'class="a">{esc(fmt(xv))}</text>'
                     f'<text x="{left - 4}" y="{py(yv) + (10 if frac == 0 else 4):.1f}" text-anchor="end" '
                     f'class="a">{esc(fmt(yv))}</text>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{h - 14}" text-anchor="middle" class="a">mean distance to the '
                 'nearest kept record (lower = better coverage)</text>'
                 f'<text transform="translate(14 {top + ph / 2:.1f}) rotate(-90)" text-anchor="middle" '
                 'class="a">mean score</text>')
    style = {"random": (RANDOM, 4), "top score": (TOP_SCORE, 6), "longest outputs": (LONGEST, 6),
             "selection": (SELECTION, 7)}
    order = sorted(points, key=lambda p: p[0] != "random", reverse=False)  # the cloud under the named points
    for name, xv, yv in order:
        color, r = style.get(name, (NEUTRAL, 6))
        outline = ' stroke="#111" stroke-width="1.2"' if name != "random" else ' fill-opacity=".8"'
        parts.append(f'<circle cx="{px(xv):.1f}" cy="{py(yv):.1f}" r="{r}" fill="{color}"{outline} '
                     f'data-name="{esc(name)}"><title>{esc(name)}: distance {xv:.4f}, mean score {yv:.4g}</title>'
                     "</circle>")
    for i, (name, (color, r)) in enumerate(style.items()):
        if any(p[0] == name for p in points):
            ly = top + 12 + i * 20
            parts.append(f'<circle cx="{left + pw + 14}" cy="{ly}" r="{min(r, 6)}" fill="{color}"/>'
                         f'<text x="{left + pw + 24}" y="{ly + 4}" class="a">'
                         f'{esc("random subsets" if name == "random" else name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
