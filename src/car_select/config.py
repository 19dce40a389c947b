"""One place for every setting of a selection run. Defaults are the paper's (CaR, Ge et al. 2024)."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CarSelectError


def default_cache_dir() -> Path:
    """$CAR_SELECT_CACHE, else $XDG_CACHE_HOME/car-select, else ~/.cache/car-select."""
    if os.environ.get("CAR_SELECT_CACHE"):
        return Path(os.environ["CAR_SELECT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "car-select"


@dataclass
class Config:
    # --- selection (paper: n1=1000 global top, n2=1 per cluster) ---
    n1: int = 1000
    n2: int = 1
    # Exactly this many records (or round(fraction x records read)): the smallest n1 that reaches it.
    budget: int | None = None
    fraction: float | None = None
    min_score: float | None = None  # keep only records scoring at least this, before the rule
    # Use this numeric field of every input record as its score (an LLM-judge rating, a reward): no scorer.
    score_field: str | None = None
    # The summary's "against random": the selection beside this many uniform random subsets of its size.
    compare_seeds: int = 5
    # Detect languages on a seeded sample of this many distinct records (None: every record, 0: off).
    language_sample: int | None = 500
    # --- clustering (paper: PCA keeping 95% variance, k = int(sqrt(n/2)), random_state 42) ---
    clusters: int | None = None
    pca_variance: float = 0.95
    seed: int = 42
    kmeans_backend: str = "faiss"  # "faiss" (fast) or "sklearn" (the official code's KMeans, n_init=10)
    kmeans_n_init: int = 10
    # Fit PCA and k-means on at most this many rows, then assign every row (bounds cost at large n).
    fit_sample: int = 200_000
    # --- models ---
    scorer: str | None = None  # None = the shipped default scorer
    embedder: str | None = None  # None = the scorer's own encoder (one pass) if it is all-MiniLM-L6-v2
    max_length: int = 256  # all-MiniLM-L6-v2's sentence-transformers max_seq_length
    batch_tokens: int = 16_384  # tokens per encoder batch (batches are sorted by length)
    precision: str = "auto"  # "auto" (bf16 where the CPU/GPU supports it), "bf16", "fp32"
    device: str = "auto"  # "auto", "cpu", "cuda"
    # --- caching ---
    cache_dir: str | None = None  # None = default_cache_dir()
    use_cache: bool = True
    # --- multi-turn: how per-turn scores become one conversation score ---
    turn_aggregate: str = "mean"

    def validate(self, n_records: int | None = None, *, cli: bool = False) -> "Config":
        """Raise a one-line CarSelectError for any bad setting. Messages name the API argument
        (`n1`), or the flag (`--n1`) when `cli` is true."""

        cli = cli or getattr(self, "_cli_names", False)  # set by the CLI: its later checks name flags too

        def name(field: str) -> str:
            return "--" + CLI_FLAGS.get(field, field.replace("_", "-")) if cli else field

        def fail(field: str, message: str) -> CarSelectError:
            return CarSelectError(f"{name(field)} {message}")

        for f in dataclasses.fields(self):  # wrong types (an API call, a TOML file) are user errors
            value, kinds = getattr(self, f.name), _TYPES.get(f.name)
            if kinds is None:
                continue
            ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
            if not ok:
                want = " or ".join("None" if k is type(None) else k.__name__ for k in kinds)
                raise fail(f.name, f"must be {want}, got {type(value).__name__} {value!r}")
        if self.n1 < 0:
            raise fail("n1", f"must be >= 0, got {self.n1}")
        if self.n2 < 0:
            raise fail("n2", f"must be >= 0, got {self.n2}")
        if self.n1 == 0 and self.n2 == 0:
            raise CarSelectError(f"{name('n1')} 0 and {name('n2')} 0 select nothing; keep at least one above 0")
        self._validate_budget()
        if not 0.0 < self.pca_variance <= 1.0:
            raise fail("pca_variance", f"must be in (0, 1], got {self.pca_variance}")
        if self.clusters is not None and self.clusters < 1:
            raise fail("clusters", f"must be >= 1, got {self.clusters}")
        if not 0 <= self.seed < 2**32:
            raise fail("seed", f"must be between 0 and 2**32 - 1, got {self.seed}")
        if self.fit_sample < 1:
            raise fail("fit_sample", f"must be >= 1, got {self.fit_sample}")
        if self.kmeans_n_init < 1:
            raise fail("kmeans_n_init", f"must be >= 1, got {self.kmeans_n_init}")
        if n_records is not None and self.clusters is not None and self.clusters > n_records:
            raise CarSelectError(
                f"{name('clusters')} {self.clusters} is more than the {n_records} distinct records in the input"
            )
        if n_records is not None:
            k = self.clusters or n_clusters_for(n_records)
            if k > min(self.fit_sample, n_records):
                raise CarSelectError(f"{name('fit_sample')} {self.fit_sample} is below the {k} clusters to fit; "
                                     f"use at least {k}")
        if self.kmeans_backend not in ("faiss", "sklearn"):
            raise fail("kmeans_backend", f"must be 'faiss' or 'sklearn', got {self.kmeans_backend!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise fail("precision", f"must be auto, bf16 or fp32, got {self.precision!r}")
        if self.turn_aggregate not in ("mean", "min", "last"):
            raise fail("turn_aggregate", f"must be mean, min or last, got {self.turn_aggregate!r}")
        if self.batch_tokens < 1:
            raise fail("batch_tokens", f"must be >= 1, got {self.batch_tokens}")
        if self.max_length < 8:
            raise fail("max_length", f"must be >= 8, got {self.max_length}")
        check_device(self.device, name("device"))
        if self.embedder is not None:
            from .embedder import resolve_model_id

            resolve_model_id(self.embedder, name("embedder"))
        return self

    def _validate_budget(self) -> None:
        """Budget, threshold, score field and comparison settings (issue 12)."""
        def is_num(v) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool)

        if self.budget is not None and (not isinstance(self.budget, int) or isinstance(self.budget, bool)
                                        or self.budget < 0):
            raise CarSelectError(f"--budget must be an integer >= 0, got {self.budget!r}")
        if self.fraction is not None and (not is_num(self.fraction) or not 0.0 < self.fraction <= 1.0):
            raise CarSelectError(f"--fraction must be a number in (0, 1], got {self.fraction!r}")
        if self.budget is not None and self.fraction is not None:
            raise CarSelectError("--budget and --fraction are exclusive: give one")
        if self.min_score is not None and (not is_num(self.min_score) or not math.isfinite(self.min_score)):
            raise CarSelectError(f"--min-score must be a finite number, got {self.min_score!r}")
        if self.score_field is not None and (not isinstance(self.score_field, str) or not self.score_field.strip()):
            raise CarSelectError(f"--score-field must name a field, got {self.score_field!r}")
        if self.score_field is not None and self.scorer is not None:
            raise CarSelectError("--score-field and --scorer are exclusive: the field is the score")
        if not isinstance(self.compare_seeds, int) or isinstance(self.compare_seeds, bool) or self.compare_seeds < 0:
            raise CarSelectError(f"compare_seeds must be an integer >= 0, got {self.compare_seeds!r}")
        if self.language_sample is not None and (not isinstance(self.language_sample, int)
                                                 or isinstance(self.language_sample, bool) or self.language_sample < 0):
            raise CarSelectError(f"language_sample must be an integer >= 0 or None, got {self.language_sample!r}")

    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else default_cache_dir()

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


# flags whose name is not the field's (`--kmeans` sets kmeans_backend)
CLI_FLAGS = {"kmeans_backend": "kmeans", "use_cache": "no-cache"}

_TYPES: dict[str, tuple[type, ...]] = {
    "n1": (int,), "n2": (int,), "clusters": (int, type(None)), "pca_variance": (float, int), "seed": (int,),
    "kmeans_backend": (str,), "kmeans_n_init": (int,), "fit_sample": (int,), "scorer": (str, type(None)),
    "embedder": (str, type(None)), "max_length": (int,), "batch_tokens": (int,), "precision": (str,),
    "device": (str,), "cache_dir": (str, type(None)), "use_cache": (bool,), "turn_aggregate": (str,),
}


def check_device(device: str, option: str = "device") -> None:
    """auto, cpu, cuda or cuda:N; asking for CUDA where torch sees none is a one-line error."""
    import re

    if device in ("auto", "cpu"):
        return
    m = re.fullmatch(r"cuda(?::(\d+))?", device)
    if not m:
        raise CarSelectError(f"{option} must be auto, cpu, cuda or cuda:N, got {device!r}")
    import torch

    if not torch.cuda.is_available():
        raise CarSelectError(f"{option} {device}: CUDA is not available on this machine (use --device cpu or auto)"
                             if option.startswith("--") else
                             f"{option}={device!r}: CUDA is not available on this machine (use 'cpu' or 'auto')")
    if m.group(1) is not None and int(m.group(1)) >= torch.cuda.device_count():
        raise CarSelectError(f"{option} {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")


def n_clusters_for(n: int) -> int:
    """The paper's rule: k = int(sqrt(n / 2)), at least 1 (161 for Alpaca's 52,002)."""
    return max(1, int((n / 2) ** 0.5))
