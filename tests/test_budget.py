"""Budgets, thresholds, given scores and the comparison against random, through pipeline.select."""

import json
import warnings

import numpy as np
import pytest

from car_select import Config, select
from car_select.errors import CarSelectError, CarSelectWarning
from car_select.formats import read_dataset
from car_select.given_scores import read_score_field
from car_select.selection.car import car_rule, car_rule_for_budget
from car_select.selection.baselines import compare_with_random, coverage_distance
from test_pipeline import make_records


@pytest.fixture(scope="module")
def config(random_head_scorer_dir, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return Config(scorer=random_head_scorer_dir, cache_dir=str(cache), n2=1, precision="fp32")


@pytest.fixture(scope="module")
def records():
    return make_records(80)


def no_warnings(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", CarSelectWarning)
        return fn(*args, **kwargs)


def test_budget_keeps_exactly_n_with_the_smallest_n1(config, records):
    sel = no_warnings(select, records, config.replace(budget=25))
    assert len(sel.indices) == 25 and sel.budget == 25
    want = car_rule_for_budget(sel.scores, sel.clusters, 25, 1)
    assert sel.n1 == want.n1 and sel.indices.tolist() == want.indices.tolist()
    assert sel.indices.tolist() == car_rule(sel.scores, sel.clusters, sel.n1, 1).indices.tolist()
    assert car_rule(sel.scores, sel.clusters, sel.n1 - 1, 1).indices.size == 24
    s = sel.summary()
    assert (s["n1"], s["n2"], s["budget"], s["selected"]) == (sel.n1, 1, 25, 25)


def test_fraction_is_a_share_of_the_records_read(config, records):
    sel = select(records, config.replace(fraction=0.3))  # round(0.3 x 80) = 24
    assert len(sel.indices) == 24 and sel.budget == 24
    sel = select(records[:50], config.replace(fraction=0.25))  # 12.5 rounds up to 13
    assert len(sel.indices) == 13


def test_budget_below_the_cluster_tops_warns_and_keeps_the_best_tops(config, records):
    with pytest.warns(CarSelectWarning, match="below the 6 cluster tops"):
        sel = select(records, config.replace(budget=3))
    assert sel.k == 6 and len(sel.indices) == 3 and set(sel.reasons) == {"cluster_top"}
    tops = car_rule(sel.scores, sel.clusters, 0, 1).indices
    assert sel.indices.tolist() == tops[:3].tolist()  # n2 = 1: the best-scored cluster tops
    assert len(set(sel.clusters[sel.indices].tolist())) == 3


def test_budget_above_the_distinct_records_is_a_user_error(config, records):
    with pytest.raises(CarSelectError, match="^budget 81 is more than the 80 distinct records"):
        select(records, config.replace(budget=81))


def test_n1_past_the_distinct_records_warns(config, records):
    with pytest.warns(CarSelectWarning, match="--n1 1,000 is not below the 80 distinct records"):
        sel = select(records, config.replace(n1=1000))
    assert len(sel.indices) == 80


def test_min_score_keeps_only_records_at_or_above_it(config, records):
    base = select(records, config.replace(n1=5))
    threshold = float(np.median(np.unique(base.scores)))
    sel = no_warnings(select, records, config.replace(n1=5, min_score=threshold))
    assert (sel.scores[sel.indices] >= threshold).all()
    eligible = np.flatnonzero(base.scores >= threshold)
    want = car_rule(base.scores[eligible], base.clusters[eligible], 5, 1, index=eligible)
    assert sel.indices.tolist() == want.indices.tolist()
    assert sel.eligible == len(eligible) and sel.summary()["eligible"] == len(eligible)
    # a budget above what passes the threshold keeps every passing record, with a warning
    with pytest.warns(CarSelectWarning, match=f"only {len(eligible)} distinct records scor(e|ing) at least"):
        sel = select(records, config.replace(budget=79, min_score=threshold))
    assert sorted(sel.indices.tolist()) == eligible.tolist()
    with pytest.raises(CarSelectError, match="^min_score 99: no record scores that high"):
        select(records, config.replace(min_score=99.0))


def test_min_percentile_is_min_score_at_that_percentile_of_the_data(config, records):
    base = select(records, config.replace(n1=5))
    threshold = float(np.percentile(base.scores[base.unique], 60))
    by_percentile = select(records, config.replace(n1=5, min_percentile=60))
    by_score = select(records, config.replace(n1=5, min_score=threshold))
    assert by_percentile.indices.tolist() == by_score.indices.tolist()
    assert by_percentile.eligible == by_score.eligible == int((base.scores[base.unique] >= threshold).sum())
    summary = by_percentile.summary()
    assert summary["min_percentile"] == 60 and summary["min_score"] == pytest.approx(threshold)


def test_given_scores_replace_the_scorer(config, records):
    given = np.arange(len(records), dtype=float)[::-1] * 0.5  # record 0 best
    sel = select(records, config.replace(n1=10), scores=given)
    assert np.array_equal(sel.scores, given.astype(np.float32))
    assert sel.indices[:10].tolist() == list(range(10))
    assert sel.indices.tolist() == car_rule(given, sel.clusters, 10, 1).indices.tolist()
    with pytest.raises(CarSelectError, match="one score per record"):
        select(records, config, scores=given[:-1])


def test_duplicates_are_annotated_with_the_copy_kept(config, records):
    sel = select(records[:30] + [records[4]], config.replace(n1=3))
    rows = list(sel.annotations())
    assert rows[30]["reason"] == "duplicate" and rows[30]["duplicate_of"] == 4 and not rows[30]["selected"]
    assert all("duplicate_of" not in r for r in rows[:30])
    json.dumps(rows)


def test_against_random_in_the_summary(config, records):
    sel = select(records, config.replace(budget=20))
    c = sel.summary()["against_random"]
    assert c["size"] == 20 and c["records"] == 80 and c["random_seeds"] == [42, 43, 44, 45, 46]
    # the budget selection is the top-scored records plus cluster tops: it out-scores random subsets
    assert c["selected"]["mean_score"] > c["random_mean"]["mean_score"]
    assert c["selected"]["clusters_covered"] == sel.k
    assert c["selected"]["mean_score"] == pytest.approx(float(sel.scores[sel.indices].mean()), abs=1e-4)
    assert select(records, config.replace(budget=20, compare_seeds=0)).against_random is None


def test_coverage_distance_is_the_mean_distance_to_the_nearest_chosen_row():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3)).astype(np.float32)
    chosen = np.array([1, 7, 30])
    want = np.mean(np.min(np.linalg.norm(x[:, None, :] - x[chosen][None], axis=2), axis=1))
    assert coverage_distance(x, chosen) == pytest.approx(want, rel=1e-5)
    assert coverage_distance(x, np.arange(50)) == pytest.approx(0.0, abs=1e-3)


def test_compare_with_random_statistics():
    scores = np.linspace(0, 1, 100)
    clusters = np.arange(100) % 4
    words = np.arange(100)
    c = compare_with_random(scores, clusters, None, words, np.arange(90, 100), seeds=3, seed=0)
    sel = c["selected"]
    assert sel["mean_score"] == pytest.approx(scores[90:].mean(), abs=1e-4)
    assert sel["output_words_median"] == 94.5 and sel["clusters_covered"] == 4
    assert "coverage_distance" not in sel and len(c["random_seeds"]) == 3
    assert c["random_mean"]["mean_score"] < sel["mean_score"]


# --- --score-field --------------------------------------------------------------------------------

def write_json(path, rows):
    path.write_text(json.dumps(rows))
    return str(path)


def rec(i, **extra):
    return {"instruction": f"q{i}", "output": f"a{i}", **extra}


def test_score_field_reads_numbers_and_nested_fields(tmp_path):
    ds = read_dataset(write_json(tmp_path / "a.json", [rec(0, rating=3), rec(1, rating=4.5)]))
    assert read_score_field(ds, "rating").tolist() == [3.0, 4.5]
    ds = read_dataset(write_json(tmp_path / "b.json", [rec(0, judge={"score": 1}), rec(1, judge={"score": -2})]))
    assert read_score_field(ds, "judge.score").tolist() == [1.0, -2.0]
    csv = tmp_path / "c.csv"
    csv.write_text("instruction,output,reward\nq0,a0,0.25\nq1,a1,-1e-3\n")
    assert read_score_field(read_dataset(str(csv)), "reward").tolist() == [0.25, -0.001]


def test_score_field_in_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"instruction": ["q0", "q1"], "output": ["a0", "a1"], "reward": [0.5, None]}), path)
    ds = read_dataset(str(path))
    with pytest.raises(CarSelectError, match='record 1: score field "reward" is missing'):
        read_score_field(ds, "reward")
    with pytest.raises(CarSelectError, match='no field "rating"'):
        read_score_field(ds, "rating")


@pytest.mark.parametrize("value, message", [
    (None, 'record 1: score field "rating" is missing'),
    ("high", 'record 1: score field "rating" is not a number: \'high\''),
    (" ", 'record 1: score field "rating" is missing'),
    (True, 'record 1: score field "rating" is not a number'),
    ([1], 'record 1: score field "rating" is not a number'),
])
def test_score_field_errors_name_the_record(tmp_path, value, message):
    rows = [rec(0, rating=1), rec(1) if value is None else rec(1, rating=value)]
    ds = read_dataset(write_json(tmp_path / "a.json", rows))
    with pytest.raises(CarSelectError, match=message) as e:
        read_score_field(ds, "rating")
    assert "\n" not in str(e.value) and str(tmp_path / "a.json") in str(e.value)


def test_score_field_accepts_numbers_written_as_text(tmp_path):
    ds = read_dataset(write_json(tmp_path / "a.json", [rec(0, rating="4.5"), rec(1, rating=" -2 ")]))
    assert read_score_field(ds, "rating").tolist() == [4.5, -2.0]


def test_score_field_nan_in_csv(tmp_path):
    csv = tmp_path / "c.csv"
    csv.write_text("instruction,output,reward\nq0,a0,nan\n")
    with pytest.raises(CarSelectError, match='record 0: score field "reward" is not finite'):
        read_score_field(read_dataset(str(csv)), "reward")


@pytest.mark.parametrize("change, message", [
    ({"budget": 5, "fraction": 0.1}, "exclusive"), ({"budget": -1}, "^budget must be"), ({"budget": 0}, "^budget must be"),
    ({"fraction": 0.0}, "^fraction must be"), ({"fraction": 1.5}, "^fraction must be"),
    ({"min_score": float("nan")}, "^min_score must be"), ({"score_field": " "}, "^score_field must"),
    ({"score_field": "r", "scorer": "x"}, "exclusive"), ({"compare_seeds": -1}, "compare_seeds"),
])
def test_budget_options_are_checked(change, message):
    with pytest.raises(CarSelectError, match=message):
        Config(**change).validate()


def test_score_field_without_scores_is_a_user_error(config, records):
    with pytest.raises(CarSelectError, match="score_field 'rating' needs the dataset"):
        select(records, config.replace(scorer=None, score_field="rating"))
