"""The real shared datasets parse (skipped where ../shared/data is absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from car_select.formats import read_dataset, write_subset

from datapaths import SHARED_DATA as DATA  # noqa: E402

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data not found at {DATA}"),
]


def need(rel: str) -> Path:
    path = DATA / rel
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


def test_mt_bench_101():
    ds = read_dataset(need("mt-bench-101/mtbench101.jsonl"))
    assert (ds.file_format, ds.schema, len(ds.records)) == ("jsonl", "turns", 1388)
    assert all(r.is_multi_turn for r in ds.records)
    assert ds.raw(0)["task"] == "GR" and ds.records[0].instruction == ds.raw(0)["history"][-1]["user"]


def test_sharegpt_zh_1k(tmp_path):
    path = need("sharegpt-zh-1k/sharegpt_zh_1K_format.jsonl")
    ds = read_dataset(path)
    assert (ds.file_format, ds.schema, len(ds.records)) == ("jsonl", "sharegpt", 1000)
    assert sum(r.is_multi_turn for r in ds.records) > 600
    # written back as read (values; the layout stays compact JSON Lines)
    idx = [780, 0, 999, 5]
    write_subset(ds, idx, tmp_path / "sel.jsonl")
    lines = (tmp_path / "sel.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x) for x in lines] == [ds.raw(i) for i in idx]
    assert lines[0] == '{"conversations":[{"from":"human","value":"最好的建议？"}]}'
    assert ds.records[780].output == ""  # its only message was never answered


def test_stanford_alpaca_52k():
    path = need("stanford-alpaca-52k/alpaca_data.json")
    ds = read_dataset(path)
    assert (ds.file_format, ds.schema, len(ds.records)) == ("json", "alpaca", 52002)


def test_lima_history():
    ds = read_dataset(need("lima-1k/lima.json"))
    assert ds.schema == "alpaca-history" and len(ds.records) == 1029
    assert sum(r.is_multi_turn for r in ds.records) == 29
