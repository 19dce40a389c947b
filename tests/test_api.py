"""The Python API protects files as the CLI does: the input is never overwritten, an existing output
only with overwrite=True, and an unwritable folder is refused before any work (issue 28 items 1, 3)."""

import json
import os

import pytest

import car_select
from car_select import api
from car_select.errors import CarSelectError


@pytest.fixture
def alpaca_file(tmp_path):
    rows = [{"instruction": f"Say {i}.", "input": "", "output": f"{i}"} for i in range(6)]
    path = tmp_path / "the_input.json"
    path.write_text(json.dumps(rows))
    return path


def test_write_subset_refuses_the_input(alpaca_file):
    before = alpaca_file.read_bytes()
    ds = car_select.read_dataset(str(alpaca_file))
    with pytest.raises(CarSelectError, match=r"^output= .*the_input\.json: is the input"):
        car_select.write_subset(ds, [0, 1], str(alpaca_file))
    assert alpaca_file.read_bytes() == before


def test_write_subset_refuses_an_existing_file_unless_overwrite(alpaca_file, tmp_path):
    other = tmp_path / "other.json"
    other.write_text("[]")
    ds = car_select.read_dataset(str(alpaca_file))
    with pytest.raises(CarSelectError, match=r"already exists \(pass overwrite=True to replace it\)"):
        car_select.write_subset(ds, [0, 1], str(other))
    assert other.read_text() == "[]"
    car_select.write_subset(ds, [2, 1], str(other), overwrite=True)
    assert [r["output"] for r in json.loads(other.read_text())] == ["2", "1"]


def test_write_subset_writes_a_new_file_and_leaves_no_temporary(alpaca_file, tmp_path):
    ds = car_select.read_dataset(str(alpaca_file))
    out = tmp_path / "sub.jsonl"
    assert car_select.write_subset(ds, [3], str(out)) == str(out)
    assert [json.loads(line)["output"] for line in out.read_text().splitlines()] == ["3"]
    assert sorted(os.listdir(tmp_path)) == ["sub.jsonl", "the_input.json"]


def test_run_refuses_the_input_and_existing_outputs_before_reading(alpaca_file, tmp_path):
    with pytest.raises(CarSelectError, match="is the input"):
        api.run(str(alpaca_file), output=str(alpaca_file))
    existing = tmp_path / "report.html"
    existing.write_text("mine")
    with pytest.raises(CarSelectError, match=r"report= .*report\.html: it already exists \(pass overwrite=True"):
        api.run(str(alpaca_file), output=str(tmp_path / "sel.json"), report=str(existing))
    assert existing.read_text() == "mine"
    assert not (tmp_path / "sel.json").exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc, a folder no file can be created in")
def test_unwritable_report_folder_is_refused_up_front_naming_the_users_path(alpaca_file, tmp_path):
    # permission bits say yes to root in /proc; only creating a file there tells the truth
    with pytest.raises(CarSelectError) as err:
        api.plan_outputs(str(alpaca_file), output=str(tmp_path / "sel.json"), report="/proc/report.html")
    message = str(err.value)
    assert message.startswith("report= /proc/report.html: directory /proc is not writable")
    assert ".car-select-" not in message
    assert "\n" not in message


def test_unwritable_folder_is_refused_for_a_read_only_directory(alpaca_file, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into a mode-0555 folder; /proc covers root above")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(CarSelectError, match="is not writable"):
        api.plan_outputs(str(alpaca_file), output=str(locked / "sel.json"))


def test_an_address_without_the_ray_engine_is_refused_before_any_work(alpaca_file, tmp_path):
    from car_select.errors import SettingError

    with pytest.raises(SettingError, match="^address needs engine ray$"):
        api.run(str(alpaca_file), output=str(tmp_path / "out.json"), address="auto")
    assert not (tmp_path / "out.json").exists()


def test_annotated_is_a_file_and_its_manifest_is_named_by_the_argument(alpaca_file, tmp_path):
    with pytest.raises(CarSelectError, match="^annotated ann/: is a folder; the annotated rows are one JSON Lines"):
        api.plan_outputs(str(alpaca_file), output=str(tmp_path / "o.json"), annotated="ann/")
    (tmp_path / "a.jsonl.manifest.json").write_text("{}")
    with pytest.raises(CarSelectError, match=r"^annotated's manifest .*a\.jsonl\.manifest\.json: it already exists "
                                             r"\(pass overwrite=True"):
        api.plan_outputs(str(alpaca_file), output=str(tmp_path / "o.json"), annotated=str(tmp_path / "a.jsonl"))
