"""Atomic output: all or nothing, temporaries cleaned up, one-line errors."""

from __future__ import annotations

import json
import os

import pytest

from car_select.atomic import atomic_path, atomic_write_bytes, atomic_write_text, check_writable
from car_select.errors import CarSelectError
from car_select.formats import read_dataset, write_subset


def test_write_text_and_bytes(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "héllo\n")
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    atomic_write_text(tmp_path / "a.txt", "replaced")
    assert (tmp_path / "a.txt").read_text() == "replaced"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin"]


def test_new_file_gets_normal_permissions(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_existing_file_keeps_its_mode(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    target.chmod(0o640)
    atomic_write_text(target, "new")
    assert target.stat().st_mode & 0o777 == 0o640


def test_missing_directory(tmp_path):
    target = tmp_path / "nope" / "out.json"
    with pytest.raises(CarSelectError) as err:
        atomic_write_text(target, "x")
    assert str(err.value) == f"cannot write {target}: directory {tmp_path / 'nope'} does not exist"
    assert not (tmp_path / "nope").exists()


def test_target_is_a_directory(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(CarSelectError, match="is a directory"):
        atomic_write_text(tmp_path / "d", "x")


def test_failure_leaves_target_and_no_temporaries(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("original")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            with open(tmp, "w") as fh:
                fh.write("partial")
            raise RuntimeError("boom")
    assert target.read_text() == "original"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_directory_mode(tmp_path):
    target = tmp_path / "folder"
    with atomic_path(target, directory=True) as tmp:
        assert os.path.isdir(tmp) and os.listdir(tmp) == []
        (open(os.path.join(tmp, "f"), "w")).close()
    assert os.listdir(target) == ["f"]
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target, directory=True) as tmp:
            (open(os.path.join(tmp, "g"), "w")).close()
            raise KeyboardInterrupt
    assert os.listdir(target) == ["f"]
    assert [p.name for p in tmp_path.iterdir()] == ["folder"]


def test_check_writable(tmp_path):
    check_writable(tmp_path / "new.json", overwrite=False)
    (tmp_path / "old.json").write_text("x")
    check_writable(tmp_path / "old.json", overwrite=True)
    with pytest.raises(CarSelectError, match="already exists .*--overwrite"):
        check_writable(tmp_path / "old.json", overwrite=False)
    with pytest.raises(CarSelectError, match="does not exist"):
        check_writable(tmp_path / "no" / "x.json")
    (tmp_path / "d").mkdir()
    with pytest.raises(CarSelectError, match="is a directory"):
        check_writable(tmp_path / "d")
    check_writable(tmp_path / "d", directory=True)


def test_write_subset_error_leaves_nothing(tmp_path, rows):
    src = tmp_path / "in.json"
    src.write_text(json.dumps(rows), encoding="utf-8")
    ds = read_dataset(src)
    with pytest.raises(CarSelectError, match="cannot write .*does not exist"):
        write_subset(ds, [0], tmp_path / "missing" / "out.json")
    out = tmp_path / "out.parquet"
    out.write_bytes(b"keep me")
    # values of mixed types in one field cannot become a Parquet column: nothing is written
    bad = tmp_path / "mixed.jsonl"
    bad.write_text('{"instruction": "q", "output": "a", "x": 1}\n{"instruction": "q", "output": "a", "x": "s"}\n')
    with pytest.raises(CarSelectError, match='cannot write .*field "x"'):
        write_subset(read_dataset(bad), [0, 1], out)
    assert out.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json", "mixed.jsonl", "out.parquet"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_directory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(CarSelectError, match=f"cannot write {ro / 'x.json'}: "):
            atomic_write_text(ro / "x.json", "x")
        with pytest.raises(CarSelectError, match="not writable"):
            check_writable(ro / "x.json")
    finally:
        ro.chmod(0o700)
