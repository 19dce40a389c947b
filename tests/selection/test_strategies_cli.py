"""--strategy, --quality-weight, --max-similarity and --near-duplicates through the CLI, on the demo data."""

import pytest

from cli_runs import annotated_rows, one_line_error, run_cli
from datapaths import REPO

DEMO = REPO / "examples" / "demo_alpaca.json"


@pytest.mark.parametrize("flags, message", [
    (["--strategy", "median", "--budget", "5"], "--strategy must be car, qd or deita, got 'median'"),
    (["--strategy", "qd"], "--strategy qd needs --budget or --fraction (how many records to keep)"),
    (["--strategy", "deita", "--budget", "5", "--n2", "2"], "--n2 applies to --strategy car only, not deita"),
    (["--budget", "5", "--quality-weight", "2"], "--quality-weight applies to --strategy qd only, not car"),
    (["--strategy", "qd", "--budget", "5", "--quality-weight", "-1"],
     "--quality-weight must be a number >= 0, got -1.0"),
    (["--strategy", "deita", "--budget", "5", "--max-similarity", "1.5"],
     "--max-similarity must be a cosine similarity in (0, 1], got 1.5"),
    (["--near-duplicates", "0"], "--near-duplicates must be a cosine similarity in (0, 1], got 0.0"),
])
def test_strategy_mistakes_are_one_line_before_any_work(tmp_path, flags, message):
    res = run_cli("run", DEMO, "-o", tmp_path / "out.json", "--cache-dir", tmp_path / "cache", *flags)
    assert one_line_error(res).endswith(message)
    assert not (tmp_path / "out.json").exists() and not (tmp_path / "cache").exists()


@pytest.mark.slow
def test_qd_with_near_duplicates_through_the_cli(tmp_path):
    out, ann = tmp_path / "out.json", tmp_path / "ann.jsonl"
    res = run_cli("run", DEMO, "-o", out, "--annotated", ann, "--cache-dir", tmp_path / "cache", "--strategy", "qd",
                  "--budget", "20", "--near-duplicates", "0.95")
    assert res.returncode == 0, res.stderr
    assert "selected            20 (qd: 20 coverage;" in res.stdout
    rows = annotated_rows(ann)
    kept = [r for r in rows if r["selected"]]
    near = [r for r in rows if r["reason"] == "near_duplicate"]
    assert len(kept) == 20 and {r["reason"] for r in kept} == {"coverage"}
    assert near and all(rows[r["duplicate_of"]]["reason"] != "near_duplicate" for r in near)
    assert f"near-duplicates     {len(near):,} dropped" in res.stdout
