"""Example files for `--target` and `--decontaminate`: full records, or prompts alone.

Any format the dataset readers take (JSON, JSON Lines, CSV, Parquet, Hugging Face); each row is either
a record in one of the schemas (`schemas`; a record without a response is taken as a prompt), or a
prompt alone in one of the fields evaluation sets use:

- `prompt`, `question`, `text`, `query`, `Instruction` (Koala, Vicuna, WizardLM): one prompt;
- `instruction` with no output (Self-Instruct's user-oriented set: its `instances.0.input` is kept);
- `turns` as a list of strings (MT-Bench): every turn a user prompt;
- `conversations` as a list of strings (user, assistant alternating), or as one string (the LIMA test
  set): user prompts.

A JSON array or JSON Lines file of bare strings is a list of prompts. Every example keeps where it came
from (`line N` of the file where the format has lines, else `record N`) for `contaminated_by`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import CarSelectError, SettingError
from ..records import Record
from .common import read_text
from .detect import JSON_FAMILY, detect_file_format
from .json_formats import read_json_array, read_jsonl
from .schemas import PARSERS, FieldError, Names, _lookup, _MISSING, detect_schema, type_name

PROMPT_FIELDS = ("prompt", "question", "text", "query", "Instruction")


@dataclass(frozen=True)
class Example:
    record: Record  # rendered and embedded like a record of the input
    prompts: tuple[str, ...]  # its user texts, for decontamination
    where: str  # "line N" or "record N" (0-based record numbers, 1-based lines, as the readers' errors)


def _rows(path: str, file_format: str | None) -> tuple[list, object]:
    """(rows, locate(i) -> "line N" / "record N")."""
    fmt = detect_file_format(path, file_format)
    if fmt in JSON_FAMILY:
        text = read_text(path)
        src = read_json_array(path, text) if fmt == "json" else read_jsonl(path, text)

        def locate(i: int) -> str:
            line = src.line_of(i)
            return f"line {line}" if line is not None else f"record {i}"

        return src.rows, locate
    if fmt == "csv":
        from .tabular import read_csv

        src = read_csv(path, read_text(path))
        return src.rows, lambda i: f"line {src.lines[i]}"
    if fmt == "parquet":
        from .tabular import read_parquet

        return read_parquet(path).to_pylist(), lambda i: f"record {i}"
    from . import hf as hf_io

    _, table = hf_io.load_hf(path)
    return table.to_pylist(), lambda i: f"record {i}"


def _strings(value, field: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise FieldError(f'field "{field}" must be a non-empty list of strings, got {type_name(value)}')
    for k, item in enumerate(value):
        if not isinstance(item, str):
            raise FieldError(f'field "{field}[{k}]" must be a string, got {type_name(item)}')
    return value


def _prompt_only(prompts: list[str], input_: str = "") -> Example:
    """An example with user turns and no responses: embedded as a record whose responses are empty."""
    history = tuple((p, "") for p in prompts[:-1])
    record = Record(instruction=prompts[-1], output="", input=input_, history=history)
    texts = list(prompts) + ([f"{prompts[-1]}\n{input_}"] if input_.strip() else [])
    return Example(record, tuple(texts), "")


def parse_example(row, names: Names) -> Example:
    """One row -> Example; FieldError naming the field when it is neither a record nor a prompt."""
    if isinstance(row, str):
        if not row.strip():
            raise FieldError("the prompt is empty")
        return _prompt_only([row])
    if not isinstance(row, Mapping):
        raise FieldError(f"expected an object or a string, got {type_name(row)}")
    for field in ("conversations", "turns"):
        value = row.get(getattr(names, field, field))
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            users = value[::2] if field == "conversations" else value
            return _prompt_only(list(users))
        if isinstance(value, str) and value.strip():  # the LIMA test set: one prompt as a string
            return _prompt_only([value])
    output = _lookup(row, names.output)
    if _lookup(row, names.instruction) is not _MISSING and (output is _MISSING or output is None):
        instruction = _lookup(row, names.instruction)
        if not isinstance(instruction, str):
            raise FieldError(f'field "{names.instruction}" must be a string, got {type_name(instruction)}')
        input_ = _lookup(row, names.input)
        if input_ is _MISSING or input_ is None:
            input_ = _lookup(row, "instances.0.input")
        return _prompt_only([instruction], input_ if isinstance(input_, str) else "")
    schema = detect_schema(row.keys(), names)
    if schema is not None:
        record = PARSERS[schema](row, names)
        return Example(record, tuple(u for u, _, _ in record.exchanges())
                       + tuple(f"{u}\n{i}" for u, i, _ in record.exchanges() if i.strip()), "")
    for field in PROMPT_FIELDS:
        if field in row:
            value = row[field]
            if not isinstance(value, str) or not value.strip():
                raise FieldError(f'field "{field}" must be a non-empty string, got {type_name(value)}')
            return _prompt_only([value])
    shown = ", ".join(f'"{k}"' for k in list(row)[:8]) or "none"
    raise FieldError(f"no prompt or record field (the record has: {shown}; expected instruction, prompt, question, "
                     "text, turns, conversations or messages)")


def _error(setting: str, message: str) -> SettingError:
    return SettingError("{} " + message.replace("{", "{{").replace("}", "}}"), setting)


def read_examples(path: str | os.PathLike, setting: str, *, file_format: str | None = None,
                  fields: Mapping[str, str] | None = None) -> list[Example]:
    """Every example of `path`; for an empty, unreadable or wrong-format file a one-line SettingError
    naming the Config field `setting` (the CLI says its flag), the file, the record and the field."""
    path = os.fspath(path)
    try:
        rows, locate = _rows(path, file_format)
    except CarSelectError as exc:
        raise _error(setting, str(exc)) from None
    if not rows:
        raise _error(setting, f"{path}: no examples (the file is empty)")
    names = Names(fields)
    out = []
    for i, row in enumerate(rows):
        where = locate(i)
        try:
            ex = parse_example(row, names)
        except FieldError as exc:
            shown = where if where.startswith("record") else f"{where}, record {i}"
            raise _error(setting, f"{path}: {shown}: {exc}") from None
        out.append(Example(ex.record, ex.prompts, where))
    return out
