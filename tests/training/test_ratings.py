"""Distilling per-record ratings into a scorer (training/ratings.py): the split by record hash, the
partner draw of the pairwise loss, and a scorer that learns what the ratings say."""

import json

import numpy as np
import pytest

from car_select.errors import CarSelectError
from car_select.records import Record
from car_select.training.ratings import (RatingsSettings, _partners, agreement, distill, rated_texts,
                                         record_bucket, record_hash)

TOPICS = ["the capital of France", "how plants make food", "why the sky is blue", "what a prime number is",
          "how to boil an egg", "the causes of rain", "how a bicycle works", "what gravity does"]
REFUSALS = ["I cannot help with that.", "No.", "I don't know.", "Sorry, I won't answer."]


def answer(topic: str) -> str:
    return (f"Here is how {topic} works: the main cause comes first, then an example, and finally the result, "
            f"step by step, so that {topic} is clear.")


def rated_records(n: int, binary: bool = False, offset: int = 0):
    """Half real answers (high ratings), half refusals (low ratings)."""
    records, ratings = [], []
    for i in range(offset, offset + n):
        topic = f"{TOPICS[i % len(TOPICS)]} (case {i})"
        good = i % 2 == 1
        records.append(Record(f"Explain {topic}.", answer(topic) if good else REFUSALS[i % len(REFUSALS)]))
        ratings.append((1.0 if good else 0.0) if binary else (4 + (i % 3) * 0.5 if good else 1 + (i % 4) * 0.5))
    return records, np.array(ratings)


def test_record_hash_depends_on_content_only():
    a = Record("Add 2 and 3.", "5")
    assert record_hash(a) == record_hash(Record("Add 2 and 3.", "5"))
    assert record_hash(a) != record_hash(Record("Add 2 and 3.", "6"))
    assert 0 <= record_bucket(a) < 10
    records, _ = rated_records(400)
    buckets = np.bincount([record_bucket(r) for r in records], minlength=10)
    assert buckets.min() > 15  # about a tenth each


def test_partners_always_differ_in_rating():
    rng = np.random.default_rng(0)
    ratings = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 5.5])
    for _ in range(20):
        partner = _partners(ratings, rng)
        assert np.all(ratings[partner] != ratings)
    assert set(_partners(np.array([0.0, 1.0] * 50), rng)[::2].tolist()) <= set(range(1, 100, 2))


def test_conversation_exchanges_share_their_record_rating():
    texts = rated_texts([Record("q2", "a2", history=(("q1", "a1"),)), Record("q", "a")], [3.0, 1.0])
    assert [r for _, r in texts.items] == ["a1", "a2", "a"]
    assert texts.ratings.tolist() == [3.0, 3.0, 1.0] and texts.owner.tolist() == [0, 0, 1]


@pytest.mark.parametrize("binary", [False, True])
def test_distilled_scorer_learns_what_the_ratings_say(tmp_path, binary):
    records, ratings = rated_records(160, binary)
    settings = RatingsSettings(epochs=4, members=1, hidden_sizes=[64], seed=1)
    result = distill(records, ratings, settings, source="small.json", cache_dir=tmp_path)
    assert result.loss in ("pairwise", "regression") and set(result.trials) == {"pairwise", "regression"}
    card = result.scorer.meta["card"]
    held = card["ratings"]
    assert held["n_records"] == len(result.test_records) > 0
    assert ("auc" in held["scorer"]) == binary and "default_scorer" in held and "output_length" in held
    # fresh records it never saw: every real answer above every refusal
    fresh, truth = rated_records(40, binary, offset=1000)
    scores = result.scorer.score_pairs([f"Instruction: {r.instruction}" for r in fresh], [r.output for r in fresh])
    cut = 0.5 if binary else 3.0
    good, bad = scores[truth > cut], scores[truth < cut]
    assert good.min() > bad.max()
    # the saved folder scores the same
    from car_select.scoring.scorer import Scorer

    result.scorer.save(tmp_path / "scorer")
    loaded = Scorer.load(tmp_path / "scorer").to(settings.device, settings.precision)  # as it was trained
    again = loaded.score_pairs([f"Instruction: {r.instruction}" for r in fresh],
                                                         [r.output for r in fresh])
    np.testing.assert_allclose(again, scores, rtol=1e-5, atol=1e-5)
    assert json.loads((tmp_path / "scorer" / "config.json").read_text())["card"]["ratings"] == held


def test_a_single_rating_value_cannot_teach_an_order(tmp_path):
    records, _ = rated_records(60)
    with pytest.raises(CarSelectError, match="fewer than two distinct ratings"):
        distill(records, np.full(60, 3.0), RatingsSettings(epochs=1, members=1), source="same.json")


def test_agreement_reports_auc_only_for_two_values():
    assert agreement([0.1, 0.9, 0.2, 0.8], [0, 1, 0, 1]) == {"spearman": pytest.approx(0.8944, abs=1e-4), "auc": 1.0}
    assert "auc" not in agreement([1, 2, 3], [1, 2, 3])
