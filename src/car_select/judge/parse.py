"""A judge's reply -> one number, or None when the reply does not clearly hold one.

Judges answer in many shapes: "4", "4.5\\nThe answer...", "Score: 4/5", "Rating: [[8]]", "**3**".
Tried in order: a number labelled score/rating (the last such label wins, since reasoning models
often think first); a number alone on the first non-empty line; the only number in the reply. A
number outside the rubric's scale, or a reply with several unlabelled numbers, is unparsable (None):
the caller asks again, then counts it; it never becomes 0.
"""

from __future__ import annotations

import math
import re

_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_LABELLED = re.compile(r"(?:score|rating|grade)\s*(?:is|of|=|:)?\s*[*\[\(\"']*\s*(" + _NUMBER + r")", re.IGNORECASE)
_ALONE = re.compile(r"^[\s*\[\(\"'#]*(" + _NUMBER + r")\s*(?:/\s*\d+(?:\.\d+)?)?[\s*\]\)\"'.]*$")
_ANY = re.compile(_NUMBER)
_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def parse_rating(reply: str | None, scale: tuple[float, float] | None = None) -> float | None:
    """The rating a reply states, within `scale` (lowest, highest) when given; None when unclear."""
    if not isinstance(reply, str):
        return None
    text = _THINKING.sub("", reply).strip()
    if not text:
        return None
    value = None
    labelled = _LABELLED.findall(text)
    if labelled:
        value = float(labelled[-1])
    else:
        first = next((line for line in text.splitlines() if line.strip()), "")
        alone = _ALONE.match(first)
        if alone:
            value = float(alone.group(1))
        else:
            numbers = _ANY.findall(text)
            if len(numbers) == 1:
                value = float(numbers[0])
    if value is None or not math.isfinite(value):
        return None
    if scale is not None and not scale[0] <= value <= scale[1]:
        return None
    return value
