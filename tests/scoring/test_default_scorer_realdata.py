"""The shipped scorer on the real CaR expert-revised test split (254 pairs), through the CLI."""

import json
import subprocess
import sys

from datapaths import shared_file


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
