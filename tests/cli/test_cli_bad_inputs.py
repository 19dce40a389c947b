"""The CLI turns every user mistake into exit status 2 and one stderr line, and writes nothing.

Each case runs `python -m car_select run INPUT -o OUT ...` in a subprocess. The CLI reads and checks
its input and options before it loads any model, so these runs are quick.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "tests" / "data" / "bad_inputs"
BAD_FILES = sorted(p.name for p in BAD.iterdir() if p.is_file() and not p.name.startswith("."))


def _cli_available() -> bool:
    """car_select.cli is importable here, or from this checkout's src/ (which the runs put first)."""
    try:
        if importlib.util.find_spec("car_select.cli") is not None:
            return True
    except ImportError:
        pass
    return (ROOT / "src" / "car_select" / "cli.py").is_file()


pytestmark = pytest.mark.skipif(not _cli_available(), reason="CLI not available")


def run_cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    env["CAR_SELECT_CACHE"] = str(tmp_path / "cache")
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "car_select", "run", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )


def assert_user_error(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.splitlines()
    assert result.returncode == 2, f"exit {result.returncode}, stderr: {result.stderr!r}"
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].strip(), f"expected one stderr line, got {result.stderr!r}"
    return lines[0]


@pytest.fixture
def out_dir(tmp_path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


@pytest.fixture
def valid_input(tmp_path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    src = d / "five.jsonl"
    rows = [{"instruction": f"Name a color number {i}.", "input": "", "output": f"Color {i}."} for i in range(5)]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return src


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_input_file(name, tmp_path, out_dir):
    out = out_dir / "selected.json"
    line = assert_user_error(run_cli([str(BAD / name), "-o", str(out)], tmp_path))
    assert name in line, f"the message should name the file: {line!r}"
    assert list(out_dir.iterdir()) == [], "no output and no temporary files"


def test_missing_input_file(tmp_path, out_dir):
    missing = tmp_path / "does_not_exist.jsonl"
    line = assert_user_error(run_cli([str(missing), "-o", str(out_dir / "selected.json")], tmp_path))
    assert "does_not_exist.jsonl" in line
    assert list(out_dir.iterdir()) == []


def test_negative_n1(tmp_path, out_dir, valid_input):
    line = assert_user_error(run_cli([str(valid_input), "-o", str(out_dir / "s.jsonl"), "--n1", "-1"], tmp_path))
    assert "n1" in line
    assert list(out_dir.iterdir()) == []


def test_more_clusters_than_records(tmp_path, out_dir, valid_input):
    line = assert_user_error(
        run_cli([str(valid_input), "-o", str(out_dir / "s.jsonl"), "--clusters", "1000"], tmp_path)
    )
    assert "clusters" in line
    assert list(out_dir.iterdir()) == []


def test_output_in_missing_directory(tmp_path, valid_input):
    out = tmp_path / "no_such_dir" / "s.jsonl"
    line = assert_user_error(run_cli([str(valid_input), "-o", str(out)], tmp_path))
    assert "no_such_dir" in line
    assert not out.parent.exists()


def test_existing_output_without_overwrite(tmp_path, out_dir, valid_input):
    out = out_dir / "s.jsonl"
    out.write_text("precious\n", encoding="utf-8")
    line = assert_user_error(run_cli([str(valid_input), "-o", str(out)], tmp_path))
    assert "s.jsonl" in line
    assert out.read_text(encoding="utf-8") == "precious\n"
    assert list(out_dir.iterdir()) == [out], "no temporary files"
