"""What a new user trips on (issue 28 items 4-7 and 10's CLI parts): each reproduced, then fixed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from car_select import Config
from car_select.api import write_subset
from car_select.errors import CarSelectError
from car_select.formats import read_dataset
from cli_runs import one_line_error, run_cli, snapshot

ROWS = [{"instruction": f"Name colour number {i}.", "input": "", "output": f"Colour {i} is a shade."}
        for i in range(12)]


@pytest.fixture
def work(tmp_path) -> Path:
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (tmp_path / "data.json").write_text(json.dumps(ROWS, indent=2))
    return tmp_path


def cli(work: Path, *args):
    return run_cli(*args, cwd=work, env={"CAR_SELECT_CACHE": str(work / "cache")})


@pytest.mark.parametrize("flags, words", [
    (["--budget", "0"], ["--budget", ">= 1"]),
    (["--fraction", "0.0001"], ["--fraction", "rounds to 0"]),
    (["--output-format", "jsonl"], ["--output-format jsonl", "out.json", "json"]),
])
def test_refused_in_one_line_before_any_work(work, flags, words):
    before = snapshot(work)
    line = one_line_error(cli(work, "run", "data.jsonl", "-o", "out.json", *flags))
    assert line.startswith("car-select: error: ")
    for word in words:
        assert word in line, line
    assert snapshot(work) == before


def test_budget_zero_and_a_fraction_of_nothing_in_the_api(work):
    with pytest.raises(CarSelectError, match="^budget must be an integer >= 1"):
        Config(budget=0).validate()
    with pytest.raises(CarSelectError, match="^fraction 0.0001 of 12 records rounds to 0"):
        Config(fraction=0.0001).check_fits(12)
    with pytest.raises(CarSelectError, match="^fraction 1 of 12 records is 12, more than the 10 distinct"):
        Config(fraction=1.0).check_fits(10, 12)


def test_a_known_extension_decides_the_output_format_in_the_api(work):
    jsonl = read_dataset(str(work / "data.jsonl"))
    write_subset(jsonl, [2, 0], str(work / "sub.json"))
    assert json.loads((work / "sub.json").read_text()) == [ROWS[2], ROWS[0]]  # a JSON array, not JSON Lines
    array = read_dataset(str(work / "data.json"))
    write_subset(array, [1], str(work / "sub.jsonl"))
    assert [json.loads(x) for x in (work / "sub.jsonl").read_text().splitlines()] == [ROWS[1]]
    with pytest.raises(CarSelectError, match="^output_format csv contradicts the output"):
        write_subset(array, [1], str(work / "other.json"), "csv")
    assert not (work / "other.json").exists()


def test_jsonl_in_json_out_and_input_order(work, random_head_scorer_dir):
    res = cli(work, "run", "data.jsonl", "-o", "out.json", "--order", "input", "--n1", "4", "--clusters", "2",
              "--annotated", "ann.jsonl", "--scorer", random_head_scorer_dir, "-q")
    assert res.returncode == 0, res.stderr
    out = json.loads((work / "out.json").read_text())
    chosen = sorted(r["index"] for r in map(json.loads, (work / "ann.jsonl").read_text().splitlines())
                    if r["selected"])
    assert out == [ROWS[i] for i in chosen] and len(out) >= 4


def test_score_keeps_an_existing_score_field_unless_told(work, random_head_scorer_dir):
    judged = [{**r, "score": 3} for r in ROWS[:4]]
    (work / "judged.jsonl").write_text("".join(json.dumps(r) + "\n" for r in judged))
    before = snapshot(work)
    line = one_line_error(cli(work, "score", "judged.jsonl", "-o", "scored.jsonl", "--scorer", random_head_scorer_dir))
    assert "judged.jsonl" in line and "record 0" in line and '"score"' in line and "--score-column" in line
    assert snapshot(work) == before
    res = cli(work, "score", "judged.jsonl", "-o", "scored.jsonl", "--score-column", "car_score",
              "--scorer", random_head_scorer_dir)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(x) for x in (work / "scored.jsonl").read_text().splitlines()]
    assert [r["score"] for r in rows] == [3] * 4 and all(isinstance(r["car_score"], float) for r in rows)
    assert res.stderr.splitlines()[-1].startswith("scored 4 records; written scored.jsonl")
    res = cli(work, "score", "judged.jsonl", "-o", "replaced.jsonl", "--overwrite-field", "-q",
              "--scorer", random_head_scorer_dir)
    assert res.returncode == 0 and res.stderr == ""
    assert all(isinstance(json.loads(x)["score"], float) for x in (work / "replaced.jsonl").read_text().splitlines())


def test_argparse_errors_say_the_prefix_once(work):
    line = one_line_error(cli(work, "run", "data.jsonl"))
    assert line.startswith("car-select: error: run: ") and line.count("car-select") == 1


def test_score_help_describes_every_option(work):
    res = cli(work, "score", "--help")
    assert res.returncode == 0
    for words in ("--score-column NAME", "--overwrite-field", "where to write the scored records"):
        assert words in res.stdout


def test_cache_prune_says_when_there_is_nothing_to_prune(work):
    res = cli(work, "cache", "prune", "--cache-dir", work / "empty-cache")
    assert res.returncode == 0 and res.stdout.startswith("nothing to prune in ")


def test_one_cluster_is_singular():
    from car_select.cli.run import format_summary

    summary = {"records_read": 3, "duplicates_dropped": 0, "k": 1, "pca_components": 2,
               "pca_variance_explained": 0.97, "selected": 1, "selected_top_n1": 0, "selected_cluster_top": 1,
               "clusters_covered": 1, "cache_hits": 0, "stage_seconds": {}}
    assert "1 cluster covered" in format_summary(summary)
    assert "2 clusters covered" in format_summary({**summary, "clusters_covered": 2})


def test_toml_sets_config_fields_and_flags_win(work):
    from car_select.cli import parse

    (work / "car.toml").write_text('n1 = 7\nkmeans_backend = "sklearn"\nuse_cache = false\nannotated = "a.jsonl"\n')
    args, settings = parse(["run", "data.jsonl", "-o", "o.json", "--config", str(work / "car.toml"), "--n1", "3"])
    config = settings.config
    assert (config.n1, config.kmeans_backend, config.use_cache, args.annotated) == (3, "sklearn", False, "a.jsonl")
    assert settings.name_of("kmeans_backend") == f"kmeans_backend in {work / 'car.toml'}"
    assert settings.name_of("n1") == "--n1"


def test_nested_records_list_their_fields_and_take_dotted_paths(work):
    row = {"instruction": "Say hi.", "instances": [{"input": "", "output": "Hi there."}]}
    (work / "nested.jsonl").write_text(json.dumps(row) + "\n")
    line = one_line_error(cli(work, "run", "nested.jsonl", "-o", "out.json"))
    assert 'missing field "output"' in line and "instruction, instances" in line
    from car_select.formats import parse_fields

    ds = read_dataset(str(work / "nested.jsonl"), fields=parse_fields("output=instances.0.output"))
    assert ds.records[0].output == "Hi there." and ds.records[0].instruction == "Say hi."
