"""One place for every setting of a selection run. Defaults are the paper's (CaR, Ge et al. 2024)."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from .encoding.settings import default_cpu_batch_tokens, default_encode_workers, default_fast_encoder
from .errors import CarSelectError, SettingError


def default_cache_dir() -> Path:
    """$CAR_SELECT_CACHE, else $XDG_CACHE_HOME/car-select, else ~/.cache/car-select."""
    if os.environ.get("CAR_SELECT_CACHE"):
        return Path(os.environ["CAR_SELECT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "car-select"


# Settings that exclude each other, and why. Given together they are refused (`check_together`); given
# later (a flag over a --config file, a `Config.replace` change), one clears the other (`overridden`).
EXCLUSIVE: tuple[tuple[str, str, str], ...] = (
    ("n1", "budget", "a budget chooses n1"),
    ("n1", "fraction", "a fraction chooses n1"),
    ("budget", "fraction", "give one"),
    ("min_score", "min_percentile", "give one"),
    ("score_field", "scorer", "the field is the score"),
)
# Options of one strategy: set with another strategy they are refused, never silently ignored (issue 29).
STRATEGY_OPTIONS = {"n1": "car", "n2": "car", "quality_weight": "qd", "max_similarity": "deita"}


def check_together(given: Mapping[str, Any]) -> None:
    """Refuse settings that exclude each other. `given`: the settings someone set, by field name (a Config's
    fields away from their defaults, or a command line's flags and --config keys, which may repeat a default)."""
    strategy = given.get("strategy", "car")
    for option, owner in STRATEGY_OPTIONS.items():
        if option in given and strategy != owner:
            raise SettingError(f"{{}} applies to {{}} {owner} only, not {strategy}", option, "strategy")
    for a, b, why in EXCLUSIVE:
        if a in given and b in given:
            raise SettingError(f"{{}} and {{}} are exclusive: {why}", a, b)


def overridden(earlier: Mapping[str, Any], later: Mapping[str, Any]) -> dict[str, Any]:
    """`earlier` settings with `later` ones on top, field by field; an earlier setting that excludes a later
    one is dropped, so the later word wins (a --config file's `budget` gives way to `--n1` or `--fraction`,
    its `strategy = "qd"` to `--n1`, its `n1` to `--strategy qd`)."""
    kept = {k: v for k, v in earlier.items() if k not in later}
    for a, b, _ in EXCLUSIVE:
        if a in later:
            kept.pop(b, None)
        if b in later:
            kept.pop(a, None)
    for option, owner in STRATEGY_OPTIONS.items():
        if option in later and kept.get("strategy", owner) != owner:
            kept.pop("strategy")
    if "strategy" in later or "strategy" in earlier and "strategy" not in kept:  # and so the earlier options
        strategy = later.get("strategy", "car")                                # of another strategy go too
        kept = {k: v for k, v in kept.items() if STRATEGY_OPTIONS.get(k, strategy) == strategy}
    return {**kept, **later}


def check_engine(engine: str, address: str | None) -> None:
    """An engine's settings (api.run's arguments, the CLI's --engine and --address)."""
    if address and engine != "ray":
        raise SettingError("{} needs {} ray", "address", "engine")


@dataclass
class Config:
    """Every setting of a run, checked when built: a bad value or settings that exclude each other raise a
    one-line SettingError naming the fields (`validate`)."""

    # --- selection (paper: n1=1000 global top, n2=1 per cluster) ---
    n1: int = 1000
    n2: int = 1
    # Exactly this many records (or round(fraction x records read)): the smallest n1 that reaches it.
    budget: int | None = None
    fraction: float | None = None
    min_score: float | None = None  # keep only records scoring at least this, before the rule
    # Or: keep only records scoring at least this percentile (0-100) of the input's distinct records' scores.
    min_percentile: float | None = None
    # Use this numeric field of every input record as its score (an LLM-judge rating, a reward): no scorer.
    score_field: str | None = None
    # The summary's "against random": the selection beside this many uniform random subsets of its size.
    compare_seeds: int = 5
    # Detect languages on a seeded sample of this many distinct records (None: every record, 0: off).
    language_sample: int | None = 500
    # --- strategy (selection/): "car" the paper's rule; "qd" quality-diversity greedy (coverage of the data
    # plus quality_weight x score scaled to [0, 1]); "deita" best score first, skipping a record whose cosine
    # similarity to a kept one exceeds max_similarity. qd and deita need budget or fraction; n1/n2 are CaR's.
    strategy: str = "car"
    # 1.0: the largest of 0.5-16 keeping qd's coverage below random's on Alpaca records 6,000-11,999 at
    # 300 (it kept 0.89 of CaR's score lift; benchmarks/strategies.py, results/strategies.json "tune")
    quality_weight: float = 1.0
    max_similarity: float = 0.9
    # Drop records whose cosine similarity to a better-scored kept one is at least this, before any strategy.
    near_duplicates: float | None = None
    # --- what the selection is for (selection/target.py, decontaminate.py, balance.py; issue 36) ---
    # Files of target examples (records or prompts alone): keep the budget from the records nearest them.
    targets: tuple[str, ...] = ()
    # Files of evaluation prompts: a record holding one (exact, 13-word n-gram or embedding match) is never kept.
    decontaminate: tuple[str, ...] = ()
    # A record field (a dotted path, as --fields takes) whose values get quotas of the budget, in proportion to
    # the input ("FIELD") or equal ("FIELD:equal"); the strategy fills each quota.
    balance: str | None = None
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
    # --- encoder knobs (encoding/settings.py; defaults from CAR_SELECT_FAST_ENCODER, _CPU_BATCH_TOKENS,
    # _ENCODE_WORKERS): speed, and in reduced precision a score's last bits, so they key the cache ---
    fast_encoder: bool = dataclasses.field(default_factory=default_fast_encoder)  # False: the HF forward
    cpu_batch_tokens: int = dataclasses.field(default_factory=default_cpu_batch_tokens)  # CPU cap, 0: none
    encode_workers: int | None = dataclasses.field(default_factory=default_encode_workers)  # None: per core
    # --- caching ---
    cache_dir: str | None = None  # None = default_cache_dir()
    use_cache: bool = True
    # --- multi-turn: how per-turn scores become one conversation score: "mean_min" (half the mean, half
    # the worst exchange: a weak reply among good ones shows; experiments/turn_aggregate_variants.py),
    # "mean", "min" or "last" ---
    turn_aggregate: str = "mean_min"
    # Records with a broken exchange (an empty reply, a role marker leaked into one: selection/turn_checks.py)
    # are dropped before the strategy chooses (reason "broken_turn"); True keeps them eligible, still flagged.
    keep_broken_turns: bool = False

    def __post_init__(self):
        self.validate()

    def given(self) -> dict[str, Any]:
        """The fields set away from their defaults."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.default is not dataclasses.MISSING and getattr(self, f.name) != f.default}

    def validate(self) -> "Config":
        """Raise a one-line SettingError, naming the field, for any bad setting (a front end such as
        the CLI rewords it with its own option names). `check_fits` checks the settings against the data."""

        def fail(field: str, message: str) -> SettingError:
            return SettingError("{} " + message.replace("{", "{{").replace("}", "}}"), field)

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
            raise SettingError("{} 0 and {} 0 select nothing; keep at least one above 0", "n1", "n2")
        self._validate_budget()
        self._validate_strategy()
        self._validate_aims()
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
        if self.kmeans_backend not in ("faiss", "sklearn"):
            raise fail("kmeans_backend", f"must be 'faiss' or 'sklearn', got {self.kmeans_backend!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise fail("precision", f"must be auto, bf16 or fp32, got {self.precision!r}")
        if self.turn_aggregate not in ("mean_min", "mean", "min", "last"):
            raise fail("turn_aggregate", f"must be mean_min, mean, min or last, got {self.turn_aggregate!r}")
        if self.batch_tokens < 1:
            raise fail("batch_tokens", f"must be >= 1, got {self.batch_tokens}")
        if self.max_length < 8:
            raise fail("max_length", f"must be >= 8, got {self.max_length}")
        if self.cpu_batch_tokens < 0:
            raise fail("cpu_batch_tokens", f"must be >= 0 (0: no cap), got {self.cpu_batch_tokens}")
        if self.encode_workers is not None and self.encode_workers < 1:
            raise fail("encode_workers", f"must be >= 1 or None, got {self.encode_workers}")
        check_device(self.device)
        if self.scorer is not None:
            from .scoring.named import check_scorer

            check_scorer(self.scorer)
        if self.embedder is not None:
            from .embedder import resolve_model_id

            try:
                resolve_model_id(self.embedder, "embedder")
            except CarSelectError as e:  # reworded so that a front end can name its own option
                detail = str(e).removeprefix("embedder").replace("{", "{{").replace("}", "}}")
                raise SettingError("{}" + detail, "embedder") from None
        return self

    def check_fits(self, n_records: int, records_read: int | None = None) -> None:
        """Settings that do not fit the data, once it is read and before any work on it: `n_records`
        distinct records of `records_read` read (duplicates included; default: `n_records`)."""
        records_read = n_records if records_read is None else records_read
        if self.clusters is not None and self.clusters > n_records:
            raise SettingError(f"{{}} {self.clusters} is more than the {n_records} distinct records in the input",
                               "clusters")
        k = self.clusters or n_clusters_for(n_records)
        if k > min(self.fit_sample, n_records):
            raise SettingError(f"{{}} {self.fit_sample} is below the {k} clusters to fit; use at least {k}",
                               "fit_sample")
        # a budget above what the input holds is an error, given as a count or as a share (--help says so)
        if self.budget is not None and self.budget > n_records:
            raise SettingError(f"{{}} {self.budget:,} is more than the {n_records:,} distinct records in the input",
                               "budget")
        if self.fraction is not None:
            from .selection.apply import budget_for

            target = budget_for(None, self.fraction, records_read)
            if target < 1:
                raise SettingError(f"{{}} {self.fraction:g} of {records_read:,} records rounds to 0 records; "
                                   "ask for at least one", "fraction")
            if target > n_records:
                raise SettingError(f"{{}} {self.fraction:g} of {records_read:,} records is {target:,}, more than "
                                   f"the {n_records:,} distinct records in the input", "fraction")

    def _validate_strategy(self) -> None:
        """The strategy and its options (issue 29): an option for another strategy, set away from its
        default, is refused rather than ignored."""
        from .selection.apply import STRATEGIES

        if self.strategy not in STRATEGIES:
            raise SettingError(f"{{}} must be {', '.join(STRATEGIES[:-1])} or {STRATEGIES[-1]}, got {self.strategy!r}",
                               "strategy")
        if not _is_number(self.quality_weight) or self.quality_weight < 0:
            raise SettingError(f"{{}} must be a number >= 0, got {self.quality_weight!r}", "quality_weight")
        if not _is_number(self.max_similarity) or not 0.0 < self.max_similarity <= 1.0:
            raise SettingError(f"{{}} must be a cosine similarity in (0, 1], got {self.max_similarity!r}",
                               "max_similarity")
        if self.near_duplicates is not None and (not _is_number(self.near_duplicates)
                                                 or not 0.0 < self.near_duplicates <= 1.0):
            raise SettingError(f"{{}} must be a cosine similarity in (0, 1], got {self.near_duplicates!r}",
                               "near_duplicates")
        check_together(self.given())
        if self.strategy != "car" and self.budget is None and self.fraction is None:
            raise SettingError(f"{{}} {self.strategy} needs {{}} or {{}} (how many records to keep)",
                               "strategy", "budget", "fraction")

    def _validate_aims(self) -> None:
        """Targets, decontamination files and the balance field (issue 36)."""
        for name in ("targets", "decontaminate"):
            for path in getattr(self, name):
                if not isinstance(path, str) or not path.strip():
                    raise SettingError(f"{{}} must be file paths, got {path!r}", name)
        if self.balance is not None and not self.balance.split(":")[0].strip():
            raise SettingError(f"{{}} must name a field (FIELD or FIELD:equal), got {self.balance!r}", "balance")
        for name in ("targets", "balance"):
            if getattr(self, name) and self.budget is None and self.fraction is None:
                raise SettingError("{} needs {} or {} (how many records to keep)", name, "budget", "fraction")

    def _validate_budget(self) -> None:
        """Budget, threshold, score field and comparison settings (issue 12)."""
        if self.budget is not None and (not isinstance(self.budget, int) or isinstance(self.budget, bool)
                                        or self.budget < 1):
            raise SettingError(f"{{}} must be an integer >= 1 (the records to keep), got {self.budget!r}", "budget")
        if self.fraction is not None and (not _is_number(self.fraction) or not 0.0 < self.fraction <= 1.0):
            raise SettingError(f"{{}} must be a number in (0, 1], got {self.fraction!r}", "fraction")
        if self.min_score is not None and not _is_number(self.min_score):
            raise SettingError(f"{{}} must be a finite number, got {self.min_score!r}", "min_score")
        if self.min_percentile is not None and (not _is_number(self.min_percentile)
                                                or not 0.0 <= self.min_percentile < 100.0):
            raise SettingError(f"{{}} must be a number in [0, 100), got {self.min_percentile!r}", "min_percentile")
        if self.score_field is not None and (not isinstance(self.score_field, str) or not self.score_field.strip()):
            raise SettingError(f"{{}} must name a field, got {self.score_field!r}", "score_field")
        if not isinstance(self.compare_seeds, int) or isinstance(self.compare_seeds, bool) or self.compare_seeds < 0:
            raise SettingError(f"{{}} must be an integer >= 0, got {self.compare_seeds!r}", "compare_seeds")
        if self.language_sample is not None and (not isinstance(self.language_sample, int)
                                                 or isinstance(self.language_sample, bool) or self.language_sample < 0):
            raise SettingError(f"{{}} must be an integer >= 0 or None, got {self.language_sample!r}",
                               "language_sample")

    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else default_cache_dir()

    def replace(self, **changes: Any) -> "Config":
        """A copy with `changes`; a setting of this one that excludes a change goes back to its default
        (`overridden`: `Config(n1=500).replace(budget=100)` is a budget of 100, not an error)."""
        given = self.given()
        cleared = set(given) - set(overridden(given, changes))
        defaults = {f.name: f.default for f in dataclasses.fields(self) if f.name in cleared}
        return dataclasses.replace(self, **defaults, **changes)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


_TYPES: dict[str, tuple[type, ...]] = {
    "n1": (int,), "n2": (int,), "clusters": (int, type(None)), "pca_variance": (float, int), "seed": (int,),
    "kmeans_backend": (str,), "kmeans_n_init": (int,), "fit_sample": (int,), "scorer": (str, type(None)),
    "embedder": (str, type(None)), "max_length": (int,), "batch_tokens": (int,), "precision": (str,),
    "device": (str,), "cache_dir": (str, type(None)), "use_cache": (bool,), "turn_aggregate": (str,), "keep_broken_turns": (bool,),
    "fast_encoder": (bool,), "cpu_batch_tokens": (int,), "encode_workers": (int, type(None)),
    "strategy": (str,), "quality_weight": (float, int), "max_similarity": (float, int),
    "near_duplicates": (float, int, type(None)),
    "targets": (tuple, list), "decontaminate": (tuple, list), "balance": (str, type(None)),
}


def _is_number(value) -> bool:
    """A finite int or float, not a bool (True is an int to Python, never a setting's number)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_device(device: str, field: str = "device") -> None:
    """auto, cpu, cuda or cuda:N; asking for CUDA where torch sees none is a one-line SettingError."""
    import re

    if device in ("auto", "cpu"):
        return
    m = re.fullmatch(r"cuda(?::(\d+))?", device)
    if not m:
        raise SettingError(f"{{}} must be auto, cpu, cuda or cuda:N, got {device!r}", field)
    import torch

    if not torch.cuda.is_available():
        raise SettingError(f"{{}} {device}: CUDA is not available on this machine (use cpu or auto)", field)
    if m.group(1) is not None and int(m.group(1)) >= torch.cuda.device_count():
        raise SettingError(f"{{}} {device}: this machine has {torch.cuda.device_count()} CUDA device(s)", field)


def n_clusters_for(n: int) -> int:
    """The paper's rule: k = int(sqrt(n / 2)), at least 1 (161 for Alpaca's 52,002)."""
    return max(1, int((n / 2) ** 0.5))
