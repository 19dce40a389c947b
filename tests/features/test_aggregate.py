"""A conversation's score from its exchanges' (features.aggregate; the default chosen in
experiments/turn_aggregate_variants.py)."""

import numpy as np

from car_select import Config
from car_select.features import aggregate


def test_each_way_of_aggregating_exchange_scores():
    owner = np.array([0, 0, 0, 1, 2, 2])
    scores = np.array([4.0, 6.0, -1.0, 5.0, 2.0, 3.0])
    emb, counts = np.eye(6, 4, dtype=np.float32), np.ones(6)
    got = {how: aggregate(owner, 3, scores, emb, counts, how)[0].tolist()
           for how in ("mean", "min", "last", "mean_min")}
    assert got["mean"] == [3.0, 5.0, 2.5]
    assert got["min"] == [-1.0, 5.0, 2.0]
    assert got["last"] == [-1.0, 5.0, 3.0]
    assert got["mean_min"] == [1.0, 5.0, 2.25]  # half the mean, half the worst; one exchange is itself


def test_a_weak_reply_among_good_ones_shows_more_under_the_default():
    assert Config().turn_aggregate == "mean_min"
    owner = np.repeat(np.arange(2), 6)
    intact, one_weak = [5.0] * 6, [5.0] * 5 + [-3.0]
    scores = np.array(intact + one_weak)
    emb, counts = np.ones((12, 4), dtype=np.float32), np.ones(12)
    mean = aggregate(owner, 2, scores, emb, counts, "mean")[0]
    default = aggregate(owner, 2, scores, emb, counts, Config().turn_aggregate)[0]
    assert default[0] - default[1] > 2 * (mean[0] - mean[1])
