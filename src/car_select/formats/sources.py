"""Inputs made of several files (a folder of shards, a glob) and outputs made of several files (a
folder of shards), for both executors.

A sharded input is read file by file with `read_dataset` (each file keeps its own format and schema
detection, so JSON Lines and Parquet shards may be mixed) and combined into one `Dataset` whose
records are in input order: files sorted by path, rows in file order. Writing goes through
`write_subset` like a single file, so a selection comes out exactly as it went in whichever
executor read it.
"""

from __future__ import annotations

import dataclasses
import glob
import os
from collections.abc import Callable, Mapping, Sequence

from ..errors import CarSelectError
from .dataset import Dataset, output_format, write_subset
from .detect import extension_format
from .hf import HF_PREFIX, is_hf_folder
from .remote import is_url, list_url, url_kind

SHARD_FORMATS = ("json", "jsonl", "csv", "parquet")


def is_sharded(path: str) -> bool:
    """A folder of data files (not a Hugging Face dataset folder) or a glob."""
    if path.startswith(HF_PREFIX):
        return False
    if any(c in path for c in "*?["):
        return True  # a glob in a URL too: list_url refuses it in one line
    if is_url(path):
        return url_kind(path) == "dir"
    return os.path.isdir(path) and not is_hf_folder(path)


def _hidden(rel: str) -> bool:
    return any(part.startswith((".", "_")) for part in rel.split(os.sep))


def list_files(path: str) -> list[str]:
    """The data files of a sharded input, sorted by path: a folder is searched recursively (hidden and
    _-prefixed entries skipped: .car-select temporaries, _SUCCESS markers); a glob is taken literally.
    A URL folder is listed through `remote`, with the same rules."""
    if is_url(path):
        root = path.split("?", 1)[0].rstrip("/")
        files = [f for f in list_url(path) if not _hidden(f[len(root):].lstrip("/").replace("/", os.sep))
                 and extension_format(f) in SHARD_FORMATS]
        if not files:
            raise CarSelectError(f"{path}: no .json, .jsonl, .csv or .parquet files in this folder")
        return files
    if any(c in path for c in "*?["):
        files = sorted(f for f in glob.glob(path, recursive=True) if os.path.isfile(f))
        if not files:
            raise CarSelectError(f"{path}: no files match")
        return files
    files = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in names:
            full = os.path.join(root, name)
            if not _hidden(os.path.relpath(full, path)) and extension_format(name) in SHARD_FORMATS:
                files.append(full)
    if not files:
        raise CarSelectError(f"{path}: no .json, .jsonl, .csv or .parquet files in this folder")
    return sorted(files)


def combine(path: str, parts: Sequence[Dataset], records: Sequence | None = None, rows: Sequence | None = None) -> Dataset:
    """One Dataset from the per-file Datasets of a sharded input, records in file order. Raw rows stay
    as read: dicts for JSON/CSV files, Arrow tables for Parquet (as dicts when the files are mixed).

    With `records` and `rows` (the Ray executor's writer: some rows, in any order, each as
    `split_rows` gave it), `parts` are only the files' layouts (`shell`) and the Dataset holds those
    rows: the layout decisions are taken over every file, so a subset is written as the whole would be."""
    first = parts[0]
    if records is None:
        records = [r for p in parts for r in p.records]
    formats = {p.file_format for p in parts}
    schemas = {p.schema for p in parts}
    common = dict(records=list(records), path=path, file_format=first.file_format if len(formats) == 1 else "jsonl",
                  schema=first.schema if len(schemas) == 1 else "mixed", fields=first.fields)
    if all(p._table is not None for p in parts):
        import pyarrow as pa

        # the shells' empty tables first: the same column order and promoted types as the whole input
        tables = [p._table for p in parts] + ([] if rows is None else list(rows))
        try:
            table = pa.concat_tables(tables, promote_options="permissive")
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise CarSelectError(f"{path}: the shards' columns do not agree: {str(exc).splitlines()[0]}") from None
        return Dataset(**common, _table=table)
    if rows is None:
        raw = []
        for p in parts:
            raw.extend(p._rows if p._rows is not None else p._table.to_pylist())
    else:
        raw = [r if isinstance(r, dict) else r.to_pylist()[0] for r in rows]
    header = first._csv_header if formats == {"csv"} else None
    if header is not None:
        header = list(dict.fromkeys(c for p in parts for c in (p._csv_header or [])))
    return Dataset(**common, _rows=raw, _json_style=first._json_style, _csv_header=header,
                   _csv_lineterminator=first._csv_lineterminator)


def shell(dataset: Dataset) -> Dataset:
    """A file's layout without its rows (format, schema, JSON style, CSV header, Parquet schema):
    what `combine` needs besides the rows, small enough to send anywhere."""
    table = None if dataset._table is None else dataset._table.schema.empty_table()
    return dataclasses.replace(dataset, records=[], _rows=None, _table=table, _hf=None)


def split_rows(dataset: Dataset) -> list:
    """Each record's raw row on its own, as `combine` takes it back: a dict (JSON, JSONL, CSV) or a
    one-row Arrow table (Parquet; `take` copies, where a slice would carry the whole file along)."""
    if dataset._rows is not None:
        return list(dataset._rows)
    return [dataset._table.take([i]) for i in range(dataset._table.num_rows)]


def read_sharded(path: str, read_one: Callable[[str], Dataset]) -> Dataset:
    """Read every file of a sharded input with `read_one` and combine them."""
    return combine(path, [read_one(f) for f in list_files(path)])


def write_selection(dataset: Dataset, indices: Sequence[int], target: str, folder: bool,
                    file_format: str | None = None, rows_per_shard: int = 100_000,
                    add_columns: Mapping[str, Sequence] | None = None) -> None:
    """The selection's one writer, for every executor (and `score`, with its score column): a folder of
    shards when `folder` (and the format is not hf), else one file."""
    fmt = output_format(dataset, target, file_format)
    if folder and fmt != "hf":
        write_shards(dataset, indices, target, file_format, rows_per_shard, add_columns=add_columns)
    else:
        write_subset(dataset, indices, target, fmt, add_columns=add_columns)


def shard_names(n_rows: int, rows_per_shard: int, ext: str) -> list[str]:
    count = max(1, -(-n_rows // max(1, rows_per_shard)))
    return [f"part-{i:05d}{ext}" for i in range(count)]


def write_shards(dataset: Dataset, indices: Sequence[int], folder: str, file_format: str | None = None,
                 rows_per_shard: int = 100_000, add_columns: Mapping[str, Sequence] | None = None) -> list[str]:
    """The records at `indices`, in that order, as shards part-00000.<ext>, ... in `folder` (which
    exists and is empty: a run's temporary folder)."""
    fmt = output_format(dataset, "", file_format)
    if fmt == "hf":
        raise CarSelectError("a folder of shards cannot be a Hugging Face dataset; pass --output-format")
    ext = "." + fmt
    indices = list(indices)
    names = shard_names(len(indices), rows_per_shard, ext)
    step = max(1, rows_per_shard)
    for k, name in enumerate(names):
        part = indices[k * step:(k + 1) * step]
        extra = {c: list(v)[k * step:(k + 1) * step] for c, v in (add_columns or {}).items()} or None
        write_subset(dataset, part, os.path.join(folder, name), fmt, add_columns=extra)
    return names
