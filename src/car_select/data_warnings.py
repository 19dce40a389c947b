"""One-line warnings about the data and the selection that a user should read before training on it:
a selection that keeps most of the records (the paper's n1=1000 on a small dataset), and records
whose response is empty (they pass reading, and the user should know where they ranked)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .records import Record
from .wording import count, plural

MOST_OF_THE_DATA = 0.5  # warn when a selection keeps more than this share of the distinct records


def empty_response_rows(records: Sequence[Record]) -> np.ndarray:
    """Positions of records with an empty or whitespace-only response in any exchange."""
    return np.array([i for i, r in enumerate(records) if any(not a.strip() for _, _, a in r.exchanges())],
                    dtype=np.int64)


def top_by_score_warning(reasons: Sequence[str], n1: int | None, n_distinct: int, strategy: str = "car",
                         budget: int | None = None) -> str | None:
    """The paper's rule on small data: with n1 = 1,000 of a few thousand records every cluster's best is
    already among the top n1, so the cluster tops add nothing and the selection is the top by score
    alone (Dolly's 3k: 1,000 top-n1 + 0 cluster tops). One warning when the cluster tops add nothing, or
    a plain run's n1 is most of the data; else None. Only nothing counts: the paper's own Alpaca run adds
    12 to 42 cluster tops to its 1,000 (benchmarks/results), and MT-Bench-101 at --budget 150 adds 2 to the
    top 148, whose concentration (101 of 150 from one of 13 tasks) is by a field clusters do not see."""
    if strategy != "car" or n1 is None or not n_distinct:
        return None
    tops, added = reasons.count("top_n1"), reasons.count("cluster_top")
    if tops < n1:  # n1 took every eligible record: apply_rule says that every one is kept
        return None
    kept = len(reasons)
    n1_most = budget is None and n1 > MOST_OF_THE_DATA * n_distinct  # with a budget, the rule chose n1
    if added and not n1_most:
        return None
    share = f"{kept:,} of the {n_distinct:,} distinct records, {kept / n_distinct:.0%}"
    if not added:
        what = f"the top {tops:,} by score alone: every cluster's top is already among them"
    else:
        what = (f"mostly the top {tops:,} by score: " + (f"n1 {n1:,} is most of the data, and " if n1_most else "")
                + f"the cluster tops add only {count(added, 'record')}")
    advice = ("use --strategy qd with the same budget, or --balance FIELD for quotas per group" if budget is not None
              else "use --strategy qd --budget N, or ask for fewer records with --budget N (the rule then takes "
              "a smaller n1, and the cluster tops count for more)")
    return f"the selection is {what} (it keeps {share}); for a subset that also covers the data, {advice}"


def selection_warnings(records: Sequence[Record], unique: np.ndarray, scores_u: np.ndarray,
                       chosen: np.ndarray, given_scores: bool, top_by_score: bool = False) -> tuple[list[str], int]:
    """(warnings, count of distinct records with an empty response). `unique`: input positions of the
    distinct records; `scores_u`: their scores; `chosen`: the selected input positions; `top_by_score`:
    top_by_score_warning warned already (it says how much of the data is kept)."""
    warnings = []
    n = len(unique)
    # not when top_by_score_warning said it, nor for a selection of everything (apply_rule said that)
    if n and MOST_OF_THE_DATA * n < len(chosen) < n and not top_by_score:
        warnings.append(f"the selection keeps {len(chosen):,} of the {n:,} distinct records ({len(chosen) / n:.0%}): "
                        "that is most of the data, not a subset; ask for fewer with --budget N or --fraction F")
    empty = empty_response_rows([records[i] for i in unique])
    if len(empty):
        # where the empty answers rank: their median percentile among all distinct records' scores
        order = np.argsort(np.argsort(scores_u, kind="stable"), kind="stable")
        percentile = 100.0 * np.median(order[empty]) / max(1, n - 1)
        kept = int(np.isin(unique[empty], chosen).sum())
        source = "the given scores" if given_scores else "the scorer"
        where = (f"at a percentile of {percentile:.0f} (0 = lowest), and it is {'' if kept else 'not '}in the selection"
                 if len(empty) == 1 else f"at a median percentile of {percentile:.0f} (0 = lowest), and {kept:,} of "
                 f"them {plural(kept, 'is')} in the selection")
        warnings.append(f"{count(len(empty), 'distinct record')} {plural(len(empty), 'has')} an empty or "
                        f"whitespace-only response; {source} put {plural(len(empty), 'it', 'them')} {where} "
                        f"({_first_ids(unique[empty])})")
    return warnings, int(len(empty))


def _first_ids(positions: np.ndarray, shown: int = 5) -> str:
    """"record 3" / "records 3, 17, 42, 50, 61 and 12 more": input positions (the annotated rows' index)."""
    ids = ", ".join(str(int(i)) for i in positions[:shown])
    more = f" and {len(positions) - shown:,} more" if len(positions) > shown else ""
    return f"record{'s' if len(positions) > 1 else ''} {ids}{more}"
