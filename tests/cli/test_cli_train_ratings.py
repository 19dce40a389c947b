"""`car-select train-scorer --ratings` as a user runs it: a scorer folder that works with --scorer
everywhere, and bad ratings files as one line, exit 2, nothing written."""

import json

import pytest

from cli_runs import one_line_error, run_cli

REFUSALS = ["I cannot help with that.", "No.", "I don't know."]


def rated_file(path, n=120, bad_value=None):
    rows = []
    for i in range(n):
        topic = f"topic {i % 9} case {i}"
        good = i % 2 == 1
        output = (f"Here is how {topic} works: the cause first, then an example, then the result, step by step."
                  if good else REFUSALS[i % 3])
        rows.append({"instruction": f"Explain {topic}.", "input": "", "output": output,
                     "judge": {"score": (4 + i % 3 * 0.5) if good else (1 + i % 4 * 0.5)}})
    if bad_value is not None:
        rows[3]["judge"]["score"] = bad_value
    path.write_text(json.dumps(rows))
    return path


def test_ratings_to_scorer_folder_that_scores_and_has_a_card(tmp_path):
    data = rated_file(tmp_path / "rated.json")
    scorer = tmp_path / "my-scorer"
    trained = run_cli("train-scorer", "--ratings", data, "--rating-field", "judge.score", "-o", scorer,
                      "--epochs", "3", "--members", "1", "--hidden-sizes", "32", "--cache-dir", tmp_path / "cache")
    assert trained.returncode == 0, trained.stderr
    assert "held out (" in trained.stdout and "default scorer" in trained.stdout
    config = json.loads((scorer / "config.json").read_text())
    assert config["training"]["rating_field"] == "judge.score" and config["training"]["loss"] in ("pairwise", "regression")
    scored = run_cli("score", data, "-o", tmp_path / "scored.json", "--scorer", scorer, "-q", "--score-column", "s",
                     "--cache-dir", tmp_path / "cache")
    assert scored.returncode == 0, scored.stderr
    rows = json.loads((tmp_path / "scored.json").read_text())
    good = [r["s"] for r in rows if r["judge"]["score"] >= 4]
    bad = [r["s"] for r in rows if r["judge"]["score"] < 4]
    assert min(good) > max(bad)


@pytest.mark.parametrize("case, expected", [
    ("missing_field", 'record 0: score field "rating" is missing'),
    ("not_a_number", 'record 3: score field "judge.score" is not a number'),
    ("with_pairs", "--ratings and --train are exclusive"),
])
def test_bad_ratings_are_one_line_exit_2_nothing_written(tmp_path, case, expected):
    data = rated_file(tmp_path / "rated.json", n=20, bad_value="great" if case == "not_a_number" else None)
    args = ["train-scorer", "--ratings", data, "-o", tmp_path / "out"]
    if case != "missing_field":
        args += ["--rating-field", "judge.score"]
    if case == "with_pairs":
        args += ["--train", data]
    line = one_line_error(run_cli(*args))
    assert expected in line, line
    assert not (tmp_path / "out").exists()


def test_no_negatives_trains_on_the_pairs_alone(tmp_path, monkeypatch):
    """--no-negatives reaches the pairs trainer as negatives_per_answer=0 (no corruption negatives)."""
    import car_select.training.train as train
    from car_select.cli import main

    seen = {}

    class Stop(Exception):
        pass

    def fake_train_from_files(output, train_paths, valid_paths, settings, **kw):
        seen["negatives_per_answer"] = settings.negatives_per_answer
        raise Stop

    monkeypatch.setattr(train, "train_from_files", fake_train_from_files)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n")
    for flags, expected in (([], 1), (["--no-negatives"], 0)):
        with pytest.raises(Stop):
            main(["train-scorer", "--train", str(pairs), "--valid", str(pairs), "-o", str(tmp_path / "o"), *flags])
        assert seen.pop("negatives_per_answer") == expected
