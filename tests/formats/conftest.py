"""Shared helpers for the format tests."""

from __future__ import annotations

import math

import pytest


def same(a, b, where="value") -> None:
    """Assert a == b with types compared too (1 != 1.0 != True), recursively."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} {a!r} != {type(b).__name__} {b!r}"
    if isinstance(a, dict):
        assert list(a.keys()) == list(b.keys()), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.fixture
def assert_same():
    return same


def make_rows(n: int = 12) -> list[dict]:
    """Alpaca records with extra fields of every JSON type (Arrow-consistent across records)."""
    rows = []
    for i in range(n):
        rows.append(
            {
                "instruction": f"Question {i}: say \"hi\", then a comma, please\nsecond line é中",
                "input": "" if i % 3 else f"context {i}",
                "output": f"Answer {i}" if i != 5 else "   ",  # whitespace-only output is valid
                "id": i,
                "score": i / 4,
                "weight": float(i),  # 2.0 must stay a float, not become 2
                "keep": i % 2 == 0,
                "note": None if i % 4 else f"note {i}",
                "tags": ["a", f"t{i}"],
                "meta": {"source": "unit", "rank": i * 10},
            }
        )
    return rows


@pytest.fixture
def rows() -> list[dict]:
    return make_rows()
