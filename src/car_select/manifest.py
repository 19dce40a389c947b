"""The run manifest: what it takes to reproduce and audit a selection.

It records the package version, the scorer's and the embedder's fingerprints (content hashes of their
files), what was scored (the input's schema, one text per exchange, the aggregation, the scorer's token
window and how many texts filled it), every Config value, the input's SHA-256 and the seed, with the
versions of the libraries that shape the numbers and a hash of the selected indices. It goes into the
`--json` summary, the report, and a sidecar next to the annotated file (`ANNOTATED.manifest.json`).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import platform
from importlib import metadata

import numpy as np

from .config import Config

FORMAT = "car-select-manifest"
LIBRARIES = ("torch", "transformers", "faiss-cpu", "faiss-gpu", "numpy", "scikit-learn", "py3langid")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def input_sha256(path: str | os.PathLike | None) -> str | None:
    """SHA-256 of a file; of a folder, over its files' relative paths and contents in sorted order; None
    for what is not on this filesystem (a hub id, a remote URL)."""
    from .encoding.fingerprints import file_digest

    if path is None:
        return None
    path = os.fspath(path)
    if os.path.isfile(path):
        return file_digest(path)
    if os.path.isdir(path):
        h = hashlib.sha256()
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(root, name)
                h.update(os.path.relpath(full, path).encode() + b"\0" + file_digest(full).encode() + b"\n")
        return h.hexdigest()
    return None


def scorer_identity(config: Config) -> dict:
    """What scored the records: kind, spec and a fingerprint computed from files (no model is loaded)."""
    from .encoding.fingerprints import file_digest, weights_fingerprint
    from .scoring.scorer import saved_fingerprint, scorer_path

    if config.score_field is not None:
        return {"kind": "score-field", "field": config.score_field}
    spec = config.scorer
    if isinstance(spec, str) and spec.startswith("hf-reward:"):
        return {"kind": "hf-reward", "spec": spec, "fingerprint": weights_fingerprint(spec[len("hf-reward:"):])}
    path = scorer_path(spec)
    fp = saved_fingerprint(path)
    if fp is None and os.path.isfile(path):
        fp = file_digest(path)
    elif fp is None and os.path.isdir(path):
        fp = input_sha256(path)
    return {"kind": "car-select" if spec is None or not str(spec).endswith(".ckpt") else "official-ckpt",
            "spec": spec or "default", "path": str(path), "fingerprint": fp}


def embedder_identity(config: Config) -> dict:
    from .encoding.fingerprints import weights_fingerprint

    name = config.embedder or "all-MiniLM-L6-v2"
    return {"name": name, "fingerprint": weights_fingerprint(name), "max_length": config.max_length}


def build_manifest(config: Config, input_path: str | os.PathLike | None, records_read: int,
                   selected: np.ndarray, scored: dict | None = None) -> dict:
    """`scored`: scored.describe's block (the input's schema, texts per record, the aggregation, the
    scorer's token window and how many texts filled it), so that the manifest says what the scores are of."""
    selected = np.asarray(selected, dtype=np.int64)
    return {
        "format": FORMAT,
        "version": 1,
        "car_select_version": _version("car-select"),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "input": {"path": None if input_path is None else os.fspath(input_path),
                  "sha256": input_sha256(input_path), "records": int(records_read)},
        "seed": config.seed,
        # as JSON has it (a tuple field is a list), so the manifest in memory equals the one written
        "config": json.loads(json.dumps(dataclasses.asdict(config))),
        "scorer": scorer_identity(config),
        "embedder": embedder_identity(config),
        **({"scored": scored} if scored is not None else {}),
        "selected": {"count": int(len(selected)),
                     "indices_sha256": hashlib.sha256(json.dumps(selected.tolist()).encode()).hexdigest()},
        "environment": {"python": platform.python_version(), "platform": platform.platform(),
                        **{lib: v for lib in LIBRARIES if (v := _version(lib))}},
    }


def dump(manifest: dict) -> str:
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"
