"""The shipped default scorer against the issue's first symptoms, on 20 hand-made pairs that need no
shared data: a correct answer against a wrong, off-topic, rude, empty or truncated one
(`data/handmade_pairs.jsonl`), the same correct answers padded with filler or repeated, and an
answer that is one word looped 20,000 times. The pairs were written for this check, after the
scorer was trained; nothing was chosen on them. Floors sit below what the scorer gets today
(README, "What the scorer measures": 15 of 20, filler 0 and repetition 1 of 20)."""

import json
from pathlib import Path

import numpy as np
import pytest

from car_select.scoring.scorer import Scorer
from car_select.training.evaluate import score_pairs
from car_select.training.pairs import PreferencePair, read_pairs

HANDMADE = Path(__file__).parent / "data" / "handmade_pairs.jsonl"
FILLER = (" I hope this helps! Let me know if you have any other questions, I am always happy to help you with "
          "anything else.")


@pytest.fixture(scope="module")
def default_scorer():
    return Scorer.load("default")


@pytest.fixture(scope="module")
def handmade():
    kinds = [json.loads(line)["kind"] for line in HANDMADE.read_text().splitlines()]
    return read_pairs(HANDMADE), np.array(kinds)


def test_default_beats_the_longer_answer_on_hand_made_pairs(default_scorer, handmade):
    pairs, kinds = handmade
    chosen, rejected = score_pairs(default_scorer, pairs)
    right = chosen > rejected
    longer_right = np.array([len(p.chosen) > len(p.rejected) for p in pairs])
    assert longer_right.sum() == 10  # the set is balanced: the bad answer is the longer one in half the pairs
    assert right.sum() >= 14, dict(zip(kinds, right))
    assert right[~longer_right].sum() >= 5  # where length points the wrong way (the 0.1 scorer: 1 of 9)
    for kind in ("off_topic", "rude", "empty"):
        assert right[kinds == kind].sum() >= 3, kind


def test_filler_and_repetition_do_not_raise_a_correct_answer(default_scorer, handmade):
    pairs, _ = handmade
    padded = [PreferencePair(p.prompt, p.chosen, p.chosen + FILLER) for p in pairs]
    repeated = [PreferencePair(p.prompt, p.chosen, p.chosen + "\n\n" + p.chosen) for p in pairs]
    for name, probe in (("filler", padded), ("repeat", repeated)):
        chosen, rejected = score_pairs(default_scorer, probe)
        assert (rejected > chosen).sum() <= 2, name  # the 0.1 scorer: 19 and 20 of 20


def test_one_word_looped_ranks_below_every_real_answer(default_scorer, handmade):
    pairs, _ = handmade
    prompts = [p.prompt for p in pairs] + [pairs[0].prompt]
    answers = [p.chosen for p in pairs] + ["word " * 20000]
    scores = default_scorer.score_pairs(prompts, answers)
    assert scores[-1] < scores[:-1].min()  # the 0.1 scorer ranked it first of 42
