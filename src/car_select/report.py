"""The selection report: one self-contained HTML page, plus PNG figures for the README.

The HTML page (`write_report`) opens offline: no external scripts, fonts, styles or images, and a
Content-Security-Policy that forbids loading any. It shows the run's summary numbers, a 2-D t-SNE
map of the clusters drawn on a <canvas> by inline JavaScript from inline JSON (as in the paper's
t-SNE figure: the selected records stand out over the whole pool), score histograms of the selection
against all records (inline SVG), and a sortable per-cluster table.

Everything that comes from the user's data (instructions, paths, scorer names) is escaped: HTML text
with `html.escape`, the inline JSON with `<`, `>`, `&`, U+2028 and U+2029 written as \\u escapes, so
an instruction containing `</script>` or markup cannot leave its string.

`write_figures` draws the same map and histograms with matplotlib (the optional `report` extra),
imported lazily so that the HTML report does not need it.
"""

from __future__ import annotations

import html
import inspect
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write_bytes, atomic_write_text

__all__ = ["ReportData", "project_2d", "write_report", "write_figures"]

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
TOOLTIP_CHARS = 280  # instruction text kept per drawn point (tooltips)
EXAMPLE_CHARS = 240  # instruction text shown per cluster in the table (full text in its title)
HIST_BINS = 30


@dataclass
class ReportData:
    scores: np.ndarray  # (n,) float, per input record
    clusters: np.ndarray  # (n,) int, cluster id per record
    selected: np.ndarray  # (n,) bool
    reasons: list[str | None]  # "top_n1", "cluster_top" or None per record
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
# helpers


def _json_for_script(obj: Any) -> str:
    """JSON that is safe inside <script type="application/json">: no '<', '>', '&', U+2028/9."""
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (
        s.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _truncate(text: Any, limit: int) -> str:
    s = "" if text is None else str(text)
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 1].rstrip() + "\u2026"


def _fmt(value: Any) -> str:
    """Summary values as text: ints with thousands separators, floats to 4 significant digits."""
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
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _finite(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    return x[np.isfinite(x)]


def _hist_edges(scores: np.ndarray) -> np.ndarray:
    s = _finite(scores)
    if len(s) == 0:
        return np.linspace(0.0, 1.0, HIST_BINS + 1)
    lo, hi = float(s.min()), float(s.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, HIST_BINS + 1)


def _cluster_rows(data: ReportData) -> list[dict[str, Any]]:
    clusters = np.asarray(data.clusters).reshape(-1).astype(np.int64)
    scores = np.asarray(data.scores, dtype=np.float64).reshape(-1)
    sel = np.asarray(data.selected, dtype=bool).reshape(-1)
    safe = np.where(np.isfinite(scores), scores, -np.inf)
    rows = []
    for c in np.unique(clusters):
        members = np.flatnonzero(clusters == c)
        best = members[np.argmax(safe[members])]
        reasons = [data.reasons[i] for i in members if sel[i]]
        fin = _finite(scores[members])
        rows.append(
            {
                "cluster": int(c),
                "size": int(len(members)),
                "selected": int(sel[members].sum()),
                "top_n1": sum(r == "top_n1" for r in reasons),
                "cluster_top": sum(r == "cluster_top" for r in reasons),
                "best": float(scores[best]),
                "mean": float(fin.mean()) if len(fin) else float("nan"),
                "example": "" if data.instructions[best] is None else str(data.instructions[best]),
            }
        )
    return rows


def _num_or_none(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


# ----------------------------------------------------------------------------------------------
# HTML


def _summary_html(summary: dict[str, Any]) -> str:
    rows = []
    for key, value in summary.items():
        if isinstance(value, dict):
            inner = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(_fmt(v))}</td></tr>" for k, v in value.items())
            if key == "stage_seconds" and value:
                try:
                    total = sum(float(v) for v in value.values())
                    inner += f'<tr class="total"><th>total</th><td>{_esc(_fmt(total))}</td></tr>'
                except (TypeError, ValueError):
                    pass
            rows.append(f'<tr><th>{_esc(key)}</th><td><table class="inner">{inner}</table></td></tr>')
        else:
            rows.append(f"<tr><th>{_esc(key)}</th><td>{_esc(_fmt(value))}</td></tr>")
    return '<table class="summary">' + "".join(rows) + "</table>"


def _hist_svg(values: np.ndarray, edges: np.ndarray, title: str, color: str) -> str:
    counts, _ = np.histogram(_finite(values), bins=edges)
    w, h, left, right, top, bottom = 460, 190, 46, 10, 26, 34
    pw, ph = w - left - right, h - top - bottom
    cmax = max(int(counts.max(initial=0)), 1)
    bw = pw / len(counts)
    parts = [
        f'<svg class="hist" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img" aria-label="{_esc(title)}">',
        f'<text x="{left}" y="16" class="t">{_esc(title)}</text>',
    ]
    for i, c in enumerate(counts):
        bh = ph * c / cmax
        x = left + i * bw
        parts.append(
            f'<rect x="{x + 0.5:.1f}" y="{top + ph - bh:.1f}" width="{max(bw - 1, 0.5):.1f}" '
            f'height="{bh:.1f}" fill="{color}"><title>{_esc(_fmt(edges[i]))} to '
            f"{_esc(_fmt(edges[i + 1]))}: {int(c):,}</title></rect>"
        )
    # axes and ticks
    parts.append(
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#444"/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#444"/>'
    )
    for frac in (0.0, 0.5, 1.0):
        v = edges[0] + frac * (edges[-1] - edges[0])
        x = left + frac * pw
        anchor = "start" if frac == 0 else "end" if frac == 1 else "middle"
        parts.append(
            f'<text x="{x:.1f}" y="{top + ph + 16}" text-anchor="{anchor}" class="a">{_esc(_fmt(v))}</text>'
        )
    parts.append(f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" class="a">{cmax:,}</text>')
    parts.append(f'<text x="{left - 4}" y="{top + ph}" text-anchor="end" class="a">0</text>')
    parts.append(
        f'<text x="{left + pw / 2:.1f}" y="{h - 2}" text-anchor="middle" class="a">quality score</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


# Summary keys with a section of their own (not rows of the Run table).
SECTION_KEYS = ("against_random", "languages", "manifest")


def _vs_random_rows(c: dict[str, Any]) -> list[tuple[str, float, float, float, bool | None]]:
    """(label, selection, random mean, random std, higher-is-better) per statistic present."""
    from .value import LABELS

    return [(label, float(c["selected"][k]), float(c["random_mean"][k]), float(c["random_std"][k]), better)
            for k, (label, better) in LABELS.items() if k in c.get("selected", {})]


def _vs_random_html(c: dict[str, Any]) -> tuple[str, str]:
    rows = _vs_random_rows(c)
    body = []
    for label, sel, rnd, sd, _ in rows:
        ratio = sel / rnd if rnd else float("nan")
        body.append(f"<tr><th>{_esc(label)}</th><td>{_esc(_fmt(sel))}</td><td>{_esc(_fmt(rnd))} &plusmn; "
                    f"{_esc(_fmt(sd))}</td><td>{_esc(_fmt(ratio)) if math.isfinite(ratio) else 'n/a'}</td></tr>")
    table = ('<table class="summary vsr"><tr><th></th><th>selection</th><th>random (mean &plusmn; sd)</th>'
             "<th>ratio</th></tr>" + "".join(body) + "</table>")
    return table, _vs_random_svg(rows)


def _vs_random_svg(rows) -> str:
    """Horizontal bars: the selection's value as a multiple of the random subsets' mean (1 = random)."""
    ratios = [(label, sel / rnd) for label, sel, rnd, _, _ in rows if rnd and math.isfinite(sel / rnd)]
    if not ratios:
        return ""
    w, left, right, row_h, top = 520, 250, 50, 20, 24
    h = top + row_h * len(ratios) + 24
    hi = max(2.0, max(r for _, r in ratios) * 1.05)
    pw = w - left - right
    x = lambda v: left + pw * v / hi  # noqa: E731
    parts = [f'<svg class="hist" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
             'aria-label="selection as a multiple of random">',
             f'<text x="{left}" y="15" class="t">selection &#247; random mean (1 = no better than random)</text>']
    for i, (label, r) in enumerate(ratios):
        y = top + i * row_h
        parts.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end" class="a">{_esc(label)}</text>'
                     f'<rect x="{left}" y="{y + 3}" width="{max(x(r) - left, 0.5):.1f}" height="{row_h - 6}" '
                     f'fill="#d9480f"><title>{_esc(label)}: {r:.3f}x</title></rect>'
                     f'<text x="{x(r) + 4:.1f}" y="{y + 13}" class="a">{r:.2f}</text>')
    parts.append(f'<line x1="{x(1.0):.1f}" y1="{top - 2}" x2="{x(1.0):.1f}" y2="{h - 20}" stroke="#444" '
                 'stroke-dasharray="3,2"/>'
                 f'<text x="{x(1.0):.1f}" y="{h - 6}" text-anchor="middle" class="a">1 (random)</text></svg>')
    return "".join(parts)


def _languages_html(langs: dict[str, Any]) -> str:
    counts = langs.get("counts", {})
    total = sum(counts.values()) or 1
    rows = "".join(f"<tr><th>{_esc(code)}</th><td>{int(n):,}</td><td>{_esc(_fmt(100.0 * n / total))}%</td></tr>"
                   for code, n in list(counts.items())[:15])
    note = f'<p class="sub">{_esc(langs["warning"])}</p>' if langs.get("warning") else ""
    return (f'<p class="sub">Detected with {_esc(langs.get("detector", ""))} on each record\'s instruction and '
            f"response; the scorer was trained on {_esc(', '.join(langs.get('scorer_languages') or ['?']))}.</p>"
            f'{note}<table class="summary"><tr><th>language</th><th>records</th><th>share</th></tr>{rows}</table>')


def _manifest_html(manifest: dict[str, Any]) -> str:
    return ('<p class="sub">Everything needed to reproduce and audit this selection.</p>'
            f'<pre class="manifest">{_esc(json.dumps(manifest, indent=2, sort_keys=True))}</pre>')


def _cluster_table_html(rows: list[dict[str, Any]]) -> str:
    head = (
        "<thead><tr>"
        '<th data-type="num">cluster</th><th data-type="num">size</th>'
        '<th data-type="num">selected</th><th data-type="num">top&#8209;n1</th>'
        '<th data-type="num">cluster&#8209;top</th><th data-type="num">best score</th>'
        '<th data-type="num">mean score</th><th data-type="text">example (best-scored instruction)</th>'
        "</tr></thead>"
    )
    body = []
    for r in rows:
        best, mean = r["best"], r["mean"]
        body.append(
            f'<tr data-cluster="{r["cluster"]}">'
            f'<td data-v="{r["cluster"]}"><span class="sw" data-c="{r["cluster"]}"></span>{r["cluster"]}</td>'
            f'<td data-v="{r["size"]}">{r["size"]:,}</td>'
            f'<td data-v="{r["selected"]}">{r["selected"]:,}</td>'
            f'<td data-v="{r["top_n1"]}">{r["top_n1"]:,}</td>'
            f'<td data-v="{r["cluster_top"]}">{r["cluster_top"]:,}</td>'
            f'<td data-v="{best if math.isfinite(best) else -1e308}">{_esc(_fmt(best))}</td>'
            f'<td data-v="{mean if math.isfinite(mean) else -1e308}">{_esc(_fmt(mean))}</td>'
            f'<td class="ex" title="{_esc(_truncate(r["example"], 2000))}">'
            f"{_esc(_truncate(r['example'], EXAMPLE_CHARS))}</td>"
            "</tr>"
        )
    return f'<table id="clusters" class="clusters">{head}<tbody>{"".join(body)}</tbody></table>'


_CSS = """
:root{color-scheme:light}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 margin:0;padding:18px 26px 40px;color:#1d1d1f;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:26px 0 8px}
.sub{color:#555;margin:0 0 14px}
.row{display:flex;flex-wrap:wrap;gap:22px;align-items:flex-start}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px 14px}
table{border-collapse:collapse}
table.summary th{text-align:left;font-weight:600;padding:3px 14px 3px 0;vertical-align:top;color:#333}
table.summary td{padding:3px 0;font-variant-numeric:tabular-nums}
table.vsr td{padding:3px 14px 3px 0}
pre.manifest{background:#fff;border:1px solid #ddd;border-radius:8px;padding:10px;font-size:12px;overflow:auto;max-height:360px}
table.inner th{font-weight:400;color:#555;padding:0 12px 0 0}table.inner td{padding:0}
table.inner tr.total th,table.inner tr.total td{font-weight:600;border-top:1px solid #ccc}
#mapwrap{position:relative}
#map{display:block;width:100%;height:620px;background:#fff;border:1px solid #ddd;border-radius:8px;cursor:crosshair}
#tip{position:absolute;pointer-events:none;display:none;max-width:420px;background:rgba(20,20,24,.93);color:#fff;
 padding:7px 9px;border-radius:6px;font-size:12.5px;white-space:pre-wrap;z-index:5;box-shadow:0 2px 8px rgba(0,0,0,.3)}
#tip b{color:#ffd666}
.legend{display:flex;gap:18px;align-items:center;color:#444;margin:6px 0 0;flex-wrap:wrap}
.legend svg{vertical-align:middle}
.controls{margin:6px 0}
svg.hist .t{font-weight:600;font-size:13px}svg.hist .a{font-size:11px;fill:#444}
table.clusters{background:#fff;border:1px solid #ddd;width:100%}
table.clusters th{position:sticky;top:0;background:#f0f0f2;cursor:pointer;user-select:none;text-align:left;
 padding:6px 8px;border-bottom:1px solid #ccc;white-space:nowrap}
table.clusters th.asc::after{content:" \\25B2"}table.clusters th.desc::after{content:" \\25BC"}
table.clusters td{padding:4px 8px;border-bottom:1px solid #eee;font-variant-numeric:tabular-nums;vertical-align:top}
table.clusters td.ex{max-width:620px;color:#333}
table.clusters tr:hover td,table.clusters tr.hl td{background:#fff6d6}
.sw{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:6px;vertical-align:-1px}
.tablewrap{max-height:560px;overflow:auto;border-radius:8px}
footer{margin-top:24px;color:#777;font-size:12px}
"""

# The page's script. It reads only the inline JSON; user text reaches the DOM through textContent.
_JS = r"""
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("car-data").textContent);
  var n = D.x.length;
  function color(c, alpha) {
    var h = (c * 137.508) % 360, s = 62 + (c % 3) * 12, l = 42 + (c % 4) * 7;
    return "hsla(" + h.toFixed(1) + "," + s + "%," + l + "%," + alpha + ")";
  }
  document.querySelectorAll(".sw").forEach(function (el) {
    el.style.background = color(parseInt(el.getAttribute("data-c"), 10), 1);
  });

  var canvas = document.getElementById("map"), tip = document.getElementById("tip");
  var onlySel = document.getElementById("onlysel");
  var ctx = canvas.getContext("2d");
  var highlight = null, sx = [], sy = [], W = 0, H = 0, grid = null, GS = 16;
  var minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (var i = 0; i < n; i++) {
    if (D.x[i] < minX) minX = D.x[i]; if (D.x[i] > maxX) maxX = D.x[i];
    if (D.y[i] < minY) minY = D.y[i]; if (D.y[i] > maxY) maxY = D.y[i];
  }
  if (!(maxX > minX)) { minX -= 1; maxX += 1; }
  if (!(maxY > minY)) { minY -= 1; maxY += 1; }

  function draw() {
    var dpr = window.devicePixelRatio || 1, rect = canvas.getBoundingClientRect();
    W = Math.max(rect.width, 10); H = Math.max(rect.height, 10);
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#ffffff"; ctx.fillRect(0, 0, W, H);
    var pad = 14, sc = Math.min((W - 2 * pad) / (maxX - minX), (H - 2 * pad) / (maxY - minY));
    var ox = (W - sc * (maxX - minX)) / 2, oy = (H - sc * (maxY - minY)) / 2;
    grid = {};
    var drawn = 0, showAll = !(onlySel && onlySel.checked);
    for (var i = 0; i < n; i++) {
      sx[i] = ox + (D.x[i] - minX) * sc; sy[i] = oy + (maxY - D.y[i]) * sc;
    }
    function addGrid(i) {
      var key = Math.floor(sx[i] / GS) + "," + Math.floor(sy[i] / GS);
      (grid[key] || (grid[key] = [])).push(i);
    }
    // pass 1: unselected points, small and translucent
    if (showAll) {
      for (var i = 0; i < n; i++) {
        if (D.sel[i]) continue;
        var faded = highlight !== null && D.c[i] !== highlight;
        ctx.fillStyle = color(D.c[i], faded ? 0.08 : 0.55);
        ctx.beginPath(); ctx.arc(sx[i], sy[i], 2.2, 0, 6.2832); ctx.fill();
        addGrid(i); drawn++;
      }
    }
    // pass 2: selected points on top, larger, with a dark outline
    ctx.lineWidth = 1.3; ctx.strokeStyle = "#111";
    for (var i = 0; i < n; i++) {
      if (!D.sel[i]) continue;
      var faded = highlight !== null && D.c[i] !== highlight;
      ctx.globalAlpha = faded ? 0.2 : 1;
      ctx.fillStyle = color(D.c[i], 1);
      ctx.beginPath();
      if (D.r[i] === 1) {  // top_n1: diamond
        ctx.moveTo(sx[i], sy[i] - 5.6); ctx.lineTo(sx[i] + 5.6, sy[i]);
        ctx.lineTo(sx[i], sy[i] + 5.6); ctx.lineTo(sx[i] - 5.6, sy[i]); ctx.closePath();
      } else {
        ctx.arc(sx[i], sy[i], 4.6, 0, 6.2832);
      }
      ctx.fill(); ctx.stroke();
      addGrid(i); drawn++;
    }
    ctx.globalAlpha = 1;
    document.body.dataset.mapPoints = String(drawn);
  }

  function nearest(px, py) {
    var best = -1, bestD = 81, gx = Math.floor(px / GS), gy = Math.floor(py / GS);
    for (var dx = -1; dx <= 1; dx++) for (var dy = -1; dy <= 1; dy++) {
      var cell = grid[(gx + dx) + "," + (gy + dy)];
      if (!cell) continue;
      for (var k = 0; k < cell.length; k++) {
        var i = cell[k], d = (sx[i] - px) * (sx[i] - px) + (sy[i] - py) * (sy[i] - py);
        if (D.sel[i]) d -= 12;  // prefer the (drawn-on-top) selected point under the cursor
        if (d < bestD) { bestD = d; best = i; }
      }
    }
    return best;
  }

  function showTip(i, px, py) {
    tip.textContent = "";
    var head = document.createElement("b");
    head.textContent = "cluster " + D.c[i] + " \u00b7 score " + (D.s[i] === null ? "n/a" : D.s[i].toFixed(3)) +
      (D.sel[i] ? " \u00b7 selected (" + (D.r[i] === 1 ? "top_n1" : "cluster_top") + ")" : "");
    tip.appendChild(head);
    tip.appendChild(document.createTextNode("\n" + D.t[i]));
    tip.style.display = "block";
    var wrap = canvas.parentNode.getBoundingClientRect();
    var left = px + 14, top = py + 14;
    if (left + tip.offsetWidth > wrap.width) left = Math.max(0, px - tip.offsetWidth - 14);
    if (top + tip.offsetHeight > wrap.height) top = Math.max(0, py - tip.offsetHeight - 14);
    tip.style.left = left + "px"; tip.style.top = top + "px";
  }

  canvas.addEventListener("mousemove", function (ev) {
    var rect = canvas.getBoundingClientRect(), px = ev.clientX - rect.left, py = ev.clientY - rect.top;
    var i = nearest(px, py);
    if (i < 0) { tip.style.display = "none"; return; }
    showTip(i, px, py);
  });
  canvas.addEventListener("mouseleave", function () { tip.style.display = "none"; });
  if (onlySel) onlySel.addEventListener("change", draw);

  // cluster table: click a header to sort, click a row to highlight its cluster on the map
  var table = document.getElementById("clusters");
  if (table) {
    var ths = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(ths, function (th, col) {
      th.addEventListener("click", function () {
        var asc = !th.classList.contains("asc");
        Array.prototype.forEach.call(ths, function (o) { o.classList.remove("asc", "desc"); });
        th.classList.add(asc ? "asc" : "desc");
        var num = th.getAttribute("data-type") === "num", body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var va = a.cells[col], vb = b.cells[col], r;
          if (num) r = parseFloat(va.getAttribute("data-v")) - parseFloat(vb.getAttribute("data-v"));
          else r = va.textContent.localeCompare(vb.textContent);
          return asc ? r : -r;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
    table.tBodies[0].addEventListener("click", function (ev) {
      var tr = ev.target.closest("tr");
      if (!tr) return;
      var c = parseInt(tr.getAttribute("data-cluster"), 10);
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) { r.classList.remove("hl"); });
      if (highlight === c) { highlight = null; } else { highlight = c; tr.classList.add("hl"); }
      draw();
    });
  }

  window.carReport = {
    redraw: draw,
    pointXY: function (i) { return [sx[i], sy[i]]; },
    firstSelected: function () { for (var i = 0; i < n; i++) if (D.sel[i]) return i; return -1; }
  };
  var pending = false;
  window.addEventListener("resize", function () {
    if (pending) return; pending = true;
    requestAnimationFrame(function () { pending = false; draw(); });
  });
  draw();
})();
"""


def _build_html(data: ReportData, seed: int, max_points: int) -> str:
    data.validated()
    n = len(data.scores)
    scores = np.asarray(data.scores, dtype=np.float64).reshape(-1)
    clusters = np.asarray(data.clusters).reshape(-1).astype(np.int64)
    sel = np.asarray(data.selected, dtype=bool).reshape(-1)

    idx, xy = data.projection(seed=seed, max_points=max_points)
    xy = np.nan_to_num(np.asarray(xy, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    points = {
        "x": [round(float(v), 3) for v in xy[:, 0]] if len(idx) else [],
        "y": [round(float(v), 3) for v in xy[:, 1]] if len(idx) else [],
        "c": [int(clusters[i]) for i in idx],
        "sel": [1 if sel[i] else 0 for i in idx],
        "r": [
            1 if data.reasons[i] == "top_n1" else 2 if data.reasons[i] == "cluster_top" else 0 for i in idx
        ],
        "s": [_num_or_none(round(float(scores[i]), 4)) for i in idx],
        "t": [_truncate(data.instructions[i], TOOLTIP_CHARS) for i in idx],
    }
    n_sel = int(sel.sum())
    n_clusters = len(np.unique(clusters)) if n else 0
    reasons = [r for r, s in zip(data.reasons, sel, strict=True) if s]
    n_top = sum(r == "top_n1" for r in reasons)
    n_ctop = sum(r == "cluster_top" for r in reasons)

    edges = _hist_edges(scores)
    hist_all = _hist_svg(scores, edges, f"All records (n = {n:,})", "#9aa5b1")
    hist_sel = _hist_svg(scores[sel], edges, f"Selected (n = {n_sel:,})", "#d9480f")
    fin_all, fin_sel = _finite(scores), _finite(scores[sel])

    def stat(x: np.ndarray) -> str:
        if len(x) == 0:
            return "no scores"
        return f"mean {_fmt(float(x.mean()))}, median {_fmt(float(np.median(x)))}, min {_fmt(float(x.min()))}"

    summary = dict(data.summary or {})
    sections = {k: summary.pop(k) for k in SECTION_KEYS if summary.get(k)}
    extra_html = ""
    if "against_random" in sections:
        c = sections["against_random"]
        table, plot = _vs_random_html(c)
        extra_html += (f'<h2>Against random</h2><p class="sub">The {c["size"]:,} selected records beside '
                       f'{len(c["random_seeds"])} uniform random subsets of the same size (seeds '
                       f'{_esc(_fmt(c["random_seeds"]))}). Distance: mean Euclidean distance, in the PCA space the '
                       "clustering ran on, from every record to the nearest kept one (lower covers the data more "
                       f'evenly).</p><div class="row"><div class="card">{table}</div>'
                       f'<div class="card">{plot}</div></div>')
    if "languages" in sections:
        extra_html += f"<h2>Languages</h2>{_languages_html(sections['languages'])}"
    manifest_html = f"<h2>Run manifest</h2>{_manifest_html(sections['manifest'])}" if "manifest" in sections else ""
    title_bits = [str(summary[k]) for k in ("input",) if summary.get(k)]
    sampled = len(idx) < n
    map_note = (
        f"t-SNE of {len(idx):,} of {n:,} records (every selected record plus a random sample of the rest)"
        if sampled
        else f"t-SNE of all {n:,} records"
    )

    body = f"""<h1>CaR selection report</h1>
<p class="sub">{_esc(" · ".join(title_bits)) or "&nbsp;"}</p>
<div class="row">
 <div class="card"><h2 style="margin-top:0">Summary</h2>
  <table class="summary">
   <tr><th>records</th><td>{n:,}</td></tr>
   <tr><th>selected</th><td>{n_sel:,} ({_esc(_fmt(100.0 * n_sel / n if n else 0.0))}%) = {n_top:,} top&#8209;n1 + {n_ctop:,} cluster&#8209;top</td></tr>
   <tr><th>clusters</th><td>{n_clusters:,}</td></tr>
   <tr><th>scores, all</th><td>{_esc(stat(fin_all))}</td></tr>
   <tr><th>scores, selected</th><td>{_esc(stat(fin_sel))}</td></tr>
  </table>
 </div>
 <div class="card"><h2 style="margin-top:0">Run</h2>{_summary_html(summary)}</div>
</div>

<h2>Cluster map</h2>
<p class="sub">{_esc(map_note)}, coloured by cluster. Selected records are drawn on top, larger and
outlined (diamonds: global top&#8209;n1; circles: best of their cluster). Hover a point for its instruction;
click a row of the cluster table to highlight that cluster.</p>
<div class="controls"><label><input type="checkbox" id="onlysel"> selected records only</label></div>
<div id="mapwrap"><canvas id="map" width="1200" height="620" aria-label="cluster map"></canvas><div id="tip"></div></div>
<div class="legend">
 <span><svg width="14" height="14"><circle cx="7" cy="7" r="2.4" fill="#8a8a8a" fill-opacity=".6"/></svg> not selected</span>
 <span><svg width="14" height="14"><circle cx="7" cy="7" r="4.6" fill="#8a8a8a" stroke="#111" stroke-width="1.3"/></svg> selected: cluster top</span>
 <span><svg width="14" height="14"><path d="M7 1.4 12.6 7 7 12.6 1.4 7Z" fill="#8a8a8a" stroke="#111" stroke-width="1.3"/></svg> selected: global top&#8209;n1</span>
</div>

<h2>Quality scores</h2>
<div class="row"><div class="card">{hist_all}</div><div class="card">{hist_sel}</div></div>

{extra_html}
<h2>Clusters ({n_clusters:,})</h2>
<p class="sub">Click a column header to sort.</p>
<div class="tablewrap">{_cluster_table_html(_cluster_rows(data))}</div>
{manifest_html}
<footer>Generated by car-select. This page is self-contained and works offline.</footer>
"""

    csp = (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CaR selection report</title>
<style>{_CSS}</style>
</head>
<body>
{body}
<script type="application/json" id="car-data">{_json_for_script(points)}</script>
<script>{_JS}</script>
</body>
</html>
"""


def write_report(path, data: ReportData, seed: int = 42, max_points: int = DEFAULT_MAX_POINTS) -> None:
    """Write the self-contained HTML report to `path` (atomically: a temp file, then os.replace)."""
    atomic_write_text(path, _build_html(data, seed, max_points))


# ----------------------------------------------------------------------------------------------
# PNG figures (matplotlib, optional)


def _mpl_colors(clusters: np.ndarray) -> np.ndarray:
    import colorsys

    out = np.zeros((len(clusters), 4))
    cache: dict[int, tuple] = {}
    for j, c in enumerate(clusters):
        c = int(c)
        if c not in cache:  # the same palette as the HTML page
            hue, sat, light = (
                ((c * 137.508) % 360) / 360.0,
                (62 + (c % 3) * 12) / 100.0,
                (42 + (c % 4) * 7) / 100.0,
            )
            cache[c] = (*colorsys.hls_to_rgb(hue, light, sat), 1.0)
        out[j] = cache[c]
    return out


def write_figures(
    out_dir, data: ReportData, seed: int = 42, max_points: int = DEFAULT_MAX_POINTS
) -> list[Path]:
    """cluster_map.png and score_hist.png in `out_dir`; needs matplotlib (`car-select[report]`)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the environment
        from .errors import CarSelectError

        raise CarSelectError("PNG figures need matplotlib: pip install 'car-select[report]'") from e
    import io

    data.validated()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scores = np.asarray(data.scores, dtype=np.float64).reshape(-1)
    clusters = np.asarray(data.clusters).reshape(-1).astype(np.int64)
    sel = np.asarray(data.selected, dtype=bool).reshape(-1)
    paths = []

    def save(fig, name: str) -> None:
        FigureCanvasAgg(fig)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=130, bbox_inches="tight", facecolor="white")
        p = out / name
        atomic_write_bytes(p, buf.getvalue())
        paths.append(p)

    # cluster map
    idx, xy = data.projection(seed=seed, max_points=max_points)
    fig = Figure(figsize=(8, 6.5))
    ax = fig.add_subplot(1, 1, 1)
    if len(idx):
        cols = _mpl_colors(clusters[idx])
        s_mask = sel[idx]
        rest = ~s_mask
        ax.scatter(xy[rest, 0], xy[rest, 1], s=5, c=cols[rest], alpha=0.5, linewidths=0, label="not selected")
        top = np.array([data.reasons[i] == "top_n1" for i in idx], dtype=bool)
        for mask, marker, label in (
            (s_mask & ~top, "o", "selected: cluster top"),
            (s_mask & top, "D", "selected: global top-n1"),
        ):
            if mask.any():
                ax.scatter(
                    xy[mask, 0],
                    xy[mask, 1],
                    s=26,
                    c=cols[mask],
                    marker=marker,
                    edgecolors="#111111",
                    linewidths=0.7,
                    label=label,
                    zorder=3,
                )
        leg = ax.legend(loc="best", fontsize=8, framealpha=0.85, markerscale=1.2)
        for h in leg.legend_handles if hasattr(leg, "legend_handles") else leg.legendHandles:
            try:
                h.set_color("#8a8a8a")
                h.set_edgecolor("#111111")
            except AttributeError:
                pass
    n = len(scores)
    note = f"{len(idx):,} of {n:,} records" if len(idx) < n else f"all {n:,} records"
    ax.set_title(
        f"CaR selection: t-SNE of {note}, {len(np.unique(clusters)) if n else 0} clusters, {int(sel.sum()):,} selected",
        fontsize=10,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    save(fig, "cluster_map.png")

    # score histograms
    fig = Figure(figsize=(8, 3.6))
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2, sharex=None)
    edges = _hist_edges(scores)
    ax1.hist(_finite(scores), bins=edges, color="#9aa5b1")
    ax1.set_title(f"All records (n = {n:,})", fontsize=10)
    ax2.hist(_finite(scores[sel]), bins=edges, color="#d9480f")
    ax2.set_title(f"Selected (n = {int(sel.sum()):,})", fontsize=10)
    for ax in (ax1, ax2):
        ax.set_xlabel("quality score")
        ax.set_ylabel("records")
    fig.tight_layout()
    save(fig, "score_hist.png")

    # the selection against random subsets of its size (when the run compared them)
    c = (data.summary or {}).get("against_random")
    if c:
        rows = [(label, sel / rnd) for label, sel, rnd, _, _ in _vs_random_rows(c) if rnd and math.isfinite(sel / rnd)]
        fig = Figure(figsize=(7, 0.45 * len(rows) + 1.2))
        ax = fig.add_subplot(1, 1, 1)
        ax.barh([r[0] for r in rows][::-1], [r[1] for r in rows][::-1], color="#d9480f")
        ax.axvline(1.0, color="#444444", linestyle="--", linewidth=1)
        for i, (_, r) in enumerate(rows[::-1]):
            ax.text(r, i, f" {r:.2f}", va="center", fontsize=8)
        ax.set_xlabel(f"selection / mean of {len(c['random_seeds'])} random subsets of {c['size']:,} (1 = random)")
        ax.set_title("What the selection bought", fontsize=10)
        ax.tick_params(axis="y", labelsize=8)
        fig.tight_layout()
        save(fig, "vs_random.png")
    return paths
