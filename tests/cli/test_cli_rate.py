"""`car-select rate` as a user runs it, against a real chat-completions server on 127.0.0.1: killed
with SIGKILL midway and resumed, no request whose answer arrived is sent again; a second run sends
none; bad input is one line, exit 2, nothing written."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from cli_runs import REPO, one_line_error, run_cli
from judge_server import JudgeServer, rating_of


@pytest.fixture
def server():
    with JudgeServer(slow_seconds=2.0, require_key="sesame") as s:
        yield s


def write_data(path, outputs):
    path.write_text(json.dumps([{"instruction": f"Q{i}", "input": "", "output": o} for i, o in enumerate(outputs)]))
    return path


def rate_args(server, data, out, cache, *extra):
    return ["rate", str(data), "-o", str(out), "--endpoint", server.url, "--model", "judge",
            "--api-key-env", "JUDGE_TEST_KEY", "--cache-dir", str(cache), "-q", *extra]


def cached_rows(cache) -> int:
    path = cache / "ratings.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_kill_9_midway_then_resume_sends_no_answered_request_again(tmp_path, server):
    plain = [f"plain answer {i} " + "y" * i for i in range(16)]
    held = [f"[gate] held answer {i}" for i in range(4)]
    data = write_data(tmp_path / "data.json", plain + held)
    out, cache = tmp_path / "rated.jsonl", tmp_path / "cache"
    env = {**os.environ, "JUDGE_TEST_KEY": "sesame", "PYTHONPATH": str(REPO / "src"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "car_select",
                             *rate_args(server, data, out, cache, "--concurrency", "3")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    # every plain text answered and its rating committed, the held ones waiting at the server
    while not (sum(server.answered.values()) == len(plain) and server.waiting >= 1
               and cached_rows(cache) == len(plain)):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the run did not reach the held records"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    server.gate.set()  # the killed run's held requests are dropped by the server, unanswered
    assert not out.exists()
    assert cached_rows(cache) == len(plain)

    resumed = run_cli(*rate_args(server, data, out, cache), env={"JUDGE_TEST_KEY": "sesame"})
    assert resumed.returncode == 0, resumed.stderr
    assert all(server.received[t] == 1 for t in plain)  # none sent again
    assert all(server.answered[t] == 1 for t in plain + held)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["rating"] for r in rows] == [float(rating_of(t)) for t in plain + held]

    sent = sum(server.received.values())
    again = run_cli(*rate_args(server, data, out, cache, "--overwrite", "--rating-field", "judge_score"),
                    env={"JUDGE_TEST_KEY": "sesame"})
    assert again.returncode == 0, again.stderr
    assert sum(server.received.values()) == sent  # a second run sends no request
    assert [json.loads(line)["judge_score"] for line in out.read_text().splitlines()] == [r["rating"] for r in rows]


def test_sample_rates_n_records_and_says_so(tmp_path, server):
    data = write_data(tmp_path / "data.json", [f"answer {i}" for i in range(30)])
    out = tmp_path / "rated.json"
    args = rate_args(server, data, out, tmp_path / "cache", "--sample", "8", "--seed", "1")
    result = run_cli(*[a for a in args if a != "-q"], env={"JUDGE_TEST_KEY": "sesame"})
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())
    assert len(rows) == 8 and sum(server.received.values()) == 8
    assert all(r["rating"] == rating_of(r["output"]) for r in rows)
    assert "rated 8 of 8 records (8 requests" in result.stderr


@pytest.mark.parametrize("case", ["unreachable", "missing_key", "wrong_key", "bad_prompt", "unknown_model"])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, server, case):
    data = write_data(tmp_path / "data.json", ["a", "b"])
    out, cache = tmp_path / "rated.jsonl", tmp_path / "cache"
    args = rate_args(server, data, out, cache)
    env = {"JUDGE_TEST_KEY": "sesame"}
    expected = {"unreachable": "cannot reach it", "missing_key": "JUDGE_TEST_KEY named by --api-key-env is not set",
                "wrong_key": "HTTP 401", "bad_prompt": "no {response} placeholder", "unknown_model": "HTTP 404"}[case]
    if case == "unreachable":
        with JudgeServer() as gone:
            url = gone.url
        args[args.index("--endpoint") + 1] = url  # that server is closed: nothing listens there
    elif case == "missing_key":
        env = {}
        os.environ.pop("JUDGE_TEST_KEY", None)
    elif case == "wrong_key":
        env = {"JUDGE_TEST_KEY": "wrong"}
    elif case == "bad_prompt":
        (tmp_path / "p.txt").write_text("Rate {instruction} please")
        args += ["--prompt", str(tmp_path / "p.txt")]
    elif case == "unknown_model":
        args[args.index("--model") + 1] = "nope"
    line = one_line_error(run_cli(*args, env=env))
    assert expected in line, line
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name not in ("data.json", "cache", "p.txt")] == []
