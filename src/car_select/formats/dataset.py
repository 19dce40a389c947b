"""`Dataset`, `read_dataset` and `write_subset`: the one entry point for input and output files.

Records are normalised into `Record`s for scoring, while the original rows are kept as read (raw
dicts for JSON/JSON Lines/CSV, the Arrow table for Parquet/Hugging Face) so that a selected subset is
written back exactly as it was: every field, extra fields included, with the same types.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..atomic import atomic_path, atomic_write_bytes
from ..errors import CarSelectError
from ..records import Record
from . import hf as hf_io
from .common import gzip_bytes, is_gzip_name, read_text
from .detect import FILE_FORMATS, JSON_FAMILY, detect_file_format, output_format_for
from .json_formats import JsonStyle, dump_json_array, dump_jsonl, read_json_array, read_jsonl
from .schemas import PARSERS, SCHEMAS, FieldError, Names, check_fields, detect_schema, type_name
from .tabular import dump_csv, header_of, read_csv, read_parquet, table_from_rows, write_parquet


@dataclass(eq=False)
class Dataset:
    records: list[Record]
    path: str
    file_format: str
    schema: str
    fields: dict[str, str] = field(default_factory=dict)
    # --- how to write records back as read (private) ---
    _rows: list | None = field(default=None, repr=False)  # json / jsonl / csv: the parsed rows
    _table: Any = field(default=None, repr=False)  # parquet / hf: the pyarrow Table
    _hf: Any = field(default=None, repr=False)  # hf: the datasets.Dataset (keeps features and info)
    _json_style: JsonStyle = field(default_factory=JsonStyle, repr=False)
    _csv_header: list[str] | None = field(default=None, repr=False)
    _csv_lineterminator: str = field(default="\n", repr=False)
    _held: Any = field(default=None, repr=False)  # rows held by an executor (Ray's blocks): it writes them

    def __len__(self) -> int:
        return len(self.records)

    def raw(self, index: int) -> dict:
        """The original record `index` as a plain dict (a copy: changing it changes nothing here)."""
        n = len(self.records)
        if not -n <= index < n:
            raise IndexError(f"record {index} out of range for {n} records")
        index %= n
        if self._rows is not None:
            return copy.deepcopy(self._rows[index])
        return self._table.slice(index, 1).to_pylist()[0]

    # --- subsets, for the writers ---
    def _rows_at(self, indices: Sequence[int]) -> list:
        if self._rows is not None:
            return [self._rows[i] for i in indices]
        return self._table.take(_index_array(indices)).to_pylist()

    def _all_columns(self) -> list[str]:
        if self._table is not None:
            return list(self._table.column_names)
        if self._csv_header is not None:
            return list(self._csv_header)
        return header_of(self._rows or [])

    def _table_at(self, indices: Sequence[int], path: str):
        if self._table is not None:
            return self._table.take(_index_array(indices))
        return table_from_rows(self._rows or [], path).take(_index_array(indices))


def _index_array(indices: Sequence[int]):
    import pyarrow as pa

    return pa.array(list(indices), type=pa.int64())


# --------------------------------------------------------------------------------------------------
# reading


def _parse_records(
    rows: Sequence[Mapping],
    path: str,
    schema: str | None,
    names: Names,
    keys: Sequence[str] | None,
    locate,
    json_strings: bool = False,
) -> tuple[str, list[Record]]:
    """Schema detection + one Record per row; errors name the file, the record and the field."""
    if not rows:
        raise CarSelectError(f"{path}: no records (the dataset is empty)")
    if keys is None:
        first = rows[0]
        if not isinstance(first, Mapping):
            raise CarSelectError(f"{path}: {locate(0)}: expected a JSON object, got {type_name(first)}")
        keys = list(first.keys())
    if schema is None:
        any_history = names.history in keys or (
            names.instruction in keys and any(isinstance(r, Mapping) and names.history in r for r in rows)
        )
        schema = detect_schema(keys, names, any_history)
        if schema is None:
            shown = ", ".join(f'"{k}"' for k in list(keys)[:8]) + (", ..." if len(keys) > 8 else "")
            raise CarSelectError(
                f"{path}: {locate(0)}: cannot tell the schema from its fields ({shown or 'none'}):"
                " expected instruction/output, conversations, messages or history;"
                " map your names with --fields (e.g. instruction=prompt,output=response) or pass --schema"
            )
    parse = PARSERS[schema]
    records: list[Record] = []
    append = records.append
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise CarSelectError(f"{path}: {locate(i)}: expected a JSON object, got {type_name(row)}")
        try:
            append(parse(row, names, json_strings))
        except FieldError as exc:
            raise CarSelectError(f"{path}: {locate(i)}: {exc}") from None
    return schema, records


def _check_schema(schema: str | None) -> str | None:
    if schema is None:
        return None
    s = schema.strip().lower()
    if s not in SCHEMAS:
        raise CarSelectError(f"--schema: unknown schema {schema!r} (expected one of {', '.join(SCHEMAS)})")
    return s


def read_dataset(
    path: str | os.PathLike,
    file_format: str | None = None,
    schema: str | None = None,
    fields: Mapping[str, str] | None = None,
) -> Dataset:
    """Read a dataset file (format and schema detected unless given) into normalised records."""
    path = os.fspath(path)
    schema = _check_schema(schema)
    fields = check_fields(fields)
    names = Names(fields)
    fmt = detect_file_format(path, file_format)

    if fmt in JSON_FAMILY:
        text = read_text(path)
        src = read_json_array(path, text) if fmt == "json" else read_jsonl(path, text)

        def locate(i: int, src=src) -> str:
            line = src.line_of(i)
            return f"line {line}, record {i}" if line is not None else f"record {i}"

        schema, records = _parse_records(src.rows, path, schema, names, None, locate)
        src.text = None  # only needed to locate errors
        return Dataset(records, path, fmt, schema, fields, _rows=src.rows, _json_style=src.style)

    if fmt == "csv":
        src = read_csv(path, read_text(path))
        schema, records = _parse_records(
            src.rows, path, schema, names, src.header, lambda i: f"line {src.lines[i]}, record {i}", json_strings=True
        )
        return Dataset(
            records, path, fmt, schema, fields,
            _rows=src.rows, _csv_header=src.header, _csv_lineterminator=src.lineterminator,
        )

    if fmt == "parquet":
        table, ds = read_parquet(path), None
    else:
        ds, table = hf_io.load_hf(path)
    columns = list(table.column_names)
    wanted = [c for c in dict.fromkeys(names.all()) if c in columns]
    values = {c: table.column(c).to_pylist() for c in wanted}
    rows = [dict(zip(wanted, vals)) for vals in zip(*values.values())] if wanted else [{}] * table.num_rows
    schema, records = _parse_records(rows, path, schema, names, columns, lambda i: f"record {i}")
    return Dataset(records, path, fmt, schema, fields, _table=table, _hf=ds)


# --------------------------------------------------------------------------------------------------
# writing


def output_format(dataset: Dataset, path: str | os.PathLike, file_format: str | None = None) -> str:
    """The format `write_subset` uses: the output path's known extension, else `file_format`, else
    the input's format (detect.output_format_for: a contradiction is an error)."""
    return output_format_for(os.fspath(path), file_format, dataset.file_format)


def write_subset(
    dataset: Dataset,
    indices: Sequence[int],
    path: str | os.PathLike,
    file_format: str | None = None,
    add_columns: Mapping[str, Sequence] | None = None,
) -> None:
    """Write `dataset`'s records at `indices` (in that order) exactly as read, atomically.
    `add_columns` maps a new field name to one value per written record (e.g. `score`)."""
    target = os.fspath(path)
    if dataset._held is not None:
        raise RuntimeError("this Dataset's rows are held by the executor that read it: write through it")
    fmt = output_format(dataset, target, file_format)
    indices = [int(i) for i in indices]
    n = len(dataset.records)
    for i in indices:
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for {n} records")

    if fmt == "hf":
        hf_io.import_datasets(f"writing {target} as a Hugging Face dataset folder")
        if dataset._hf is not None and not add_columns:
            subset = dataset._hf.select(indices)
        else:
            subset = hf_io.dataset_from_table(_with_columns(dataset._table_at(indices, target), add_columns))
        try:
            with atomic_path(target, directory=True) as tmp:
                hf_io.save_to_disk(subset, tmp)
        except OSError as exc:
            raise CarSelectError(f"cannot write {target}: {exc.strerror or exc}") from None
        return

    if fmt == "parquet":
        table = _with_columns(dataset._table_at(indices, target), add_columns)
        try:
            with atomic_path(target) as tmp:
                write_parquet(table, tmp)
        except OSError as exc:
            raise CarSelectError(f"cannot write {target}: {exc.strerror or exc}") from None
        return

    rows = dataset._rows_at(indices)
    if add_columns:
        rows = [{**row, **{name: values[k] for name, values in add_columns.items()}} for k, row in enumerate(rows)]
    if fmt == "json":
        text = dump_json_array(rows, _json_style_for(dataset, fmt), target)
    elif fmt == "jsonl":
        text = dump_jsonl(rows, _json_style_for(dataset, fmt), target)
    else:  # csv
        header = dataset._all_columns() + [c for c in (add_columns or {}) if c not in dataset._all_columns()]
        text = dump_csv(rows, header, dataset._csv_lineterminator)
    data = text.encode("utf-8")
    atomic_write_bytes(target, gzip_bytes(data) if is_gzip_name(target) else data)


def _with_columns(table, add_columns: Mapping[str, Sequence] | None):
    import pyarrow as pa

    for name, values in (add_columns or {}).items():
        column = pa.array(list(values))
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, column)
        else:
            table = table.append_column(name, column)
    return table


def _json_style_for(dataset: Dataset, fmt: str) -> JsonStyle:
    if dataset.file_format == fmt:
        return dataset._json_style
    if fmt == "json":  # converting: a readable array, one record per block
        return JsonStyle(indent=2, ensure_ascii=dataset._json_style.ensure_ascii)
    return JsonStyle(ensure_ascii=dataset._json_style.ensure_ascii)


__all__ = ["Dataset", "FILE_FORMATS", "output_format", "read_dataset", "write_subset"]
