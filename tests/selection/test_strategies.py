"""qd and deita over random inputs: lazy greedy is plain greedy, counts are exact, deita's picks keep
apart, and the run's selection step refuses what does not apply, in one line."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from car_select.config import Config
from car_select.errors import CarSelectError
from car_select.selection.apply import apply_rule
from car_select.selection.deita import SCORE_FIRST, deita_select
from car_select.selection.qd import COVERAGE, coverage_graph, lazy_greedy, normalised_quality, plain_greedy, qd_select


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


@st.composite
def points(draw, max_n=40):
    n = draw(st.integers(1, max_n))
    d = draw(st.integers(2, 6))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    copies = draw(st.integers(0, n // 3))  # identical rows: ties in similarity and in gain
    if copies:
        x[rng.integers(0, n, copies)] = x[rng.integers(0, n, copies)]
    scores = rng.choice([0.0, 0.5, 1.0, 2.0, -1.0], n) if draw(st.booleans()) else rng.standard_normal(n)
    return x, scores


@settings(max_examples=150, deadline=None)
@given(points(), st.integers(1, 8), st.sampled_from([0.0, 0.3, 1.0, 5.0]), st.data())
def test_lazy_greedy_picks_what_plain_greedy_picks(problem, k, weight, data):
    x, scores = problem
    budget = data.draw(st.integers(1, len(x)))
    candidates = np.flatnonzero(data.draw(st.lists(st.booleans(), min_size=len(x), max_size=len(x)))) \
        if data.draw(st.booleans()) else np.arange(len(x))
    if len(candidates) == 0:
        candidates = np.arange(len(x))
    pos, sims = coverage_graph(x, candidates, k)
    q = normalised_quality(scores[candidates])
    lazy = lazy_greedy(pos, sims, q, weight, budget, len(x))
    plain = plain_greedy(pos, sims, q, weight, budget, len(x))
    assert lazy.tolist() == plain.tolist()
    assert len(lazy) == min(budget, len(candidates)) == len(set(lazy.tolist()))


def test_the_graph_holds_each_candidate_and_its_most_similar_rows():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 5)).astype(np.float32)
    pos, sims = coverage_graph(x, np.arange(50), 4)
    exact = unit(x) @ unit(x).T
    for i in range(50):
        assert i in pos[i].tolist() and sims[i][pos[i] == i][0] == 1.0
        others = np.argsort(-exact[i])[:5]
        assert set(pos[i].tolist()) == set(others.tolist())
        np.testing.assert_allclose(np.sort(sims[i]), np.sort(np.maximum(exact[i, others], 0)), atol=1e-5)


def test_qd_weight_moves_the_picks_towards_quality():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((400, 8)).astype(np.float32)
    scores = rng.standard_normal(400)
    low = qd_select(scores, x, 40, 0.0)
    high = qd_select(scores, x, 40, 50.0)
    assert low.reasons == [COVERAGE] * 40
    assert scores[high.indices].mean() > scores[low.indices].mean() + 0.5
    # pure quality at a huge weight: the top 40 by score
    assert set(high.indices.tolist()) == set(np.argsort(-scores)[:40].tolist())


@settings(max_examples=150, deadline=None)
@given(points(max_n=60), st.sampled_from([0.2, 0.5, 0.8, 0.9, 0.99]), st.data())
def test_deita_keeps_picks_apart_and_the_budget_when_it_can(problem, threshold, data):
    x, scores = problem
    budget = data.draw(st.integers(1, len(x)))
    got = deita_select(scores, x, budget, threshold)
    chosen = got.indices
    assert got.reasons == [SCORE_FIRST] * len(chosen) and len(set(chosen.tolist())) == len(chosen)
    sims = unit(x) @ unit(x).T
    among = sims[np.ix_(chosen, chosen)]
    np.fill_diagonal(among, -1)
    assert (among <= threshold + 1e-5).all()
    if len(chosen) < budget:  # every record left out is too similar to a kept one
        left = np.setdiff1d(np.arange(len(x)), chosen)
        assert (sims[np.ix_(left, chosen)].max(axis=1) > threshold - 1e-5).all()
    # best score first: a record is skipped only for similarity
    order = np.lexsort((np.arange(len(x)), -scores))
    first_kept = [i for i in order if i in set(chosen.tolist())]
    assert chosen.tolist() == first_kept


@settings(max_examples=100, deadline=None)
@given(points(max_n=50), st.sampled_from(["car", "qd", "deita"]), st.data())
def test_every_strategy_keeps_exactly_the_budget(problem, strategy, data):
    x, scores = problem
    n = len(x)
    budget = data.draw(st.integers(1, n))
    min_score = data.draw(st.sampled_from([None, 0.0]))
    clusters = np.random.default_rng(0).integers(0, 4, n)
    if min_score is not None and not (scores >= min_score).any():
        return
    eligible = n if min_score is None else int((scores >= min_score).sum())
    rule = apply_rule(scores, clusters, n1=1000, n2=1, budget=budget, min_score=min_score, strategy=strategy,
                      reduced=x, max_similarity=1.0)  # 1.0: deita never skips, so its count is exact too
    picked = rule.selection.indices
    assert len(picked) == min(budget, eligible) == len(set(picked.tolist()))
    if min_score is not None:
        assert (scores[picked] >= min_score).all()


def test_fraction_counts_the_records_read():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((100, 6)).astype(np.float32)
    rule = apply_rule(rng.standard_normal(100), np.zeros(100, int), n1=1000, n2=1, fraction=0.1, n_records=120,
                      strategy="qd", reduced=x)
    assert len(rule.selection.indices) == 12 and rule.budget == 12 and rule.n1 is None


@pytest.mark.parametrize("settings_, message", [
    ({"strategy": "random"}, "strategy must be car, qd or deita, got 'random'"),
    ({"strategy": "qd"}, "strategy qd needs budget or fraction (how many records to keep)"),
    ({"strategy": "qd", "budget": 5, "n2": 2}, "n2 applies to strategy car only, not qd"),
    ({"strategy": "deita", "budget": 5, "n1": 10}, "n1 applies to strategy car only, not deita"),
    ({"strategy": "deita", "budget": 5, "quality_weight": 3.0},
     "quality_weight applies to strategy qd only, not deita"),
    ({"budget": 5, "max_similarity": 0.8}, "max_similarity applies to strategy deita only, not car"),
    ({"strategy": "qd", "budget": 5, "quality_weight": -1.0}, "quality_weight must be a number >= 0, got -1.0"),
    ({"strategy": "qd", "budget": 5, "quality_weight": float("nan")}, "quality_weight must be a number >= 0, got nan"),
    ({"strategy": "deita", "budget": 5, "max_similarity": 0.0},
     "max_similarity must be a cosine similarity in (0, 1], got 0.0"),
    ({"near_duplicates": 1.5}, "near_duplicates must be a cosine similarity in (0, 1], got 1.5"),
    ({"strategy": 3}, "strategy must be str, got int 3"),
])
def test_settings_that_do_not_apply_or_are_out_of_range_are_refused_in_one_line(settings_, message):
    with pytest.raises(CarSelectError) as err:
        Config(**settings_).validate()
    assert str(err.value) == message and "\n" not in str(err.value)


def test_good_strategy_settings_pass():
    Config(strategy="qd", budget=10, quality_weight=0.0).validate()
    Config(strategy="deita", fraction=0.1, max_similarity=1.0, near_duplicates=0.95).validate()
    Config(near_duplicates=0.9).validate()


def test_select_runs_each_strategy_on_the_same_features(random_head_scorer_dir, tmp_path):
    from car_select import select
    from test_pipeline import make_records

    records = make_records(90)
    config = Config(scorer=random_head_scorer_dir, cache_dir=str(tmp_path), precision="fp32", compare_seeds=0,
                    language_sample=0)
    car = select(records, config.replace(budget=20))
    assert "strategy" not in car.summary() and car.summary()["selected_top_n1"] + car.summary()[
        "selected_cluster_top"] == 20
    for strategy, reason in (("qd", "coverage"), ("deita", "score_first")):
        sel = select(records, config.replace(strategy=strategy, budget=20))
        s = sel.summary()
        assert sel.encoder_passes == car.encoder_passes and sel.cache_hits == len(sel.unique)  # no new pass
        assert len(sel.indices) == 20 and set(sel.reasons) == {reason} and sel.n1 is None
        assert s["strategy"] == strategy and s[f"selected_{reason}"] == 20 and "n1" not in s
        rows = list(sel.annotations())
        assert sorted(r["index"] for r in rows if r["selected"]) == sorted(sel.indices.tolist())


def test_the_cluster_by_cluster_search_finds_the_neighbours_inside_well_separated_clusters(monkeypatch):
    """Above EXACT_ROWS the search runs per cluster and its nearest ones: on clusters far apart it
    finds exactly what the full search finds."""
    from car_select.selection import knn

    rng = np.random.default_rng(4)
    centres = rng.standard_normal((6, 12)) * 10
    labels = rng.integers(0, 6, 600)
    x = (centres[labels] + rng.standard_normal((600, 12))).astype(np.float32)
    unit_x = knn.unit_rows(x)
    queries = rng.choice(600, 200, replace=False)
    full = knn.neighbours(unit_x, queries, 5)
    full_pairs = knn.pairs_at_least(unit_x, 0.97)
    monkeypatch.setattr(knn, "EXACT_ROWS", 100)
    split = knn.neighbours(unit_x, queries, 5, labels)
    assert (split[0] == full[0]).all() and np.allclose(split[1], full[1], atol=1e-6)
    split_pairs = knn.pairs_at_least(unit_x, 0.97, labels)
    assert sorted(zip(*split_pairs)) == sorted(zip(*full_pairs))
