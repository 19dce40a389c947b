"""Every reader, given random bytes or random JSON structures, returns records or raises one
CarSelectError; never any other exception."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from car_select.errors import CarSelectError
from car_select.formats import read_dataset

EXTENSIONS = [".json", ".jsonl", ".csv", ".parquet", ".json.gz", ".jsonl.gz", ".txt"]
FORMATS = [None, "json", "jsonl", "csv", "parquet"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["instruction", "input", "output", "conversations", "messages", "history", "from",
                         "value", "role", "content", "x"]), children, max_size=5),
    max_leaves=20,
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def read_or_user_error(path, fmt):
    try:
        ds = read_dataset(path, file_format=fmt)
    except CarSelectError as exc:
        assert "\n" not in str(exc)
        return
    assert len(ds.records) > 0


@FUZZ
@given(data=st.binary(max_size=400), ext=st.sampled_from(EXTENSIONS), fmt=st.sampled_from(FORMATS),
       gz=st.booleans())
def test_random_bytes(tmp_path, data, ext, fmt, gz):
    path = tmp_path / f"f{ext}"
    path.write_bytes(gzip.compress(data) if gz else data)
    read_or_user_error(str(path), fmt)


@FUZZ
@given(value=json_values, lines=st.booleans(), ext=st.sampled_from([".json", ".jsonl", ".json.gz"]),
       surrogate=st.booleans())
def test_random_json_structures(tmp_path, value, lines, ext, surrogate):
    if lines and isinstance(value, list):
        text = "".join(json.dumps(v) + "\n" for v in value)
    else:
        text = json.dumps(value)
    if surrogate:
        text = text.replace('"', '"\\ud800', 1)
    path = tmp_path / f"f{ext}"
    path.write_bytes(gzip.compress(text.encode()) if ext.endswith(".gz") else text.encode())
    read_or_user_error(str(path), None)


@FUZZ
@given(rows=st.lists(st.dictionaries(st.sampled_from(["instruction", "input", "output", "x"]),
                                     st.none() | st.integers() | st.text(max_size=10) | st.lists(st.integers(), max_size=2),
                                     max_size=4), min_size=0, max_size=5))
def test_random_parquet_tables(tmp_path, rows):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    try:
        table = pa.Table.from_pylist(rows)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return  # not a table Arrow can hold: nothing to write
    path = tmp_path / "f.parquet"
    pq.write_table(table, path)
    read_or_user_error(str(path), None)
