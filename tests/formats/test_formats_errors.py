"""Every user mistake is one CarSelectError line naming the file, the line/record and the field."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from car_select.errors import CarSelectError
from car_select.formats import read_dataset

BAD = Path(__file__).resolve().parents[1] / "data" / "bad_inputs"

# file -> substrings its error message must contain (besides the file's path)
EXPECTED = {
    "malformed.json": ["invalid JSON", "line 3, column 23"],
    "trailing_comma.json": ["invalid JSON", "line 3, column 1"],
    "malformed.jsonl": ["line 2:", "invalid JSON", "column 32"],
    "not_object.jsonl": ["line 2, record 1:", "expected a JSON object, got list"],
    "not_object.json": ["line 3, record 1:", "expected a JSON object, got int"],
    "missing_output.jsonl": ["line 3, record 2:", 'missing field "output"'],
    "missing_instruction.json": ["record 1:", 'missing field "instruction"'],
    "wrong_type.json": ["line 17, record 3:", 'field "instruction" must be a string, got int'],
    "wrong_type_output.jsonl": ["line 2, record 1:", 'field "output" must be a string, got null'],
    "bad_history.json": ["record 1:", 'field "history[0]"', "[user, assistant] pair"],
    "empty.json": ["no records"],
    "empty.jsonl": ["no records"],
    "blank_lines.jsonl": ["no records"],
    "empty_file.json": ["no records"],
    "empty.csv": ["no records"],
    "non_utf8.jsonl": ["not UTF-8", "byte offset 87", "line 2", "0xe9"],
    "top_level_object.json": ["single JSON object"],
    "unknown_format.txt": ["cannot tell the file format", "--format"],
    "unknown_schema.jsonl": ["record 0:", "cannot tell the schema", '"prompt"', "--fields"],
    "sharegpt_bad_role.jsonl": ["line 2, record 1:", 'field "conversations[1].from"', "unknown role 'narrator'"],
    "sharegpt_not_list.jsonl": ["record 0:", 'field "conversations" must be a list, got string'],
    "sharegpt_no_user.jsonl": ["record 1:", 'field "conversations" has no user message'],
    "empty_conversations.jsonl": ["record 0:", 'field "conversations" is empty'],
    "messages_bad_content.jsonl": ["record 0:", 'field "messages[1].content" must be a string, got int'],
    "turns_missing_bot.jsonl": ["record 0:", 'missing field "history[1].bot"'],
    "ragged.csv": ["line 3, record 1:", "4 values", "3 columns"],
    "missing_column.csv": ["line 2, record 0:", 'missing field "output"'],
    "duplicate_header.csv": ["line 1:", 'column "output" appears twice'],
    "not_parquet.parquet": ["not a valid Parquet file"],
}


def test_corpus_is_covered():
    files = sorted(p.name for p in BAD.iterdir() if p.is_file())
    assert files == sorted(EXPECTED), "every bad input needs an expected message here (and vice versa)"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_input(name):
    path = str(BAD / name)
    with pytest.raises(CarSelectError) as err:
        read_dataset(path)
    message = str(err.value)
    assert "\n" not in message and message.strip() == message
    assert message.startswith(f"{path}: "), message
    for part in EXPECTED[name]:
        assert part in message, f"{part!r} not in {message!r}"


def test_missing_file(tmp_path):
    path = tmp_path / "nope.jsonl"
    with pytest.raises(CarSelectError, match="file not found") as err:
        read_dataset(path)
    assert str(err.value) == f"{path}: file not found"


def test_unknown_format_option(tmp_path):
    src = tmp_path / "a.jsonl"
    src.write_text('{"instruction": "q", "output": "a"}\n')
    with pytest.raises(CarSelectError, match="unknown format 'yaml'"):
        read_dataset(src, file_format="yaml")


def test_directory_that_is_not_a_dataset(tmp_path):
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(CarSelectError, match="not a Hugging Face dataset folder") as err:
        read_dataset(tmp_path)
    assert str(tmp_path) in str(err.value)
    with pytest.raises(CarSelectError, match="is a directory"):
        read_dataset(tmp_path, file_format="json")


def test_forced_format_mismatch(tmp_path):
    src = tmp_path / "a.jsonl"
    src.write_text('{"instruction": "q", "output": "a"}\n{"instruction": "r", "output": "b"}\n')
    with pytest.raises(CarSelectError, match=r"invalid JSON at line 2, column 1: Extra data .*--format jsonl"):
        read_dataset(src, file_format="json")
    arr = tmp_path / "b.json"
    arr.write_text(json.dumps([{"instruction": "q", "output": "a"}], indent=2))
    with pytest.raises(CarSelectError, match="line 1: invalid JSON"):
        read_dataset(arr, file_format="jsonl")


def test_json_error_line_numbers_for_late_records(tmp_path):
    rows = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(50)]
    rows[37] = {"instruction": ["not", "a", "string"], "output": "x"}
    src = tmp_path / "late.json"
    src.write_text(json.dumps(rows, indent=1))
    with pytest.raises(CarSelectError) as err:
        read_dataset(src)
    line = src.read_text().splitlines().index(" {", 0) + 1 + 37 * 4
    assert str(err.value) == (
        f'{src}: line {line}, record 37: field "instruction" must be a string, got list'
    )


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root can read anything")
def test_unreadable_file(tmp_path):
    src = tmp_path / "secret.jsonl"
    src.write_text('{"instruction": "q", "output": "a"}\n')
    src.chmod(0)
    with pytest.raises(CarSelectError, match="cannot read"):
        read_dataset(src)


def test_jsonl_blank_lines_are_skipped_and_errors_keep_the_files_line_numbers(tmp_path):
    """docs/formats.md: blank (empty or whitespace-only) JSONL lines are skipped wherever they are (issue 33),
    and an error after them still names the line as the file numbers it."""
    good = json.dumps({"instruction": "a", "output": "b"})
    src = tmp_path / "blanks.jsonl"
    src.write_text(f"\n{good}\n  \t\n\n{good}\n \n")
    assert len(read_dataset(str(src)).records) == 2
    src.write_text(f"\n{good}\n  \n" + json.dumps({"instruction": "c"}) + "\n\n")
    with pytest.raises(CarSelectError, match=r"line 4, record 1: missing field \"output\""):
        read_dataset(str(src))
