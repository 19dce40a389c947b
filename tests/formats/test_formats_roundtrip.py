"""read_dataset -> write_subset writes the chosen records back exactly as they were read."""

from __future__ import annotations

import csv
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from car_select.formats import FILE_FORMATS, read_dataset, write_subset
from car_select.formats.dataset import output_format
from car_select.records import Record

SUBSET = [7, 0, 11, 3, 5]  # unordered, includes the first and last records


def shuffled_subset(n: int, seed: int = 0) -> list[int]:
    idx = list(range(n))
    random.Random(seed).shuffle(idx)
    return idx[: n // 2 + 1]


def test_file_formats_constant():
    assert FILE_FORMATS == ("json", "jsonl", "csv", "parquet", "hf")


@pytest.mark.parametrize("indent", [2, 4, None])
def test_json_array_roundtrip(tmp_path, rows, assert_same, indent):
    src = tmp_path / "in.json"
    src.write_text(json.dumps(rows, indent=indent, ensure_ascii=False), encoding="utf-8")
    ds = read_dataset(src)
    assert (ds.file_format, ds.schema, len(ds.records)) == ("json", "alpaca", len(rows))
    assert ds.path == str(src)
    idx = shuffled_subset(len(rows))
    out = tmp_path / "out.json"
    write_subset(ds, idx, out)
    text = out.read_text(encoding="utf-8")
    assert text.lstrip().startswith("[")
    assert_same(json.loads(text), [rows[i] for i in idx])
    # the same layout as the input
    assert text == json.dumps([rows[i] for i in idx], indent=indent, ensure_ascii=False) + "\n"


def test_json_ascii_escapes_are_kept(tmp_path, rows):
    src = tmp_path / "in.json"
    src.write_text(json.dumps(rows, indent=4), encoding="utf-8")  # ensure_ascii=True: \u00e9 escapes
    ds = read_dataset(src)
    write_subset(ds, [1, 2], tmp_path / "out.json")
    assert (tmp_path / "out.json").read_text(encoding="utf-8") == json.dumps([rows[1], rows[2]], indent=4) + "\n"


def test_jsonl_roundtrip(tmp_path, rows, assert_same):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    ds = read_dataset(src)
    assert (ds.file_format, ds.schema) == ("jsonl", "alpaca")
    idx = shuffled_subset(len(rows), seed=1)
    out = tmp_path / "out.jsonl"
    write_subset(ds, idx, out)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(idx)
    assert_same([json.loads(line) for line in lines], [rows[i] for i in idx])


def test_jsonl_blank_lines_crlf_and_bom(tmp_path, rows, assert_same):
    src = tmp_path / "in.jsonl"
    body = "\r\n".join(json.dumps(r) for r in rows[:3]) + "\r\n\r\n"
    src.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    ds = read_dataset(src)
    assert len(ds.records) == 3
    write_subset(ds, [2, 0], tmp_path / "out.jsonl")
    got = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert_same(got, [rows[2], rows[0]])


def _csv_rows(rows):
    """The rows as a CSV holds them: every value a string."""
    return [{k: (v if isinstance(v, str) else json.dumps(v)) for k, v in r.items() if k != "note"} for r in rows]


def test_csv_roundtrip(tmp_path, rows, assert_same):
    table = _csv_rows(rows)
    header = list(table[0])
    src = tmp_path / "in.csv"
    with open(src, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, header)
        w.writeheader()
        w.writerows(table)
    ds = read_dataset(src)
    assert (ds.file_format, ds.schema, len(ds.records)) == ("csv", "alpaca", len(rows))
    assert ds.records[0].instruction == rows[0]["instruction"]  # quotes, commas, newlines survive
    assert ds.raw(3) == table[3]
    idx = shuffled_subset(len(rows), seed=2)
    out = tmp_path / "out.csv"
    write_subset(ds, idx, out)
    with open(out, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == header
        got = list(reader)
    assert_same(got, [table[i] for i in idx])
    # csv.DictWriter writes \r\n line ends: kept
    assert out.read_bytes().split(b"\n", 1)[0].endswith(b"\r")


def _typed_table(rows):
    schema = pa.schema(
        [
            ("instruction", pa.string()),
            ("input", pa.string()),
            ("output", pa.large_string()),
            ("id", pa.int32()),
            ("score", pa.float32()),
            ("keep", pa.bool_()),
            ("tags", pa.list_(pa.string())),
            ("meta", pa.struct([("source", pa.string()), ("rank", pa.int64())])),
        ],
        metadata={b"origin": b"unit-test"},
    )
    return pa.Table.from_pylist([{k: r[k] for k in schema.names} for r in rows], schema=schema)


def test_parquet_roundtrip_keeps_schema(tmp_path, rows):
    table = _typed_table(rows)
    src = tmp_path / "in.parquet"
    pq.write_table(table, src)
    ds = read_dataset(src)
    assert (ds.file_format, ds.schema, len(ds.records)) == ("parquet", "alpaca", len(rows))
    assert ds.records[5].output == "   "
    assert ds.raw(2)["id"] == 2 and ds.raw(2)["meta"] == {"source": "unit", "rank": 20}
    idx = shuffled_subset(len(rows), seed=3)
    out = tmp_path / "out.parquet"
    write_subset(ds, idx, out)
    got = pq.read_table(out)
    as_read = pq.read_table(src)  # (Parquet names list items "element" whatever the writer had)
    assert got.schema.equals(as_read.schema, check_metadata=True)
    assert got.schema.metadata[b"origin"] == b"unit-test"
    assert got.equals(as_read.take(idx))
    assert got.column("id").type == pa.int32() and got.column("score").type == pa.float32()


def test_read_records_normalised(tmp_path, rows):
    src = tmp_path / "in.json"
    src.write_text(json.dumps(rows), encoding="utf-8")
    ds = read_dataset(src)
    assert ds.records[0] == Record(instruction=rows[0]["instruction"], output="Answer 0", input="context 0")
    assert ds.records[1].input == ""
    assert all(isinstance(r, Record) and not r.is_multi_turn for r in ds.records)


def test_missing_input_key_means_empty(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "input": null, "output": ""}\n')
    ds = read_dataset(src)
    assert [r.input for r in ds.records] == ["", ""]
    assert ds.records[1].output == ""  # empty output: a valid (low-scoring) record


def test_raw_is_a_copy(tmp_path, rows):
    src = tmp_path / "in.json"
    src.write_text(json.dumps(rows), encoding="utf-8")
    ds = read_dataset(src)
    r = ds.raw(0)
    r["tags"].append("mutated")
    assert ds.raw(0)["tags"] == ["a", "t0"]
    assert ds.raw(-1)["id"] == len(rows) - 1
    with pytest.raises(IndexError):
        ds.raw(len(rows))


def test_duplicate_and_empty_indices(tmp_path, rows, assert_same):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ds = read_dataset(src)
    write_subset(ds, [1, 1], tmp_path / "dup.jsonl")
    assert_same([json.loads(x) for x in (tmp_path / "dup.jsonl").read_text().splitlines()], [rows[1], rows[1]])
    write_subset(ds, [], tmp_path / "none.jsonl")
    assert (tmp_path / "none.jsonl").read_text() == ""
    write_subset(ds, [], tmp_path / "none.json", "json")
    assert json.loads((tmp_path / "none.json").read_text()) == []
    with pytest.raises(IndexError):
        write_subset(ds, [len(rows)], tmp_path / "bad.jsonl")


# ------------------------------------------------------------------------------------------------
# conversions


@pytest.fixture
def json_ds(tmp_path, rows):
    src = tmp_path / "in.json"
    src.write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
    return read_dataset(src)


def test_convert_json_to_jsonl(tmp_path, json_ds, rows, assert_same):
    out = tmp_path / "o.txt"
    write_subset(json_ds, SUBSET, out, file_format="jsonl")
    assert_same([json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()], [rows[i] for i in SUBSET])


def test_convert_jsonl_to_json(tmp_path, rows, assert_same):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "o.json"
    write_subset(read_dataset(src), SUBSET, out, file_format="json")
    assert_same(json.loads(out.read_text(encoding="utf-8")), [rows[i] for i in SUBSET])


def test_convert_json_to_csv(tmp_path, json_ds, rows):
    out = tmp_path / "o.csv"
    write_subset(json_ds, SUBSET, out)  # format from the extension
    with open(out, newline="", encoding="utf-8") as fh:
        got = list(csv.DictReader(fh))
    assert [g["instruction"] for g in got] == [rows[i]["instruction"] for i in SUBSET]
    assert got[0]["id"] == "7" and got[0]["keep"] == "false" and got[0]["note"] == ""
    assert json.loads(got[0]["meta"]) == rows[7]["meta"]
    # and the CSV reads back as the same records
    back = read_dataset(out)
    assert back.records == [json_ds.records[i] for i in SUBSET]


def test_convert_json_to_parquet(tmp_path, json_ds, rows, assert_same):
    out = tmp_path / "o.bin"
    write_subset(json_ds, SUBSET, out, file_format="parquet")
    assert_same(pq.read_table(out).to_pylist(), [rows[i] for i in SUBSET])
    assert read_dataset(out).file_format == "parquet"  # detected by content (PAR1), not the extension


def test_convert_parquet_to_json_and_csv(tmp_path, rows, assert_same):
    src = tmp_path / "in.parquet"
    pq.write_table(_typed_table(rows), src)
    ds = read_dataset(src)
    write_subset(ds, SUBSET, tmp_path / "o.json")
    got = json.loads((tmp_path / "o.json").read_text(encoding="utf-8"))
    assert [g["id"] for g in got] == SUBSET and got[0]["meta"] == rows[7]["meta"]
    write_subset(ds, SUBSET, tmp_path / "o.csv")
    assert read_dataset(tmp_path / "o.csv").records == [ds.records[i] for i in SUBSET]


def test_convert_csv_to_jsonl(tmp_path, assert_same):
    src = tmp_path / "in.csv"
    src.write_text('instruction,output,extra\n"a, b","line1\nline2",x\nc,d,y\n', encoding="utf-8")
    ds = read_dataset(src)
    write_subset(ds, [1, 0], tmp_path / "o.jsonl")
    got = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert_same(got, [{"instruction": "c", "output": "d", "extra": "y"},
                      {"instruction": "a, b", "output": "line1\nline2", "extra": "x"}])


def test_unknown_output_format(tmp_path, json_ds):
    from car_select.errors import CarSelectError

    with pytest.raises(CarSelectError, match="unknown format 'xml'"):
        write_subset(json_ds, [0], tmp_path / "o.xml", file_format="xml")
    assert list(tmp_path.iterdir()) == [tmp_path / "in.json"]


@pytest.mark.parametrize(
    "src_format, out_name, file_format, expected",
    [
        ("json", "o.json", None, "json"),
        ("jsonl", "o.json", None, "json"),  # a known extension decides: .json is a JSON array (issue 28)
        ("json", "o.jsonl", None, "jsonl"),
        ("json", "o.csv", None, "csv"),
        ("csv", "o.parquet", None, "parquet"),
        ("parquet", "o.json", None, "json"),
        ("hf", "o.jsonl", None, "jsonl"),
        ("hf", "o", None, "hf"),
        ("jsonl", "o", None, "jsonl"),
        ("json", "o", "jsonl", "jsonl"),  # no known extension: the requested format
        ("json", "o.jsonl.gz", "jsonl", "jsonl"),  # agreeing with the extension
    ],
)
def test_output_format_rule(src_format, out_name, file_format, expected):
    from car_select.formats import Dataset

    ds = Dataset(records=[], path="x", file_format=src_format, schema="alpaca")
    assert output_format(ds, out_name, file_format) == expected


def test_an_output_format_that_contradicts_the_extension_is_refused():
    from car_select.errors import CarSelectError
    from car_select.formats import Dataset

    ds = Dataset(records=[], path="x", file_format="json", schema="alpaca")
    with pytest.raises(CarSelectError, match="^output_format jsonl contradicts the output o.csv"):
        output_format(ds, "o.csv", "jsonl")


# ------------------------------------------------------------------------------------------------
# detection


def test_detect_jsonl_content_in_json_file(tmp_path, rows):
    src = tmp_path / "data.json"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]), encoding="utf-8")
    ds = read_dataset(src)
    assert ds.file_format == "jsonl" and len(ds.records) == 2
    write_subset(ds, [1], tmp_path / "sel.json")  # a .json output is a JSON array, whatever the input
    assert json.loads((tmp_path / "sel.json").read_text()) == [rows[1]]


def test_detect_by_content_without_extension(tmp_path, rows):
    (tmp_path / "a").write_text(json.dumps(rows[:2]), encoding="utf-8")
    (tmp_path / "b").write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(rows[:2]), tmp_path / "c")
    assert read_dataset(tmp_path / "a").file_format == "json"
    assert read_dataset(tmp_path / "b").file_format == "jsonl"
    assert read_dataset(tmp_path / "c").file_format == "parquet"


def test_file_format_override(tmp_path):
    src = tmp_path / "data.txt"
    src.write_text("instruction,output\nq,a\n", encoding="utf-8")
    ds = read_dataset(src, file_format="csv")
    assert ds.file_format == "csv" and ds.records == [Record("q", "a")]
    ds = read_dataset(src, file_format="CSV")
    assert ds.file_format == "csv"



@pytest.mark.parametrize("name", ["in.json", "in.jsonl"])
def test_compact_json_stays_compact(tmp_path, rows, name):
    src = tmp_path / name
    if name.endswith(".jsonl"):
        src.write_text("".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for r in rows))
    else:
        src.write_text(json.dumps(rows, separators=(",", ":"), ensure_ascii=False) + "\n")
    ds = read_dataset(src)
    out = tmp_path / ("out" + src.suffix)
    write_subset(ds, range(len(rows)), out)
    assert out.read_bytes() == src.read_bytes()
