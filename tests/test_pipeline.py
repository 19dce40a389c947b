import json

import numpy as np
import pytest

from car_select import Config, Record, select
from car_select.errors import CarSelectError
from car_select.selection.car import car_rule


def make_records(n: int, seed: int = 0) -> list[Record]:
    rng = np.random.default_rng(seed)
    topics = ["cooking pasta", "python lists", "the french revolution", "photosynthesis", "saving money",
              "writing a haiku", "the moon landing", "training a puppy"]
    out = []
    for i in range(n):
        t = topics[i % len(topics)]
        out.append(Record(instruction=f"Tell me something about {t} (variant {i})",
                          input="" if i % 3 else f"context {rng.integers(1000)}",
                          output=f"Here is a fact about {t}. " * int(rng.integers(1, 6))))
    return out


@pytest.fixture
def config(random_head_scorer_dir, tmp_path):
    # fp32: bf16 results shift slightly with batch composition, and these tests compare runs exactly
    return Config(scorer=random_head_scorer_dir, cache_dir=str(tmp_path / "cache"), n1=10, n2=1, precision="fp32")


def test_select_follows_the_car_rule(config):
    records = make_records(80)
    sel = select(records, config)
    assert sel.k == int((80 / 2) ** 0.5)
    again = car_rule(sel.scores, sel.clusters, config.n1, config.n2)
    assert sel.indices.tolist() == again.indices.tolist()
    assert sel.reasons.count("top_n1") == 10
    assert set(np.unique(sel.clusters)) <= set(sel.clusters[sel.indices])  # every cluster has its top
    assert 0.95 <= sel.pca_variance_explained <= 1.0


def test_duplicates_count_once_and_first_is_kept(config):
    records = make_records(40)
    records = records + [records[3], records[7]]
    sel = select(records, config)
    assert sel.duplicates_dropped == 2
    assert sel.duplicate_of[40] == 3 and sel.duplicate_of[41] == 7
    assert 40 not in sel.indices and 41 not in sel.indices
    assert sel.scores[40] == sel.scores[3]


def test_multi_turn_records_are_scored_per_exchange(config):
    from car_select.features import aggregate

    owner = np.array([0, 0, 1])
    scores, emb = aggregate(owner, 2, np.array([1.0, 3.0, 5.0]), np.eye(3, 4, dtype=np.float32),
                            np.array([1, 3, 2]), "mean")
    assert scores.tolist() == [2.0, 5.0]
    assert np.allclose(emb[0], np.array([1, 3, 0, 0]) / np.sqrt(10))
    records = make_records(30)
    records[0] = Record(instruction="and then?", output="the end.", history=(("start a story", "Once upon a time"),))
    sel = select(records, config)
    assert len(sel.scores) == 30


def test_cache_hit_on_rerun_and_miss_on_changed_text(config):
    records = make_records(30)
    first = select(records, config)
    assert first.cache_hits == 0
    second = select(records, config.replace(n1=5))
    assert second.cache_hits == 30
    assert np.array_equal(first.scores, second.scores)
    changed = list(records)
    changed[4] = Record(instruction=records[4].instruction, output=records[4].output + " More.")
    third = select(changed, config)
    assert third.cache_hits == 29


def test_warm_reselection_loads_no_model(config, monkeypatch):
    from car_select import features

    records = make_records(30)
    first = select(records, config)

    def no_model(_config):
        raise AssertionError("the model was loaded although every text was cached")

    monkeypatch.setattr(features, "load_scorer", no_model)
    again = select(records, config.replace(n1=3))
    assert again.cache_hits == 30 and np.array_equal(again.scores, first.scores)


def test_cache_misses_on_a_changed_model(config, tmp_path):
    import torch

    from car_select.scoring.scorer import Scorer

    records = make_records(20)
    select(records, config)
    torch.manual_seed(99)
    other = tmp_path / "other-scorer"
    Scorer.new("all-MiniLM-L6-v2", {"hidden_sizes": [64]}).save(other)
    assert select(records, config.replace(scorer=str(other))).cache_hits == 0


def test_interrupted_run_resumes_to_the_identical_selection(config, monkeypatch):
    from car_select import features

    records = make_records(60)
    reference = select(records, config.replace(use_cache=False))
    calls = {"n": 0}
    real = features.FeatureExtractor.compute

    def dies_on_second_chunk(self, segments, progress=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, segments, progress)

    monkeypatch.setattr(features.FeatureExtractor, "compute", dies_on_second_chunk)
    monkeypatch.setattr(features, "ENCODE_CHUNK", 16)
    with pytest.raises(KeyboardInterrupt):
        select(records, config)
    monkeypatch.setattr(features.FeatureExtractor, "compute", real)
    resumed = select(records, config)
    assert resumed.cache_hits == 16  # the finished chunk was kept
    assert resumed.indices.tolist() == reference.indices.tolist()
    assert np.allclose(resumed.scores, reference.scores, atol=1e-5)


def test_a_corrupt_cache_shard_is_ignored(config):
    from pathlib import Path

    records = make_records(20)
    select(records, config)
    for shard in Path(config.cache_dir).rglob("shard-*.npz"):
        shard.write_bytes(b"not a zip")
    again = select(records, config)
    assert again.cache_hits == 0 and len(again.indices) > 0


def test_more_clusters_than_records_is_a_user_error(config):
    with pytest.raises(CarSelectError, match="more than"):
        select(make_records(5), config.replace(clusters=10))


def test_annotations_rows(config):
    sel = select(make_records(30), config)
    rows = list(sel.annotations())
    assert [r["index"] for r in rows] == list(range(30))
    assert sum(r["selected"] for r in rows) == len(sel.indices)
    assert {r["reason"] for r in rows} <= {"top_n1", "cluster_top", None}
    json.dumps(rows)
