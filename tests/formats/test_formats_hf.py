"""Hugging Face datasets: save_to_disk folders, hf://owner/name[:split], and `datasets` missing."""

from __future__ import annotations

import json
import sys

import pytest

from car_select.errors import CarSelectError
from car_select.formats import read_dataset, write_subset
from car_select.formats.hf import parse_hf_uri
from car_select.records import Record

datasets = pytest.importorskip("datasets", reason="the optional `datasets` package is not installed")


@pytest.fixture
def hf_folder(tmp_path, rows):
    folder = tmp_path / "hf_in"
    datasets.Dataset.from_list(rows).save_to_disk(str(folder))
    return folder


def test_save_to_disk_roundtrip(tmp_path, hf_folder, rows, assert_same):
    ds = read_dataset(hf_folder)
    assert (ds.file_format, ds.schema, len(ds.records)) == ("hf", "alpaca", len(rows))
    assert ds.records[0] == Record(rows[0]["instruction"], rows[0]["output"], input=rows[0]["input"])
    assert_same(ds.raw(3), rows[3])
    idx = [9, 2, 11, 0, 5]
    out = tmp_path / "hf_out"
    write_subset(ds, idx, out)  # hf in -> hf out by default
    back = datasets.load_from_disk(str(out))
    assert back.features == datasets.load_from_disk(str(hf_folder)).features
    assert_same(back.to_list(), [rows[i] for i in idx])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf_in", "hf_out"]  # no temporaries left


def test_save_to_disk_replaces_existing_folder(tmp_path, hf_folder, rows):
    ds = read_dataset(hf_folder)
    out = tmp_path / "hf_out"
    write_subset(ds, [1, 2, 3], out)
    write_subset(ds, [4], out)
    assert [r["id"] for r in datasets.load_from_disk(str(out)).to_list()] == [4]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf_in", "hf_out"]


def test_hf_to_jsonl_and_json_to_hf(tmp_path, hf_folder, rows, assert_same):
    ds = read_dataset(hf_folder)
    write_subset(ds, [3, 1], tmp_path / "o.jsonl")
    assert_same([json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()], [rows[3], rows[1]])
    src = tmp_path / "in.json"
    src.write_text(json.dumps(rows), encoding="utf-8")
    write_subset(read_dataset(src), [3, 1], tmp_path / "conv", file_format="hf")
    assert_same(datasets.load_from_disk(str(tmp_path / "conv")).to_list(), [rows[3], rows[1]])


def test_dataset_dict_folder_uses_train(tmp_path, rows):
    folder = tmp_path / "dd"
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows[:3]), "test": datasets.Dataset.from_list(rows[3:4])}
    ).save_to_disk(str(folder))
    ds = read_dataset(folder)
    assert len(ds.records) == 3 and ds.file_format == "hf"


def test_sharegpt_in_hf_folder(tmp_path):
    rows = [{"conversations": [{"from": "human", "value": "u"}, {"from": "gpt", "value": "a"}], "id": "x"}]
    folder = tmp_path / "sg"
    datasets.Dataset.from_list(rows).save_to_disk(str(folder))
    ds = read_dataset(folder)
    assert ds.schema == "sharegpt" and ds.records == [Record("u", "a")]


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("hf://tatsu-lab/alpaca", ("tatsu-lab/alpaca", "train")),
        ("hf://tatsu-lab/alpaca:test", ("tatsu-lab/alpaca", "test")),
        ("hf://squad:validation", ("squad", "validation")),
    ],
)
def test_parse_hf_uri(uri, expected):
    assert parse_hf_uri(uri) == expected


@pytest.mark.parametrize("uri", ["hf://", "hf://owner/name:", "hf://a/b/c", "hf://has space/x"])
def test_parse_hf_uri_errors(uri):
    with pytest.raises(CarSelectError, match="expected hf://owner/name"):
        parse_hf_uri(uri)


def test_hf_uri_loads_via_load_dataset(monkeypatch, rows, tmp_path, assert_same):
    calls = []

    def fake_load_dataset(name, split=None, **kwargs):
        calls.append((name, split))
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds = read_dataset("hf://owner/name")
    assert calls == [("owner/name", "train")]
    assert (ds.file_format, ds.path, len(ds.records)) == ("hf", "hf://owner/name", len(rows))
    read_dataset("hf://owner/name:validation")
    assert calls[-1] == ("owner/name", "validation")
    write_subset(ds, [2], tmp_path / "o.json")
    assert_same(json.loads((tmp_path / "o.json").read_text()), [rows[2]])


def test_hf_uri_load_failure_is_one_line(monkeypatch):
    def boom(name, split=None, **kwargs):
        raise FileNotFoundError(f"Dataset '{name}' doesn't exist on the Hub\nor cannot be accessed.")

    monkeypatch.setattr(datasets, "load_dataset", boom)
    with pytest.raises(CarSelectError) as err:
        read_dataset("hf://owner/missing:train")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("hf://owner/missing:train: cannot load dataset 'owner/missing'")


def test_without_datasets_package(monkeypatch, tmp_path, hf_folder, rows):
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` now fails
    for source in ("hf://owner/name", str(hf_folder)):
        with pytest.raises(CarSelectError, match=r"pip install 'car-select\[hf\]'"):
            read_dataset(source)
    src = tmp_path / "in.json"
    src.write_text(json.dumps(rows), encoding="utf-8")
    with pytest.raises(CarSelectError, match=r"car-select\[hf\]"):
        write_subset(read_dataset(src), [0], tmp_path / "out_hf", file_format="hf")
    assert not (tmp_path / "out_hf").exists()
