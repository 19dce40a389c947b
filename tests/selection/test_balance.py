"""Quotas per field value (selection/balance.py) and apply_rule's groups."""

import numpy as np
import pytest

from car_select.selection.apply import apply_rule
from car_select.selection.balance import group_ids, largest_remainder, parse_balance, quotas


def test_largest_remainder_gives_the_floors_then_the_largest_remainders():
    # exact shares 4.07, 5.37, 5.28, 5.28: floors 4+5+5+5 = 19, the one left goes to the largest remainder
    assert largest_remainder(np.array([44, 58, 57, 57]), 20).tolist() == [4, 6, 5, 5]
    # equal remainders: the larger weight, then the earlier value
    assert largest_remainder(np.array([1, 1, 1]), 4).tolist() == [2, 1, 1]
    assert largest_remainder(np.array([1, 2, 1]), 2).tolist() == [1, 1, 0]
    assert largest_remainder(np.array([1, 3]), 2).tolist() == [0, 2]


@pytest.mark.parametrize("seed", range(20))
def test_quotas_sum_to_the_budget_and_stay_within_one_of_the_exact_share(seed):
    rng = np.random.default_rng(seed)
    records = rng.integers(1, 500, size=rng.integers(1, 12))
    budget = int(rng.integers(1, records.sum() + 1))
    got = quotas(records, records, budget)
    assert got.sum() == budget
    assert np.all(np.abs(got - records * budget / records.sum()) < 1)


def test_a_value_short_of_records_gives_its_excess_to_the_others():
    # proportional shares of 100: 50, 30, 20; the first value has only 10 records left to choose from
    got = quotas(np.array([500, 300, 200]), np.array([10, 300, 200]), 100)
    assert got.tolist() == [10, 54, 36]
    assert quotas(np.array([5, 50, 50]), np.array([5, 50, 50]), 30, "equal").tolist() == [5, 13, 12]


def test_parse_balance_reads_the_equal_suffix_only():
    assert parse_balance("category") == ("category", "proportional")
    assert parse_balance("meta.lang:equal") == ("meta.lang", "equal")
    assert parse_balance("time:12") == ("time:12", "proportional")


def test_apply_rule_fills_each_group_quota_with_the_strategy_inside_the_group():
    rng = np.random.default_rng(0)
    n = 300
    scores = rng.normal(size=n)
    reduced = rng.normal(size=(n, 8)).astype(np.float32)
    clusters = rng.integers(0, 6, size=n)
    names, groups = group_ids([["a", "b", "c"][i % 3] if i < 240 else "d" for i in range(n)])
    for strategy in ("car", "qd", "deita"):
        out = apply_rule(scores, clusters, n1=0, n2=1, budget=50, strategy=strategy, reduced=reduced, groups=groups)
        got = np.bincount(groups[out.selection.indices], minlength=len(names))
        assert got.tolist() == out.quotas.tolist() == largest_remainder(np.bincount(groups), 50).tolist()
        # best score first overall, each pick from its own group
        assert np.all(np.diff(scores[out.selection.indices]) <= 0)
    # deita's per-group rule: score first within the group (no pair above max_similarity in random 8-d data)
    out = apply_rule(scores, clusters, n1=0, n2=1, budget=50, strategy="deita", reduced=reduced, groups=groups)
    for g in range(len(names)):
        members = np.flatnonzero(groups == g)
        best = members[np.argsort(-scores[members])][:out.quotas[g]]
        assert set(out.selection.indices[groups[out.selection.indices] == g]) == set(best.tolist())


def test_shares_follow_the_given_group_sizes_not_the_records_left():
    # the input held 60 / 30 / 10 records per value, but only 20 / 30 / 10 are left to choose from here
    scores = np.arange(60, dtype=float)
    groups = np.repeat([0, 1, 2], [20, 30, 10])
    out = apply_rule(scores, np.zeros(60, dtype=int), n1=0, n2=1, budget=20, groups=groups,
                     group_sizes=np.array([60, 30, 10]))
    assert out.quotas.tolist() == [12, 6, 2]
    assert np.bincount(groups[out.selection.indices], minlength=3).tolist() == [12, 6, 2]
