"""The report's "against baselines", languages, Run and manifest sections, and their figures."""

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from car_select.report import write_figures, write_report
from car_select.report.svg import BETTER
from car_select.selection.baselines import compare_with_random, row_decimals, versus_text
from car_select.wording import number
from synthetic_report import EVIL


def with_comparison(d, shift: float = 0.0):
    """`d` with its scores shifted by `shift` and the summary sections a run adds."""
    d = replace(d, scores=d.scores + shift)
    words = np.arange(len(d.scores)) % 50
    c = compare_with_random(d.scores, d.clusters, d.reduced, words, np.flatnonzero(d.selected), seeds=3, seed=1)
    d.summary = {**d.summary, "against_random": c,
                 "languages": {"detector": "py3langid", "detected": 100, "of": 300, "counts": {"en": 90, "zh": 10},
                               "scorer_languages": ["en"], "warning": None},
                 "manifest": {"car_select_version": "0", "input_sha256": "ab" * 32, "input": EVIL}}
    return d


def row_cells(html: str, label: str) -> list[str]:
    row = re.search(rf"<tr><th>{re.escape(label)}</th>(.*?)</tr>", html)
    assert row, label
    return re.findall(r"<td>(.*?)</td>", row.group(1))


@pytest.fixture(scope="module")
def page(data, tmp_path_factory):
    d = with_comparison(data)
    path = tmp_path_factory.mktemp("r") / "r.html"
    write_report(path, d)
    return d, path.read_text()


def test_report_has_the_baselines_table_and_plots(page):
    d, html = page
    c = d.summary["against_random"]
    assert "<h2>Against baselines</h2>" in html
    assert f"The {c['size']:,} selected records beside 3 uniform random subsets" in html
    cells = row_cells(html, "distance to nearest kept, mean")  # selection, random, top score, longest, vs random
    row = [c[k]["coverage_distance"] for k in ("selected", "random_mean", "random_std", "top_score", "longest_output")]
    # one precision for the whole row, as the text summary's table has it (issue 33)
    assert len(cells) == 5 and cells[2] == number(c["top_score"]["coverage_distance"],
                                                   row_decimals("coverage_distance", row))
    assert 'aria-label="selection as a multiple of random"' in html
    # the quality-against-coverage plot: one point per subset, the random ones as a cloud
    plot = html[html.index('id="quality-coverage"'):]
    plot = plot[:plot.index("</svg>")]
    names = re.findall(r'data-name="([^"]+)"', plot)
    assert sorted(names) == ["longest outputs", "random", "random", "random", "selection", "top score"]


def test_signed_scores_are_compared_by_difference(data, tmp_path):
    """Issue 28: selection mean -1.03 against random -1.79 was shown as ratio 0.58, "worse than random"."""
    d = with_comparison(data, shift=-3.0)
    c = d.summary["against_random"]
    sel, rnd = c["selected"]["mean_score"], c["random_mean"]["mean_score"]
    assert rnd < sel < 0  # the selection scores higher, and both are negative: a ratio would be below 1
    write_report(tmp_path / "r.html", d)
    html = (tmp_path / "r.html").read_text()
    shown = row_cells(html, "mean score")[-1]
    row = [c[k]["mean_score"] for k in ("selected", "random_mean", "random_std", "top_score", "longest_output")]
    assert shown == versus_text("mean_score", sel, rnd, row_decimals("mean_score", row)) and shown.startswith("+")
    assert float(shown) == pytest.approx(sel - rnd, abs=0.5 * 10 ** -row_decimals("mean_score", row))
    bars = html[html.index('aria-label="score difference from random"'):]
    bar = re.search(r'<rect [^>]*fill="([^"]+)"><title>mean score: ([^<]+)</title>', bars[:bars.index("</svg>")])
    assert bar.group(1) == BETTER and float(bar.group(2)) == pytest.approx(sel - rnd, abs=1e-3)
    assert f"{sel / rnd:.2f}" not in bars[:bars.index("</svg>")]
    assert "selection &minus; random" in html  # says how it compares


def test_languages_say_what_detection_ran_on(page, data, tmp_path):
    _, html = page
    assert "<h2>Languages</h2>" in html and "<th>zh</th><td>10</td>" in html
    assert "a seeded random sample of 100 of the 300 distinct records" in html
    d = with_comparison(data)
    d.summary["languages"] = {**d.summary["languages"], "detected": 300}
    write_report(tmp_path / "r.html", d)
    assert "on each of the 300 distinct records" in (tmp_path / "r.html").read_text()


def test_run_panel_has_readable_labels_and_no_repeats(page):
    _, html = page
    run = html[html.index('<h2 style="margin-top:0">Run</h2>'):]
    run = run[:run.index("</div>")]
    assert "<th>PCA components</th><td>17</td>" in run and "<th>seconds per stage</th>" in run
    assert "_" not in re.sub(r"<[^>]+>", "", run)  # no raw keys like records_read
    assert "31,337" not in run and "31,337" in html  # records read: in the Summary card only
    assert html.count("31,337") == 1 and html.count("4,242") == 1


def test_summary_sections_stay_out_of_the_run_table(page):
    d, html = page
    assert "against_random" not in html and "<th>manifest</th>" not in html
    assert "<h2>Run manifest</h2>" in html and "ab" * 32 in html
    assert EVIL not in html  # the manifest is escaped like every user string
    json.dumps(d.summary)


def test_write_figures_adds_vs_random_and_quality_coverage(tmp_path, data):
    pytest.importorskip("matplotlib", reason="matplotlib (car-select[report]) is not installed")
    names = sorted(p.name for p in write_figures(tmp_path / "figs", with_comparison(data, shift=-3.0)))
    assert names == ["cluster_map.png", "quality_coverage.png", "score_hist.png", "vs_random.png"]
    for name in names:
        assert (tmp_path / "figs" / name).read_bytes().startswith(b"\x89PNG")


def test_figure_names_match_what_write_figures_writes(tmp_path, data):
    pytest.importorskip("matplotlib", reason="matplotlib (car-select[report]) is not installed")
    from car_select.api import FIGURE_NAMES

    written = {p.name for p in write_figures(tmp_path / "figs", with_comparison(data))}
    assert written == set(FIGURE_NAMES)


def test_one_selected_record_is_worded_in_the_singular():
    from car_select.report.html import _baselines_html

    reduced = np.random.default_rng(0).normal(size=(3, 2))
    c = compare_with_random(np.array([1.0, 2.0, 3.0]), np.array([0, 0, 1]), reduced, np.array([3, 4, 5]), np.array([2]),
                            seeds=1, seed=0)
    text = _baselines_html(c)
    assert "The 1 selected record beside 1 uniform random subset of the same size" in text
    assert "the 1 best-scored record (score alone)" in text and "1 records" not in text
