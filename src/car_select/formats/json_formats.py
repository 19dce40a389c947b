"""JSON arrays and JSON Lines: reading with line-precise errors, writing records back unchanged."""

from __future__ import annotations

import datetime
import decimal
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import CarSelectError
from .schemas import type_name

_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")


@dataclass
class JsonStyle:
    """How the input was laid out, so the output looks the same."""

    indent: int | str | None = None
    ensure_ascii: bool = False
    separators: tuple[str, str] | None = None  # None: json's defaults; (",", ":") for compact input


@dataclass
class JsonRows:
    rows: list
    style: JsonStyle
    lines: list[int] | None = None  # JSONL: the line of each record
    text: str | None = None  # JSON array: kept to locate records lazily (only on errors)

    def line_of(self, index: int) -> int | None:
        if self.lines is not None:
            return self.lines[index]
        if self.text is not None:
            return _array_element_line(self.text, index)
        return None


def _style_of(text: str, head: str) -> JsonStyle:
    ensure_ascii = text.isascii() and "\\u" in text
    indent: int | str | None = None
    m = re.match(r"\s*\[[ \t]*\r?\n([ \t]*)[{\[]", head)
    if m:
        ws = m.group(1)
        indent = len(ws) if set(ws) <= {" "} else ws
    return JsonStyle(indent=indent, ensure_ascii=ensure_ascii)


def _array_element_line(text: str, index: int) -> int | None:
    """Line number of element `index` of the top-level JSON array in `text` (1-based)."""
    pos = _WS.match(text, 0).end()
    if pos >= len(text) or text[pos] != "[":
        return None
    pos += 1
    for k in range(index + 1):
        pos = _WS.match(text, pos).end()
        if k == index:
            return text.count("\n", 0, pos) + 1
        try:
            _, pos = _DECODER.raw_decode(text, pos)
        except ValueError:
            return None
        pos = _WS.match(text, pos).end()
        if pos < len(text) and text[pos] == ",":
            pos += 1
    return None


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _first_lone_surrogate(rows: list) -> int | None:
    """The position of the first row holding a lone surrogate (valid JSON, but not Unicode text: it
    can be neither rendered nor written back as UTF-8)."""
    for i, row in enumerate(rows):
        try:
            json.dumps(row, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return i
    return None


def check_unicode(path: str, text: str, src: "JsonRows") -> None:
    """One-line error for a record with a lone surrogate escape such as "\\ud800"; the scan runs only
    when the file has a surrogate escape at all (paired ones decode to real characters)."""
    if "\\u" not in text or not _SURROGATE_ESCAPE.search(text):
        return
    i = _first_lone_surrogate(src.rows)
    if i is not None:
        line = src.line_of(i)
        where = f"line {line}, record {i}" if line is not None else f"record {i}"
        raise CarSelectError(f"{path}: {where}: contains a lone surrogate escape (e.g. \"\\ud800\"), which is "
                             "not Unicode text; fix or drop the record")


def read_json_array(path: str, text: str) -> JsonRows:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if not text.strip():
            raise CarSelectError(f"{path}: empty file, no records") from None
        hint = ""
        if exc.msg == "Extra data" and text.lstrip().startswith("{"):
            hint = " (one JSON object per line? use --format jsonl)"
        raise CarSelectError(
            f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}{hint}"
        ) from None
    if not isinstance(data, list):
        raise CarSelectError(
            f"{path}: expected a JSON array of records (or JSON Lines, one object per line), got {type_name(data)}"
        )
    style = _style_of(text, text[:4096])
    if style.indent is None and data:
        first = text.lstrip()[1:].lstrip()
        style.separators = _compact_if(first, data[0], style.ensure_ascii)
    rows = JsonRows(rows=data, style=style, text=text)
    check_unicode(path, text, rows)
    return rows


def _compact_if(text: str, first_row, ensure_ascii: bool) -> tuple[str, str] | None:
    """(",", ":") when `text` starts with `first_row` dumped compactly (so the input was compact)."""
    try:
        compact = json.dumps(first_row, ensure_ascii=ensure_ascii, separators=(",", ":"))
    except (TypeError, ValueError):  # pragma: no cover - parsed JSON always dumps
        return None
    default = json.dumps(first_row, ensure_ascii=ensure_ascii)
    return (",", ":") if compact != default and text.startswith(compact) else None


def read_jsonl(path: str, text: str) -> JsonRows:
    rows, lines = [], []
    loads = json.loads
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rows.append(loads(line))
        except json.JSONDecodeError as exc:
            if lineno == 1 and line.strip() in ("{", "["):
                _single_document_error(path, text)
            raise CarSelectError(
                f"{path}: line {lineno}: invalid JSON at column {exc.colno}: {exc.msg}"
            ) from None
        lines.append(lineno)
    style = JsonStyle(ensure_ascii=text.isascii() and "\\u" in text)
    if rows:
        style.separators = _compact_if(text.split("\n", lines[0])[lines[0] - 1].strip(), rows[0], style.ensure_ascii)
    src = JsonRows(rows=rows, style=style, lines=lines)
    check_unicode(path, text, src)
    return src


def _single_document_error(path: str, text: str) -> None:
    """The file is one multi-line JSON document rather than JSON Lines: say so precisely."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CarSelectError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if isinstance(data, list):
        return  # a JSON array read as JSONL: the caller's line error stands
    raise CarSelectError(
        f"{path}: expected a JSON array of records or JSON Lines (one object per line),"
        f" got a single JSON {type_name(data)} spanning several lines"
    )


# --------------------------------------------------------------------------------------------------
# writing


def _default(value):
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    if hasattr(value, "tolist"):  # numpy scalars / arrays
        return value.tolist()
    raise TypeError(f"a value of type {type(value).__name__} cannot be written as JSON")


def _dumps(obj, style: JsonStyle, path: str, indent=None) -> str:
    try:
        return json.dumps(
            obj, ensure_ascii=style.ensure_ascii, indent=indent, separators=style.separators, default=_default
        )
    except (TypeError, ValueError) as exc:
        raise CarSelectError(f"cannot write {path} as JSON: {exc}") from None


def dump_json_array(rows: Sequence, style: JsonStyle, path: str) -> str:
    return _dumps(list(rows), style, path, indent=style.indent) + "\n"


def dump_jsonl(rows: Sequence, style: JsonStyle, path: str) -> str:
    return "".join(_dumps(row, style, path) + "\n" for row in rows)
