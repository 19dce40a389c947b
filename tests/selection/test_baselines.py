"""What a selection bought (car_select.selection.baselines): coverage figures against brute force, the naive
baselines, and signed quantities compared by difference."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from car_select.selection import baselines
from car_select.selection.baselines import (
    cluster_balance,
    compare_with_random,
    coverage_figures,
    format_comparison,
    subset_stats,
    versus,
    versus_text,
)


def brute_force(x: np.ndarray, chosen: np.ndarray) -> dict:
    distance = np.linalg.norm(x[:, None, :] - x[chosen][None], axis=2).min(axis=1)
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    similarity = (unit @ unit[chosen].T).max(axis=1)
    return {"coverage_distance": distance.mean(), "k_center_radius": distance.max(),
            "facility_location": similarity.mean()}


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 60), d=st.integers(1, 6), m=st.integers(1, 10), seed=st.integers(0, 2**16),
       block=st.sampled_from([1, 7, 16_384]))
def test_coverage_figures_match_brute_force(n, d, m, seed, block):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    chosen = rng.choice(n, size=min(m, n), replace=False)
    old, baselines._SEARCH_ROWS = baselines._SEARCH_ROWS, block  # blockwise search gives the same answer
    try:
        got = coverage_figures(x, chosen)
    finally:
        baselines._SEARCH_ROWS = old
    for key, want in brute_force(x.astype(np.float64), chosen).items():
        assert got[key] == pytest.approx(want, abs=2e-3), key


def test_keeping_everything_covers_everything():
    x = np.random.default_rng(0).normal(size=(40, 5))
    got = coverage_figures(x, np.arange(40))
    assert got["coverage_distance"] == pytest.approx(0, abs=1e-3) and got["k_center_radius"] == pytest.approx(0, abs=2e-3)
    assert got["facility_location"] == pytest.approx(1, abs=1e-5)


def test_cluster_balance_is_entropy_over_the_inputs():
    clusters = np.repeat(np.arange(4), [40, 30, 20, 10])
    assert cluster_balance(clusters, np.flatnonzero(clusters == 2)) == 0.0  # all kept from one cluster
    one_each = np.array([0, 40, 70, 90])
    p = np.array([.4, .3, .2, .1])
    assert cluster_balance(clusters, one_each) == pytest.approx(np.log(4) / -(p * np.log(p)).sum())
    assert cluster_balance(clusters, np.arange(100)) == pytest.approx(1.0)
    assert np.isnan(cluster_balance(np.zeros(10, dtype=int), np.arange(3)))  # one cluster: no entropy to compare


def test_naive_baselines_are_top_score_and_longest_outputs():
    rng = np.random.default_rng(1)
    n, m = 200, 15
    scores, words = rng.normal(size=n) * 5, rng.integers(0, 900, n)
    clusters, reduced = rng.integers(0, 8, n), rng.normal(size=(n, 4))
    chosen = rng.choice(n, m, replace=False)
    c = compare_with_random(scores, clusters, reduced, words, chosen, seeds=4, seed=7)
    top, longest = np.argsort(-scores)[:m], np.argsort(-words, kind="stable")[:m]
    assert c["top_score"]["mean_score"] == pytest.approx(scores[top].mean(), abs=1e-4)
    assert c["top_score"]["mean_score"] == pytest.approx(np.sort(scores)[-m:].mean(), abs=1e-4)
    assert c["longest_output"]["output_words_mean"] == pytest.approx(np.sort(words)[-m:].mean(), abs=1e-4)
    assert c["longest_output"] == pytest.approx(subset_stats(longest, scores, clusters, reduced, words), abs=1e-4)
    assert len(c["random_runs"]) == 4 and c["random_seeds"] == [7, 8, 9, 10]
    for key in c["selected"]:
        assert c["random_mean"][key] == pytest.approx(np.mean([r[key] for r in c["random_runs"]]), abs=1e-3)
    assert {"coverage_distance", "k_center_radius", "facility_location", "cluster_balance"} <= set(c["selected"])


def test_signed_scores_are_compared_by_difference():
    """Issue 28: a selection mean of -1.03 against random's -1.79 was shown as ratio 0.58, 'worse than random'."""
    assert versus("mean_score", -1.03, -1.79) == ("difference", pytest.approx(0.76))
    assert versus_text("mean_score", -1.03, -1.79) == "+0.7600"
    assert versus("mean_score", 3.0, 1.5)[0] == "difference"  # scores have no zero: never a ratio
    assert versus("output_words_mean", 150.0, 100.0) == ("ratio", pytest.approx(1.5))
    assert versus("coverage_distance", 0.0, 0.5) == ("difference", -0.5)  # a ratio only where both are positive
    assert versus_text("mean_score", float("nan"), 1.0) == "n/a"


def test_format_comparison_with_negative_scores():
    scores = np.linspace(-8, 2, 100)  # the default scorer's scores are signed
    clusters, words, reduced = np.arange(100) % 5, np.arange(100), np.random.default_rng(0).normal(size=(100, 3))
    c = compare_with_random(scores, clusters, reduced, words, np.arange(80, 100), seeds=3, seed=0)
    lines = format_comparison(c)
    mean_line = next(line for line in lines if line.strip().startswith("mean score"))
    diff = c["selected"]["mean_score"] - c["random_mean"]["mean_score"]
    assert diff > 0 and mean_line.split()[-1] == versus_text("mean_score", c["selected"]["mean_score"],
                                                              c["random_mean"]["mean_score"])
    assert mean_line.split()[-1].startswith("+") and "\u00d7" not in mean_line
    assert any("difference" in line for line in lines)
    assert all(len(line) < 140 for line in lines)


def test_output_words_counts_characters_of_scripts_without_spaces():
    from car_select.records import Record
    from car_select.selection.baselines import output_words

    records = [Record("q", "Hello there, world!"), Record("q", "最好的建议是早睡。"), Record("q", "日本語 and English"),
               Record("q", "  "), Record("q", "b", history=(("hi", "one two"),))]
    # a Chinese sentence is nine characters, not one space-free "word"; punctuation stays with its run
    assert output_words(records).tolist() == [3, 9, 5, 0, 3]


def test_comparison_rows_have_one_precision_and_counts_are_whole():
    """Issue 33: "38.00 ± 0.0000" for a count, "0.5490 ± 0.3526" beside "6.43" for scores."""
    rng = np.random.default_rng(1)
    scores = np.concatenate([rng.normal(0.5, 0.35, 190), np.full(10, 6.43)])
    clusters, words, reduced = np.arange(200) % 7, np.arange(200), rng.normal(size=(200, 3))
    c = compare_with_random(scores, clusters, reduced, words, np.arange(190, 200), seeds=3, seed=0)
    lines = format_comparison(c)
    score_line = next(line for line in lines if line.strip().startswith("mean score"))
    assert "6.43" in score_line and f"{c['random_mean']['mean_score']:.2f} ± {c['random_std']['mean_score']:.2f}" \
        in score_line
    covered = next(line for line in lines if line.strip().startswith("clusters covered"))
    sel, rnd, sd = c["selected"]["clusters_covered"], c["random_mean"]["clusters_covered"], \
        c["random_std"]["clusters_covered"]
    assert covered.split()[2] == str(sel) and f"{rnd:.1f} ± {sd:.1f}" in covered


def test_one_record_has_no_similarity_to_speak_of():
    """A single distinct record sits at the origin of its PCA space: its cosine similarity is undefined (n/a)."""
    c = compare_with_random(np.array([1.5]), np.array([0]), np.zeros((1, 1)), np.array([4]), np.array([0]),
                            seeds=2, seed=0)
    assert math.isnan(c["selected"]["facility_location"])
    line = next(line for line in format_comparison(c) if "similarity to nearest kept" in line)
    assert "0.0000" not in line and "n/a" in line
