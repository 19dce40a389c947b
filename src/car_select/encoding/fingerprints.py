"""Content hashes of model files: what the feature cache, the scorer fingerprints and the run
manifest use to tell one set of weights from another."""

from __future__ import annotations

import functools
import hashlib
import os

from .models import resolve_encoder_path


def file_digest(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=16)
def _dir_digest(path: str, stamp: tuple) -> str:
    # `stamp` (names, sizes, mtimes) is part of the lru key: a changed file is hashed again
    h = hashlib.sha256()
    for name, _size, _mtime in stamp:
        h.update(name.encode())
        h.update(file_digest(os.path.join(path, name)).encode())
    return h.hexdigest()


def weights_fingerprint(name_or_path: str) -> str:
    """A content hash of a local model folder's weight and config files (hub ids hash their name)."""
    path = resolve_encoder_path(name_or_path)
    if not os.path.isdir(path):
        return hashlib.sha256(path.encode()).hexdigest()
    names = sorted(
        n for n in os.listdir(path)
        if n.endswith((".safetensors", ".bin", ".json", ".txt", ".model")) and os.path.isfile(os.path.join(path, n))
    )
    stamp = tuple((n, os.path.getsize(os.path.join(path, n)), os.path.getmtime(os.path.join(path, n))) for n in names)
    return _dir_digest(path, stamp)
