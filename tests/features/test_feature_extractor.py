"""A run's encoder knobs (Config fields) are the ones in effect during its encoder pass."""

from __future__ import annotations

import numpy as np

from car_select.config import Config
from car_select.encoding.settings import EncoderSettings, current_settings
from car_select.features import FeatureExtractor, Segments


class RecordingScorer:
    """Stands in for a Scorer: records the encoder settings its pass would run under."""

    def __init__(self):
        self.seen: list[EncoderSettings] = []

    def score_and_embed_pairs(self, prompts, responses, batch_tokens, progress=None):
        self.seen.append(current_settings())
        n = len(prompts)
        return np.zeros(n, np.float32), np.ones((n, 4), np.float32), np.ones(n, np.int64)


def test_the_configs_encoder_knobs_are_in_effect_during_the_pass(monkeypatch):
    for name in ("CAR_SELECT_FAST_ENCODER", "CAR_SELECT_CPU_BATCH_TOKENS", "CAR_SELECT_ENCODE_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    scorer = RecordingScorer()
    config = Config(fast_encoder=False, cpu_batch_tokens=1024, encode_workers=3, use_cache=False)
    extractor = FeatureExtractor(scorer, config, embedder=None)
    extractor._embedder = None  # the scorer's own pass embeds: no second encoder
    extractor.compute(Segments(["p"], ["r"], np.zeros(1, np.int64)))
    assert scorer.seen == [EncoderSettings(fast_encoder=False, cpu_batch_tokens=1024, encode_workers=3)]
    assert current_settings() == EncoderSettings()  # only for the pass: the defaults again after it
