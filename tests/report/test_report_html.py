"""The HTML report (car_select.report.html), statically and in a real browser.

The browser tests open the report in a real headless Chromium (Debian's `chromium`, installed in CI
by .ci/install-browser) driven over the DevTools protocol with `websocket-client`; they are skipped,
with the reason, where either is missing.
"""

from __future__ import annotations

import importlib.util
import json
import re
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from car_select.report import project_2d, write_report

from synthetic_report import EVIL, K, N, N_SEL, make_data

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report(data, tmp_path_factory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_report(path, data)
    return path, path.read_text(encoding="utf-8")


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.script_text: dict[str, str] = {}
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "script":
            self._in = a.get("id", "")
            self.script_text[self._in] = ""

    def handle_endtag(self, tag):
        if tag == "script":
            self._in = None

    def handle_data(self, text):
        if self._in is not None:
            self.script_text[self._in] += text


def parse(html: str) -> _Collect:
    p = _Collect()
    p.feed(html)
    return p


# ---------------------------------------------------------------------------------------------
# project_2d


def test_project_2d_keeps_every_selected_row_and_caps_the_sample():
    rng = np.random.default_rng(1)
    reduced = rng.normal(size=(400, 6))
    selected = np.zeros(400, dtype=bool)
    selected[rng.choice(400, 30, replace=False)] = True
    idx, xy = project_2d(reduced, selected, seed=3, max_points=120)
    assert len(idx) == 120 and xy.shape == (120, 2)
    assert np.all(np.diff(idx) > 0)
    assert set(np.flatnonzero(selected)) <= set(idx.tolist())
    assert np.isfinite(xy).all()
    idx2, xy2 = project_2d(reduced, selected, seed=3, max_points=120)
    assert np.array_equal(idx, idx2) and np.allclose(xy, xy2)  # seeded


def test_project_2d_more_selected_than_max_points_draws_them_all():
    reduced = np.random.default_rng(2).normal(size=(60, 4))
    selected = np.zeros(60, dtype=bool)
    selected[:40] = True
    idx, xy = project_2d(reduced, selected, max_points=25)
    assert idx.tolist() == list(range(40)) and xy.shape == (40, 2)


def test_project_2d_tiny_inputs_fall_back_to_pca_dims():
    reduced = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    idx, xy = project_2d(reduced, np.array([True, False, False]))
    assert idx.tolist() == [0, 1, 2]
    assert np.array_equal(xy, reduced[:, :2])
    idx, xy = project_2d(np.zeros((0, 3)), np.zeros(0, dtype=bool))
    assert len(idx) == 0 and xy.shape == (0, 2)


# ---------------------------------------------------------------------------------------------
# HTML, statically


def test_report_is_self_contained(report):
    _, html = report
    assert re.search(r"<script[^>]*\bsrc\s*=", html, re.I) is None
    assert re.search(r"<link\b", html, re.I) is None
    assert re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I) is None
    assert re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", html, re.I) is None
    assert re.search(r"@import|@font-face", html, re.I) is None
    assert "http://" not in html and "https://" not in html
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_report_shows_the_summary_numbers(report, data):
    _, html = report
    for text in ("31,337", "4,242", "17", "0.9517", "12.25", "3.5", "15.75", str(N_SEL)):
        assert text in html, text
    assert "data/alpaca&lt;&amp;&gt;.jsonl" in html and "alpaca<&>" not in html
    assert f"{N:,}" in html


def test_report_has_one_table_row_per_cluster(report, data):
    _, html = report
    rows = [a for t, a in parse(html).tags if t == "tr" and "data-cluster" in a]
    assert sorted(int(a["data-cluster"]) for a in rows) == list(range(K))
    # the example is the best-scored instruction, escaped
    assert "&lt;/script&gt;&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html


def test_instruction_html_cannot_break_out(report, data):
    _, html = report
    p = parse(html)
    scripts = [a for t, a in p.tags if t == "script"]
    assert len(scripts) == 2  # the JSON payload and the page script, nothing injected
    assert html.count("</script>") == 2 and html.lower().count("<script") == 2
    assert "<b>bold</b>" not in html and "<img" not in html and 'onerror="window' not in html
    payload = json.loads(p.script_text["car-data"])
    assert "<" not in p.script_text["car-data"] and "\u2028" not in p.script_text["car-data"]
    assert payload["t"][7] == " ".join(EVIL.split())  # the tooltip text round-trips exactly
    n_drawn = len(payload["x"])
    assert n_drawn == N and sum(payload["sel"]) == N_SEL  # small input: every record is drawn
    assert all(len(payload[key]) == n_drawn for key in ("y", "c", "sel", "r", "s", "t"))


def test_write_report_is_atomic_and_overwrites(tmp_path, data):
    path = tmp_path / "sub" / "report.html"
    path.parent.mkdir()
    path.write_text("old")
    write_report(path, data)
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temp file left


def test_write_report_into_a_missing_directory_is_a_user_error(tmp_path, data):
    from car_select.errors import CarSelectError

    with pytest.raises(CarSelectError, match="does not exist"):
        write_report(tmp_path / "nope" / "report.html", data)


def test_write_report_handles_nan_scores_and_a_single_cluster(tmp_path):
    d = make_data(n=40, k=1, n_sel=3, seed=5)
    d.scores[3] = np.nan
    write_report(tmp_path / "r.html", d)
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert html.count('data-cluster="') == 1
    assert "NaN" not in parse(html).script_text["car-data"]


def test_write_report_rejects_mismatched_lengths(tmp_path, data):
    bad = make_data()
    bad.instructions = bad.instructions[:-1]
    with pytest.raises(ValueError, match="instructions"):
        write_report(tmp_path / "r.html", bad)


# ---------------------------------------------------------------------------------------------
# HTML in a real browser


def _load_screenshot_helper():
    spec = importlib.util.spec_from_file_location(
        "report_screenshot", ROOT / "scripts" / "report_screenshot.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def browser():
    helper = _load_screenshot_helper()
    if helper.find_chromium() is None:
        pytest.skip(
            "no chromium found (/usr/bin/chromium): run .ci/install-browser (apt-get install chromium)"
        )
    pytest.importorskip("websocket", reason="websocket-client is not installed (it is in the test extra)")
    with helper.HeadlessChromium(width=1280, height=900) as b:
        yield b


@pytest.fixture(scope="module")
def loaded(browser, report, data):
    path, _ = report
    browser.open(path)
    assert browser.wait_for("document.body.dataset.mapPoints", timeout=30), "the map was never drawn"
    browser.pump(0.3)
    return browser


def test_browser_loads_without_console_errors(loaded):
    assert loaded.console_errors() == []
    assert loaded.evaluate("window.__pwned === undefined")
    assert loaded.evaluate("document.querySelectorAll('script').length") == 2
    assert loaded.evaluate("document.querySelectorAll('img').length") == 0


def test_browser_draws_every_point_on_the_canvas(loaded, data):
    idx, _ = data.projection()
    assert int(loaded.evaluate("document.body.dataset.mapPoints")) == len(idx) == N
    painted = loaded.evaluate(
        """(() => { const c = document.getElementById('map');
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let k = 0; for (let i = 0; i < px.length; i += 4)
          if (px[i] < 245 || px[i + 1] < 245 || px[i + 2] < 245) k++;
        return k; })()"""
    )
    assert painted > 2000, painted
    # selected points carry a dark outline: near-black pixels exist
    dark = loaded.evaluate(
        """(() => { const c = document.getElementById('map');
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let k = 0; for (let i = 0; i < px.length; i += 4)
          if (px[i] < 60 && px[i + 1] < 60 && px[i + 2] < 60) k++;
        return k; })()"""
    )
    assert dark > 50, dark


def test_browser_tooltip_shows_the_instruction(loaded):
    i = loaded.evaluate("carReport.firstSelected()")
    assert i >= 0
    loaded.evaluate("document.getElementById('map').scrollIntoView()")
    x, y = loaded.evaluate(
        f"(() => {{ const r = document.getElementById('map').getBoundingClientRect();"
        f" const p = carReport.pointXY({i}); return [r.left + p[0], r.top + p[1]]; }})()"
    )
    loaded.mouse_move(x, y)
    time.sleep(0.1)
    tip = loaded.evaluate(
        "(() => { const t = document.getElementById('tip'); return [t.style.display, t.textContent]; })()"
    )
    assert tip[0] == "block"
    assert (
        "selected" in tip[1]
        and "cluster" in tip[1]
        and ("Instruction number" in tip[1] or "__pwned" in tip[1])
    )
    assert loaded.evaluate("document.querySelectorAll('#tip script, #tip img').length") == 0


def test_browser_table_sorts_and_filters(loaded):
    sizes = "Array.from(document.querySelectorAll('#clusters tbody tr')).map(r => +r.cells[1].dataset.v)"
    loaded.evaluate("document.querySelectorAll('#clusters th')[5].click()")  # best score, ascending
    best = loaded.evaluate(
        "Array.from(document.querySelectorAll('#clusters tbody tr')).map(r => +r.cells[5].dataset.v)"
    )
    assert best == sorted(best)
    loaded.evaluate("document.querySelectorAll('#clusters th')[5].click()")  # descending
    best = loaded.evaluate(
        "Array.from(document.querySelectorAll('#clusters tbody tr')).map(r => +r.cells[5].dataset.v)"
    )
    assert best == sorted(best, reverse=True) and best[0] == 2.0
    assert len(loaded.evaluate(sizes)) == K
    # "selected only" redraws just the selected points; clicking a row highlights without losing points
    loaded.evaluate(
        "const cb = document.getElementById('onlysel'); cb.checked = true; cb.dispatchEvent(new Event('change'))"
    )
    assert int(loaded.evaluate("document.body.dataset.mapPoints")) == N_SEL
    loaded.evaluate(
        "const cb2 = document.getElementById('onlysel'); cb2.checked = false; cb2.dispatchEvent(new Event('change'))"
    )
    loaded.evaluate("document.querySelector('#clusters tbody tr').click()")
    assert int(loaded.evaluate("document.body.dataset.mapPoints")) == N
    assert loaded.console_errors() == []


def test_browser_screenshot(loaded, tmp_path):
    out = loaded.screenshot(tmp_path / "report.png")
    blob = out.read_bytes()
    assert blob.startswith(b"\x89PNG\r\n\x1a\n") and len(blob) > 20000


def test_a_conversation_is_shown_in_context_and_the_scored_texts_are_named():
    """Issue 33: a cluster's example was a last user message alone ("That sounds cool."); the report now shows
    the conversation's earlier turns with it, and says what was scored."""
    from car_select import Config, Record
    from car_select.report.data import record_example
    from car_select.report.html import EXAMPLE_CHARS, _truncate, build_html
    from car_select.scored import describe, describe_lines
    from synthetic_report import make_data
    import html

    chat = Record("That sounds cool.", "It is!", history=(("I am planning a week in Kyoto in April. " * 8,
                                                           "Go to the Philosopher's Path for the cherry blossoms."),))
    example = record_example(chat)
    assert example.startswith("user: I am planning a week in Kyoto") and example.endswith("user: That sounds cool.")
    assert "assistant: Go to the Philosopher's Path" in example
    assert record_example(Record("Name a colour.", "Red")) == "Name a colour."
    shown = _truncate(example, EXAMPLE_CHARS)  # a long conversation keeps its opening and its last turn
    assert len(shown) <= EXAMPLE_CHARS and shown.startswith("user: I am planning")
    assert shown.endswith("That sounds cool.")

    data = make_data()
    best = int(np.argmax(data.scores))
    data.instructions[best] = example
    scored = describe([chat, Record("q", "a", system="Be brief.")], Config(), {"tokens": 256, "head": 192, "tail": 64},
                      0, "sharegpt")
    data.summary = {**data.summary, "scored": scored}
    page = build_html(data)
    assert "That sounds cool." in page and "I am planning a week in Kyoto" in page
    for label, text in describe_lines(scored):
        assert f"<th>{label}</th><td>{text}</td>" in html.unescape(page)
