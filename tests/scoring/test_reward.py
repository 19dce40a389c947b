"""`--scorer hf-reward:PATH`: any Hugging Face reward model, tested on tiny randomly initialised models
built and saved here (no download): a Llama-style decoder with a chat template, a BERT-style encoder
without one."""

import json

import numpy as np
import pytest
import torch

from car_select import Config, select
from car_select.errors import CarSelectError
from car_select.render import render_prompt
from car_select.scoring.reward import RewardScorer, user_message
from car_select.scoring.scorer import Scorer
from datapaths import shared_file

CHAT_TEMPLATE = ("{% for m in messages %}{{ '[' + m['role'] + '] ' + m['content'] + ' [SEP] ' }}{% endfor %}")


def _tokenizer():
    from car_select.encoding.models import load_tokenizer

    return load_tokenizer("all-MiniLM-L6-v2")  # bundled WordPiece tokenizer: offline


def _save(model, tok, path):
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def decoder_rm(tmp_path_factory):
    from transformers import AutoModelForSequenceClassification, LlamaConfig

    torch.manual_seed(0)
    tok = _tokenizer()
    tok.chat_template = CHAT_TEMPLATE
    cfg = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512, num_labels=1,
                      pad_token_id=tok.pad_token_id)
    return _save(AutoModelForSequenceClassification.from_config(cfg), tok, tmp_path_factory.mktemp("llama_rm"))


@pytest.fixture(scope="module")
def encoder_rm(tmp_path_factory):
    from transformers import AutoModelForSequenceClassification, BertConfig

    torch.manual_seed(1)
    tok = _tokenizer()
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=2, max_position_embeddings=512, num_labels=1)
    return _save(AutoModelForSequenceClassification.from_config(cfg), tok, tmp_path_factory.mktemp("bert_rm"))


PROMPTS = [render_prompt("Name a color.", ""), render_prompt("Add the numbers.", "2 and 3"),
           render_prompt("Write a haiku about autumn leaves falling on a quiet pond.", "")]
RESPONSES = ["Blue.", "2 + 3 = 5", "Red leaves drift and fall / the pond holds the sky in stillness / one ripple, then none"]


@pytest.mark.parametrize("which", ["decoder_rm", "encoder_rm"])
def test_batched_scores_equal_one_at_a_time(which, request):
    rm = Scorer.load(f"hf-reward:{request.getfixturevalue(which)}").to("cpu", "fp32")
    assert isinstance(rm, RewardScorer) and rm.embeds_like_minilm is False
    batched = rm.score_pairs(PROMPTS, RESPONSES, batch_tokens=4096)
    alone = np.array([rm.score_pairs([p], [r])[0] for p, r in zip(PROMPTS, RESPONSES)])
    assert batched.shape == (3,) and np.allclose(batched, alone, atol=1e-5)
    assert len(set(np.round(batched, 6))) == 3  # a real, input-dependent output


def test_the_chat_template_renders_the_exchange(decoder_rm, encoder_rm):
    rm = RewardScorer.load(f"hf-reward:{decoder_rm}")
    assert rm.uses_chat_template
    ids = rm.token_ids(PROMPTS[1:2], RESPONSES[1:2])[0]
    text = rm.tokenizer.decode(ids)
    assert text.startswith("[ user ] add the numbers. 2 and 3 [SEP] [ assistant ] 2 + 3 = 5")
    assert user_message(PROMPTS[1]) == "Add the numbers.\n\n2 and 3"
    plain = RewardScorer.load(f"hf-reward:{encoder_rm}")
    assert not plain.uses_chat_template
    assert plain.tokenizer.decode(plain.token_ids(PROMPTS[:1], RESPONSES[:1])[0]) == \
        "[CLS] instruction : name a color. response : blue. [SEP]"


def test_eos_as_pad_still_reads_the_last_real_token(decoder_rm):
    rm = RewardScorer.load(f"hf-reward:{decoder_rm}").to("cpu", "fp32")
    rm.tokenizer.pad_token = rm.tokenizer.sep_token  # the template ends every turn with [SEP]
    batched = rm.score_pairs(PROMPTS, RESPONSES)
    alone = np.array([rm.score_pairs([p], [r])[0] for p, r in zip(PROMPTS, RESPONSES)])
    assert np.allclose(batched, alone, atol=1e-5)


def test_fingerprint_follows_the_weights(decoder_rm, tmp_path):
    from transformers import AutoModelForSequenceClassification

    a = RewardScorer.load(f"hf-reward:{decoder_rm}")
    assert a.fingerprint() == RewardScorer.load(f"hf-reward:{decoder_rm}").fingerprint()
    model = AutoModelForSequenceClassification.from_pretrained(decoder_rm)
    with torch.no_grad():
        model.score.weight.mul_(2)
    other = _save(model, a.tokenizer, tmp_path / "changed")
    assert RewardScorer.load(f"hf-reward:{other}").fingerprint() != a.fingerprint()


def test_a_classifier_with_several_outputs_is_a_user_error(tmp_path):
    from transformers import AutoModelForSequenceClassification, BertConfig

    tok = _tokenizer()
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                     num_attention_heads=2, num_labels=3)
    path = _save(AutoModelForSequenceClassification.from_config(cfg), tok, tmp_path / "three")
    with pytest.raises(CarSelectError, match="a reward model has one output; this one has 3"):
        Scorer.load(f"hf-reward:{path}")
    with pytest.raises(CarSelectError, match="cannot load a sequence-classification model"):
        Scorer.load(f"hf-reward:{tmp_path / 'missing'}")


def test_select_scores_with_the_reward_model_and_embeds_with_minilm(decoder_rm, tmp_path):
    from test_pipeline import make_records

    records = make_records(40)
    config = Config(scorer=f"hf-reward:{decoder_rm}", cache_dir=str(tmp_path / "cache"), n1=5, precision="fp32")
    sel = select(records, config)
    assert sel.encoder_passes == 2
    rm = RewardScorer.load(f"hf-reward:{decoder_rm}").to("cpu", "fp32")
    want = rm.score_pairs([render_prompt(r.instruction, r.input) for r in records], [r.output for r in records])
    assert np.allclose(sel.scores, want, atol=1e-5)
    minilm = select(records, Config(cache_dir=str(tmp_path / "cache2"), n1=5, precision="fp32"))
    assert np.array_equal(sel.clusters, minilm.clusters)  # the same all-MiniLM-L6-v2 embedding clusters
    again = select(records, config)
    assert again.cache_hits == 40 and again.indices.tolist() == sel.indices.tolist()


def test_cli_run_and_eval_scorer_on_a_real_alpaca_slice(decoder_rm, tmp_path):
    from cli_runs import run_cli

    records = json.loads(shared_file("stanford-alpaca-52k", "alpaca_data.json").read_text())[:120]
    src = tmp_path / "slice.json"
    src.write_text(json.dumps(records))
    out = tmp_path / "out.json"
    res = run_cli("run", src, "-o", out, "--scorer", f"hf-reward:{decoder_rm}", "--budget", 20, "--json",
                  "--cache-dir", tmp_path / "cache")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["selected"] == 20 == len(json.loads(out.read_text())) and s["encoder_passes"] == 2
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": r["instruction"], "chosen": r["output"], "rejected": "No."}) + "\n"
                             for r in records[:30]))
    res = run_cli("eval-scorer", "--test", pairs, "--scorer", f"hf-reward:{decoder_rm}", "--json")
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)
    result = result.get("validation", {}).get("pairs.jsonl", result)  # the figures of the one test file
    assert result["n_pairs"] == 30 and 0.0 <= result["pairwise_accuracy"] <= 1.0
