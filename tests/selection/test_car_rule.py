"""The CaR rule, proved against a brute-force reference on random scores and cluster labels."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from car_select.selection.car import CLUSTER_TOP, TOP_N1, car_rule


def brute_force(scores, clusters, n1, n2):
    """Literal reading of the paper: sort by score (ties: earlier first), take the first n1; then for
    every cluster take its first n2 in that order; union, in rank order, top-n1 reason first."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    reason = {}
    for i in order[:n1]:
        reason[i] = TOP_N1
    for c in set(clusters):
        members = [i for i in order if clusters[i] == c]
        for i in members[:n2]:
            reason.setdefault(i, CLUSTER_TOP)
    chosen = [i for i in order if i in reason]
    return chosen, [reason[i] for i in chosen]


@st.composite
def problems(draw):
    n = draw(st.integers(1, 60))
    # few distinct values so ties are common
    scores = draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0, -1.0]), min_size=n, max_size=n))
    clusters = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    n1 = draw(st.integers(0, n + 2))
    n2 = draw(st.integers(0, 4))
    return scores, clusters, n1, n2


@settings(max_examples=400, deadline=None)
@given(problems())
def test_selection_equals_brute_force(problem):
    scores, clusters, n1, n2 = problem
    got = car_rule(scores, clusters, n1, n2)
    want_idx, want_reasons = brute_force(scores, clusters, n1, n2)
    assert got.indices.tolist() == want_idx
    assert got.reasons == want_reasons


@settings(max_examples=200, deadline=None)
@given(problems(), st.integers(1, 5), st.randoms(use_true_random=False))
def test_shard_candidates_merge_to_the_global_selection(problem, n_shards, rnd):
    """What the Ray engine relies on: per-shard candidates, merged, select exactly the global set."""
    scores, clusters, n1, n2 = problem
    n = len(scores)
    positions = list(range(n))
    rnd.shuffle(positions)
    shards = np.array_split(np.array(positions, dtype=np.int64), n_shards)
    merged = []
    for shard in shards:
        if len(shard) == 0:
            continue
        merged.extend(car_rule(np.asarray(scores)[shard], np.asarray(clusters)[shard], n1, n2, index=shard).indices)
    merged = np.array(sorted(merged), dtype=np.int64)
    got = car_rule(np.asarray(scores)[merged], np.asarray(clusters)[merged], n1, n2, index=merged)
    want = car_rule(scores, clusters, n1, n2)
    assert got.indices.tolist() == want.indices.tolist()
    assert got.reasons == want.reasons


def test_n2_above_one_takes_several_per_cluster():
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    clusters = [0, 0, 0, 1, 1, 1]
    got = car_rule(scores, clusters, n1=1, n2=2)
    assert got.indices.tolist() == [0, 1, 3, 4]
    assert got.reasons == [TOP_N1, CLUSTER_TOP, CLUSTER_TOP, CLUSTER_TOP]


def test_ties_go_to_the_earlier_record():
    got = car_rule([0.5, 0.5, 0.5], [0, 0, 0], n1=1, n2=0)
    assert got.indices.tolist() == [0]


# --- budgets -------------------------------------------------------------------------------------

from car_select.selection.car import car_rule_for_budget, cluster_top_count  # noqa: E402


@st.composite
def budget_problems(draw):
    n = draw(st.integers(1, 60))
    scores = draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0, -1.0]) | st.floats(-5, 5),
                           min_size=n, max_size=n))
    clusters = draw(st.lists(st.integers(0, 8), min_size=n, max_size=n))
    n2 = draw(st.integers(0, 4))
    budget = draw(st.integers(0, n))
    return scores, clusters, n2, budget


@settings(max_examples=500, deadline=None)
@given(budget_problems())
def test_budget_selection_is_exact_and_the_car_rule_for_the_smallest_n1(problem):
    scores, clusters, n2, budget = problem
    got = car_rule_for_budget(scores, clusters, budget, n2)
    floor = cluster_top_count(clusters, n2)
    assert got.floor == floor == len(brute_force(scores, clusters, 0, n2)[0])
    assert len(got.indices) == budget
    assert len(set(got.indices.tolist())) == budget
    if budget >= floor:
        assert not got.below_floor
        want_idx, want_reasons = brute_force(scores, clusters, got.n1, n2)
        assert got.indices.tolist() == want_idx
        assert got.reasons == want_reasons
        # the smallest such n1: one less gives fewer records (sizes grow by at most one per step)
        if got.n1 > 0:
            assert len(brute_force(scores, clusters, got.n1 - 1, n2)[0]) == budget - 1
    else:
        assert got.below_floor and got.n1 == 0
        # a subset of the cluster tops, best of each cluster before any second, then by score
        tops_idx, _ = brute_force(scores, clusters, 0, n2)
        assert set(got.indices.tolist()) <= set(tops_idx)
        assert set(got.reasons) <= {CLUSTER_TOP}


@settings(max_examples=300, deadline=None)
@given(budget_problems())
def test_every_budget_from_the_floor_to_n_is_reachable(problem):
    scores, clusters, n2, _ = problem
    n = len(scores)
    sizes = [len(brute_force(scores, clusters, n1, n2)[0]) for n1 in range(n + 1)]
    assert all(b - a in (0, 1) for a, b in zip(sizes, sizes[1:]))
    for budget in range(cluster_top_count(clusters, n2), n + 1):
        got = car_rule_for_budget(scores, clusters, budget, n2)
        assert got.n1 == sizes.index(budget)


@settings(max_examples=200, deadline=None)
@given(budget_problems(), st.integers(1, 5), st.randoms(use_true_random=False))
def test_budget_candidates_merge_per_shard(problem, n_shards, rnd):
    """Per-shard car_rule(n1=budget) candidates hold the global budget selection (for the Ray engine)."""
    scores, clusters, n2, budget = problem
    positions = list(range(len(scores)))
    rnd.shuffle(positions)
    merged = []
    for shard in np.array_split(np.array(positions, dtype=np.int64), n_shards):
        if len(shard):
            merged.extend(car_rule(np.asarray(scores)[shard], np.asarray(clusters)[shard], budget, n2,
                                     index=shard).indices)
    merged = np.array(sorted(merged), dtype=np.int64)
    got = car_rule_for_budget(np.asarray(scores)[merged], np.asarray(clusters)[merged], budget, n2, index=merged)
    want = car_rule_for_budget(scores, clusters, budget, n2)
    assert got.indices.tolist() == want.indices.tolist()
    assert got.n1 == want.n1


def test_below_the_floor_takes_every_cluster_best_before_a_second():
    scores = [0.9, 0.8, 0.7, 0.1]
    clusters = [0, 0, 0, 1]
    got = car_rule_for_budget(scores, clusters, budget=2, n2=2)  # cluster tops: 0, 1 (cluster 0), 3 (cluster 1)
    assert got.below_floor and got.floor == 3
    assert got.indices.tolist() == [0, 3]


def test_budget_example():
    # ranks: 0 (c0), 1 (c0), 2 (c1), 3 (c1), 4 (c2); cluster tops (n2=1): 0, 2, 4
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    clusters = [0, 0, 1, 1, 2]
    got = car_rule_for_budget(scores, clusters, budget=4, n2=1)
    assert got.n1 == 2 and got.indices.tolist() == [0, 1, 2, 4]
    assert got.reasons == [TOP_N1, TOP_N1, CLUSTER_TOP, CLUSTER_TOP]
