"""The Featurize stage as it travels to another process (a Ray actor): it carries the settings and,
for a scorer object, that scorer's saved state, never a loaded model; the copy scores as the
original does. No Ray needed: pickling is what Ray does to the stage."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from car_select.config import Config
from car_select.errors import CarSelectError
from car_select.records import Record
from car_select.stages import Featurize, ShippedScorer

RECORDS = [Record(instruction=f"Name {n} things about {topic}.", input="", output=f"Here are {n}: " + ", ".join(
    f"{topic} fact {i}" for i in range(n))) for n, topic in [(2, "tea"), (5, "rivers"), (9, "chess"), (3, "haiku")]]


def own_scorer(dtype: str):
    from car_select.scoring.scorer import Scorer

    torch.manual_seed(7)
    return Scorer.new("all-MiniLM-L6-v2", {"hidden_sizes": [16]}).eval_mode().to("cpu", dtype)


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_a_pickled_stage_scores_with_the_scorer_object_it_was_given(dtype):
    scorer = own_scorer(dtype)
    stage = Featurize(Config(use_cache=False, device="cpu"), scorer)
    travelled = pickle.loads(pickle.dumps(stage))
    assert travelled._scorer is None and travelled._extractor is None  # no model in the pickle
    here, there = stage(RECORDS), travelled(RECORDS)
    assert travelled._scorer is not scorer and travelled._scorer.dtype == scorer.dtype
    np.testing.assert_array_equal(there.scores, here.scores)
    np.testing.assert_array_equal(there.embeddings, here.embeddings)
    configured = Featurize(Config(use_cache=False, device="cpu"))(RECORDS)  # the default scorer's
    assert np.abs(configured.scores - here.scores).max() > 1e-3


def test_shipping_a_scorer_leaves_the_callers_object_as_it_was():
    scorer = own_scorer("fp32")
    before = scorer.fingerprint()
    shipped = ShippedScorer.of(scorer)
    assert scorer.fingerprint() == before and scorer.dtype == torch.float32
    assert "head.safetensors" in shipped.files and "config.json" in shipped.files


def test_only_a_car_select_scorer_can_travel():
    class Lookalike:
        model = None

    stage = Featurize(Config(), Lookalike())
    with pytest.raises(CarSelectError, match="^scorer: a Lookalike object cannot be sent to Ray workers; "):
        pickle.dumps(stage)
    assert Featurize(Config()).shipped_scorer() is None
