"""The shipped scorer on the real CaR expert-revised test split (254 pairs), through the CLI."""

import json
import os
import re
import shlex
import subprocess
import sys

import pytest
from datapaths import REPO, shared_file


def test_shipped_scorer_accuracy_on_the_test_split():
    test = shared_file("car-expert-revised", "expert-revised", "APE_score_test.csv")
    res = subprocess.run([sys.executable, "-m", "car_select", "eval-scorer", "--test", str(test), "--json"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)
    assert result["n_pairs"] == 254
    assert abs(result["length_baseline_accuracy"] - 0.74) < 0.01  # the documented "longer wins" level
    assert result["pairwise_accuracy"] >= 0.94  # the bar (paper's IQS: 0.8425)
    assert result["length_controlled_accuracy"] > 0.8  # not a length detector


def test_shipped_scorer_files_are_small_and_pickle_free():
    from car_select.scoring.scorer import DEFAULT_SCORER_DIR

    files = {p.name: p.stat().st_size for p in DEFAULT_SCORER_DIR.iterdir()}
    assert set(files) == {"config.json", "head.safetensors"}
    assert sum(files.values()) <= 20 * 1024 * 1024
    config = json.loads((DEFAULT_SCORER_DIR / "config.json").read_text())
    assert config["encoder"] == "all-MiniLM-L6-v2" and not config["encoder_trained"]


def test_the_readme_command_reproduces_the_shipped_head_byte_for_byte(tmp_path):
    """Run the README's reproduce command (with the throughput knobs set away from their defaults:
    training features use a fixed batch layout, so they must not matter) and compare the weights."""
    from car_select.scoring.scorer import DEFAULT_SCORER_DIR

    shared_file("car-expert-revised", "expert-revised", "APE_score_train.csv")
    try:
        flags = set(open("/proc/cpuinfo").read().split())
    except OSError:
        flags = set()
    if "avx512_bf16" not in flags or "amx_bf16" in flags:
        # bf16 results are exact only for the same kernels: oneDNN's AVX512-BF16 ones trained it; with
        # AMX the rounding differs, and without native bf16 --precision auto trains on fp32 features.
        pytest.skip("the shipped head was trained with AVX512-BF16 kernels (no AMX); this CPU differs")
    block = re.search(r"```bash\n(car-select train-scorer --seed 42 [^`]*?)\ncar-select eval-scorer",
                      (REPO / "README.md").read_text())
    assert block, "README lost its reproduce command"
    args = shlex.split(block.group(1).replace("\\\n", " "))
    args = [str(REPO / a) if a.startswith("../shared/") else a for a in args]
    args[args.index("-o") + 1] = str(tmp_path / "my-scorer")
    env = {**os.environ, "CAR_SELECT_ENCODE_WORKERS": "2", "CAR_SELECT_CPU_BATCH_TOKENS": "2048"}
    res = subprocess.run([sys.executable, "-m", "car_select", *args[1:], "-q"], capture_output=True, text=True,
                         timeout=1200, env=env)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "my-scorer" / "head.safetensors").read_bytes() == (DEFAULT_SCORER_DIR / "head.safetensors").read_bytes()
