"""Which languages the data is in, and whether the scorer was trained on them.

Each record's language is detected with py3langid (the maintained fork of langid.py: a bundled
naive-Bayes model over byte n-grams, 97 languages, pure pip) on its instruction and final response.
Detection costs a few milliseconds a record, so by default a seeded random sample of
`Config.language_sample` records (500: shares within about +-4.5 points, about a second) is detected; set it to None
to detect every record (the annotated rows then carry a "language"), or 0 to skip.

A scorer's languages come from its config.json ("languages": ["en", ...]) where it says; car-select
scorers over all-MiniLM-L6-v2 without the key are English (the encoder and the CaR expert-revised
training data are English). When most of the detected records are in languages the scorer was not
trained on, the run warns in one line: bring a scorer for that language (`--scorer hf-reward:...` or
`--score-field`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .records import Record

DETECTOR = "py3langid"
TEXT_CHARS = 600  # characters of instruction + response looked at per record


def _percent(part: int, whole: int) -> str:
    """A share that never rounds to 100% or 0% unless it is exactly that (498 of 500 is "99.6%")."""
    p = 100.0 * part / whole
    return f"{p:.0f}%" if p in (0.0, 100.0) or 1 <= p <= 99 else f"{p:.1f}%"


def detect(texts: Sequence[str]) -> list[str]:
    """ISO 639-1 code per text ("und" for an empty one)."""
    import py3langid

    out = []
    for t in texts:
        t = " ".join(t.split())
        out.append(py3langid.classify(t[:TEXT_CHARS])[0] if t else "und")
    return out


def record_text(record: Record) -> str:
    return f"{record.instruction} {record.input} {record.output}"


def scorer_languages(scorer: str | None, score_field: str | None = None) -> list[str] | None:
    """The languages a scorer was trained on, where known (None: unknown, e.g. a reward model)."""
    if score_field is not None:
        return None
    from .encoding.models import MINILM_NAMES
    from .scoring.scorer import scorer_path

    if isinstance(scorer, str) and scorer.startswith("hf-reward:"):
        return None
    path = scorer_path(scorer)
    try:
        config = json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if isinstance(config.get("languages"), list):
        return [str(x) for x in config["languages"]]
    return ["en"] if config.get("encoder") in MINILM_NAMES else None


def language_summary(records: Sequence[Record], unique: np.ndarray, duplicate_of: np.ndarray, sample: int | None,
                     seed: int, trained: list[str] | None) -> tuple[dict, list[str] | None]:
    """({detector, detected, of, counts (most common first), scorer_languages, warning}, per-record codes
    when every distinct record was detected, else None). Duplicates are counted once."""
    unique = np.asarray(unique)
    if sample is not None and len(unique) > sample:
        rows = np.sort(np.random.default_rng(seed).choice(unique, size=sample, replace=False))
    else:
        rows = unique
    codes = detect([record_text(records[i]) for i in rows])
    counts = dict(Counter(codes).most_common())
    out = {"detector": DETECTOR, "detected": int(len(rows)), "of": int(len(unique)), "counts": counts,
           "scorer_languages": trained, "warning": None}
    if trained and codes:
        foreign = sum(n for code, n in counts.items() if code not in trained)
        if foreign > len(codes) / 2:
            top = next(code for code in counts if code not in trained)
            share = f"{foreign:,} of {len(codes):,}" + (" sampled" if len(rows) < len(unique) else "")
            out["warning"] = (f"{share} records ({_percent(foreign, len(codes))}) are not in the scorer's languages "
                              f"({', '.join(trained)}; most common other: {top}): its scores (and the English "
                              "all-MiniLM-L6-v2 clusters) may mean little; bring a scorer for them with "
                              "--scorer hf-reward:MODEL or --score-field NAME")
    per_record = None
    if len(rows) == len(unique):
        by_row = dict(zip(rows.tolist(), codes))
        per_record = [by_row[int(j) if j >= 0 else i] for i, j in enumerate(duplicate_of)]
    return out, per_record
