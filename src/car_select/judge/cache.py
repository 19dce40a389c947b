"""Ratings already received, on disk, so no request is ever sent twice.

One SQLite file (<cache_dir>/ratings.sqlite, write-ahead log) keyed by SHA-256 of (model, system
message, filled prompt, generation settings): the filled prompt holds the rubric and the text, so a
changed rubric, text or model is a new key. Every rating is committed the moment its reply is
parsed, so a run killed at any point (kill -9 included) keeps every rating it received; a rerun
sends only the requests whose reply it never got. Only parsed ratings are kept: a reply that could not
be parsed is asked again by the next run.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from ..errors import CarSelectError

FILE_NAME = "ratings.sqlite"


def rating_key(model: str, system: str, prompt: str, settings: dict) -> str:
    payload = json.dumps([model, system, prompt, settings], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


class RatingsCache:
    """Thread-safe get/put of ratings by key; `path=None` keeps them in memory only."""

    def __init__(self, path: str | os.PathLike | None):
        self.path = None if path is None else Path(path)
        self._lock = threading.Lock()
        target = ":memory:"
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise CarSelectError(f"cannot write the ratings cache {self.path}: {e.strerror or e}") from None
            target = str(self.path)
        try:
            self._db = sqlite3.connect(target, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL: a commit reaches the log before it returns, so it survives the process being
            # killed (not a power cut, which costs at most the last ratings, asked again)
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS ratings (key TEXT PRIMARY KEY, rating REAL NOT NULL, "
                             "reply TEXT, tokens INTEGER, model TEXT, created REAL)")
            self._db.commit()
        except sqlite3.Error as e:
            raise CarSelectError(f"cannot open the ratings cache {self.path}: {e}") from None

    @classmethod
    def in_folder(cls, folder: str | os.PathLike) -> "RatingsCache":
        return cls(Path(folder) / FILE_NAME)

    def get(self, key: str) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT rating FROM ratings WHERE key = ?", (key,)).fetchone()
        return None if row is None else float(row[0])

    def get_many(self, keys) -> dict[str, float]:
        keys = list(dict.fromkeys(keys))
        out = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for key, rating in self._db.execute(f"SELECT key, rating FROM ratings WHERE key IN ({marks})", chunk):
                    out[key] = float(rating)
        return out

    def put(self, key: str, rating: float, reply: str = "", tokens: int = 0, model: str = "") -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO ratings VALUES (?, ?, ?, ?, ?, ?)",
                             (key, float(rating), reply, int(tokens), model, time.time()))
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
