"""kill -9 at random moments of a run (local and Ray), then a rerun: the rerun's outputs are the same
bytes as an uninterrupted run's, and a killed run never leaves a partial output behind."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
N = 240


def cli(args: list[str], cwd: Path, cache: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    env.update(CAR_SELECT_CACHE=str(cache), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", RAY_ADDRESS="")
    return subprocess.Popen([sys.executable, "-m", "car_select", "run", *args, "-q"], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]


def visible(folder: Path) -> dict[str, bytes]:
    """The outputs' bytes (the report's only as complete or not: it shows the run's timings; the
    manifest's without its creation time)."""
    out = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}
    if "report.html" in out:
        out["report.html"] = out["report.html"].rstrip().endswith(b"</html>")
    if "ann.jsonl.manifest.json" in out:
        manifest = json.loads(out["ann.jsonl.manifest.json"])
        manifest.pop("created_utc", None)
        out["ann.jsonl.manifest.json"] = manifest
    return out


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["local", "ray"])
def test_kill_9_then_rerun_gives_the_same_outputs(engine, tmp_path, random_head_scorer_dir):
    if engine == "ray":
        pytest.importorskip("ray")
    rows = [{"instruction": f"Describe item {i} briefly.", "input": "" if i % 4 else f"ctx {i}",
             "output": ("word " * (5 + i % 37)) + f"end {i}."} for i in range(N)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["in.jsonl", "-o", "out/sel.jsonl", "--annotated", "out/ann.jsonl", "--report", "out/report.html",
            "--engine", engine, "--n1", "20", "--scorer", random_head_scorer_dir, "--overwrite"]

    (tmp_path / "out").mkdir()
    t = time.monotonic()
    finish(cli(args, tmp_path, tmp_path / "reference-cache"))
    duration = time.monotonic() - t
    reference = visible(tmp_path / "out")
    assert {"sel.jsonl", "ann.jsonl", "report.html"} <= set(reference)

    for name in reference:  # start from nothing: a killed run must leave nothing (or everything)
        (tmp_path / "out" / name).unlink()
    rng = random.Random(f"kill-{engine}")
    for _ in range(2):
        proc = cli(args, tmp_path, tmp_path / "cache")
        time.sleep(rng.uniform(0.3, duration))
        os.killpg(proc.pid, signal.SIGKILL)  # the run and every process it started (Ray's too)
        proc.wait()
        left = visible(tmp_path / "out")
        assert left in ({}, reference), f"partial output after kill -9: {sorted(left)}"
        for name in list(left):
            (tmp_path / "out" / name).unlink()
    finish(cli(args, tmp_path, tmp_path / "cache"))
    assert visible(tmp_path / "out") == reference
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []  # temporaries cleaned
