"""End to end through the CLI, with the shipped default scorer."""

import json
import math
from pathlib import Path

import pytest

from cli_runs import annotated_rows, check_output_matches, run_cli
from datapaths import REPO, shared_file

DEMO = REPO / "examples" / "demo_alpaca.json"


def test_run_on_a_real_3000_record_alpaca_slice(tmp_path):
    alpaca = json.loads(shared_file("stanford-alpaca-52k", "alpaca_data.json").read_text())
    records = alpaca[:3000]
    src = tmp_path / "slice.json"
    src.write_text(json.dumps(records, indent=4))
    out, ann = tmp_path / "selected.json", tmp_path / "annotated.jsonl"
    res = run_cli("run", src, "-o", out, "--annotated", ann, "--n1", 100, "--n2", 1, "--json",
                  "--cache-dir", tmp_path / "cache")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    unique = len({json.dumps([r["instruction"], r.get("input", ""), r["output"]]) for r in records})
    assert summary["records_read"] == 3000
    assert summary["duplicates_dropped"] == 3000 - unique
    assert summary["k"] == int(math.sqrt(unique / 2))
    rows = annotated_rows(ann)
    assert [r["index"] for r in rows] == list(range(3000))
    top = sorted(rows, key=lambda r: (-r["score"], r["index"]))
    assert {r["index"] for r in top[:100]} == {r["index"] for r in rows if r["reason"] == "top_n1"}
    clusters = {r["cluster"] for r in rows}
    assert len(clusters) == summary["k"]
    cluster_tops = [r for r in rows if r["reason"] == "cluster_top"]
    for r in cluster_tops:  # each is the best of its cluster
        best = min((x for x in rows if x["cluster"] == r["cluster"]), key=lambda x: (-x["score"], x["index"]))
        assert best["index"] == r["index"]
    covered = {r["cluster"] for r in rows if r["selected"]}
    assert covered == clusters  # n2 = 1: every cluster contributes its top
    assert summary["selected"] == 100 + len(cluster_tops) == sum(r["selected"] for r in rows)
    check_output_matches(records, json.loads(out.read_text()), rows)


def test_demo_run_json_in_json_out_and_report(tmp_path):
    out, ann, report = tmp_path / "sel.json", tmp_path / "ann.jsonl", tmp_path / "report.html"
    res = run_cli("run", DEMO, "-o", out, "--n1", 20, "--annotated", ann, "--report", report,
                  "--cache-dir", tmp_path / "cache")
    assert res.returncode == 0, res.stderr
    assert "records read" in res.stdout and "PCA components" in res.stdout
    records = json.loads(DEMO.read_text())
    check_output_matches(records, json.loads(out.read_text()), annotated_rows(ann))
    assert report.read_text().startswith("<!DOCTYPE html>")
    # issue 33: the summary names every output written and says what was scored
    written = next(line for line in res.stdout.splitlines() if line.startswith("written"))
    assert written.split(None, 1)[1] == f"{out}, {ann}, {ann}.manifest.json, {report}"
    scored = next(line for line in res.stdout.splitlines() if line.startswith("scored"))
    assert f"{len(records):,} texts, one per distinct record (schema alpaca)" in scored
    assert any(line.startswith("window") and "256 tokens per text" in line for line in res.stdout.splitlines())
    assert "<th>scored</th>" in report.read_text()


def test_jsonl_in_jsonl_out_with_toml_config(tmp_path):
    records = json.loads(DEMO.read_text())[:120]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    cfg = tmp_path / "car.toml"
    cfg.write_text('n1 = 10\nn2 = 2\nclusters = 5\nannotated = "%s"\n' % (tmp_path / "ann.jsonl"))
    out = tmp_path / "out.jsonl"
    res = run_cli("run", src, "-o", out, "--config", cfg, "--cache-dir", tmp_path / "cache", "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["k"] == 5 and summary["selected_top_n1"] == 10
    rows = annotated_rows(tmp_path / "ann.jsonl")
    check_output_matches(records, [json.loads(x) for x in out.read_text().splitlines()], rows)
    # flags override the config file
    res = run_cli("run", src, "-o", out, "--config", cfg, "--n1", 3, "--overwrite", "--cache-dir",
                  tmp_path / "cache", "--json")
    assert json.loads(res.stdout)["selected_top_n1"] == 3


def test_score_adds_a_score_field(tmp_path):
    records = json.loads(DEMO.read_text())[:30]
    src = tmp_path / "in.json"
    src.write_text(json.dumps(records))
    out = tmp_path / "scored.json"
    res = run_cli("score", src, "-o", out, "--cache-dir", tmp_path / "cache", "-q")
    assert res.returncode == 0, res.stderr
    scored = json.loads(out.read_text())
    assert [{k: v for k, v in r.items() if k != "score"} for r in scored] == records
    assert all(isinstance(r["score"], float) for r in scored)


@pytest.mark.parametrize("command", ["run", "score", "train-scorer", "eval-scorer"])
def test_every_subcommand_has_help_with_an_example(command):
    res = run_cli(command, "--help")
    assert res.returncode == 0 and "example" in res.stdout
