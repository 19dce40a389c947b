"""Numbers and counts in the words the summary, the warnings and the report print: one place, so that
"1 text" and "2 texts", or a score's decimals, read the same everywhere."""

from __future__ import annotations

import math

# Nouns whose plural is not noun + "s", and verbs that agree with a count ("1 record has", "2 records have").
_PLURALS = {"is": "are", "has": "have", "was": "were", "this": "these"}


def plural(n: int, noun: str, many: str | None = None) -> str:
    """`noun` as it goes with the count `n`: itself for exactly 1, else `many` (default: noun + "s")."""
    if n == 1:
        return noun
    return many if many is not None else _PLURALS.get(noun, noun + "s")


def count(n: int, noun: str, many: str | None = None) -> str:
    """"1 text", "2 texts", "1,234 records" (`many`: an irregular plural)."""
    return f"{n:,} {plural(n, noun, many)}"


def decimals_for(*values: float) -> int:
    """Decimals that show numbers of this size to about three significant digits, one choice for a whole
    row of figures (so a mean, its spread and the figures beside it read alike): 1 from 100 up, 2 from 1,
    else 4."""
    finite = [abs(float(v)) for v in values if v is not None and math.isfinite(float(v))]
    largest = max(finite, default=0.0)
    return 1 if largest >= 100 else 2 if largest >= 1 else 4


def number(value, decimals: int | None = None) -> str:
    """An int with thousands separators; a float with `decimals` (default: `decimals_for` itself);
    "n/a" for a missing value (None or nan)."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    value = float(value)
    if not math.isfinite(value):
        return "n/a"
    places = decimals_for(value) if decimals is None else decimals
    return f"{value:,.{places}f}"


def threshold(value: float) -> str:
    """A score threshold as people write it: 3.11415 -> "3.11", 0.012345 -> "0.0123", 12 -> "12"."""
    value = float(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return number(value)
