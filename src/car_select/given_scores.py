"""Scores the user already has (an LLM-judge rating, a reward model's output): `--score-field NAME`.

The named field of every input record becomes its score and no scorer runs; the records are only
embedded for clustering. A dotted name (`judge.rating`) reaches into nested objects when no field has
that literal name. Values must be numbers, or text holding one ("4.5": CSV cells are always text); a
missing, empty, non-numeric (a word, a boolean, a list) or non-finite value is a one-line error naming
the file, record and field.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import CarSelectError
from .formats import Dataset

_MISSING = object()


def _lookup(row, name: str):
    if not isinstance(row, dict):
        return _MISSING
    if name in row:
        return row[name]
    value = row
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _column(dataset: Dataset, name: str) -> list:
    rows = getattr(dataset, "_rows", None)
    if rows is not None:
        return [_lookup(row, name) for row in rows]
    table = dataset._table
    top = name if name in table.column_names else name.split(".")[0]
    if top not in table.column_names:
        raise CarSelectError(f'{dataset.path}: no field "{name}" in the records (columns: '
                             f'{", ".join(table.column_names)})')
    values = table.column(top).to_pylist()
    if top == name:
        return [_MISSING if v is None else v for v in values]
    return [_lookup({top: v}, name) for v in values]


def to_score(value):
    """The float a field value stands for, or None when it is not a number."""
    if isinstance(value, bool) or value is None or value is _MISSING:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def read_score_field(dataset: Dataset, name: str) -> np.ndarray:
    """One float per record from field `name`; CarSelectError on the first record without a number."""
    values = _column(dataset, name)
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        score = to_score(value)
        if value is _MISSING or value is None or (isinstance(value, str) and not value.strip()):
            raise CarSelectError(f'{dataset.path}: record {i}: score field "{name}" is missing')
        if score is None:
            raise CarSelectError(f'{dataset.path}: record {i}: score field "{name}" is not a number: '
                                 f"{_short(value)}")
        if not math.isfinite(score):
            raise CarSelectError(f'{dataset.path}: record {i}: score field "{name}" is not finite: {value!r}')
        out[i] = score
    return out


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def first_record_with(dataset: Dataset, name: str) -> int | None:
    """The first record that has field `name` (a column of a table counts for every record), or None."""
    rows = getattr(dataset, "_rows", None)
    if rows is None:
        table = dataset._table  # None where an executor holds the rows: nothing to check here
        return 0 if table is not None and name in table.column_names and len(dataset.records) else None
    return next((i for i, row in enumerate(rows) if isinstance(row, dict) and name in row), None)


def refuse_existing_field(dataset: Dataset, name: str, setting: str) -> None:
    """A new field `name` (set by `setting`) must not replace one a record already has, unless the
    caller's `overwrite_field` says so: one line naming the file, record and field."""
    from .errors import SettingError

    i = first_record_with(dataset, name)
    if i is not None:
        raise SettingError(f'{dataset.path}: record {i} already has a field "{name}"; name another '
                           "field with {} or replace it with {}", setting, "overwrite_field")


def read_value_field(dataset: Dataset, name: str, what: str = "balance field") -> list:
    """Field `name` of every record (a dotted path reaches into nested objects and lists, as --fields
    does); CarSelectError naming the file, record and field on the first record without it."""
    from .formats.schemas import _MISSING as NONE, _lookup as lookup_path

    rows = getattr(dataset, "_rows", None)
    if rows is None:
        table = dataset._table
        top = name if name in table.column_names else name.split(".")[0]
        if top not in table.column_names:
            raise CarSelectError(f'{dataset.path}: record 0: {what} "{name}" is missing (columns: '
                                 f'{", ".join(table.column_names)})')
        rows = [{top: v} for v in table.column(top).to_pylist()]
    out = []
    for i, row in enumerate(rows):
        value = lookup_path(row, name) if isinstance(row, dict) else NONE
        if value is NONE or value is None:
            raise CarSelectError(f'{dataset.path}: record {i}: {what} "{name}" is missing')
        out.append(value)
    return out
