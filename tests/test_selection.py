"""The CaR rule, proved against a brute-force reference on random scores and cluster labels."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from car_select.selection import CLUSTER_TOP, TOP_N1, car_select


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
    got = car_select(scores, clusters, n1, n2)
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
        merged.extend(car_select(np.asarray(scores)[shard], np.asarray(clusters)[shard], n1, n2, index=shard).indices)
    merged = np.array(sorted(merged), dtype=np.int64)
    got = car_select(np.asarray(scores)[merged], np.asarray(clusters)[merged], n1, n2, index=merged)
    want = car_select(scores, clusters, n1, n2)
    assert got.indices.tolist() == want.indices.tolist()
    assert got.reasons == want.reasons


def test_n2_above_one_takes_several_per_cluster():
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    clusters = [0, 0, 0, 1, 1, 1]
    got = car_select(scores, clusters, n1=1, n2=2)
    assert got.indices.tolist() == [0, 1, 3, 4]
    assert got.reasons == [TOP_N1, CLUSTER_TOP, CLUSTER_TOP, CLUSTER_TOP]


def test_ties_go_to_the_earlier_record():
    got = car_select([0.5, 0.5, 0.5], [0, 0, 0], n1=1, n2=0)
    assert got.indices.tolist() == [0]
