"""Quotas per value of a record field (`--balance FIELD`, `--balance FIELD:equal`).

The budget is split among the field's values in proportion to how many distinct records hold each
(or equally, with `:equal`), by largest remainder (Hamilton's method): every value gets the floor of
its exact share, and the records left over go one each to the largest fractional parts (ties: the
value with more records, then the value first seen in the input). A quota above the records a value
can give (after decontamination, min_score or near-duplicates) is cut to that, and what it frees is
shared among the other values by the same rule. Within each quota the run's strategy applies.

Pure: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np

EQUAL = "equal"
PROPORTIONAL = "proportional"


def parse_balance(spec: str) -> tuple[str, str]:
    """"FIELD" -> (FIELD, "proportional"); "FIELD:equal" -> (FIELD, "equal")."""
    field, sep, mode = spec.rpartition(":")
    if sep and mode == EQUAL and field:
        return field, EQUAL
    return spec, PROPORTIONAL


def largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """`total` split in proportion to `weights` (>= 0), integers summing to `total` (Hamilton). Ties in
    the remainder go to the larger weight, then the earlier position."""
    weights = np.asarray(weights, dtype=np.float64)
    if total <= 0 or weights.sum() <= 0:
        return np.zeros(len(weights), dtype=np.int64)
    exact = weights * total / weights.sum()
    base = np.floor(exact).astype(np.int64)
    left = total - int(base.sum())
    order = np.lexsort((np.arange(len(weights)), -weights, -(exact - base)))
    base[order[:left]] += 1
    return base


def quotas(records: np.ndarray, available: np.ndarray, budget: int, mode: str = PROPORTIONAL) -> np.ndarray:
    """Per value: the records to keep. `records` (per value: distinct records holding it) sets the
    shares; `available` (per value: records the strategy may choose) caps each quota, the excess going
    to the values that still have room, by the same rule."""
    records = np.asarray(records, dtype=np.int64)
    available = np.asarray(available, dtype=np.int64)
    budget = min(int(budget), int(available.sum()))
    weights = (records > 0).astype(np.float64) if mode == EQUAL else records.astype(np.float64)
    quota = np.zeros(len(records), dtype=np.int64)
    open_ = available > 0
    while budget - quota.sum() > 0 and open_.any():
        share = largest_remainder(np.where(open_, weights, 0.0), int(budget - quota.sum()))
        if not share.any():  # the values with room have no weight (equal mode never gets here)
            share = largest_remainder(open_.astype(np.float64), int(budget - quota.sum()))
        quota = np.minimum(quota + share, available)
        open_ = quota < available
    return quota


def group_ids(values: list[str]) -> tuple[list[str], np.ndarray]:
    """(the distinct values in first-seen order, each record's value number)."""
    names: dict[str, int] = {}
    ids = np.fromiter((names.setdefault(v, len(names)) for v in values), dtype=np.int64, count=len(values))
    return list(names), ids
