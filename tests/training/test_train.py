import json
import subprocess
import sys

import numpy as np
import pytest

from car_select.errors import CarSelectError
from car_select.training.evaluate import score_pairs
from car_select.training.pairs import PreferencePair
from car_select.training.train import RECIPES, TrainSettings, train_scorer


def synthetic_pairs(n: int, seed: int) -> list[PreferencePair]:
    """Better answers are on-topic and complete; worse ones are curt. Learnable by any encoder."""
    rng = np.random.default_rng(seed)
    topics = ["rivers", "bread", "stars", "trains", "music", "chess", "gardens", "bees"]
    out = []
    for i in range(n):
        t = topics[int(rng.integers(len(topics)))]
        out.append(PreferencePair(f"Instruction: Tell me about {t}.",
                                  f"{t.capitalize()} are fascinating; here are three clear facts about {t}.",
                                  "no."))
    return out


@pytest.mark.parametrize("recipe,objective", [("default", "pairwise"), ("car-paper", "regression"),
                                              ("car-paper", "triplet")])
def test_training_learns_and_is_deterministic(tiny_encoder_dir, recipe, objective):
    train, valid = synthetic_pairs(24, 0), synthetic_pairs(8, 1)
    settings = TrainSettings(**{**RECIPES[recipe], **dict(
        objective=objective, encoder=tiny_encoder_dir, hidden_sizes=[16], epochs=6, lr_head=3e-3, batch_pairs=8,
        triplet_dim=8, max_length=32, precision="fp32", seed=5, members=1)})
    a = train_scorer(train, valid, settings, quiet=True)
    b = train_scorer(train, valid, settings, quiet=True)
    assert a.valid["valid"].pairwise_accuracy >= 0.75
    assert a.best_epochs == [max(range(len(a.history)), key=lambda e: (a.history[e]["valid_criterion"], -e)) + 1]
    sa, sb = score_pairs(a.scorer, valid), score_pairs(b.scorer, valid)
    assert np.array_equal(sa[0], sb[0]) and np.array_equal(sa[1], sb[1])


def test_members_are_averaged_and_round_trip(tiny_encoder_dir, tmp_path):
    from car_select.scoring.scorer import Scorer

    train, valid = synthetic_pairs(24, 0), synthetic_pairs(8, 1)
    settings = TrainSettings(**{**RECIPES["car-paper"], **dict(
        encoder=tiny_encoder_dir, hidden_sizes=[16], epochs=3, members=3, max_length=32, precision="fp32", seed=1)})
    result = train_scorer(train, valid, settings, quiet=True)
    head = result.scorer.model.head
    assert len(head.members) == 3 and len(result.best_epochs) == 3
    import torch

    x = torch.randn(4, head.config.num_layers, head.config.hidden_size)
    assert torch.allclose(head(x), torch.stack([m(x) for m in head.members]).mean(0))
    result.scorer.save(tmp_path / "s")
    again = Scorer.load(tmp_path / "s")
    assert np.array_equal(score_pairs(again, valid)[0], score_pairs(result.scorer, valid)[0])


def test_training_the_encoder_follows_the_paper_schedule(tiny_encoder_dir):
    train, valid = synthetic_pairs(16, 2), synthetic_pairs(4, 3)
    settings = TrainSettings(encoder=tiny_encoder_dir, objective="regression", hidden_sizes=[16], epochs=2,
                             batch_pairs=4, train_encoder=True, lr_encoder=1e-3, max_length=32, precision="fp32", members=1)
    result = train_scorer(train, valid, settings, quiet=True)
    model = result.scorer.model
    assert model.train_encoder
    from transformers import AutoModel

    base = AutoModel.from_pretrained(tiny_encoder_dir)
    tuned = model.encoder
    # embeddings stay frozen (paper); the top layer has moved
    assert np.allclose(base.embeddings.word_embeddings.weight.detach(), tuned.embeddings.word_embeddings.weight.detach())
    assert not np.allclose(base.encoder.layer[-1].output.dense.weight.detach(),
                           tuned.encoder.layer[-1].output.dense.weight.detach())


def test_train_and_eval_cli_round_trip(tmp_path, tiny_encoder_dir):
    train, valid = tmp_path / "train.jsonl", tmp_path / "valid.jsonl"
    for path, pairs in ((train, synthetic_pairs(20, 4)), (valid, synthetic_pairs(6, 5))):
        path.write_text("".join(json.dumps({"prompt": p.prompt.removeprefix("Instruction: "), "chosen": p.chosen,
                                            "rejected": p.rejected}) + "\n" for p in pairs))
    out = tmp_path / "scorer"
    cmd = [sys.executable, "-m", "car_select"]
    res = subprocess.run(cmd + ["train-scorer", "--train", str(train), "--valid", str(valid), "-o", str(out),
                                "--encoder", tiny_encoder_dir, "--epochs", "3", "--hidden-sizes", "16",
                                "--max-length", "32", "-q"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "head.safetensors"]
    # without --tail-tokens the window keeps a quarter of --max-length as its tail
    assert json.loads((out / "config.json").read_text())["head"]["tail_tokens"] == 8
    res = subprocess.run(cmd + ["eval-scorer", "--test", str(valid), "--scorer", str(out), "--json"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)["validation"]["valid.jsonl"]
    assert {"pairwise_accuracy", "length_baseline_accuracy", "length_controlled_accuracy", "n_pairs"} <= set(result)
    assert result["n_pairs"] == 6


def test_scorer_card_round_trip(tmp_path, tiny_encoder_dir):
    """train-scorer stores the card; eval-scorer prints it back unchanged, and --save-card replaces it
    with freshly computed figures (robustness per kind included)."""
    train, valid = tmp_path / "train.jsonl", tmp_path / "valid.jsonl"
    for path, pairs in ((train, synthetic_pairs(20, 4)), (valid, synthetic_pairs(6, 5))):
        path.write_text("".join(json.dumps({"prompt": p.prompt.removeprefix("Instruction: "), "chosen": p.chosen,
                                            "rejected": p.rejected}) + "\n" for p in pairs))
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps([{"instruction": f"Tell me about {t}.", "input": "",
                                    "output": f"{t.capitalize()} are fascinating, and here are three clear facts about {t}."}
                                   for t in ("rivers", "bread", "stars", "trains", "music")]))
    out = tmp_path / "scorer"
    cmd = [sys.executable, "-m", "car_select"]
    res = subprocess.run(cmd + ["train-scorer", "--train", str(train), "--valid", str(valid), "--valid-robustness",
                                str(answers), "--negatives-from", str(answers), "-o", str(out), "--encoder",
                                tiny_encoder_dir, "--epochs", "2", "--hidden-sizes", "16", "--max-length", "32",
                                "--members", "1", "--no-cache", "-q"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    card = json.loads((out / "config.json").read_text())["card"]
    assert card["trained_on"][:1] == ["train.jsonl"] and "answers.json" in card["trained_on"][1]
    assert card["validation"]["valid.jsonl"]["n_pairs"] == 6
    robust = card["robustness"]["answers.json"]
    assert robust["n_pairs"] == sum(k["n_pairs"] for k in robust["per_kind"].values()) > 5 * 5
    res = subprocess.run(cmd + ["eval-scorer", "--scorer", str(out), "--json"], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == card
    res = subprocess.run(cmd + ["eval-scorer", "--scorer", str(out), "--robustness", str(answers), "--kinds",
                                "repeat,empty", "--save-card", "--json"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    saved = json.loads((out / "config.json").read_text())["card"]
    assert saved == json.loads(res.stdout) and saved["trained_on"] == card["trained_on"]
    assert set(saved["robustness"]["answers.json"]["per_kind"]) == {"repeat", "empty"}
    assert saved["validation"] == card["validation"]  # merged: figures not recomputed are kept
    res = subprocess.run(cmd + ["eval-scorer", "--scorer", str(out), "--kinds", "typo", "--robustness", str(answers)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "typo" in res.stderr


def test_training_data_names_each_pairs_source(tmp_path):
    from car_select.training.corruptions import CorruptedPair
    from car_select.training.data import training_data

    def write(name, pairs):
        path = tmp_path / name
        path.write_text("".join(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}) + "\n"
                                for p in pairs))
        return str(path)

    a, b = write("a.jsonl", synthetic_pairs(6, 0)), write("b.jsonl", synthetic_pairs(9, 1))
    data = training_data([a, b], [a], max_train_pairs=4, seed=3)
    assert len(data.sources) == len(data.train)
    assert data.sources[:8] == ["a.jsonl"] * 4 + ["b.jsonl"] * 4  # at most 4 per file, in file order
    negatives = data.train[8:]
    assert negatives and all(isinstance(p, CorruptedPair) for p in negatives)
    assert set(data.sources[8:]) == {"negatives"} and not any(isinstance(p, CorruptedPair) for p in data.train[:8])
    assert list(data.valid) == ["a.jsonl"] and len(data.valid["a.jsonl"]) == 6
    assert data.trained_on[-1].startswith("corruption negatives")
    plain = training_data([a], [a], negatives_per_answer=0)
    assert plain.sources == ["a.jsonl"] * 6 and plain.trained_on == ["a.jsonl"]


def test_training_negatives_draw_from_the_training_kinds_and_validation_suites_from_the_diagnostics(tmp_path):
    from car_select.training.corruptions import COPY_KINDS, KINDS, SUITE_KINDS, TRAINING_KINDS
    from car_select.training.data import training_data

    pairs = tmp_path / "p.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"Instruction: Describe topic {i} of list {i % 7}.",
                                         "chosen": f"Topic {i} (see List {i % 7}) is about Item {i}, and its long history.",
                                         "rejected": "No."}) + "\n" for i in range(240)))
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps([{"instruction": f"Explain idea {i}.", "input": "",
                                    "output": f"Idea {i} (from Book {i}) means that Things work in several distinct ways."}
                                   for i in range(20)]))
    data = training_data([str(pairs)], [str(pairs)], robustness_paths=[str(answers)])
    assert {p.kind for p in data.train[240:]} == set(TRAINING_KINDS)  # off_topic_similar included
    assert set(KINDS) - set(TRAINING_KINDS) == {"prompt_words_stuffed", "lowercased", *COPY_KINDS}
    assert "off_topic_similar" in TRAINING_KINDS
    # answers without an input: of the copy kinds only the leaked role marker applies
    suite_kinds = set(SUITE_KINDS) - {"input_pasted", "input_pasted_extended", "summary_longer"}
    assert {p.kind for p in data.valid["robustness:answers.json"]} == suite_kinds
    copies = training_data([str(pairs)], [str(pairs)], extra_negative_kinds=COPY_KINDS)
    assert copies.train[:len(data.train)] == data.train  # the second draw leaves the first as it was
    assert {p.kind for p in copies.train[len(data.train):]} == {"role_marker_leaked"}
    old = training_data([str(pairs)], [str(pairs)], negative_kinds=SUITE_KINDS)
    assert {p.kind for p in old.train[240:]} == suite_kinds


def test_training_data_gives_each_pair_its_files_weight(tmp_path):
    from car_select.errors import CarSelectError
    from car_select.training.data import training_data

    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for path, pairs in ((a, synthetic_pairs(3, 0)), (b, synthetic_pairs(5, 1))):
        path.write_text("".join(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}) + "\n"
                                for p in pairs))
    data = training_data([str(a), str(b)], [str(a)], train_weights=[2, 0.25])
    assert data.weights == [{"a.jsonl": 2, "b.jsonl": 0.25, "negatives": 1}[s] for s in data.sources]
    assert data.weights[:8] == [2] * 3 + [0.25] * 5 and data.weights[8:] and set(data.weights[8:]) == {1}
    assert data.trained_on[:2] == ["a.jsonl (weight 2)", "b.jsonl (weight 0.25)"]
    assert training_data([str(a)], [str(a)]).weights is None
    for bad in ([1], [1, 0]):
        with pytest.raises(CarSelectError, match="weight"):
            training_data([str(a), str(b)], [str(a)], train_weights=bad)


def test_off_topic_negatives_weigh_what_they_are_given(tmp_path):
    from car_select.errors import CarSelectError
    from car_select.training.data import training_data

    pairs = tmp_path / "p.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"Instruction: Describe topic {i} of list {i % 7}.",
                                         "chosen": f"Topic {i} is about item {i} and its long history in list {i % 7}.",
                                         "rejected": "No."}) + "\n" for i in range(120)))
    data = training_data([str(pairs)], [str(pairs)], train_weights=[0.5], off_topic_weight=3)
    kinds = [getattr(p, "kind", None) for p in data.train]
    assert "off_topic" in kinds and "off_topic_similar" in kinds
    assert data.weights == [0.5 if k is None else 3 if k == "off_topic" else 1 for k in kinds]
    assert data.trained_on[-1].endswith("(off_topic ones at weight 3)")
    plain = training_data([str(pairs)], [str(pairs)])
    assert plain.weights is None and [p.rejected for p in plain.train] == [p.rejected for p in data.train]
    with pytest.raises(CarSelectError, match="off_topic"):
        training_data([str(pairs)], [str(pairs)], off_topic_weight=0)


def test_pair_weights_decide_between_files_that_disagree(tiny_encoder_dir):
    # File "x" says the on-topic answer is better, file "y" the curt one: the heavier file wins.
    x = synthetic_pairs(24, 0)
    y = [PreferencePair(p.prompt, p.rejected, p.chosen) for p in synthetic_pairs(24, 2)]
    settings = TrainSettings(encoder=tiny_encoder_dir, hidden_sizes=[16], epochs=6, lr_head=3e-3, batch_pairs=8,
                             max_length=32, precision="fp32", seed=5, members=1, negatives_per_answer=0)
    valid = synthetic_pairs(8, 1)
    for wx, wy, x_wins in ((8.0, 0.25, True), (0.25, 8.0, False)):
        result = train_scorer(x + y, valid, settings, quiet=True, pair_weights=[wx] * 24 + [wy] * 24)
        chosen, rejected = score_pairs(result.scorer, valid)
        assert bool(np.mean(chosen > rejected) > 0.5) == x_wins
    from car_select.errors import CarSelectError

    with pytest.raises(CarSelectError, match="pair weights"):
        train_scorer(x, valid, settings, quiet=True, pair_weights=[1.0])


@pytest.mark.parametrize("weights,message", [(["--train-weights", "1,x"], "comma-separated numbers"),
                                             (["--train-weights", "1,2"], "2 training weights"),
                                             (["--off-topic-weight", "0"], "off_topic negatives' weight")])
def test_weight_flags_refuse_bad_values_in_one_line(tmp_path, weights, message):
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}) + "\n"
                             for p in synthetic_pairs(4, 0)))
    res = subprocess.run([sys.executable, "-m", "car_select", "train-scorer", "--train", str(train), "--valid",
                          str(train), *weights, "-o", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and message in res.stderr
    assert not (tmp_path / "out").exists()


def test_tail_tokens_need_a_multi_view_head_and_are_never_negative():
    with pytest.raises(CarSelectError, match="tail_tokens"):
        TrainSettings(tail_tokens=-1).validate()
    with pytest.raises(CarSelectError, match="multi-view"):
        TrainSettings(**{**RECIPES["car-paper"], "tail_tokens": 64}).validate()
    assert TrainSettings().validate().tail_tokens == 64 and RECIPES["car-paper"]["tail_tokens"] == 0
    # the tail may take at most half the window (more would crowd out the text's start, or overflow it)
    assert TrainSettings(max_length=128, tail_tokens=64).validate().tail_tokens == 64
    with pytest.raises(CarSelectError, match="half of max_length"):
        TrainSettings(max_length=32, tail_tokens=64).validate()
