"""Helpers shared by the readers: reading text with precise errors, locating records in messages."""

from __future__ import annotations

import os

from ..errors import CarSelectError

BOM = b"\xef\xbb\xbf"


def read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
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
