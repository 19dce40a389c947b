"""The selection report as one self-contained HTML page.

The page opens offline: no external scripts, fonts, styles or images, and a Content-Security-Policy
that forbids loading any; its CSS and script (assets/, package data) are inlined. It shows the run's
summary, a 2-D t-SNE map of the clusters drawn on a <canvas> from inline JSON (as in the paper's t-SNE
figure: the selected records stand out over the whole pool), score histograms of the selection
against all records, the selection beside same-size baselines, and a sortable per-cluster table.

Everything that comes from the user's data (instructions, paths, scorer names) is escaped: HTML text
with `html.escape`, the inline JSON with `<`, `>`, `&`, U+2028 and U+2029 written as \\u escapes, so
an instruction containing `</script>` or markup cannot leave its string.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

import numpy as np

from ..atomic import atomic_write_text
from ..scored import describe_lines
from ..wording import count, number
from ..selection.baselines import BASELINES, FIGURES, row_decimals, versus, versus_text
from .data import DEFAULT_MAX_POINTS, ReportData, baseline_points, cluster_rows, finite, hist_edges
from .svg import bars_svg, esc, fmt, hist_svg, quality_coverage_svg

TOOLTIP_CHARS = 280  # instruction text kept per drawn point (tooltips)
EXAMPLE_CHARS = 240  # instruction text shown per cluster in the table (full text in its title)

# Summary keys with a section of their own, and those the Summary card shows (not repeated under Run).
SECTION_KEYS = ("against_random", "languages", "manifest", "target", "decontamination", "balance")
SUMMARY_CARD_KEYS = ("input", "scorer", "records_read", "duplicates_dropped", "k", "selected", "selected_top_n1",
                     "selected_cluster_top", "clusters_covered", "scored")
RUN_LABELS = {
    "pca_components": "PCA components",
    "pca_variance_explained": "PCA variance explained",
    "n1": "n1 (global top)",
    "n2": "n2 (per cluster)",
    "min_score": "minimum score",
    "eligible": "records at or above it",
    "cache_hits": "cache hits (texts)",
    "stage_seconds": "seconds per stage",
}


def _label(key: str) -> str:
    return RUN_LABELS.get(key, key.replace("_", " "))


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


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


def _truncate(text: Any, limit: int) -> str:
    """At most `limit` characters: a longer text keeps its start and its end (a conversation's opening
    and its last turn, data.record_example) around an ellipsis."""
    s = "" if text is None else str(text)
    s = " ".join(s.split())
    if len(s) <= limit:
        return s
    head = (limit - 3) * 2 // 5
    return s[:head].rstrip() + " \u2026 " + s[len(s) - (limit - 3 - head):].lstrip()


def _num_or_none(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _run_html(summary: dict[str, Any]) -> str:
    """The Run card: every summary key the Summary card and the sections do not show, with readable labels."""
    rows = []
    for key, value in summary.items():
        if key in SUMMARY_CARD_KEYS:
            continue
        if isinstance(value, dict):
            inner = "".join(f"<tr><th>{esc(_label(k))}</th><td>{esc(fmt(v))}</td></tr>" for k, v in value.items())
            if key == "stage_seconds" and value:
                try:
                    total = sum(float(v) for v in value.values())
                    inner += f'<tr class="total"><th>total</th><td>{esc(fmt(total))}</td></tr>'
                except (TypeError, ValueError):
                    pass
            cell = f'<table class="inner">{inner}</table>'
        elif isinstance(value, list) and key == "warnings":
            cell = "".join(f'<div class="warn">{esc(w)}</div>' for w in value)
        else:
            cell = esc(fmt(value))
        rows.append(f"<tr><th>{esc(_label(key))}</th><td>{cell}</td></tr>")
    return '<table class="summary">' + "".join(rows) + "</table>"


def _summary_card(data: ReportData, summary: dict[str, Any]) -> str:
    scores = np.asarray(data.scores, dtype=np.float64).reshape(-1)
    sel = np.asarray(data.selected, dtype=bool).reshape(-1)
    n, n_sel = len(scores), int(sel.sum())
    clusters = np.asarray(data.clusters).reshape(-1)
    n_clusters = len(np.unique(clusters)) if n else 0
    covered = len(np.unique(clusters[sel])) if n_sel else 0
    counts = data.reason_counts()
    why = " + ".join(f"{counts[r]:,} {r.replace('_', '&#8209;')}" for r in data.reason_names())

    def stat(x: np.ndarray) -> str:
        if len(x) == 0:
            return "no scores"
        return f"mean {fmt(float(x.mean()))}, median {fmt(float(np.median(x)))}, min {fmt(float(x.min()))}"

    rows = []
    if "records_read" in summary:
        dropped = summary.get("duplicates_dropped")
        rows.append(("records read", esc(fmt(summary["records_read"])) + (
            f" ({esc(count(int(dropped), 'duplicate'))} dropped)" if dropped else "")))
    rows += [("distinct records", f"{n:,}"),
             ("selected", f"{n_sel:,} ({esc(fmt(100.0 * n_sel / n if n else 0.0))}%)" + (f" = {why}" if why else "")),
             ("clusters", f"{n_clusters:,}, {covered:,} of them with a selected record"),
             ("scores, all", esc(stat(finite(scores)))),
             ("scores, selected", esc(stat(finite(scores[sel]))))]
    if summary.get("scored"):  # what the scores are of: texts per record, the aggregation, the token window
        rows += [(label, esc(text)) for label, text in describe_lines(summary["scored"])]
    return '<table class="summary">' + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _baselines_html(c: dict[str, Any]) -> str:
    """The selection beside random subsets and the naive baselines: a table, the bars against random,
    and the quality-against-coverage scatter."""
    names = [b for b in BASELINES if b in c]
    size = c["size"]
    head = ("<tr><th></th><th>selection</th><th>random (mean &plusmn; sd)</th>"
            + "".join(f"<th>{esc(BASELINES[b])}</th>" for b in names) + "<th>selection vs random</th></tr>")
    body, ratios, differences = [], [], []
    for key, figure in FIGURES.items():
        if key not in c.get("selected", {}):
            continue
        sel, rnd, sd = float(c["selected"][key]), float(c["random_mean"][key]), float(c["random_std"][key])
        places = row_decimals(key, [sel, rnd, sd, *(c[b][key] for b in names)])  # as the text summary's table

        def one(v):  # one subset's figure: a count is a whole number
            return esc(number(int(v) if figure.integer and v == v else float(v), places))

        body.append(f"<tr><th>{esc(figure.label)}</th><td>{one(sel)}</td><td>{esc(number(rnd, places))} &plusmn; "
                    f"{esc(number(sd, places))}</td>" + "".join(f"<td>{one(c[b][key])}</td>" for b in names)
                    + f"<td>{esc(versus_text(key, sel, rnd, places))}</td></tr>")
        if not (math.isfinite(sel) and math.isfinite(rnd)):
            continue
        kind, value = versus(key, sel, rnd)
        better = None if figure.higher_is_better is None or value == (1.0 if kind == "ratio" else 0.0) else (
            (value > (1.0 if kind == "ratio" else 0.0)) == figure.higher_is_better)
        if kind == "ratio":
            ratios.append((figure.label, value, better))
        elif key in ("mean_score", "median_score"):  # one unit (the scorer's) on one axis
            differences.append((figure.label, value, better))
    table = '<table class="summary vsr">' + head + "".join(body) + "</table>"
    naive = ", ".join({"top_score": f"the {count(size, 'best-scored record')} (score alone)",
                       "longest_output": f"the {count(size, 'record')} with the longest outputs"}[b] for b in names)
    subsets = count(len(c["random_seeds"]), "uniform random subset")
    text = (f'<p class="sub">The {count(size, "selected record")} beside {subsets} '
            f'of the same size (seeds {esc(fmt(c["random_seeds"]))})' + (f" and {naive}" if naive else "") + ". "
            "Coverage is measured in the PCA space the clustering ran on: the distance from every record to the "
            "nearest kept one (mean and largest; lower covers the data more evenly) and the facility-location value "
            "(the mean of each record's highest cosine similarity to a kept record; higher is better). Cluster "
            "balance is the entropy of the kept records' clusters over the entropy of the input's (1: as even as "
            "the input). Scores are signed, with no natural zero, so the selection is compared with random by "
            "difference (selection &minus; random); other figures, positive on both sides, by ratio.</p>")
    charts = [bars_svg(differences, "Scores: selection minus random mean", 0.0, "score difference from random"),
              bars_svg(ratios, "Other figures: selection \u00f7 random mean", 1.0, "selection as a multiple of random"),
              quality_coverage_svg(baseline_points(c))]
    cards = "".join(f'<div class="card">{chart}</div>' for chart in charts if chart)
    return f'{text}<div class="row"><div class="card">{table}</div></div><div class="row">{cards}</div>'


def _languages_html(langs: dict[str, Any]) -> str:
    counts = langs.get("counts", {})
    total = sum(counts.values()) or 1
    rows = "".join(f"<tr><th>{esc(code)}</th><td>{int(n):,}</td><td>{esc(fmt(100.0 * n / total))}%</td></tr>"
                   for code, n in list(counts.items())[:15])
    note = f'<p class="sub">{esc(langs["warning"])}</p>' if langs.get("warning") else ""
    if "und" in counts:
        note += ('<p class="sub">und (undetermined): too little text to judge, or no language likely enough; '
                 "never counted against the scorer's languages.</p>")
    detected, of = langs.get("detected"), langs.get("of")
    if detected is not None and of is not None and detected < of:
        what = f"a seeded random sample of {int(detected):,} of the {int(of):,} distinct records"
    else:
        what = f"each of the {int(of):,} distinct records" if of is not None else "the records"
    return (f'<p class="sub">Detected with {esc(langs.get("detector", ""))} on {what} (instruction and response); '
            f"the scorer was trained on {esc(', '.join(langs.get('scorer_languages') or ['?']))}.</p>"
            f'{note}<table class="summary"><tr><th>language</th><th>records</th><th>share</th></tr>{rows}</table>')


def _manifest_html(manifest: dict[str, Any]) -> str:
    return ('<p class="sub">Everything needed to reproduce and audit this selection.</p>'
            f'<pre class="manifest">{esc(json.dumps(manifest, indent=2, sort_keys=True))}</pre>')


def _cluster_table_html(rows: list[dict[str, Any]], reasons: list[str]) -> str:
    head = ("<thead><tr>"
            '<th data-type="num">cluster</th><th data-type="num">size</th><th data-type="num">selected</th>'
            + "".join(f'<th data-type="num">{esc(r).replace("_", "&#8209;")}</th>' for r in reasons)
            + '<th data-type="num">best score</th><th data-type="num">mean score</th>'
            '<th data-type="text">example (best-scored instruction; a conversation\'s earlier turns first)</th>'
            '</tr></thead>')
    body = []
    for r in rows:
        best, mean = r["best"], r["mean"]
        body.append(
            f'<tr data-cluster="{r["cluster"]}">'
            f'<td data-v="{r["cluster"]}"><span class="sw" data-c="{r["cluster"]}"></span>{r["cluster"]}</td>'
            f'<td data-v="{r["size"]}">{r["size"]:,}</td>'
            f'<td data-v="{r["selected"]}">{r["selected"]:,}</td>'
            + "".join(f'<td data-v="{r["reasons"][name]}">{r["reasons"][name]:,}</td>' for name in reasons)
            + f'<td data-v="{best if math.isfinite(best) else -1e308}">{esc(fmt(best))}</td>'
            f'<td data-v="{mean if math.isfinite(mean) else -1e308}">{esc(fmt(mean))}</td>'
            f'<td class="ex" title="{esc(_truncate(r["example"], 2000))}">'
            f"{esc(_truncate(r['example'], EXAMPLE_CHARS))}</td>"
            "</tr>"
        )
    return f'<table id="clusters" class="clusters">{head}<tbody>{"".join(body)}</tbody></table>'


def _legend_html(reasons: list[str]) -> str:
    dot = '<svg width="14" height="14"><circle cx="7" cy="7" r="{r}" fill="#8a8a8a"{extra}/></svg>'
    diamond = ('<svg width="14" height="14"><path d="M7 1.4 12.6 7 7 12.6 1.4 7Z" fill="#8a8a8a" stroke="#111" '
               'stroke-width="1.3"/></svg>')
    parts = [f'<span>{dot.format(r=2.4, extra=" fill-opacity=.6")} not selected</span>']
    circles = [r for r in reasons if r != "top_n1"] or (["selected"] if not reasons else [])
    if circles:
        label = ", ".join(esc(r).replace("_", "&#8209;") for r in circles)
        parts.append(f'<span>{dot.format(r=4.6, extra=" stroke=#111 stroke-width=1.3")} selected: {label}</span>')
    if "top_n1" in reasons:
        parts.append(f"<span>{diamond} selected: global top&#8209;n1</span>")
    return '<div class="legend">' + "".join(parts) + "</div>"


def _map_payload(data: ReportData, idx: np.ndarray, xy: np.ndarray, reasons: list[str]) -> dict[str, Any]:
    scores = np.asarray(data.scores, dtype=np.float64).reshape(-1)
    clusters = np.asarray(data.clusters).reshape(-1).astype(np.int64)
    sel = np.asarray(data.selected, dtype=bool).reshape(-1)
    code = {name: i + 1 for i, name in enumerate(reasons)}
    return {
        "x": [round(float(v), 3) for v in xy[:, 0]] if len(idx) else [],
        "y": [round(float(v), 3) for v in xy[:, 1]] if len(idx) else [],
        "c": [int(clusters[i]) for i in idx],
        "sel": [1 if sel[i] else 0 for i in idx],
        "rn": ["", *reasons],  # reason names; "r" indexes them, 0 for a record not selected
        "r": [code.get(data.reasons[i], 0) if sel[i] else 0 for i in idx],
        "s": [_num_or_none(round(float(scores[i]), 4)) for i in idx],
        "t": [_truncate(data.instructions[i], TOOLTIP_CHARS) for i in idx],
    }


def build_html(data: ReportData, seed: int = 42, max_points: int = DEFAULT_MAX_POINTS) -> str:
    data.validated()
    n = len(data.scores)
    scores = np.asarray(data.scores, dtype=np.float64).reshape(-1)
    sel = np.asarray(data.selected, dtype=bool).reshape(-1)
    reasons = data.reason_names()
    idx, xy = data.projection(seed=seed, max_points=max_points)
    xy = np.nan_to_num(np.asarray(xy, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    n_clusters = len(np.unique(np.asarray(data.clusters))) if n else 0

    edges = hist_edges(scores)
    hist_all = hist_svg(scores, edges, f"All records (n = {n:,})", "#9aa5b1")
    hist_sel = hist_svg(scores[sel], edges, f"Selected (n = {int(sel.sum()):,})", "#d9480f")

    summary = dict(data.summary or {})
    sections = {k: summary.pop(k) for k in SECTION_KEYS if summary.get(k)}
    extra_html = ""
    if "against_random" in sections:
        extra_html += f"<h2>Against baselines</h2>{_baselines_html(sections['against_random'])}"
    if "languages" in sections:
        extra_html += f"<h2>Languages</h2>{_languages_html(sections['languages'])}"
    from ..targeting import format_aims

    aims = format_aims(sections)  # targets' coverage, what was kept out per file, the quota per value
    if aims:
        extra_html += f"<h2>Targets, decontamination, quotas</h2><pre>{esc(chr(10).join(aims))}</pre>"
    manifest_html = f"<h2>Run manifest</h2>{_manifest_html(sections['manifest'])}" if "manifest" in sections else ""
    title_bits = [str(summary[k]) for k in ("input", "scorer") if summary.get(k)]
    map_note = (
        f"t-SNE of {len(idx):,} of {count(n, 'record')} (every selected record plus a random sample of the rest)"
        if len(idx) < n
        else f"t-SNE of all {count(n, 'record')}"
    )
    shapes = ("diamonds: global top&#8209;n1; circles: every other reason" if "top_n1" in reasons else "circles")

    body = f"""<h1>CaR selection report</h1>
<p class="sub">{esc(" · ".join(title_bits)) or "&nbsp;"}</p>
<div class="row">
 <div class="card"><h2 style="margin-top:0">Summary</h2>{_summary_card(data, summary)}</div>
 <div class="card"><h2 style="margin-top:0">Run</h2>{_run_html(summary)}</div>
</div>

<h2>Cluster map</h2>
<p class="sub">{esc(map_note)}, coloured by cluster. Selected records are drawn on top, larger and
outlined ({shapes}). Hover a point for its instruction; click a row of the cluster table to highlight
that cluster.</p>
<div class="controls"><label><input type="checkbox" id="onlysel"> selected records only</label></div>
<div id="mapwrap"><canvas id="map" width="1200" height="620" aria-label="cluster map"></canvas><div id="tip"></div></div>
{_legend_html(reasons)}

<h2>Quality scores</h2>
<div class="row"><div class="card">{hist_all}</div><div class="card">{hist_sel}</div></div>

{extra_html}
<h2>Clusters ({n_clusters:,})</h2>
<p class="sub">Click a column header to sort.</p>
<div class="tablewrap">{_cluster_table_html(cluster_rows(data), reasons)}</div>
{manifest_html}
<footer>Generated by car-select. This page is self-contained and works offline.</footer>
"""
    csp = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CaR selection report</title>
<style>{_asset("report.css")}</style>
</head>
<body>
{body}
<script type="application/json" id="car-data">{_json_for_script(_map_payload(data, idx, xy, reasons))}</script>
<script>{_asset("report.js")}</script>
</body>
</html>
"""


def write_report(path, data: ReportData, seed: int = 42, max_points: int = DEFAULT_MAX_POINTS) -> None:
    """Write the self-contained HTML report to `path` (atomically: a temp file, then os.replace)."""
    atomic_write_text(path, build_html(data, seed, max_points))
