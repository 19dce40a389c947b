"""The PNG figures (car_select.report.figures)."""

import numpy as np
import pytest

from car_select.report import write_figures

pytest.importorskip("matplotlib", reason="matplotlib (car-select[report]) is not installed")


def test_write_figures_makes_two_pngs_without_a_comparison(tmp_path, data):
    paths = write_figures(tmp_path / "figs", data)
    assert sorted(p.name for p in paths) == ["cluster_map.png", "score_hist.png"]
    for p in paths:
        blob = p.read_bytes()
        assert blob.startswith(b"\x89PNG\r\n\x1a\n") and len(blob) > 5000
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["cluster_map.png", "score_hist.png"]


def test_figures_take_any_strategys_reasons(tmp_path, data):
    """A selection kept for other reasons (another strategy's) draws the same figures."""
    from dataclasses import replace

    other = replace(data, reasons=["coverage" if s else None for s in data.selected])
    paths = write_figures(tmp_path / "figs", other)
    assert [p.name for p in paths] == ["cluster_map.png", "score_hist.png"]
    assert np.array_equal(other.selected, data.selected)
