"""Per-text features (scores, embeddings, token counts) stored on disk, keyed by content.

Layout: <cache_dir>/v<FORMAT>-<model fingerprint>-L<layout hash>/shard-*.npz. The namespace holds
every setting that changes the numbers: the cache format, the model (weights, head, max length,
precision) and the batch layout (the effective tokens per batch, the encoder kernels, the threads per
batch, the device type). A text's row does not depend on which texts were computed with it (batches
hold one token count; encoding/batching.py), so a cache filled by any run gives the bits a fresh
run computes; the layout stays in the key for kernels not checked for that. Each
row is keyed by the SHA-256 of the rendered text. Shards are plain numpy arrays (np.savez, loaded with
allow_pickle=False, no pickle anywhere), rows sorted by key, each written to a temporary file, fsynced,
renamed and its folder fsynced, so a run killed mid-way leaves only complete shards.

A shard that cannot be read (truncated, corrupt, the wrong arrays) is skipped and deleted: its rows
are recomputed. Lookups keep only each shard's sorted keys in memory and read a shard's feature
arrays only when it holds a hit. Nothing here prints: problems are CarSelectWarnings (the CLI shows them on stderr).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CarSelectError, CarSelectWarning
from .outputs import fsync_dir, remove_stale_temporaries, temp_sibling

# bump when the shard layout or what a row means changes. 3: batch-invariant features (one token count
# per batch, the head in fixed rows; encoding/batching.py): rows of format 2 came from padded batches.
CACHE_FORMAT = 3
KEY_BYTES = 16
ARRAYS = ("scores", "embeddings", "counts")


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """(n,) fixed-width byte keys: the first 16 bytes of SHA-256 of each text."""
    return np.array([hashlib.sha256(t.encode("utf-8")).digest()[:KEY_BYTES] for t in texts], dtype=f"S{KEY_BYTES}")


def layout_settings(config) -> dict:
    """The settings that change an encoder's numbers without changing the model: how texts are cut
    into batches and which kernels run them (see encoding/batching.run_batches). The Config's own
    values count, whatever set them (an environment variable only sets a field's default)."""
    from .encoding.device import resolve_device

    device = resolve_device(config.device) if config.device != "auto" else None
    device_type = device.type if device is not None else ("cuda" if _cuda() else "cpu")
    tokens = config.batch_tokens
    if device_type == "cpu" and config.cpu_batch_tokens:
        tokens = min(tokens, config.cpu_batch_tokens)
    # "default" (one worker per core) keeps the key that runs before the knobs were fields wrote
    workers = "default" if config.encode_workers is None else str(config.encode_workers)
    return {"device": device_type, "batch_tokens": tokens, "fast_encoder": bool(config.fast_encoder),
            "encode_workers": workers if device_type == "cpu" else "1"}


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def namespace_for(model_namespace: str, config) -> tuple[str, dict]:
    """(folder name, its settings) for a model fingerprint under `config`'s batch layout."""
    layout = layout_settings(config)
    digest = hashlib.sha256(json.dumps(layout, sort_keys=True).encode()).hexdigest()[:12]
    return f"v{CACHE_FORMAT}-{model_namespace}-L{digest}", {"format": CACHE_FORMAT, "model": model_namespace,
                                                             "layout": layout}


def open_cache(config, extractor) -> "FeatureCache | None":
    """The feature cache for `extractor`'s model under `config` (None when caching is off)."""
    if not config.use_cache:
        return None
    name, settings = namespace_for(extractor.namespace(), config)
    return FeatureCache(config.resolved_cache_dir(), name, settings)


@dataclass
class _Shard:
    path: Path
    keys: np.ndarray  # sorted


class FeatureCache:
    def __init__(self, root: str | os.PathLike, namespace: str, settings: dict | None = None):
        self.dir = Path(root) / namespace
        self.settings = settings
        self._shards: list[_Shard] | None = None
        self.skipped: list[str] = []  # unreadable shards met by this instance

    # --- reading ---------------------------------------------------------------------------------

    def _skip(self, path: Path, why: str) -> None:
        warnings.warn(f"skipping unreadable cache shard {path} ({why}); its rows are recomputed", CarSelectWarning,
                      stacklevel=2)
        self.skipped.append(str(path))
        try:
            path.unlink()  # a complete shard never becomes unreadable: this one never will be read
        except OSError:
            pass

    def _load_index(self) -> list[_Shard]:
        if self._shards is not None:
            return self._shards
        self._shards = []
        if not self.dir.is_dir():
            return self._shards
        for path in sorted(self.dir.glob("shard-*.npz")):
            try:
                with np.load(path, allow_pickle=False) as z:
                    keys = z["keys"]
                if keys.dtype != np.dtype(f"S{KEY_BYTES}") or keys.ndim != 1:
                    raise ValueError(f"keys of dtype {keys.dtype}")
            except Exception as exc:  # noqa: BLE001 - any unreadable file (BadZipFile, EOFError, ...) is skipped
                self._skip(path, f"{type(exc).__name__}: {exc}")
                continue
            if len(keys) and not (keys[1:] > keys[:-1]).all():  # shards of an older writer: sort once here
                keys = np.sort(keys)
            self._shards.append(_Shard(path, keys))
        return self._shards

    def _read_rows(self, shard: _Shard, keys: np.ndarray) -> dict[str, np.ndarray] | None:
        try:
            with np.load(shard.path, allow_pickle=False) as z:
                stored = z["keys"]
                arrays = {name: z[name] for name in ARRAYS}
            if any(len(a) != len(stored) for a in arrays.values()) or arrays["embeddings"].ndim != 2:
                raise ValueError("arrays of different lengths")
        except Exception as exc:  # noqa: BLE001
            self._skip(shard.path, f"{type(exc).__name__}: {exc}")
            return None
        order = np.argsort(stored)
        at = order[np.searchsorted(stored, keys, sorter=order)]
        return {name: a[at] for name, a in arrays.items()}

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
        """(found mask, arrays for the found rows in order of keys[found]) for the given keys."""
        keys = np.asarray(keys, dtype=f"S{KEY_BYTES}")
        found = np.zeros(len(keys), dtype=bool)
        parts: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
        for shard in self._load_index():
            todo = np.flatnonzero(~found)
            if not len(todo) or not len(shard.keys):
                continue
            pos = np.clip(np.searchsorted(shard.keys, keys[todo]), 0, len(shard.keys) - 1)
            hit = todo[shard.keys[pos] == keys[todo]]
            if not len(hit):
                continue
            rows = self._read_rows(shard, keys[hit])
            if rows is None:
                continue
            found[hit] = True
            parts.append((hit, rows))
        if not parts:
            return found, None
        width = {p[1]["embeddings"].shape[1] for p in parts}
        if len(width) != 1:  # cannot happen within one namespace; recompute rather than mix
            warnings.warn(f"cache {self.dir} holds embeddings of different widths; recomputing", CarSelectWarning,
                          stacklevel=2)
            return np.zeros(len(keys), dtype=bool), None
        where = np.empty(len(keys), dtype=np.int64)
        where[found] = np.arange(int(found.sum()))
        out = {}
        for name in ARRAYS:
            first = parts[0][1][name]
            arr = np.empty((int(found.sum()), *first.shape[1:]), dtype=first.dtype)
            for hit, rows in parts:
                arr[where[hit]] = rows[name]
            out[name] = arr
        return found, out

    # --- writing ---------------------------------------------------------------------------------

    def put(self, keys: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
        if len(keys) == 0:
            return
        try:
            new_dir = not self.dir.is_dir()
            self.dir.mkdir(parents=True, exist_ok=True)
            if new_dir:
                fsync_dir(str(self.dir.parent))
                if self.settings is not None:
                    _write_durably(self.dir / "namespace.json", json.dumps(self.settings, sort_keys=True).encode())
        except OSError as e:
            raise CarSelectError(f"cannot create cache directory {self.dir}: {e.strerror}") from None
        order = np.argsort(keys)
        keys = np.asarray(keys)[order]
        sorted_arrays = {name: np.asarray(arrays[name])[order] for name in ARRAYS}
        path = self.dir / f"shard-{uuid.uuid4().hex}.npz"
        try:
            import io

            buf = io.BytesIO()
            np.savez(buf, keys=keys, **sorted_arrays)
            _write_durably(path, buf.getvalue())
        except OSError as e:
            raise CarSelectError(f"cannot write to the cache {self.dir}: {e.strerror or e}") from None
        if self._shards is not None:
            self._shards.append(_Shard(path, keys))

    def __len__(self) -> int:
        return int(sum(len(s.keys) for s in self._load_index()))


def _write_durably(path: Path, data: bytes) -> None:
    """Temporary sibling, fsync, rename, fsync the folder: after a crash the file is whole or absent."""
    tmp = temp_sibling(str(path))
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(str(path.parent))


# --------------------------------------------------------------------------------------------------
# car-select cache info | prune


def cache_info(root: str | os.PathLike) -> list[dict]:
    """One entry per namespace folder: name, format, shards, rows, bytes, unreadable shards."""
    root = Path(root)
    out = []
    if not root.is_dir():
        return out
    for ns in sorted(p for p in root.iterdir() if p.is_dir()):
        shards, rows, size, bad, newest = 0, 0, 0, 0, 0.0
        for path in ns.glob("shard-*.npz"):
            st = path.stat()
            size += st.st_size
            newest = max(newest, st.st_mtime)
            try:
                with np.load(path, allow_pickle=False) as z:
                    rows += len(z["keys"])
                shards += 1
            except Exception:  # noqa: BLE001
                bad += 1
        out.append({"namespace": ns.name, "current_format": ns.name.startswith(f"v{CACHE_FORMAT}-"),
                    "shards": shards, "rows": rows, "bytes": size, "unreadable_shards": bad,
                    "last_written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(newest)) if newest else None})
    return out


def prune_cache(root: str | os.PathLike, *, everything: bool = False, older_than_days: float | None = None,
                dry_run: bool = False) -> list[str]:
    """Remove what no run can use: unreadable shards, temporaries of killed runs, namespaces of
    other cache formats; with `older_than_days`, namespaces not written for that long; with
    `everything`, every namespace. Returns the removed paths."""
    root = Path(root)
    removed: list[str] = []
    if not root.is_dir():
        return removed
    now = time.time()
    for info in cache_info(root):
        ns = root / info["namespace"]
        stale = older_than_days is not None and (info["last_written"] is None or now - max(
            (p.stat().st_mtime for p in ns.iterdir()), default=0) > older_than_days * 86400)
        if everything or not info["current_format"] or stale:
            removed.append(str(ns))
            if not dry_run:
                shutil.rmtree(ns, ignore_errors=True)
            continue
        for path in sorted(ns.glob("shard-*.npz")):
            try:
                with np.load(path, allow_pickle=False) as z:
                    z["keys"]
            except Exception:  # noqa: BLE001
                removed.append(str(path))
                if not dry_run:
                    path.unlink(missing_ok=True)
        if not dry_run:
            before = set(os.listdir(ns))
            remove_stale_temporaries(str(ns))
            removed.extend(str(ns / n) for n in sorted(before - set(os.listdir(ns))))
    return removed
