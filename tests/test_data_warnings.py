"""Warnings a user must see: a selection that keeps most of the data, and empty responses (issue 28 item 9)."""

import numpy as np

from car_select.data_warnings import empty_response_rows, selection_warnings
from car_select.languages import _percent
from car_select.records import Record


def _records(outputs):
    return [Record(instruction=f"q{i}", output=o) for i, o in enumerate(outputs)]


def test_empty_and_whitespace_responses_are_found_in_any_exchange():
    recs = _records(["a", "", "  \n\t", "b"]) + [Record("q", "fine", history=(("hi", " "),))]
    assert empty_response_rows(recs).tolist() == [1, 2, 4]


def test_keeping_most_of_the_data_warns_and_half_does_not():
    recs = _records(["a", "b", "c", "d"])
    unique, scores = np.arange(4), np.array([1.0, 2.0, 3.0, 4.0])
    warned, _ = selection_warnings(recs, unique, scores, np.array([3, 2, 1]), given_scores=False)
    assert len(warned) == 1 and "keeps 3 of the 4 distinct records (75%)" in warned[0]
    quiet, _ = selection_warnings(recs, unique, scores, np.array([3, 2]), given_scores=False)
    assert quiet == []


def test_empty_responses_are_counted_with_where_they_rank():
    recs = _records(["", "x", "y", "z", " ", "w", "v", "u", "t", "s"])
    unique = np.arange(10)
    scores = np.array([-5.0, 1, 2, 3, -4, 4, 5, 6, 7, 8])  # both empty answers score lowest
    warned, count = selection_warnings(recs, unique, scores, np.array([9, 8]), given_scores=False)
    assert count == 2
    assert "2 distinct records have an empty or whitespace-only response" in warned[0]
    assert "median percentile of 6" in warned[0] and "0 of them are in the selection" in warned[0]


def test_language_share_never_rounds_to_everything():
    assert _percent(498, 500) == "99.6%"
    assert _percent(500, 500) == "100%"
    assert _percent(1, 500) == "0.2%"
    assert _percent(250, 500) == "50%"


def test_one_empty_response_is_worded_in_the_singular():
    recs = _records(["", "x", "y", "z"])
    warned, count = selection_warnings(recs, np.arange(4), np.array([0.0, 1, 2, 3]), np.array([3, 0]),
                                       given_scores=False)
    assert count == 1
    assert "1 distinct record has an empty or whitespace-only response" in warned[0]
    assert "put it at a percentile of 0 (0 = lowest), and it is in the selection" in warned[0]
    warned, _ = selection_warnings(recs, np.arange(4), np.array([0.0, 1, 2, 3]), np.array([3]), given_scores=False)
    assert "and it is not in the selection" in warned[0]
    many, _ = selection_warnings(_records(["", " ", "y"]), np.arange(3), np.array([0.0, 1, 2]), np.array([1]),
                                 given_scores=False)
    assert "2 distinct records have" in many[0] and "put them at a median" in many[0] and "1 of them is in" in many[0]


def _dolly_sized_run(n=3000, n1=1000, seed=0, budget=None):
    """The paper's rule on random scores over k = int(sqrt(n/2)) clusters, as a 3k Dolly-style run has it."""
    from car_select.config import n_clusters_for
    from car_select.selection.apply import apply_rule

    rng = np.random.default_rng(seed)
    scores, clusters = rng.normal(size=n), rng.integers(0, n_clusters_for(n), size=n)
    return apply_rule(scores, clusters, n1=n1, n2=1, budget=budget)


def test_top_n1_that_already_holds_every_cluster_top_warns_once_naming_the_ways_out():
    from car_select.data_warnings import top_by_score_warning

    rule = _dolly_sized_run()
    reasons = rule.selection.reasons
    assert reasons.count("top_n1") == 1000 and reasons.count("cluster_top") == 0  # what issue 33 measured
    message = top_by_score_warning(reasons, rule.n1, 3000, rule.strategy, rule.budget)
    assert message.startswith("the selection is the top 1,000 by score alone")
    assert "--budget N" in message and "--strategy qd" in message


def test_top_by_score_warning_is_silent_where_the_cluster_tops_count():
    from car_select.data_warnings import top_by_score_warning

    rule = _dolly_sized_run(n=3000, n1=100)  # 100 of 3,000: most clusters' tops are outside the top 100
    assert rule.selection.reasons.count("cluster_top") > 0
    assert top_by_score_warning(rule.selection.reasons, rule.n1, 3000, rule.strategy, rule.budget) is None
    rule = _dolly_sized_run(n=3000, budget=100)  # a budget chooses n1: here the cluster tops still count
    assert rule.selection.reasons.count("cluster_top") > 0
    assert top_by_score_warning(rule.selection.reasons, rule.n1, 3000, rule.strategy, rule.budget) is None
    assert top_by_score_warning(["coverage"] * 10, None, 3000, "qd", 10) is None


def test_a_budget_the_top_by_score_fills_alone_warns_with_the_strategy_to_use():
    from car_select.data_warnings import top_by_score_warning

    rule = _dolly_sized_run(n=3000, budget=600)  # 38 clusters of ~80: every cluster's best is in the top 600
    assert rule.selection.reasons.count("cluster_top") == 0 and rule.n1 == 600
    message = top_by_score_warning(rule.selection.reasons, rule.n1, 3000, rule.strategy, rule.budget)
    assert message.startswith("the selection is the top 600 by score alone")
    assert "--strategy qd with the same budget" in message and "--budget N (" not in message


def test_n1_over_most_of_the_data_is_one_warning_not_two():
    from car_select.data_warnings import top_by_score_warning

    rule = _dolly_sized_run(n=400, n1=300)
    reasons = rule.selection.reasons
    top = top_by_score_warning(reasons, rule.n1, 400, rule.strategy, rule.budget)
    assert top is not None and "300 by score" in top and "of the 400 distinct records" in top
    recs = _records(["a"] * 400)
    rest, _ = selection_warnings(recs, np.arange(400), np.zeros(400), rule.selection.indices, given_scores=False,
                                 top_by_score=True)
    assert rest == []  # the share kept is in the one warning above


def test_a_selection_of_everything_leaves_the_one_warning_to_the_rule():
    """n1 above the data keeps every record: apply_rule warns "every one is kept"; nothing here repeats it."""
    from car_select.data_warnings import top_by_score_warning
    from car_select.selection.apply import apply_rule

    rule = apply_rule(np.arange(216, dtype=float), np.arange(216) % 10, n1=1000, n2=1)
    assert len(rule.warnings) == 1 and "every one is kept" in rule.warnings[0]
    assert top_by_score_warning(rule.selection.reasons, rule.n1, 216, rule.strategy, rule.budget) is None
    rest, _ = selection_warnings(_records(["a"] * 216), np.arange(216), np.zeros(216), rule.selection.indices,
                                 given_scores=False)
    assert rest == []
