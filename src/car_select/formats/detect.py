"""Which file format a path holds: `hf://` URIs, folders, then content (JSON vs JSON Lines, Parquet
magic), then the extension."""

from __future__ import annotations

import os

from ..errors import CarSelectError
from .common import BOM, GZIP_MAGIC, open_input
from .hf import HF_MARKERS, HF_PREFIX, is_hf_folder
from .remote import is_url, url_kind

FILE_FORMATS = ("json", "jsonl", "csv", "parquet", "hf")

EXTENSIONS = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
JSON_FAMILY = ("json", "jsonl")


def check_file_format(file_format: str | None, option: str = "--format") -> str | None:
    if file_format is None:
        return None
    fmt = file_format.strip().lower()
    if fmt == "arrow":
        fmt = "hf"
    if fmt not in FILE_FORMATS:
        raise CarSelectError(f"{option}: unknown format {file_format!r} (expected one of {', '.join(FILE_FORMATS)})")
    return fmt


def extension_format(path: str) -> str | None:
    """The format a file name says, looking through a trailing ".gz" ("x.jsonl.gz" -> "jsonl")."""
    name = os.fspath(path).lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return EXTENSIONS.get(os.path.splitext(name)[1])


def output_format_for(path: str, requested: str | None, input_format: str) -> str:
    """The one output-format rule, for the CLI and the API alike: a known extension of `path` decides
    (".json" a JSON array, ".jsonl" JSON Lines, ...; through ".gz"); with none, `requested` (the
    output_format argument), else the input's format. A `requested` format that contradicts the
    extension is an error."""
    fmt = check_file_format(requested, "--output-format")
    ext = extension_format(os.fspath(path)) if path else None
    if fmt is not None and ext is not None and fmt != ext:
        from ..errors import SettingError

        raise SettingError(f"{{}} {fmt} contradicts the output {os.fspath(path)}, whose extension says {ext}; "
                           "drop one or make them agree", "output_format")
    return fmt or ext or input_format


def _head(path: str, size: int = 65536) -> bytes:
    import gzip
    import zlib

    try:
        with open_input(path) as fh:
            head = fh.read(size)
            if head.startswith(GZIP_MAGIC):  # look at the content, not the compressed bytes
                fh.seek(0)
                with gzip.open(fh) as gz:
                    return gz.read(size)
            return head
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise CarSelectError(f"{path}: not a valid gzip file: {exc}") from None
    except OSError as exc:
        raise CarSelectError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _first_char(head: bytes) -> str:
    if head.startswith(BOM):
        head = head[len(BOM):]
    stripped = head.lstrip(b" \t\r\n")
    return chr(stripped[0]) if stripped else ""


def detect_file_format(path: str, file_format: str | None = None) -> str:
    """The format to read `path` as (`file_format` wins when given)."""
    fmt = check_file_format(file_format)
    if path.startswith(HF_PREFIX):
        if fmt not in (None, "hf"):
            raise CarSelectError(f"{path}: an hf:// dataset cannot be read as {fmt}")
        return "hf"
    kind = url_kind(path) if is_url(path) else "dir" if os.path.isdir(path) else "file" if os.path.exists(path) else None
    if kind is None:
        raise CarSelectError(f"{path}: file not found")
    if kind == "dir":
        if fmt not in (None, "hf"):
            raise CarSelectError(f"{path}: is a directory, not a {fmt} file")
        if not is_hf_folder(path):
            raise CarSelectError(
                f"{path}: is a directory but not a Hugging Face dataset folder (no {' or '.join(HF_MARKERS)})"
            )
        return "hf"
    if fmt == "hf":
        raise CarSelectError(f"{path}: --format hf needs a dataset folder written by save_to_disk or hf://owner/name")
    if fmt is not None:
        return fmt
    head = _head(path)
    ext = extension_format(path)
    if head.startswith(b"PAR1"):
        return "parquet"
    if ext in ("parquet", "csv"):
        return ext
    first = _first_char(head)
    if first == "[":
        return "json"
    if first == "{":
        return "jsonl"
    if ext is not None:
        return ext  # an empty or malformed .json/.jsonl file: its reader reports the problem
    raise CarSelectError(
        f"{path}: cannot tell the file format (expected JSON, JSON Lines, CSV, Parquet or a Hugging Face"
        f" dataset folder); pass --format {'|'.join(FILE_FORMATS)}"
    )
