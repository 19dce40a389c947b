"""The report's "against random", languages and manifest sections, and the vs_random.png figure."""

import json

import numpy as np
import pytest

from car_select.report import write_figures, write_report
from car_select.value import compare_with_random
from test_report import EVIL, make_data


@pytest.fixture(scope="module")
def data():
    d = make_data()
    words = np.arange(len(d.scores)) % 50
    c = compare_with_random(d.scores, d.clusters, d.reduced, words, np.flatnonzero(d.selected), seeds=3, seed=1)
    d.summary = {**d.summary, "against_random": c,
                 "languages": {"detector": "langid", "counts": {"en": 90, "zh": 10}, "scorer_languages": ["en"],
                               "warning": None},
                 "manifest": {"car_select_version": "0", "input_sha256": "ab" * 32, "input": EVIL}}
    return d


def test_report_has_the_against_random_table_and_plot(tmp_path, data):
    path = tmp_path / "r.html"
    write_report(path, data)
    html = path.read_text()
    c = data.summary["against_random"]
    assert "<h2>Against random</h2>" in html and 'aria-label="selection as a multiple of random"' in html
    assert f"The {c['size']:,} selected records beside 3 uniform random subsets" in html
    sel, rnd = c["selected"]["mean_score"], c["random_mean"]["mean_score"]
    assert f"{sel / rnd:.2f}" in html  # the bar's label
    assert html.count("<rect") >= 8  # one bar per statistic (plus the histograms)
    assert "<h2>Languages</h2>" in html and "<th>zh</th><td>10</td>" in html
    assert "<h2>Run manifest</h2>" in html and "ab" * 32 in html
    assert EVIL not in html  # the manifest is escaped like every user string


def test_write_figures_adds_vs_random(tmp_path, data):
    pytest.importorskip("matplotlib", reason="matplotlib (car-select[report]) is not installed")
    names = sorted(p.name for p in write_figures(tmp_path / "figs", data))
    assert names == ["cluster_map.png", "score_hist.png", "vs_random.png"]
    assert (tmp_path / "figs" / "vs_random.png").read_bytes().startswith(b"\x89PNG")


def test_summary_sections_stay_out_of_the_run_table(tmp_path, data):
    path = tmp_path / "r.html"
    write_report(path, data)
    html = path.read_text()
    assert "<th>against_random</th>" not in html and "<th>manifest</th>" not in html
    json.dumps(data.summary)
