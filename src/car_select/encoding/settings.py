"""The encoder knobs: how the encoder pass runs, not what it computes. They are Config fields
(`fast_encoder`, `cpu_batch_tokens`, `encode_workers`) and the feature cache keys on their values:
the fast forward computes the same function in other kernels (other last bits), and while a text's
features do not depend on its batch (encoding/batching.py; on this project's CPU the batch cap and
the workers leave them unchanged too), kernels elsewhere may pick their blocking by shape or threads.

Environment variables only set those fields' defaults, and are read here and nowhere else:

  CAR_SELECT_FAST_ENCODER=0        fast_encoder = False: the Hugging Face forward everywhere
                                   (benchmarks/bench_pipeline.py's reference)
  CAR_SELECT_CPU_BATCH_TOKENS=N    cpu_batch_tokens = N: at most N tokens per CPU batch (0: no cap)
  CAR_SELECT_ENCODE_WORKERS=N      encode_workers = N: CPU batches run at once (unset: one per core)

A run puts its Config's values in effect around its encoder pass (`use_settings`, as
features.FeatureExtractor does); encoder code run outside a run (training a scorer, a benchmark)
gets the defaults. The settings travel in a context variable, so two runs in two threads each see
their own.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import CarSelectError

# On CPU a batch holds at most this many tokens whatever batch_tokens says: a batch's activations then
# stay in cache (4,096 x 1,536 bf16 = 12 MB for MiniLM's widest layer), 1.1-1.5x faster than 16,384 in
# benchmarks/bench_pipeline.py's A/B (2,048 was faster on a quiet machine, slower on a busy one;
# 8,192 slower on both).
CPU_BATCH_TOKENS = 4096


@dataclass(frozen=True)
class EncoderSettings:
    fast_encoder: bool = True  # FastEncoder for BERT-family inference (else the Hugging Face forward)
    cpu_batch_tokens: int = CPU_BATCH_TOKENS  # cap on tokens per CPU batch; 0: no cap
    encode_workers: int | None = None  # CPU batches run at once; None: one per torch thread

    @classmethod
    def of(cls, config) -> "EncoderSettings":
        """The settings a Config asks for."""
        return cls(config.fast_encoder, config.cpu_batch_tokens, config.encode_workers)


def _env_int(name: str, minimum: int) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise CarSelectError(f"environment variable {name} must be an integer >= {minimum}, got {raw!r}")
    return value


def default_fast_encoder() -> bool:
    return os.environ.get("CAR_SELECT_FAST_ENCODER", "1").strip() != "0"


def default_cpu_batch_tokens() -> int:
    value = _env_int("CAR_SELECT_CPU_BATCH_TOKENS", 0)
    return CPU_BATCH_TOKENS if value is None else value


def default_encode_workers() -> int | None:
    return _env_int("CAR_SELECT_ENCODE_WORKERS", 1)


def default_settings() -> EncoderSettings:
    return EncoderSettings(default_fast_encoder(), default_cpu_batch_tokens(), default_encode_workers())


_CURRENT: contextvars.ContextVar[EncoderSettings | None] = contextvars.ContextVar("car_select_encoder", default=None)


@contextlib.contextmanager
def use_settings(settings: EncoderSettings) -> Iterator[EncoderSettings]:
    """`settings` in effect for the encoder code this context runs (threads started by run_batches too)."""
    token = _CURRENT.set(settings)
    try:
        yield settings
    finally:
        _CURRENT.reset(token)


def current_settings() -> EncoderSettings:
    return _CURRENT.get() or default_settings()
