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
