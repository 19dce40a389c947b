"""The shipped scorers on real data, through the CLI: the default keeps the figures its card records
(validation) and the bar on data it was neither trained nor chosen on; car-paper keeps the paper
recipe's figures and its retrain command (docs/scorer.md) reproduces it byte for byte."""

import json
import os
import re
import shlex
import subprocess
import sys

import pytest
from datapaths import REPO, shared_file

CAR = ("car-expert-revised", "expert-revised")


def eval_scorer(*args: str) -> dict:
    res = subprocess.run([sys.executable, "-m", "car_select", "eval-scorer", *args, "--json"],
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def stored_card(name: str) -> dict:
    from car_select.scoring.scorer import NAMED_SCORERS

    return json.loads((NAMED_SCORERS[name] / "config.json").read_text())["card"]


def test_default_scorer_keeps_its_validation_figures():
    """Recomputed with today's code, the validation figures match the card shipped with the scorer
    (a pair or two may move with the CPU's bf16 batch layout)."""
    valid = shared_file(*CAR, "APE_score_valid.csv")
    autoj = shared_file("preference-dev", "valid_autoj_human.jsonl")
    lima = shared_file("lima-1k", "lima.json")
    card = stored_card("default")
    new_code = shared_file("code-alpaca", "new_codealpaca.json")
    got = eval_scorer("--test", str(valid), "--test", str(autoj), "--robustness", str(lima), "--robustness",
                      str(new_code), "--max-records", "150")
    for name in ("APE_score_valid.csv", "valid_autoj_human.jsonl"):
        assert got["validation"][name]["n_pairs"] == card["validation"][name]["n_pairs"]
        assert abs(got["validation"][name]["pairwise_accuracy"] - card["validation"][name]["pairwise_accuracy"]) < 0.006
    robust, expected = got["robustness"]["lima.json"], card["robustness"]["lima.json"]
    assert robust["n_pairs"] == expected["n_pairs"]
    assert abs(robust["accuracy"] - expected["accuracy"]) < 0.006
    # The Code Alpaca suite the text statistics, the off_topic weight and the training kinds were chosen
    # on (experiments/order_stat_variants.py, off_topic_weight_variants.py, new_kind_variants.py,
    # spelling_kind_variants.py; not in the card, whose suites are the retrain command's): README 0.9159
    # over 18 kinds, shuffled words 0.9521, another record's answer 0.8067, misspellings 0.9021, dropped
    # punctuation 0.9932, whitespace padding and capitals 1.0
    code = got["robustness"]["new_codealpaca.json"]["per_kind"]
    # 0.903 since the suite gained role_marker_leaked (the default scores it 0.82 on LIMA) and the head
    # was retrained, same recipe, on batch-invariant features
    assert got["robustness"]["new_codealpaca.json"]["accuracy"] >= 0.895, code
    # off_topic 0.78 after the retrain on batch-invariant features (0.8067 before; 150 pairs)
    assert code["shuffle_words"]["accuracy"] >= 0.94 and code["off_topic"]["accuracy"] >= 0.77, code
    assert code["whitespace_pad"]["accuracy"] >= 0.99 and code["all_caps"]["accuracy"] >= 0.99, code
    # typos 0.8811 after the retrain (0.9021 before)
    assert code["typos"]["accuracy"] >= 0.87 and code["punctuation_dropped"]["accuracy"] >= 0.98, code


def test_default_scorer_keeps_its_held_out_figures():
    """Data it was neither trained nor chosen on: the CaR test split, and corruptions (eval-pool
    wordings, never seen in training) of Code Alpaca and GPTeacher answers. The floors sit a point
    under what README reports (CaR test 0.8898; the 11 first kinds: Code Alpaca 0.9551, worst
    another record's answer 0.7767, shuffled words 0.9621; GPTeacher 0.9921, worst 0.9533; whitespace
    padding and capitals 1.0 on both; misspellings 0.885 and 1.0, dropped punctuation 0.9735 and 1.0).
    They guard against regressions; they are not the issue's bar (0.92 on CaR test, 0.95 overall
    and 0.85 per kind on corruptions), which GPTeacher's first 11 kinds meet today and the CaR test
    split, Code Alpaca's off_topic, the answer with another appended (0.54 and 0.55) and lowercased
    code (0.14) do not."""
    test = shared_file(*CAR, "APE_score_test.csv")
    code = shared_file("code-alpaca", "code_alpaca_2k.json")
    teacher = shared_file("gpteacher", "roleplay-simple-deduped-roleplay-dataset.json")
    got = eval_scorer("--test", str(test), "--robustness", str(code), "--robustness", str(teacher))
    car = got["validation"]["APE_score_test.csv"]
    assert car["n_pairs"] == 254 and car["pairwise_accuracy"] >= 0.879
    assert car["pairwise_accuracy"] > car["length_baseline_accuracy"] + 0.1
    first_kinds = ("repeat", "filler_append", "filler_prepend", "truncate", "off_topic", "off_topic_padded",
                   "degenerate", "echo_instruction", "refusal", "shuffle_words", "empty")
    floors = {"code_alpaca_2k.json": (0.945, 0.765), "roleplay-simple-deduped-roleplay-dataset.json": (0.98, 0.943)}
    for name, (overall, worst) in floors.items():
        robust = got["robustness"][name]
        kinds = robust["per_kind"]
        first = sum(kinds[k]["accuracy"] * kinds[k]["n_pairs"] for k in first_kinds) / sum(
            kinds[k]["n_pairs"] for k in first_kinds)
        assert first >= overall and min(kinds[k]["accuracy"] for k in first_kinds) >= worst, (name, kinds)
        assert kinds["whitespace_pad"]["accuracy"] >= 0.99 and kinds["all_caps"]["accuracy"] >= 0.99, (name, kinds)
        assert kinds["typos"]["accuracy"] >= 0.87 and kinds["punctuation_dropped"]["accuracy"] >= 0.96, (name, kinds)
        assert robust["accuracy"] > robust["length_baseline"] + 0.3, (name, robust)
    assert got["robustness"]["code_alpaca_2k.json"]["per_kind"]["shuffle_words"]["accuracy"] >= 0.95
    # The harder kind, asked for by name: the answer to the most similar other request (0.64 before the
    # retrain on batch-invariant features, 0.6267 after: 4 of 300 pairs)
    similar = eval_scorer("--robustness", str(code), "--kinds", "off_topic_similar")["robustness"]["code_alpaca_2k.json"]
    assert similar["n_pairs"] == 300 and similar["accuracy"] >= 0.62 and similar["accuracy"] > similar["length_baseline"] + 0.09


def test_car_paper_scorer_accuracy_on_the_test_split():
    test = shared_file(*CAR, "APE_score_test.csv")
    result = eval_scorer("--test", str(test), "--scorer", "car-paper")["validation"]["APE_score_test.csv"]
    assert result["n_pairs"] == 254
    assert abs(result["length_baseline_accuracy"] - 0.74) < 0.01  # the documented "longer wins" level
    assert result["pairwise_accuracy"] >= 0.935  # 0.9370 since the batch-invariant features (0.9409 before); the paper's IQS: 0.8425
    assert result["length_controlled_accuracy"] > 0.8  # not a length detector


def test_shipped_scorers_are_small_pickle_free_and_carry_a_card():
    from car_select.scoring.scorer import NAMED_SCORERS

    for name, path in NAMED_SCORERS.items():
        files = {p.name: p.stat().st_size for p in path.iterdir()}
        assert set(files) == {"config.json", "head.safetensors"}, name
        assert sum(files.values()) <= 20 * 1024 * 1024
        config = json.loads((path / "config.json").read_text())
        assert config["encoder"] == "all-MiniLM-L6-v2" and not config["encoder_trained"]
        card = config["card"]
        assert card["trained_on"] and card["validation"] and card["robustness"] and card["length_spearman"], name


def test_the_retrain_command_reproduces_the_car_paper_head_byte_for_byte(tmp_path):
    """Run the car-paper retrain command of docs/scorer.md (with the throughput knobs set away from their defaults:
    training features use a fixed batch layout, so they must not matter) and compare the weights."""
    from car_select.scoring.scorer import NAMED_SCORERS

    shared_file(*CAR, "APE_score_train.csv")
    try:
        flags = set(open("/proc/cpuinfo").read().split())
    except OSError:
        flags = set()
    if "avx512_bf16" not in flags or "amx_bf16" in flags:
        # bf16 results are exact only for the same kernels: oneDNN's AVX512-BF16 ones trained it; with
        # AMX the rounding differs, and without native bf16 --precision auto trains on fp32 features.
        pytest.skip("the shipped head was trained with AVX512-BF16 kernels (no AMX); this CPU differs")
    block = re.search(r"```bash\n(car-select train-scorer --recipe car-paper [^`]*?)\n```",
                      (REPO / "docs" / "scorer.md").read_text())
    assert block, "docs/scorer.md lost its car-paper reproduce command"
    args = shlex.split(block.group(1).replace("\\\n", " "))
    args = [str(REPO / a) if a.startswith("../shared/") else a for a in args]
    args[args.index("-o") + 1] = str(tmp_path / "my-scorer")
    env = {**os.environ, "CAR_SELECT_ENCODE_WORKERS": "2", "CAR_SELECT_CPU_BATCH_TOKENS": "2048"}
    res = subprocess.run([sys.executable, "-m", "car_select", *args[1:], "-q", "--no-cache"], capture_output=True,
                         text=True, timeout=1200, env=env)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "my-scorer" / "head.safetensors").read_bytes() == \
        (NAMED_SCORERS["car-paper"] / "head.safetensors").read_bytes()
