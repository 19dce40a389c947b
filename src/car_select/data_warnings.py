"""One-line warnings about the data and the selection that a user should read before training on it:
a selection that keeps most of the records (the paper's n1=1000 on a small dataset), and records
whose response is empty (they pass reading, and the user should know where they ranked)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .records import Record

MOST_OF_THE_DATA = 0.5  # warn when a selection keeps more than this share of the distinct records


def empty_response_rows(records: Sequence[Record]) -> np.ndarray:
    """Positions of records with an empty or whitespace-only response in any exchange."""
    return np.array([i for i, r in enumerate(records) if any(not a.strip() for _, _, a in r.exchanges())],
                    dtype=np.int64)


def selection_warnings(records: Sequence[Record], unique: np.ndarray, scores_u: np.ndarray,
                       chosen: np.ndarray, given_scores: bool) -> tuple[list[str], int]:
    """(warnings, count of distinct records with an empty response). `unique`: input positions of the
    distinct records; `scores_u`: their scores; `chosen`: the selected input positions."""
    warnings = []
    n = len(unique)
    if n and len(chosen) > MOST_OF_THE_DATA * n:
        warnings.append(f"the selection keeps {len(chosen):,} of the {n:,} distinct records ({len(chosen) / n:.0%}): "
                        "that is most of the data, not a subset; ask for fewer with --budget N or --fraction F")
    empty = empty_response_rows([records[i] for i in unique])
    if len(empty):
        # where the empty answers rank: their median percentile among all distinct records' scores
        order = np.argsort(np.argsort(scores_u, kind="stable"), kind="stable")
        percentile = 100.0 * np.median(order[empty]) / max(1, n - 1)
        kept = int(np.isin(unique[empty], chosen).sum())
        source = "the given scores" if given_scores else "the scorer"
        warnings.append(f"{len(empty):,} distinct records have an empty or whitespace-only response; {source} "
                        f"put them at a median percentile of {percentile:.0f} (0 = lowest) and {kept:,} of them "
                        f"are in the selection ({_first_ids(unique[empty])})")
    return warnings, int(len(empty))


def _first_ids(positions: np.ndarray, shown: int = 5) -> str:
    """"record 3" / "records 3, 17, 42, 50, 61 and 12 more": input positions (the annotated rows' index)."""
    ids = ", ".join(str(int(i)) for i in positions[:shown])
    more = f" and {len(positions) - shown:,} more" if len(positions) > shown else ""
    return f"record{'s' if len(positions) > 1 else ''} {ids}{more}"
