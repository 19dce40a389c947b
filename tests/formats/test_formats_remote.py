"""Input URLs go through the same readers as local paths (pyarrow's filesystems; `file://` stands in
for `s3://` here: no network in tests), and a URL output is refused with one line before any work."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from car_select.api import read_input
from car_select.errors import CarSelectError
from car_select.formats.sources import list_files, write_selection

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from test_cli_mistakes import one_line_error, run_cli, snapshot  # noqa: E402

ROWS = [{"instruction": f"Say {i}", "input": "" if i % 2 else f"ctx {i}", "output": f"answer {i}", "extra": i}
        for i in range(9)]


def url(path: Path) -> str:
    return path.resolve().as_uri()  # file:///...


@pytest.fixture
def inputs(tmp_path) -> dict[str, Path]:
    (tmp_path / "in.json").write_text(json.dumps(ROWS, indent=3))
    (tmp_path / "in.jsonl.gz").write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in ROWS).encode()))
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "in.parquet")
    shards = tmp_path / "shards"
    (shards / "sub").mkdir(parents=True)
    (shards / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS[:4]))
    pq.write_table(pa.Table.from_pylist(ROWS[4:]), shards / "sub" / "b.parquet")
    (shards / "_SUCCESS").write_text("")
    (shards / ".hidden.jsonl").write_text("not read\n")
    return {"json": tmp_path / "in.json", "jsonl.gz": tmp_path / "in.jsonl.gz", "parquet": tmp_path / "in.parquet",
            "shards": shards}


@pytest.mark.parametrize("kind", ["json", "jsonl.gz", "parquet", "shards"])
def test_a_url_reads_and_writes_back_like_the_local_path(kind, inputs, tmp_path):
    local, remote = read_input(str(inputs[kind])), read_input(url(inputs[kind]))
    assert remote.records == local.records and len(remote) == len(ROWS)
    assert (remote.file_format, remote.schema) == (local.file_format, local.schema)
    picked = [7, 0, 4, 2]
    for name in ("sel.json", "sel.jsonl", "sel.parquet"):
        write_selection(local, picked, str(tmp_path / f"local-{name}"), False)
        write_selection(remote, picked, str(tmp_path / f"url-{name}"), False)
        assert (tmp_path / f"local-{name}").read_bytes() == (tmp_path / f"url-{name}").read_bytes(), name


def test_a_url_folder_lists_like_a_local_folder(inputs):
    shards = inputs["shards"]
    assert list_files(url(shards)) == [url(Path(f)) for f in list_files(str(shards))]
    assert [f.rsplit("/", 2)[-2:] for f in list_files(url(shards))] == [["shards", "a.jsonl"], ["sub", "b.parquet"]]


@pytest.mark.parametrize("bad, message", [
    ("file:///no/such/file.json", "file:///no/such/file.json: file not found"),
    ("file:///tmp/*.json", "globs are not supported in URLs"),
    ("nosuchscheme://x/y.json", "nosuchscheme://x/y.json: cannot open this URL"),
])
def test_bad_urls_are_one_line_errors(bad, message):
    with pytest.raises(CarSelectError) as err:
        read_input(bad)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_url_output_is_refused_before_any_work(inputs, tmp_path):
    before = snapshot(tmp_path)
    line = one_line_error(run_cli([str(inputs["json"]), "-o", "s3://bucket/selected.json"], tmp_path))
    assert line.startswith("car-select: error: --output s3://bucket/selected.json: outputs are written to local "
                           "paths only"), line
    line = one_line_error(run_cli([url(inputs["json"]), "-o", "sel.json", "--annotated", "file:///tmp/ann.jsonl"],
                                  tmp_path))
    assert "--annotated file:///tmp/ann.jsonl: outputs are written to local paths only" in line, line
    assert snapshot(tmp_path) == before
