"""Helpers for tests that run the `car-select` CLI as a user would (a subprocess, offline)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd=None, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m car_select ARGS` from this checkout's src/, with the Hugging Face hub offline."""
    full = dict(os.environ)
    full["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), full.get("PYTHONPATH")) if p)
    full.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "car_select", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=full, timeout=900)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The one stderr line of a run that failed as a user error (exit 2, nothing on stdout)."""
    lines = result.stderr.splitlines()
    assert result.returncode == 2, f"exit {result.returncode}, stderr: {result.stderr!r}"
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, f"expected one stderr line, got {result.stderr!r}"
    assert result.stdout == ""
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"<dir>")
            for p in sorted(folder.rglob("*")) if "cache" not in p.parts}


def annotated_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_output_matches(records: list, out_records: list, rows: list[dict]) -> None:
    """Output = the selected input records, unchanged, in descending score order (ties: earlier)."""
    chosen = sorted((r for r in rows if r["selected"]), key=lambda r: (-r["score"], r["index"]))
    assert out_records == [records[r["index"]] for r in chosen]
