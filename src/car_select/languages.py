"""Which languages the data is in, and whether the scorer was trained on them.

Each record's language is detected with py3langid (the maintained fork of langid.py: a bundled
naive-Bayes model over byte n-grams, 97 languages, pure pip) on its instruction and final response.
A language is reported only where there is enough text to judge (MIN_CHARS non-space characters) and
the detector is confident (its normalised probability at least MIN_CONFIDENCE); anything else is
"und" (undetermined), which never counts against the scorer. The bare detector's odd ones are
unsure: in 3,000 Alpaca records "pcm" (twice), "it" were below 0.5 (only a French record, 0.98, above),
in 500 Chinese ShareGPT records "vo" 0.15 and "pcm" 0.32, and the demo's "Boil pasta: just do it."
came out "pcm" at 0.56; at 0.6, 46 of the 3,000 English records (1.5%) and 21 of the 500 Chinese ones
are left undetermined.
Detection costs a few milliseconds a record, so by default a seeded random sample of
`Config.language_sample` records (500: shares within about +-4.5 points, about a second) is detected; set it to None
to detect every record, or 0 to skip. The annotated rows carry a "language" for every record when every
record was detected (language_sample None) and for none otherwise, whatever the input's size.

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
from .wording import plural

DETECTOR = "py3langid"
TEXT_CHARS = 600  # characters of instruction + response looked at per record
# Less text than this (non-space characters) is not judged: "Hi Hello" comes out Finnish at 0.04.
MIN_CHARS = 20
# The detector's normalised probability a language needs (more than all the others together, with a margin).
MIN_CONFIDENCE = 0.6
UNDETERMINED = "und"  # ISO 639-2's code for "undetermined"

_identifier = None


def _classify(text: str) -> tuple[str, float]:
    """(language, normalised probability) from py3langid's bundled model, loaded once."""
    global _identifier
    if _identifier is None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    code, probability = _identifier.classify(text)
    return code, float(probability)


def _percent(part: int, whole: int) -> str:
    """A share that never rounds to 100% or 0% unless it is exactly that (498 of 500 is "99.6%")."""
    p = 100.0 * part / whole
    return f"{p:.0f}%" if p in (0.0, 100.0) or 1 <= p <= 99 else f"{p:.1f}%"


def detect(texts: Sequence[str]) -> list[str]:
    """ISO 639-1 code per text; "und" for a text too short to judge (under MIN_CHARS non-space
    characters) or one no language reaches MIN_CONFIDENCE for."""
    out = []
    for t in texts:
        t = " ".join(t.split())[:TEXT_CHARS]
        if len(t) - t.count(" ") < MIN_CHARS:
            out.append(UNDETERMINED)
            continue
        code, probability = _classify(t)
        out.append(code if probability >= MIN_CONFIDENCE else UNDETERMINED)
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
        foreign = sum(n for code, n in counts.items() if code not in trained and code != UNDETERMINED)
        if foreign > len(codes) / 2:  # of every record looked at: an undetermined one is not foreign
            top = next(code for code in counts if code not in trained and code != UNDETERMINED)
            share = f"{foreign:,} of {len(codes):,}" + (" sampled" if len(rows) < len(unique) else "")
            out["warning"] = (f"{share} {plural(len(codes), 'record')} ({_percent(foreign, len(codes))}) "
                              f"{plural(foreign, 'is')} not in the scorer's languages "
                              f"({', '.join(trained)}; most common other: {top}): its scores (and the English "
                              "all-MiniLM-L6-v2 clusters) may mean little; bring a scorer for them with "
                              "--scorer hf-reward:MODEL or --score-field NAME")
    per_record = None
    if sample is None:  # every record, or none: never a language on some inputs' rows by their size
        by_row = dict(zip(rows.tolist(), codes))
        per_record = [by_row[int(j) if j >= 0 else i] for i, j in enumerate(duplicate_of)]
    return out, per_record
