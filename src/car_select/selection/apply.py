"""The selection step of a run, over the distinct records: drop near-duplicates (optional), keep those
scoring at least min_score, then the strategy: CaR's rule (n1, or the smallest n1 for a budget), qd
(quality-diversity greedy) or deita (score first, similarity-filtered), for a budget.

Pure: arrays in, a RuleOutcome out; the caller shows the warnings. Settings are checked by Config
(validate, check_fits) before; the one data-dependent user error, a min_score nothing reaches, raises
SettingError (a CarSelectError naming the field).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import SettingError
from .car import car_rule, car_rule_for_budget
from .deita import deita_select
from .near_duplicates import near_duplicates
from .qd import qd_select
from .result import SelectionResult, rank_order

STRATEGIES = ("car", "qd", "deita")


@dataclass
class RuleOutcome:
    selection: SelectionResult
    strategy: str
    n1: int | None  # the n1 the CaR rule used (with a budget: the smallest that reaches it); None for others
    n2: int | None
    budget: int | None  # the number of records asked for (--budget, or --fraction resolved), else None
    eligible: int  # distinct records the strategy chose from (not near-duplicates, scoring at least min_score)
    # per distinct record: the distinct record (position in the arrays given) it is a near-duplicate of, or -1
    near_duplicate_of: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)
    quotas: np.ndarray | None = None  # with groups: records to keep per group (balance.quotas)
    available: np.ndarray | None = None  # with groups: eligible records per group
    untargeted: np.ndarray | None = None  # with targets: the same rule's selection without them (indices)
    eligible_mask: np.ndarray | None = None  # per distinct record given: whether the strategy could choose it


def budget_for(budget: int | None, fraction: float | None, n_records: int) -> int | None:
    """The number of records asked for: `budget`, or round(fraction x n_records) (halves round up)."""
    if budget is not None:
        return int(budget)
    if fraction is not None:
        return int(math.floor(fraction * n_records + 0.5))
    return None


def apply_rule(scores, clusters, *, n1: int, n2: int, budget: int | None = None, fraction: float | None = None,
               min_score: float | None = None, n_records: int | None = None, index=None, strategy: str = "car",
               reduced: np.ndarray | None = None, quality_weight: float = 1.0, max_similarity: float = 0.9,
               near_duplicates_at: float | None = None, exclude: np.ndarray | None = None,
               targets: np.ndarray | None = None, groups: np.ndarray | None = None,
               balance_mode: str = "proportional", group_sizes: np.ndarray | None = None) -> RuleOutcome:
    """Select from the distinct records. CaR keeps the top n1 plus each cluster's top n2, or exactly
    `budget` records (or round(fraction x n_records), n_records = records read, duplicates included)
    with the smallest n1 that gives them; qd and deita keep exactly the budget over `reduced`. With
    `near_duplicates_at`, near-duplicates (cosine >= it over `reduced`) are dropped first; records
    where `exclude` is true (decontamination) are never kept.

    With `targets` (target examples' rows in the space of `reduced`) the strategy keeps the budget from
    the relevant pool (selection.target); with `groups` (a group number per distinct record) the
    budget is split into quotas (selection.balance, `balance_mode` proportional or equal, in proportion to
    `group_sizes`, default the groups' sizes here) and the strategy (targeted or not) fills each group's
    quota from that group. Both need a budget."""
    scores = np.asarray(scores, dtype=np.float64)
    clusters = np.asarray(clusters)
    index = np.arange(len(scores)) if index is None else np.asarray(index)
    n_distinct = len(scores)
    n_records = n_distinct if n_records is None else n_records
    # the settings were checked by Config.validate and Config.check_fits: what is left are callers' slips
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}")
    if (strategy != "car" or near_duplicates_at is not None or targets is not None) and reduced is None:
        raise ValueError("qd, deita, targets and near-duplicates need the reduced embeddings")
    warnings: list[str] = []
    target = budget_for(budget, fraction, n_records)
    if (strategy != "car" or targets is not None or groups is not None) and target is None:
        raise ValueError(f"strategy {strategy} with targets or groups needs a budget or a fraction")
    keep = np.ones(n_distinct, dtype=bool) if min_score is None else scores >= min_score
    if min_score is not None and not keep.any():
        best = float(scores.max()) if n_distinct else float("nan")
        raise SettingError(f"{{}} {min_score:g}: no record scores that high (the best scores {best:.4g})", "min_score")
    near_of = None
    if near_duplicates_at is not None:
        near_of = near_duplicates(scores, reduced, near_duplicates_at, index=index, clusters=clusters)
        keep &= near_of < 0
    if exclude is not None:
        keep &= ~np.asarray(exclude, dtype=bool)
    eligible = int(keep.sum())
    s, c, ix = scores[keep], clusters[keep], index[keep]
    above = f" scoring at least {min_score:g}" if min_score is not None else ""
    distinct = "distinct records" + (" left after near-duplicates" if near_of is not None else "")
    if target is not None and target > eligible:
        warnings.append(f"only {eligible:,} {distinct}{above} are left, fewer than the budget of {target:,}: "
                        f"keeping all {eligible:,}")
        target = eligible

    def outcome(picked: SelectionResult, n1_used, n2_used) -> RuleOutcome:
        return RuleOutcome(picked, strategy, n1_used, n2_used, target, eligible, near_of, warnings,
                           eligible_mask=keep)

    if targets is not None or groups is not None:
        def pick(candidates: np.ndarray, want: int) -> SelectionResult:
            return _pick(scores, clusters, index, reduced, candidates, want, strategy, n2, quality_weight,
                         max_similarity, targets, warnings)

        untargeted = None
        if targets is not None:  # the same rule without targets, for the summary's coverage beside it
            untargeted = apply_rule(scores, clusters, n1=n1, n2=n2, budget=target, min_score=None, index=index,
                                    strategy=strategy, reduced=reduced, quality_weight=quality_weight,
                                    max_similarity=max_similarity, exclude=~keep, groups=groups,
                                    balance_mode=balance_mode, group_sizes=group_sizes).selection.indices
        if groups is None:
            result = outcome(pick(np.flatnonzero(keep), target), None, None)
            result.untargeted = untargeted
            return result
        from .balance import quotas as split

        groups = np.asarray(groups)
        n_groups = max(int(groups.max()) + 1 if len(groups) else 0, 0 if group_sizes is None else len(group_sizes))
        records = np.bincount(groups, minlength=n_groups) if group_sizes is None else np.asarray(group_sizes)
        available = np.bincount(groups[keep], minlength=n_groups)
        quota = split(records, available, target, balance_mode)
        parts = [pick(np.flatnonzero(keep & (groups == g)), int(q)) for g, q in enumerate(quota) if q > 0]
        picked = _merge(parts, scores, index)
        result = outcome(picked, None, None)
        result.quotas, result.available, result.untargeted = quota, available, untargeted
        return result

    if strategy == "qd":
        return outcome(qd_select(s, reduced, target, quality_weight, candidates=np.flatnonzero(keep), index=ix,
                                 clusters=clusters), None, None)
    if strategy == "deita":
        picked = deita_select(s, reduced, target, max_similarity, candidates=np.flatnonzero(keep), index=ix)
        if len(picked.indices) < target:
            warnings.append(f"--strategy deita kept {len(picked.indices):,} of the budget of {target:,}: every other "
                            f"record has a cosine similarity above --max-similarity {max_similarity:g} to a kept one")
        return outcome(picked, None, None)
    if target is not None:
        b = car_rule_for_budget(s, c, target, n2, index=ix)
        if b.below_floor:
            warnings.append(f"budget {target:,} is below the {b.floor:,} cluster tops (k x n2): keeping the "
                            f"{target:,} best cluster tops, so some clusters have no record")
        return outcome(b, b.n1, n2)
    if n1 >= eligible and eligible > 0:
        warnings.append(f"--n1 {n1:,} is not below the {eligible:,} {distinct}{above}: every one is kept "
                        f"(use --budget N or --fraction F to keep a share)")
    return outcome(car_rule(s, c, n1, n2, index=ix), n1, n2)


def _pick(scores, clusters, index, reduced, candidates: np.ndarray, want: int, strategy: str, n2: int,
          quality_weight: float, max_similarity: float, targets: np.ndarray | None,
          warnings: list[str]) -> SelectionResult:
    """`want` of `candidates` (positions in the distinct arrays) by the strategy; with `targets`, from
    their relevant pool (selection.target), every pick's reason "target"."""
    from .target import POOL_FACTOR, TARGET, round_robin_pool

    want = min(want, len(candidates))
    if targets is not None:
        pool = round_robin_pool(reduced[candidates], targets, int(math.ceil(POOL_FACTOR * want)),
                                index=index[candidates])
        candidates = np.sort(candidates[pool])
    s, ix = scores[candidates], index[candidates]
    if strategy == "qd":  # coverage of the candidates themselves: the relevant pool, or the group
        picked = qd_select(s, reduced[candidates], want, quality_weight, index=ix, clusters=clusters[candidates])
    elif strategy == "deita":
        picked = deita_select(s, reduced, want, max_similarity, candidates=candidates, index=ix)
        if len(picked.indices) < want:
            warnings.append(f"--strategy deita kept {len(picked.indices):,} of a quota of {want:,}: every other "
                            f"record has a cosine similarity above --max-similarity {max_similarity:g} to a kept one")
    else:
        picked = car_rule_for_budget(s, clusters[candidates], want, n2, index=ix)
    if targets is not None:
        picked.reasons = [TARGET] * len(picked.indices)
    return picked


def _merge(parts: list[SelectionResult], scores, index) -> SelectionResult:
    """One selection from per-group ones, best score first (ties: lower index)."""
    if not parts:
        return SelectionResult(indices=np.zeros(0, dtype=np.int64), reasons=[])
    chosen = np.concatenate([p.indices for p in parts])
    reasons = [r for p in parts for r in p.reasons]
    where = {int(ix): pos for pos, ix in enumerate(np.asarray(index).tolist())}
    pos = np.array([where[int(c)] for c in chosen], dtype=np.int64)
    order = rank_order(np.asarray(scores)[pos], chosen)
    return SelectionResult(indices=chosen[order], reasons=[reasons[i] for i in order])
