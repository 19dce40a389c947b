"""Multi-turn data from ../shared/data, end to end through the CLI (JSONL in, JSONL out)."""

import json
import subprocess
import sys

import pytest

from datapaths import shared_file


@pytest.mark.parametrize("parts,n", [(("mt-bench-101", "mtbench101.jsonl"), 1388),
                                     (("sharegpt-zh-1k", "sharegpt_zh_1K_format.jsonl"), 1000)])
def test_multi_turn_sets_run_end_to_end(tmp_path, parts, n):
    src = shared_file(*parts)
    out, ann = tmp_path / "out.jsonl", tmp_path / "ann.jsonl"
    res = subprocess.run([sys.executable, "-m", "car_select", "run", str(src), "-o", str(out), "--n1", "50",
                          "--annotated", str(ann), "--cache-dir", str(tmp_path / "cache"), "--json"],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["records_read"] == n
    rows = [json.loads(x) for x in ann.read_text().splitlines()]
    assert len(rows) == n
    raw = src.read_text(encoding="utf-8").splitlines()
    written = out.read_text(encoding="utf-8").splitlines()
    chosen = sorted((r for r in rows if r["selected"]), key=lambda r: (-r["score"], r["index"]))
    assert [json.loads(x) for x in written] == [json.loads(raw[r["index"]]) for r in chosen]
    assert summary["selected"] == len(chosen) >= 50
