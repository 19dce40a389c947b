"""Helpers shared by the readers: reading text with precise errors, locating records in messages."""

from __future__ import annotations

import gzip
import os
import zlib

from ..errors import CarSelectError

BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"


def is_gzip_name(path: str) -> bool:
    return os.fspath(path).lower().endswith(".gz")


def gunzip(path: str, data: bytes) -> bytes:
    """The decompressed content of a gzip file, or a one-line error naming it."""
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise CarSelectError(f"{path}: not a valid gzip file: {exc}") from None


def gzip_bytes(data: bytes) -> bytes:
    """gzip with no timestamp or name in the header, so the same records give the same bytes."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def open_input(path: str):
    """A binary file: a local path with `open`, a URL (`s3://`, `file://`, ...) through `remote`."""
    from .remote import is_url, open_url

    return open_url(path) if is_url(path) else open(path, "rb")


def read_bytes(path: str) -> bytes:
    """A file's bytes, decompressed when it is gzip (by content, whatever its name)."""
    try:
        with open_input(path) as fh:
            data = fh.read()
        return gunzip(path, data) if data.startswith(GZIP_MAGIC) else data
    except FileNotFoundError:
        raise CarSelectError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise CarSelectError(f"{path}: is a directory, not a dataset file") from None
    except OSError as exc:
        raise CarSelectError(f"{path}: cannot read: {exc.strerror or exc}") from None


def decode_utf8(path: str, data: bytes) -> str:
    """UTF-8 (a leading byte-order mark is dropped); other bytes -> error naming the byte offset."""
    start = len(BOM) if data.startswith(BOM) else 0
    try:
        return data[start:].decode("utf-8") if start else data.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + start
        line = data.count(b"\n", 0, offset) + 1
        raise CarSelectError(
            f"{path}: not UTF-8 text: invalid byte 0x{data[offset]:02x} at byte offset {offset} (line {line});"
            " re-encode the file as UTF-8"
        ) from None


def read_text(path: str) -> str:
    return decode_utf8(path, read_bytes(path))


def record_error(path: str, where: str, message: str) -> CarSelectError:
    return CarSelectError(f"{path}: {where}: {message}")


def display_path(path: str | os.PathLike) -> str:
    return os.fspath(path)
