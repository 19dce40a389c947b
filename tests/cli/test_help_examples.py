"""Every example in a subcommand's --help runs as written (issue 33): on small files the test writes under
the names the examples use, from the bundled demo data; the real-data ones from the repository root."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest

from cli_runs import run_cli
from datapaths import REPO, SHARED_DATA

from car_select.cli import COMMANDS, build_parser, main, parse

DEMO = json.loads((REPO / "examples" / "demo_alpaca.json").read_text(encoding="utf-8"))  # 216 records


def help_examples() -> list[tuple[str, list[str]]]:
    """(subcommand, argv) of each `car-select ...` line in every subcommand's epilog (a trailing backslash
    continues a line; `#` starts a comment)."""
    _, commands = build_parser()
    found = []
    for name, parser in commands.items():
        text = (parser.epilog or "").replace("\\\n", " ")
        for line in text.splitlines():
            if line.strip().startswith("car-select "):
                argv = shlex.split(line, comments=True)[1:]
                assert argv[0] == name, f"{name} --help shows an example of {argv[0]}"
                found.append((name, argv))
    return found


EXAMPLES = help_examples()
REAL_DATA = [(c, a) for c, a in EXAMPLES if any("shared/data" in x for x in a)]
# `rate` asks an LLM endpoint (its own tests start a server) and `train-scorer` trains for minutes: their
# examples are parsed here (and the real-data files they name checked), not run
LOCAL = [(c, a) for c, a in EXAMPLES
         if (c, a) not in REAL_DATA and "ray" not in a and c not in ("rate", "train-scorer")]
RAY = [(c, a) for c, a in EXAMPLES if "ray" in a]


def test_every_subcommand_shows_examples_and_each_parses():
    assert {c for c, _ in EXAMPLES} == set(COMMANDS)
    for _, argv in EXAMPLES:
        parse(argv)  # a flag that does not exist, or a bad value, fails here


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, random_head_scorer_dir) -> Path:
    """The files the examples name, each from the demo records."""
    folder = tmp_path_factory.mktemp("inputs")
    (folder / "alpaca_data.json").write_text(json.dumps(DEMO), encoding="utf-8")

    def jsonl(name: str, rows) -> None:
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    jsonl("data.jsonl", DEMO)
    jsonl("my_data.jsonl", DEMO[:20])  # eval-scorer --robustness scores each record's every corruption
    jsonl("chats.jsonl", [{"prompt": r["instruction"], "response": r["output"]} for r in DEMO])
    jsonl("judged.jsonl", [{**r, "rating": i % 10 + 1, "score": i % 5} for i, r in enumerate(DEMO)])
    (folder / "shards").mkdir()
    for k in range(2):
        jsonl(f"shards/part-{k}.jsonl", DEMO[k::2])
    shutil.copytree(random_head_scorer_dir, folder / "my-scorer")
    return folder


def in_copy(inputs: Path, work: Path) -> Path:
    """A fresh folder holding the inputs (one example's outputs never meet another's)."""
    shutil.copytree(inputs, work, symlinks=True)
    return work


@pytest.mark.parametrize("argv", [a for _, a in LOCAL], ids=[" ".join(a) for _, a in LOCAL])
def test_help_example_runs_as_written(argv, inputs, tmp_path, monkeypatch, capsys):
    work = in_copy(inputs, tmp_path / "work")
    monkeypatch.chdir(work)
    monkeypatch.setenv("CAR_SELECT_CACHE", str(inputs.parent / "shared-cache"))  # one scoring pass for all
    before = {p.name for p in work.iterdir()}
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 0, f"car-select {' '.join(argv)} exits {code}: {err}"
    assert "error" not in err
    wrote = {p.name for p in work.iterdir()} - before
    if "-o" in argv:  # it wrote what it says it writes
        assert argv[argv.index("-o") + 1].rstrip("/") in wrote


@pytest.mark.slow  # starts a local Ray (3 minutes here, with the 2 cores shared by other jobs)
@pytest.mark.parametrize("argv", [a for _, a in RAY], ids=[" ".join(a) for _, a in RAY])
def test_ray_help_example_runs_as_written(argv, inputs, tmp_path):
    pytest.importorskip("ray.data", reason="the Ray example needs Ray: pip install 'car-select[ray]'")
    work = in_copy(inputs, tmp_path / "work")
    res = run_cli(*argv, cwd=work, env={"CAR_SELECT_CACHE": str(tmp_path / "cache"), "RAY_ADDRESS": ""})
    assert res.returncode == 0, res.stderr
    assert (work / argv[argv.index("-o") + 1]).is_dir() and (work / "annotated.jsonl").is_file()


@pytest.mark.realdata
@pytest.mark.parametrize("argv", [a for _, a in REAL_DATA], ids=[" ".join(a)[:60] for _, a in REAL_DATA])
def test_real_data_help_example(argv, monkeypatch, capsys):
    """Examples on ../shared/data run from the repository root; training (minutes) is only checked for its
    files, the evaluation runs."""
    paths = [x for x in argv if "shared/data" in x]
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available: {SHARED_DATA} is absent (tests on ../shared/data run in CI)")
    monkeypatch.chdir(REPO)
    missing = [p for p in paths if not Path(p).exists()]
    assert not missing, f"the example names files that do not exist: {missing}"
    if argv[0] == "eval-scorer":
        assert main(argv) == 0
        test = json.loads(capsys.readouterr().out)["validation"]["APE_score_test.csv"]
        assert test["n_pairs"] > 0 and 0.5 < test["pairwise_accuracy"] <= 1.0  # the shipped scorer beats a coin
