"""End to end through the CLI on a real Alpaca slice: --budget, --fraction, --score-field, --min-score."""

import hashlib
import json
import math

import numpy as np
import pytest

from car_select.selection.car import car_rule
from datapaths import shared_file
from cli_runs import annotated_rows, check_output_matches, run_cli

N = 400


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The slice (with a synthetic judge rating per record) and a feature cache the tests share."""
    alpaca = json.loads(shared_file("stanford-alpaca-52k", "alpaca_data.json").read_text())
    records = alpaca[:N]
    rng = np.random.default_rng(0)
    for r in records:
        r["judge"] = {"rating": int(rng.integers(1, 11))}
    tmp = tmp_path_factory.mktemp("budget")
    src = tmp / "slice.json"
    src.write_text(json.dumps(records, indent=2))
    return tmp, src, records


def run(work, *flags):
    tmp, src, _ = work
    out, ann = tmp / "out.json", tmp / "ann.jsonl"
    res = run_cli("run", src, "-o", out, "--annotated", ann, "--overwrite", "--json", "--cache-dir", tmp / "cache",
                  *flags)
    return res, out, ann


def check_car_rule(rows, n1, n2=1):
    ranked = [r for r in rows if r["reason"] != "duplicate"]
    scores = np.array([r["score"] for r in ranked])
    clusters = np.array([r["cluster"] for r in ranked])
    index = np.array([r["index"] for r in ranked])
    want = car_rule(scores, clusters, n1, n2, index=index).indices
    assert sorted(want.tolist()) == sorted(r["index"] for r in rows if r["selected"])


def test_budget(work):
    res, out, ann = run(work, "--budget", 60)
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    rows = annotated_rows(ann)
    assert s["selected"] == 60 == len(json.loads(out.read_text())) == sum(r["selected"] for r in rows)
    assert s["budget"] == 60 and s["n1"] == s["selected_top_n1"]
    check_car_rule(rows, s["n1"])
    check_output_matches(work[2], json.loads(out.read_text()), rows)
    manifest = json.loads((ann.parent / (ann.name + ".manifest.json")).read_text())
    assert manifest == s["manifest"] and manifest["config"]["budget"] == 60 and manifest["seed"] == 42
    assert manifest["input"]["sha256"] == hashlib.sha256(work[1].read_bytes()).hexdigest()
    assert s["languages"]["counts"]["en"] >= 0.95 * s["languages"]["detected"]
    c = s["against_random"]
    assert c["size"] == 60 and c["selected"]["mean_score"] > c["random_mean"]["mean_score"]
    assert c["selected"]["clusters_covered"] == s["k"] == int(math.sqrt(N / 2))


def test_fraction(work):
    res, out, ann = run(work, "--fraction", 0.05)
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["selected"] == round(0.05 * N) == len(json.loads(out.read_text()))
    check_car_rule(annotated_rows(ann), s["n1"])


def test_budget_below_the_cluster_tops_warns_in_one_line(work):
    res, out, _ = run(work, "--budget", 3)
    assert res.returncode == 0, res.stderr
    warnings = [line for line in res.stderr.splitlines() if line.startswith("car-select: warning:")]
    budget_warnings = [line for line in warnings if "cluster tops" in line]  # others (empty answers) may follow
    assert len(budget_warnings) == 1 and "below the 14 cluster tops" in budget_warnings[0]
    assert len(json.loads(out.read_text())) == 3


def test_score_field_and_min_score(work):
    records = work[2]
    res, out, ann = run(work, "--score-field", "judge.rating", "--min-score", 6, "--budget", 40)
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    rows = annotated_rows(ann)
    assert [r["score"] for r in rows] == [float(r["judge"]["rating"]) for r in records]
    chosen = json.loads(out.read_text())
    assert len(chosen) == 40 and all(r["judge"]["rating"] >= 6 for r in chosen)
    eligible = [r for r in rows if r["score"] >= 6 and r["reason"] != "duplicate"]
    assert s["eligible"] == len(eligible) and s["min_score"] == 6
    check_car_rule(eligible, s["n1"])


def test_min_score_with_the_default_scorer(work):
    res, out, ann = run(work, "--min-score", 0.5, "--n1", 10)
    assert res.returncode == 0, res.stderr
    rows = annotated_rows(ann)
    assert all(r["score"] >= 0.5 for r in rows if r["selected"])
    check_car_rule([r for r in rows if r["score"] >= 0.5], 10)


@pytest.mark.parametrize("flags, message", [
    (("--n1", 10, "--budget", 5), "--n1 and --budget are exclusive"),
    (("--budget", 5, "--fraction", 0.1), "--budget and --fraction are exclusive"),
    (("--budget", N + 1), f"--budget {N + 1} is more than the {N} distinct records"),
    (("--score-field", "rating"), 'record 0: score field "rating" is missing'),
    (("--score-field", "instruction"), 'record 0: score field "instruction" is not a number'),
])
def test_mistakes_are_one_line_errors(work, flags, message, capsys):
    from car_select.cli import main

    tmp, src, _ = work
    code = main(["run", str(src), "-o", str(tmp / "never.json"), "--json", "--cache-dir", str(tmp / "cache"),
                 *map(str, flags)])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert not (tmp / "never.json").exists()


def test_report_shows_what_the_selection_bought(work):
    tmp = work[0]
    res, _, _ = run(work, "--budget", 50, "--report", tmp / "r.html")
    assert res.returncode == 0, res.stderr
    html = (tmp / "r.html").read_text()
    assert "<h2>Against baselines</h2>" in html and "The 50 selected records beside 5 uniform random subsets" in html
