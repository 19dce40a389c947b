"""A run's outputs: compared with the inputs and each other as files before any work, committed
together at the end or not at all (car_select.outputs, api.run)."""

from __future__ import annotations

import json
import os

import pytest

from car_select.errors import CarSelectError
from car_select.outputs import MARKER, RunOutputs


def plan(tmp_path, inputs, overwrite=False, **outs):
    o = RunOutputs(inputs=[("input", str(p)) for p in inputs], overwrite=overwrite)
    for label, (path, kind) in outs.items():
        o.add(f"--{label}", str(path), kind=kind, names=("a.png", "b.png") if kind == "files" else ())
    return o


def test_output_equal_to_input_through_a_symlink_is_refused(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("[]")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    with pytest.raises(CarSelectError, match="is the input"):
        plan(tmp_path, [link], overwrite=True, output=(real, "file")).check()
    assert real.read_text() == "[]"


def test_hard_link_is_the_same_file(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("[]")
    os.link(real, tmp_path / "hard.json")
    with pytest.raises(CarSelectError, match="is the input"):
        plan(tmp_path, [tmp_path / "hard.json"], overwrite=True, output=(real, "file")).check()


def test_two_outputs_on_one_file_are_refused(tmp_path):
    (tmp_path / "in.json").write_text("[]")
    with pytest.raises(CarSelectError, match="--output .* and --annotated .* are the same file"):
        plan(tmp_path, [tmp_path / "in.json"], output=(tmp_path / "out.json", "file"),
             annotated=(tmp_path / "out.json", "file")).check()
    with pytest.raises(CarSelectError, match="same file"):
        plan(tmp_path, [tmp_path / "in.json"], output=(tmp_path / "out.json", "file"),
             report=(tmp_path / "." / "out.json", "file")).check()


def test_output_folder_equal_to_or_inside_the_input_folder_is_refused(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "a.jsonl").write_text("{}\n")
    for target in (shards, shards / "sub", tmp_path / "shards" / ".." / "shards"):
        with pytest.raises(CarSelectError, match="overlaps"):
            plan(tmp_path, [shards], overwrite=True, output=(target, "dir")).check()
    # an input file inside the output folder
    with pytest.raises(CarSelectError, match="overlaps"):
        plan(tmp_path, [shards / "a.jsonl"], overwrite=True, output=(shards, "dir")).check()
    assert (shards / "a.jsonl").read_text() == "{}\n"


def test_devices_and_dash_are_refused(tmp_path):
    (tmp_path / "in.json").write_text("[]")
    for path in ("/dev/null", "-"):
        with pytest.raises(CarSelectError, match="standard output|not a regular file"):
            plan(tmp_path, [tmp_path / "in.json"], overwrite=True, output=(path, "file")).check()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(CarSelectError, match="not a regular file"):
        plan(tmp_path, [tmp_path / "in.json"], overwrite=True, output=(fifo, "file")).check()


def test_figures_naming_a_file_is_refused(tmp_path):
    (tmp_path / "in.json").write_text("[]")
    (tmp_path / "figs").write_text("x")
    with pytest.raises(CarSelectError, match="is a file, not a folder"):
        plan(tmp_path, [tmp_path / "in.json"], overwrite=True, figures=(tmp_path / "figs", "files")).check()


def test_overwrite_replaces_only_car_selects_own_folders(tmp_path):
    (tmp_path / "in.json").write_text("[]")
    foreign = tmp_path / "out"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("years of work")
    with pytest.raises(CarSelectError, match="did not write"):
        plan(tmp_path, [tmp_path / "in.json"], overwrite=True, output=(foreign, "dir")).check()
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / MARKER).write_text("")
    (ours / "old.jsonl").write_text("{}\n")
    o = plan(tmp_path, [tmp_path / "in.json"], overwrite=True, output=(ours, "dir")).check()
    with o.transaction():
        (tmp_path / "x").mkdir()
        with open(os.path.join(o.temp(o.outputs[0]), "new.jsonl"), "w") as fh:
            fh.write("{}\n")
    assert sorted(os.listdir(ours)) == sorted([MARKER, "new.jsonl"])
    assert (foreign / "thesis.tex").read_text() == "years of work"


def test_figures_overwrite_replaces_only_their_own_files(tmp_path):
    (tmp_path / "in.json").write_text("[]")
    figs = tmp_path / "figs"
    figs.mkdir()
    (figs / "notes.txt").write_text("mine")
    (figs / "a.png").write_text("old")
    o = plan(tmp_path, [tmp_path / "in.json"], overwrite=True, figures=(figs, "files")).check()
    with o.transaction():
        d = o.temp(o.outputs[0])
        for name in ("a.png", "b.png"):
            with open(os.path.join(d, name), "w") as fh:
                fh.write("new")
    assert sorted(os.listdir(figs)) == ["a.png", "b.png", "notes.txt"]
    assert (figs / "a.png").read_text() == "new" and (figs / "notes.txt").read_text() == "mine"


def test_an_error_part_way_commits_nothing(tmp_path):
    (tmp_path / "in.json").write_text("[]")
    (tmp_path / "sel.json").write_text("old selection")
    (tmp_path / "rep.html").write_text("old report")
    o = plan(tmp_path, [tmp_path / "in.json"], overwrite=True, output=(tmp_path / "sel.json", "file"),
             report=(tmp_path / "rep.html", "file")).check()
    with pytest.raises(KeyboardInterrupt):
        with o.transaction():
            with open(o.temp(o.outputs[0]), "w") as fh:
                fh.write("new selection")
            raise KeyboardInterrupt  # Ctrl-C during the report stage
    assert (tmp_path / "sel.json").read_text() == "old selection"
    assert (tmp_path / "rep.html").read_text() == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json", "rep.html", "sel.json"]


def test_stale_temporaries_of_killed_runs_are_removed(tmp_path):
    (tmp_path / "in.json").write_text("[]")
    dead = tmp_path / ".car-select-999999999-0123abcd.sel.json"
    dead.write_text("partial")
    live = tmp_path / f".car-select-{os.getppid()}-0123abcd.sel.json"
    live.write_text("someone else's, still running")
    plan(tmp_path, [tmp_path / "in.json"], output=(tmp_path / "sel.json", "file")).check()
    assert not dead.exists() and live.exists()


def test_existing_output_without_overwrite(tmp_path):
    (tmp_path / "in.json").write_text("[]")
    (tmp_path / "sel.json").write_text("x")
    with pytest.raises(CarSelectError, match="already exists"):
        plan(tmp_path, [tmp_path / "in.json"], output=(tmp_path / "sel.json", "file")).check()


def test_api_run_interrupted_in_the_report_stage_keeps_the_old_outputs(tmp_path, monkeypatch, random_head_scorer_dir):
    from car_select import Config, api, report

    rows = [{"instruction": f"Say {i}.", "input": "", "output": f"I say {i} twice: {i} {i}."} for i in range(12)]
    src = tmp_path / "in.json"
    src.write_text(json.dumps(rows))
    sel, rep = tmp_path / "sel.json", tmp_path / "rep.html"
    sel.write_text("old selection")
    rep.write_text("old report")

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "write_report", interrupted)
    config = Config(n1=3, scorer=random_head_scorer_dir, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(KeyboardInterrupt):
        api.run(str(src), config, output=str(sel), report=str(rep), overwrite=True)
    assert sel.read_text() == "old selection" and rep.read_text() == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "in.json", "rep.html", "sel.json"]
    with pytest.raises(CarSelectError, match="annotated= .* are the same file"):
        api.run(str(src), config, output=str(sel), annotated=str(sel))
    with pytest.raises(CarSelectError, match="output= .*is the input"):
        api.run(str(src), config, output=str(src))


def test_an_output_named_like_the_figures_folder_is_refused(tmp_path):
    (tmp_path / "in.json").write_text("[]")
    with pytest.raises(CarSelectError, match="same file or overlap"):
        plan(tmp_path, [tmp_path / "in.json"], annotated=(tmp_path / "figs", "file"),
             figures=(tmp_path / "figs", "files")).check()
    # the input may sit in the figures folder: only the figures' own names are written there
    plan(tmp_path, [tmp_path / "in.json"], figures=(tmp_path, "files")).check()
