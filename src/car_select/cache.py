"""Per-text features (scores, embeddings, token counts) stored on disk, keyed by content.

Layout: <cache_dir>/<namespace>/shard-*.npz, where the namespace is the model fingerprint (weights,
head, max length and precision) and each row is keyed by the SHA-256 of the rendered text. Shards are
plain numpy arrays (np.savez, loaded with allow_pickle=False): no pickle anywhere. Each shard is
written to a temporary file and renamed, so a run killed mid-way leaves only complete shards, and the
next run resumes from them.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .errors import CarSelectError

KEY_BYTES = 16


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """(n,) fixed-width byte keys: the first 16 bytes of SHA-256 of each text."""
    return np.array([hashlib.sha256(t.encode("utf-8")).digest()[:KEY_BYTES] for t in texts], dtype=f"S{KEY_BYTES}")


class FeatureCache:
    def __init__(self, root: str | os.PathLike, namespace: str):
        self.dir = Path(root) / namespace
        self._index: dict[bytes, tuple[int, int]] | None = None
        self._shards: list[dict[str, np.ndarray]] = []

    def _load(self) -> None:
        if self._index is not None:
            return
        self._index, self._shards = {}, []
        if not self.dir.is_dir():
            return
        for path in sorted(self.dir.glob("shard-*.npz")):
            try:
                with np.load(path, allow_pickle=False) as z:
                    shard = {k: z[k] for k in z.files}
            except (OSError, ValueError) as e:  # unreadable shard: ignore it, its rows are recomputed
                print(f"car-select: ignoring unreadable cache shard {path}: {e}", flush=True)
                continue
            s = len(self._shards)
            self._shards.append(shard)
            for row, key in enumerate(shard["keys"].tolist()):
                self._index.setdefault(key, (s, row))

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
        """(found mask, arrays for the found rows in order of keys[found]) for the given keys."""
        self._load()
        hits = [self._index.get(k) for k in keys.tolist()]
        found = np.array([h is not None for h in hits], dtype=bool)
        if not found.any():
            return found, None
        names = [n for n in self._shards[0] if n != "keys"]
        out = {}
        for name in names:
            out[name] = np.stack([self._shards[s][name][r] for s, r in (h for h in hits if h is not None)])
        return found, out

    def put(self, keys: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
        if len(keys) == 0:
            return
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CarSelectError(f"cannot create cache directory {self.dir}: {e.strerror}") from None
        path = self.dir / f"shard-{uuid.uuid4().hex}.npz"
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, keys=keys, **arrays)
        if self._index is not None:
            s = len(self._shards)
            self._shards.append({"keys": keys, **arrays})
            for row, key in enumerate(keys.tolist()):
                self._index.setdefault(key, (s, row))

    def __len__(self) -> int:
        self._load()
        return len(self._index)
