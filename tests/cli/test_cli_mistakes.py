"""Mistakes a new user makes with `car-select run`: each is one stderr line, exit status 2, and no
file written or changed (issue 11's list, on both engines where the engine matters)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from cli_runs import one_line_error, snapshot
from cli_runs import run_cli as run_any

def run_cli(args: list[str], cwd: Path, command: str = "run"):
    return run_any(command, *args, cwd=cwd, env={"CAR_SELECT_CACHE": str(cwd / "cache"), "RAY_ADDRESS": ""})


ROWS = [{"instruction": f"Name a color number {i}.", "input": "", "output": f"Color {i}."} for i in range(5)]


@pytest.fixture
def work(tmp_path) -> Path:
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    shards = tmp_path / "shards"
    shards.mkdir()
    for k in range(2):
        (shards / f"part-{k}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS[k::2]))
    (tmp_path / "figs").write_text("a file, not a folder")
    (tmp_path / "old.json").write_text("precious")
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "data.jsonl")
    (tmp_path / "surrogate.jsonl").write_text('{"instruction": "a \\ud800 b", "output": "c"}\n')
    (tmp_path / "engine.toml").write_text('engine = "spark"\n')
    (tmp_path / "types.toml").write_text('n1 = "many"\n')
    (tmp_path / "bool.toml").write_text('overwrite = "yes"\n')
    (tmp_path / "unknown.toml").write_text('n3 = 1\n')
    return tmp_path


CASES = {
    # case: (args, words the message must hold)
    "output is the input": (["data.jsonl", "-o", "data.jsonl", "--overwrite"], ["--output", "input"]),
    "output is the input through a symlink": (["link.jsonl", "-o", "data.jsonl", "--overwrite"], ["input"]),
    "annotated is the output": (["data.jsonl", "-o", "out.json", "--annotated", "out.json"], ["--annotated", "same"]),
    "report is the output": (["data.jsonl", "-o", "out.json", "--report", "out.json"], ["--report", "same"]),
    "report is the input": (["data.jsonl", "-o", "out.json", "--report", "data.jsonl", "--overwrite"], ["input"]),
    "output is a device": (["data.jsonl", "-o", "/dev/null", "--overwrite"], ["regular file"]),
    "output is dash": (["data.jsonl", "-o", "-"], ["standard output"]),
    "existing output": (["data.jsonl", "-o", "old.json"], ["already exists"]),
    "figures names a file": (["data.jsonl", "-o", "out.json", "--figures", "figs"], ["--figures", "not a folder"]),
    "lone surrogate": (["surrogate.jsonl", "-o", "out.json"], ["surrogate.jsonl", "line 1", "surrogate"]),
    "negative seed": (["data.jsonl", "-o", "out.json", "--seed", "-1"], ["--seed"]),
    "fit sample below k": (["data.jsonl", "-o", "out.json", "--clusters", "3", "--fit-sample", "2"], ["--fit-sample"]),
    "selects nothing": (["data.jsonl", "-o", "out.json", "--n1", "0", "--n2", "0"], ["--n1", "--n2", "nothing"]),
    "engine in TOML": (["data.jsonl", "-o", "out.json", "--config", "engine.toml"], ["engine.toml", "spark"]),
    "type in TOML": (["data.jsonl", "-o", "out.json", "--config", "types.toml"], ["n1 in types.toml", "must be int"]),
    "bool in TOML": (["data.jsonl", "-o", "out.json", "--config", "bool.toml"], ["bool.toml", "overwrite"]),
    "unknown key in TOML": (["data.jsonl", "-o", "out.json", "--config", "unknown.toml"], ["n3"]),
    "config is a folder": (["data.jsonl", "-o", "out.json", "--config", "shards"], ["shards", "cannot read"]),
    "gzipped parquet": (["data.jsonl", "-o", "out.parquet.gz"], ["--output", "gzip"]),
    "address without ray": (["data.jsonl", "-o", "out.json", "--address", "auto"], ["--address", "--engine ray"]),
    "output is the annotated rows' manifest": (
        ["data.jsonl", "-o", "ann.jsonl.manifest.json", "--annotated", "ann.jsonl"], ["same"]),
    "output inside the input folder (local)": (["shards", "-o", "shards/sel.jsonl"], ["overlaps"]),
    "ray: output folder is the input folder": (
        ["shards", "-o", "shards", "--engine", "ray", "--overwrite"], ["--output", "input"]),
    "ray: output folder inside the input folder": (
        ["shards", "-o", "shards/out", "--engine", "ray", "--overwrite"], ["overlaps"]),
    "ray: annotated folder is the output folder": (
        ["shards", "-o", "sel", "--annotated", "sel", "--engine", "ray"], ["same"]),
    "ray: output folder holds foreign files": (
        ["shards", "-o", "other", "--engine", "ray", "--overwrite"], ["did not write"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_mistake_is_one_line_and_changes_nothing(case, work):
    args, words = CASES[case]
    if "did not write" in words:
        (work / "other").mkdir()
        (work / "other" / "notes.txt").write_text("mine")
    before = snapshot(work)
    line = one_line_error(run_cli(args, work))
    for word in words:
        assert word in line, f"{word!r} not in {line!r}"
    assert snapshot(work) == before


def test_cuda_without_cuda(work):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    line = one_line_error(run_cli(["data.jsonl", "-o", "out.json", "--device", "cuda"], work))
    assert "--device" in line and "CUDA" in line


def test_ray_address_auto_without_a_cluster(work):
    pytest.importorskip("ray")
    line = one_line_error(run_cli(["data.jsonl", "-o", "out.json", "--engine", "ray", "--address", "auto"], work))
    assert "Ray cluster" in line
    assert not (work / "out.json").exists()


def test_api_errors_name_arguments_not_flags(tmp_path):
    from car_select import Config
    from car_select.errors import CarSelectError

    for bad, name in ((dict(seed=-1), "seed"), (dict(n1=0, n2=0), "n1"), (dict(n1="5"), "n1"),
                      (dict(fit_sample=0), "fit_sample"), (dict(device="tpu"), "device")):
        with pytest.raises(CarSelectError) as err:
            Config(**bad).validate()
        assert str(err.value).startswith(name) and "--" not in str(err.value)


def test_gzip_input_and_output_and_a_one_record_dataset(tmp_path, random_head_scorer_dir):
    data = "".join(json.dumps(r) + "\n" for r in ROWS[:1]).encode()
    (tmp_path / "one.jsonl.gz").write_bytes(gzip.compress(data))
    res = run_cli(["one.jsonl.gz", "-o", "out.jsonl.gz", "--scorer", random_head_scorer_dir], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "nan" not in res.stdout and "100.0%" in res.stdout
    assert gzip.decompress((tmp_path / "out.jsonl.gz").read_bytes()) == data


def test_cache_info_and_prune(tmp_path):
    import numpy as np

    from car_select.cache import FeatureCache

    old = FeatureCache(tmp_path / "cache", "v1-old")
    old.put(np.array([b"k" * 16], dtype="S16"), {"scores": np.zeros(1, np.float32),
                                                   "embeddings": np.zeros((1, 4), np.float32),
                                                   "counts": np.ones(1, np.int64)})
    res = run_cli(["info", "--json"], tmp_path, command="cache")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)["namespaces"]
    assert [(n["namespace"], n["rows"], n["current_format"]) for n in info] == [("v1-old", 1, False)]
    res = run_cli(["prune"], tmp_path, command="cache")
    assert res.returncode == 0 and "v1-old" in res.stdout
    assert not (tmp_path / "cache" / "v1-old").exists()
