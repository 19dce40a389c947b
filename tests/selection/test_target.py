"""Selection toward target examples (selection/target.py) and apply_rule's targets."""

import numpy as np

from car_select.selection.apply import apply_rule
from car_select.selection.target import nearest_target, round_robin_pool, target_coverage


def two_blobs(rng, n_each=100):
    """Rows around three directions; the targets sit on the first two."""
    centres = np.eye(6, dtype=np.float32)[:3] * 5
    rows = np.concatenate([c + rng.normal(size=(n_each, 6)).astype(np.float32) for c in centres])
    return rows, centres[:2].copy(), np.repeat([0, 1, 2], n_each)


def test_round_robin_takes_turns_between_target_examples():
    rng = np.random.default_rng(0)
    rows, targets, blob = two_blobs(rng)
    pool = round_robin_pool(rows, targets, 40)
    assert len(pool) == len(set(pool.tolist())) == 40
    # turns alternate: the even picks are near the first target, the odd ones near the second
    assert set(blob[pool[0::2]]) == {0} and set(blob[pool[1::2]]) == {1}
    # each turn is the most similar row left for that target
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    first = np.argsort(-(unit @ (targets[0] / np.linalg.norm(targets[0]))), kind="stable")
    assert pool[0::2].tolist() == first[:20].tolist()


def test_a_pool_larger_than_the_near_rows_searches_deeper():
    rng = np.random.default_rng(1)
    rows, targets, _ = two_blobs(rng, n_each=50)
    pool = round_robin_pool(rows, targets[:1], 140)
    assert len(pool) == len(set(pool.tolist())) == 140


def test_coverage_is_the_mean_best_similarity_of_the_target_examples():
    targets = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    selected = np.array([[1.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    assert np.isclose(target_coverage(selected, targets), (1.0 + 2 ** -0.5) / 2)
    best, sims = nearest_target(selected, targets)
    assert best.tolist() == [0, 0] and np.isclose(sims[0], 1.0)


def test_apply_rule_with_targets_keeps_records_near_the_targets_for_every_strategy():
    rng = np.random.default_rng(2)
    rows, targets, blob = two_blobs(rng)
    scores = rng.normal(size=len(rows))
    scores[blob == 2] += 3  # the far blob scores best: without targets it would win
    clusters = blob.copy()
    for strategy in ("car", "qd", "deita"):
        out = apply_rule(scores, clusters, n1=0, n2=1, budget=30, strategy=strategy, reduced=rows,
                         targets=targets, max_similarity=0.999)  # the blobs are tight: deita's 0.9 keeps few
        picked = out.selection.indices
        assert len(picked) == 30 and set(out.selection.reasons) == {"target"}
        assert set(blob[picked]) <= {0, 1}, strategy
        assert out.untargeted is not None and len(out.untargeted) == 30
        assert target_coverage(rows[picked], targets) > target_coverage(rows[out.untargeted], targets)


def test_excluded_records_are_never_kept():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=50)
    exclude = scores > np.median(scores)  # the better half
    out = apply_rule(scores, np.zeros(50, dtype=int), n1=0, n2=1, budget=20, exclude=exclude)
    assert len(out.selection.indices) == 20 and not exclude[out.selection.indices].any()
    assert out.eligible == 25
