"""experiments/common.py: the inputs tried and not shipped (the response's halves, statistics 26-27)
still compute what the experiments recorded, now that they live outside the package."""

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from car_select.encoding.batching import pad_batch
from car_select.scoring.model import masked_mean_views
from car_select.scoring.scorer import Scorer
from car_select.scoring.textstats import STAT_NAMES, text_stats
from car_select.training.corruptions import corrupt
from car_select.training.features import TrainingFeatures

COMMON = Path(__file__).resolve().parents[2] / "experiments" / "common.py"
MULTI_VIEW = {"hidden_sizes": [16], "views": ["full", "prompt", "response"], "text_stats": 14}
PROMPT = "Instruction: How do I boil an egg?"


@pytest.fixture(scope="module")
def common():
    """The experiments' shared module, loaded from its file as `python experiments/NAME.py` would."""
    spec = importlib.util.spec_from_file_location("experiments_common", COMMON)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_halves_pool_the_response_first_and_second_half_apart(common):
    torch.manual_seed(0)
    layers = [torch.randn(3, 7, 4) for _ in range(2)]
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0, 0]])
    start = torch.tensor([2, 3, 2])  # responses of 4, 4 and 1 real tokens
    halves = common.masked_mean_halves(layers, mask, start)
    assert halves.shape == (3, 2, 2, 4)
    for layer, h in enumerate(layers):
        assert torch.allclose(halves[0, 0, layer], h[0, 2:4].mean(0), atol=1e-6)
        assert torch.allclose(halves[0, 1, layer], h[0, 4:6].mean(0), atol=1e-6)  # padding left out
        assert torch.allclose(halves[1, 0, layer], h[1, 3:5].mean(0), atol=1e-6)
        assert torch.allclose(halves[1, 1, layer], h[1, 5:7].mean(0), atol=1e-6)
        assert torch.allclose(halves[2, 0, layer], h[2, 2], atol=1e-6)  # one token: all in the first half
    assert torch.equal(halves[2, 1], torch.zeros(2, 4))


def test_halves_head_takes_the_cosines_of_prompt_and_halves(common, tiny_encoder_dir):
    torch.manual_seed(0)
    scorer = Scorer.new(tiny_encoder_dir, MULTI_VIEW, max_length=64).eval_mode()
    prompts, responses = ["Instruction: Say hi."] * 2, ["Hi there. Hi there.", "Hi there. 7 % 3 is 1"]
    ids, starts, stats = scorer.pair_inputs(prompts, responses)
    input_ids, mask = pad_batch(ids, scorer.pad_id)
    starts = torch.as_tensor(starts)
    with torch.no_grad():
        hidden = scorer.model.hidden_states(input_ids, mask)
        pooled = torch.cat([masked_mean_views(hidden, mask, starts), common.masked_mean_halves(hidden, mask, starts)], 1)
    config = replace(scorer.head_config, members=1)
    head = common.HalvesHead(config).eval()
    n_layers, hidden_size, cos = config.num_layers, config.hidden_size, torch.nn.functional.cosine_similarity
    # the estimator's input: three pooled views, one cosine per layer, three more per layer, 14 statistics
    assert head.inner.estimator.ff[0].in_features == 3 * hidden_size + 4 * n_layers + 14
    expected = torch.cat([cos(pooled[:, 1], pooled[:, 3], dim=-1), cos(pooled[:, 1], pooled[:, 4], dim=-1),
                          cos(pooled[:, 3], pooled[:, 4], dim=-1)], 1)
    seen = []
    handle = head.inner.estimator.register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
    with torch.no_grad():
        scores = head(pooled, torch.as_tensor(stats))
        one = torch.cat([head(pooled[i:i + 1], torch.as_tensor(stats[i:i + 1])) for i in range(2)])
    handle.remove()
    inputs = seen[0]
    assert torch.allclose(inputs[:, -14 - 3 * n_layers:-14], expected, atol=1e-5)
    assert torch.equal(inputs[:, -14:], torch.as_tensor(stats))
    assert not torch.allclose(expected[0], expected[1], atol=1e-3)  # the two answers' halves differ
    assert scores.shape == (2,) and torch.allclose(scores, one, atol=1e-5)


def test_experiment_features_add_views_and_statistics_after_the_shipped_ones(common, tiny_encoder_dir):
    scorer = Scorer.new(tiny_encoder_dir, MULTI_VIEW, max_length=32).eval_mode().to("cpu", "fp32")
    items = [(PROMPT, "Put the egg in boiling water for nine minutes, then cool it."), (PROMPT, "Boil it."),
             ("Instruction: Say hi.", "Hi!")]
    plain = TrainingFeatures(scorer, items, True, 4096, "plain", quiet=True)
    extended = common.experiment_features(halves=True, extra=2)(scorer, items, True, 4096, "five", quiet=True)
    assert extended.table.shape[1] == 5 and torch.allclose(extended.table[:, :3], plain.table, atol=1e-6)
    assert extended.stats.shape == (3, 14 + 2) and torch.equal(extended.stats[:, :14], plain.stats)
    assert np.array_equal(extended.stats[:, 14:].numpy(), np.stack([common.extra_stats(p, r) for p, r in items]))
    assert extended.cache_key_views() == plain.cache_key_views() + list(common.HALF_VIEWS)
    assert common.experiment_features() is TrainingFeatures
    with pytest.raises(ValueError):
        common.experiment_features(extra=3)


def test_second_half_new_words_sees_another_answer_appended_and_not_a_repeat(common):
    answer = ("Put the egg in a pot of cold water and bring the water to a boil. Leave the egg in the hot "
              "water for ten minutes, then cool the egg under cold water before you peel it.")
    other = ("Photosynthesis lets green plants turn sunlight, carbon dioxide and water into glucose; "
             "chlorophyll inside chloroplasts captures the light energy.")
    base = common.extra_stats(PROMPT, answer, 1)[0]
    appended = common.extra_stats(PROMPT, corrupt(PROMPT, answer, "off_topic_appended", seed=0, others=[other]), 1)[0]
    assert appended > base + 0.1  # a natural answer's second half brings new words too, fewer
    assert common.extra_stats(PROMPT, f"{answer} {answer}", 1)[0] == 0  # the second half says nothing new
    assert common.extra_stats(PROMPT, "", 1)[0] == 0


def test_prompt_words_in_text_finds_the_request_inside_identifiers(common):
    prompt = "Instruction: Write a function that reverses a string and counts its vowels."
    right = "def reverse_string(text):\n    vowels = sum(c in 'aeiou' for c in text)\n    return text[::-1], vowels"
    other = "SELECT name, salary FROM employees WHERE salary > 5000 ORDER BY salary DESC;"
    found = common.extra_stats(prompt, right)[1]
    whole_words = text_stats(prompt, right)[STAT_NAMES.index("prompt_words_covered")]
    # string (in reverse_string) and vowels: found inside identifiers, which whole-word matching misses
    assert found > whole_words
    assert common.extra_stats(prompt, other)[1] == 0 < found
    assert common.extra_stats("", right)[1] == 0  # no request words: nothing to find
