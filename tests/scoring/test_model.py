import numpy as np
import pytest
import torch

from car_select.scoring.model import HeadConfig, LayerMix, sparsemax
from car_select.scoring.scorer import Scorer

TEXTS = ["Instruction: Say hi. Response: Hi!", "Instruction: Add 2 and 2. Response: 4",
         "Instruction: Name a colour. Input: warm Response: Red, the colour of fire and of ripe tomatoes."]


def test_sparsemax_is_a_sparse_distribution():
    p = sparsemax(torch.tensor([3.0, 1.0, 0.2, -2.0]))
    assert torch.isclose(p.sum(), torch.tensor(1.0))
    assert (p >= 0).all() and (p == 0).any()
    assert torch.allclose(sparsemax(torch.zeros(4)), torch.full((4,), 0.25))


def test_layer_mix_starts_as_the_mean_of_layers():
    mix = LayerMix(3)
    x = torch.randn(2, 3, 5)
    assert torch.allclose(mix(x), x.mean(1), atol=1e-6)


def test_forward_and_backward_on_a_tiny_encoder(tiny_encoder_dir):
    torch.manual_seed(0)
    scorer = Scorer.new(tiny_encoder_dir, {"hidden_sizes": [16, 8]}, max_length=32, train_encoder=True)
    model = scorer.model.train()
    ids = scorer.tokenize(TEXTS)
    from car_select.encoding.batching import pad_batch

    input_ids, mask = pad_batch(ids, scorer.pad_id)
    scores = model(input_ids, mask)
    assert scores.shape == (3,)
    loss = torch.nn.functional.softplus(scores[1] - scores[0])
    loss.backward()
    assert model.head.layerwise_attention.scalar_parameters.grad is not None
    assert model.encoder.encoder.layer[-1].output.dense.weight.grad.abs().sum() > 0
    # one pass yields scores and unit-length embeddings
    s, e, n = model.eval().score_and_embed(input_ids, mask)
    assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    assert n.tolist() == [len(x) for x in ids]


def test_padding_does_not_change_scores(tiny_encoder_dir):
    torch.manual_seed(1)
    scorer = Scorer.new(tiny_encoder_dir, {"hidden_sizes": [16]}, max_length=64).eval_mode()
    together = scorer.score_texts(TEXTS)
    alone = np.array([scorer.score_texts([t])[0] for t in TEXTS])
    assert np.allclose(together, alone, atol=1e-5)


def test_truncation_is_set_explicitly():
    """The bundled tokenizer.json truncates at 128; our max_length must win."""
    scorer = Scorer.new("all-MiniLM-L6-v2", {"hidden_sizes": [8]}, max_length=256)
    ids = scorer.tokenize(["word " * 400])
    assert len(ids[0]) == 256


@pytest.mark.parametrize("objective", ["pairwise", "triplet"])
def test_save_load_round_trip_gives_identical_scores(tiny_encoder_dir, tmp_path, objective):
    torch.manual_seed(2)
    head = {"hidden_sizes": [16], "objective": objective, "output_size": 8 if objective == "triplet" else 1}
    scorer = Scorer.new(tiny_encoder_dir, head, max_length=64).eval_mode()
    prompts = ["Instruction: Say hi.", "Instruction: Add 2 and 2."]
    responses = ["Hi!", "4"]
    before = scorer.score_pairs(prompts, responses)
    scorer.save(tmp_path / "s")
    loaded = Scorer.load(tmp_path / "s")
    assert np.array_equal(before, loaded.score_pairs(prompts, responses))
    from car_select.scoring.scorer import saved_fingerprint

    assert loaded.fingerprint() == Scorer.load(tmp_path / "s").fingerprint() == saved_fingerprint(tmp_path / "s")
    assert (tmp_path / "s" / "head.safetensors").is_file()
    assert not list((tmp_path / "s").glob("*.bin")) and not list((tmp_path / "s").glob("*.pt"))


def test_fingerprint_changes_with_the_head(tiny_encoder_dir):
    torch.manual_seed(3)
    scorer = Scorer.new(tiny_encoder_dir, HeadConfig(32, 3, [16]), max_length=64)
    before = scorer.fingerprint()
    with torch.no_grad():
        scorer.model.head.estimator.ff[0].bias.add_(1.0)
    scorer._fingerprint = None
    assert scorer.fingerprint() != before


MULTI_VIEW = {"hidden_sizes": [16], "views": ["full", "prompt", "response"], "text_stats": 14}
PAIRS = [("Instruction: Say hi.", "Hi!"), ("Instruction: Add 2 and 2.", "4"),
         ("Instruction: Name a colour. Input: warm", "Red, the colour of fire and of ripe tomatoes.")]


def test_views_pool_the_prompt_and_the_response_tokens_apart():
    from car_select.scoring.model import masked_mean_layers, masked_mean_views

    torch.manual_seed(0)
    layers = [torch.randn(2, 6, 4) for _ in range(3)]
    mask = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]])
    start = torch.tensor([2, 4])
    views = masked_mean_views(layers, mask, start)
    assert views.shape == (2, 3, 3, 4)
    assert torch.equal(views[:, 0], masked_mean_layers(layers, mask))  # the paper's view, unchanged
    for layer in range(3):
        h = layers[layer]
        assert torch.allclose(views[0, 1, layer], h[0, :2].mean(0), atol=1e-6)
        assert torch.allclose(views[0, 2, layer], h[0, 2:5].mean(0), atol=1e-6)  # padding left out
        assert torch.allclose(views[1, 2, layer], h[1, 4:].mean(0), atol=1e-6)
    # a response cut off by the window pools to zeros, not NaN
    assert torch.equal(masked_mean_views(layers, mask, torch.tensor([5, 6]))[:, 2], torch.zeros(2, 3, 4))


def test_multi_view_scorer_finds_where_the_response_starts(tiny_encoder_dir):
    scorer = Scorer.new(tiny_encoder_dir, MULTI_VIEW, max_length=64)
    ids, starts, stats = scorer.pair_inputs([p for p, _ in PAIRS], [r for _, r in PAIRS])
    for (prompt, response), x, start in zip(PAIRS, ids, starts):
        assert scorer.tokenizer.decode(x[start:-1]) == scorer.tokenizer.decode(
            scorer.tokenizer(f"Response: {response}", add_special_tokens=False)["input_ids"])
    assert stats.shape == (3, 14)


def test_a_tail_keeping_scorer_sees_how_a_long_response_ends(tiny_encoder_dir):
    scorer = Scorer.new(tiny_encoder_dir, {**MULTI_VIEW, "tail_tokens": 8}, max_length=32)
    long_answer = "It starts here. " + "Then more. " * 40 + "It ends with a different tail"
    prompts = [PAIRS[0][0], PAIRS[0][0], "Instruction: " + "very long request " * 20]
    ids, starts, _ = scorer.pair_inputs(prompts, [PAIRS[0][1], long_answer, long_answer])
    plain = Scorer.new(tiny_encoder_dir, MULTI_VIEW, max_length=32)
    plain_ids, plain_starts, _ = plain.pair_inputs(prompts[:1], [PAIRS[0][1]])
    assert np.array_equal(ids[0], plain_ids[0]) and starts[0] == plain_starts[0]  # short: unchanged
    assert len(ids[1]) == 32 and scorer.tokenizer.decode(ids[1][-7:-1]) == "it ends with a different tail"
    assert scorer.tokenizer.decode(ids[1][starts[1]:starts[1] + 4]) == "response : it starts"
    assert starts[2] == 24  # the request fills the kept start: the response view is the kept end
    scores = scorer.score_pairs(prompts, [PAIRS[0][1], long_answer, long_answer])
    assert np.isfinite(scores).all()


def test_multi_view_scores_are_batch_independent_and_embed_like_the_paper_view(tiny_encoder_dir):
    torch.manual_seed(0)
    multi = Scorer.new(tiny_encoder_dir, MULTI_VIEW, max_length=64).eval_mode().to("cpu", "fp32")
    paper = Scorer.new(tiny_encoder_dir, {"hidden_sizes": [16]}, max_length=64).eval_mode().to("cpu", "fp32")
    prompts, responses = [p for p, _ in PAIRS], [r for _, r in PAIRS]
    s, e, n = multi.score_and_embed_pairs(prompts, responses)
    one = [multi.score_and_embed_pairs([p], [r])[0][0] for p, r in PAIRS]
    assert np.allclose(s, one, atol=1e-5)
    _, e_paper, n_paper = paper.score_and_embed_pairs(prompts, responses)
    assert np.allclose(e, e_paper, atol=1e-6) and np.array_equal(n, n_paper)  # clustering is unaffected
    # the full texts go through the same path
    texts = [f"{p} Response: {r}" for p, r in PAIRS]
    assert np.allclose(multi.score_texts(texts), s, atol=1e-6)
