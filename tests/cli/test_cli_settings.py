"""One set of rules for settings (issue 33): flags override a --config file field by field, a file setting a
flag excludes gives way, and what is left obeys Config's exclusions with Config's messages in the CLI's
names (the flag, or the key and its file). And the help that says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_runs import one_line_error, run_cli, snapshot

from car_select.cli import parse
from car_select.errors import CarSelectError


@pytest.fixture
def work(tmp_path) -> Path:
    rows = [{"instruction": f"Name a color number {i}.", "input": "", "output": f"Color {i}."} for i in range(5)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def settings_of(work: Path, toml: str, *flags) -> tuple:
    (work / "car.toml").write_text(toml)
    args, settings = parse(["run", str(work / "data.jsonl"), "-o", "o.json", "--config", str(work / "car.toml"),
                            *map(str, flags)])
    return args, settings.config


@pytest.mark.parametrize("toml, flags, expected", [
    ("budget = 100\n", ["--n1", 10], {"n1": 10, "budget": None}),  # issue 33: it kept the budget
    ("budget = 100\n", ["--fraction", 0.1], {"fraction": 0.1, "budget": None}),  # issue 33: it was refused
    ("n1 = 10\nn2 = 2\n", ["--budget", 50], {"n1": 1000, "n2": 2, "budget": 50}),
    ("min_percentile = 20.0\n", ["--min-score", 3], {"min_score": 3.0, "min_percentile": None}),
    ('strategy = "qd"\nbudget = 10\nquality_weight = 2.0\n', ["--n1", 3],
     {"strategy": "car", "n1": 3, "budget": None, "quality_weight": 1.0}),
    ("n1 = 10\nn2 = 2\n", ["--strategy", "qd", "--budget", 5],
     {"strategy": "qd", "n1": 1000, "n2": 1, "budget": 5}),
    ("budget = 100\nseed = 7\n", ["--n1", 10], {"seed": 7}),  # what a flag does not touch stays
])
def test_a_flag_overrides_the_file_field_by_field(work, toml, flags, expected):
    _, config = settings_of(work, toml, *flags)
    assert {k: getattr(config, k) for k in expected} == expected


def test_a_flag_engine_clears_the_files_address(work):
    args, _ = settings_of(work, 'engine = "ray"\naddress = "auto"\n', "--engine", "local")
    assert (args.engine, args.address) == ("local", None)
    args, _ = settings_of(work, 'engine = "ray"\naddress = "auto"\n')
    assert (args.engine, args.address) == ("ray", "auto")


@pytest.mark.parametrize("toml, flags, message", [
    ("budget = 100\nn1 = 5\n", [], "n1 in {toml} and budget in {toml} are exclusive: a budget chooses n1"),
    ("budget = 100\nfraction = 0.1\n", [], "budget in {toml} and fraction in {toml} are exclusive: give one"),
    ('strategy = "deita"\nbudget = 5\nquality_weight = 3.0\n', [],
     "quality_weight in {toml} applies to strategy in {toml} qd only, not deita"),
    ("", ["--n1", 1000, "--budget", 5], "--n1 and --budget are exclusive: a budget chooses n1"),  # a default given
    ("seed = 1\n", ["--min-score", 1, "--min-percentile", 5], "--min-score and --min-percentile are exclusive"),
    ('address = "auto"\n', [], "address in {toml} needs --engine ray"),
    ("", ["--scorer", "car_paper"], "--scorer car_paper: no such scorer folder"),
])
def test_settings_given_together_are_refused_in_the_names_they_were_given(work, toml, flags, message):
    (work / "car.toml").write_text(toml)
    before = snapshot(work)
    line = one_line_error(run_cli("run", "data.jsonl", "-o", "out.json", "--config", "car.toml", *flags, cwd=work,
                                  env={"CAR_SELECT_CACHE": str(work / "cache")}))
    assert line.startswith("car-select: error: " + message.format(toml="car.toml")), line
    assert snapshot(work) == before


def test_a_misspelt_scorer_name_suggests_the_shipped_one(work):
    with pytest.raises(CarSelectError, match=r"^--scorer car_paper: .*; did you mean car-paper\?$"):
        parse(["run", str(work / "data.jsonl"), "-o", "o.json", "--scorer", "car_paper"])
    line = one_line_error(run_cli("eval-scorer", "--scorer", "car_paper", cwd=work))
    assert line.endswith("did you mean car-paper?"), line


def help_of(command: str) -> str:
    from car_select.cli import build_parser

    return " ".join(build_parser()[1][command].format_help().split())


def test_help_names_every_scorer_form_the_engine_kmeans_precision_and_the_cache_variable():
    run = help_of("run")
    scorer = run[run.rindex("--scorer SCORER"):]  # the option's help, not the usage line
    for form in ("default", "car-paper", "hf-reward:MODEL", "scorer folder", "COMET .ckpt"):
        assert form in scorer[:400], form
    for flag, words in (("--kmeans {faiss,sklearn}", "official code's KMeans"), ("--engine {local,ray}", "--address"),
                        ("--precision {auto,bf16,fp32}", "bf16 where the CPU or GPU supports it"),
                        ("--cache-dir DIR", "$CAR_SELECT_CACHE")):
        assert words in run[run.rindex(flag):][:300], flag
    for command in ("score", "cache", "train-scorer"):
        assert "$CAR_SELECT_CACHE" in help_of(command), command
    for command in ("eval-scorer", "train-scorer"):
        assert "bf16 where the CPU or GPU supports it" in help_of(command), command
    assert "hf-reward:MODEL" in help_of("eval-scorer")


def test_an_annotated_folder_is_refused_naming_only_flags_that_exist(work):
    line = one_line_error(run_cli("run", "data.jsonl", "-o", "out.json", "--annotated", "ann/", cwd=work))
    assert line == ("car-select: error: --annotated ann/: is a folder; the annotated rows are one JSON Lines file "
                    "(annotated.jsonl, say)")
    (work / "a.jsonl.manifest.json").write_text("{}")
    line = one_line_error(run_cli("run", "data.jsonl", "-o", "out.json", "--annotated", "a.jsonl", cwd=work))
    assert line.startswith("car-select: error: --annotated's manifest a.jsonl.manifest.json: it already exists "
                           "(pass --overwrite"), line
