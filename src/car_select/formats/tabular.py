"""CSV (header row, fields may span lines) and Parquet (pyarrow)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import CarSelectError

# Responses can be long: lift the csv module's 128 KiB per-field limit (process-wide, raise only).
if csv.field_size_limit() < 2**31 - 1:
    csv.field_size_limit(2**31 - 1)


@dataclass
class CsvRows:
    rows: list[dict]
    header: list[str]
    lines: list[int]
    lineterminator: str = "\n"

    def line_of(self, index: int) -> int:
        return self.lines[index]


def read_csv(path: str, text: str) -> CsvRows:
    first_nl = text.find("\n")
    lineterminator = "\r\n" if first_nl > 0 and text[first_nl - 1] == "\r" else "\n"
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise CarSelectError(f"{path}: empty file, no records")
        seen = set()
        for name in header:
            if name in seen:
                raise CarSelectError(f'{path}: line 1: column "{name}" appears twice in the header')
            seen.add(name)
        rows, lines = [], []
        width = len(header)
        last_line = reader.line_num
        for values in reader:
            start_line, last_line = last_line + 1, reader.line_num
            if not values:
                continue  # blank line
            if len(values) != width:
                raise CarSelectError(
                    f"{path}: line {start_line}, record {len(rows)}: has {len(values)} values"
                    f" but the header has {width} columns"
                )
            rows.append(dict(zip(header, values)))
            lines.append(start_line)
    except csv.Error as exc:
        raise CarSelectError(f"{path}: line {reader.line_num}: invalid CSV: {exc}") from None
    return CsvRows(rows=rows, header=header, lines=lines, lineterminator=lineterminator)


def _cell(value) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, default=str)


def dump_csv(rows: Sequence[dict], header: Sequence[str], lineterminator: str = "\n") -> str:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator=lineterminator)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in header])
    return buf.getvalue()


def header_of(rows: Sequence[dict]) -> list[str]:
    """Every key of `rows`, in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


# --------------------------------------------------------------------------------------------------
# Parquet


def read_parquet(path: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except FileNotFoundError:
        raise CarSelectError(f"{path}: file not found") from None
    except (pa.ArrowException, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CarSelectError(f"{path}: not a valid Parquet file: {reason}") from None


def table_from_rows(rows: Sequence[dict], path: str):
    """A pyarrow Table with one column per key (first-seen order); missing keys become nulls."""
    import pyarrow as pa

    columns = {}
    for name in header_of(rows):
        values = [row.get(name) for row in rows]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CarSelectError(
                f'cannot write {path}: field "{name}" has values of mixed types that Arrow cannot hold: {reason}'
            ) from None
    return pa.table(columns) if columns else pa.table({})


def write_parquet(table, path: str) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table, path)
