"""Languages (detection, the scorer's languages, the warning) and the run manifest."""

import hashlib
import json

import numpy as np
import pytest

from car_select import Config, Record, api, select
from car_select.errors import CarSelectError, CarSelectWarning
from car_select.languages import detect, language_summary, scorer_languages
from car_select.manifest import input_sha256
from test_pipeline import make_records

ZH = ["请介绍一下机器学习的基本概念和常见算法。", "今天天气很好，我们去公园散步吧。", "如何提高中文写作水平？请给出具体建议。",
      "解释一下光合作用的过程以及它对地球生命的重要性。"]


def zh_records(n):
    return [Record(instruction=f"{ZH[i % 4]}（第{i}题）", output=f"{ZH[(i + 1) % 4]}这是第{i}个回答，内容详细而且清楚。")
            for i in range(n)]


@pytest.fixture(scope="module")
def config(random_head_scorer_dir, tmp_path_factory):
    return Config(scorer=random_head_scorer_dir, cache_dir=str(tmp_path_factory.mktemp("cache")), n1=5,
                  precision="fp32")


def test_detect():
    assert detect(["The quick brown fox jumps over the lazy dog near the river bank.", ZH[0],
                   "Bonjour, je voudrais réserver une table pour deux personnes ce soir.", "  "]) == ["en", "zh", "fr", "und"]


def test_scorer_languages(random_head_scorer_dir, tmp_path):
    assert scorer_languages(None) == ["en"]  # the shipped scorer: all-MiniLM-L6-v2, English training data
    assert scorer_languages(random_head_scorer_dir) == ["en"]
    assert scorer_languages("hf-reward:/some/model") is None and scorer_languages(None, "rating") is None
    d = tmp_path / "zh-scorer"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"format": "car-select-scorer", "encoder": "x", "languages": ["zh"]}))
    assert scorer_languages(str(d)) == ["zh"]


def test_language_summary_samples_and_warns():
    records = zh_records(30) + make_records(10)
    unique, dup = np.arange(40), np.full(40, -1)
    out, per_record = language_summary(records, unique, dup, None, 0, ["en"])
    assert out["counts"] == {"zh": 30, "en": 10} and out["detected"] == out["of"] == 40
    assert "30 of 40 records (75%) are not in the scorer's languages (en; most common other: zh)" in out["warning"]
    assert per_record == ["zh"] * 30 + ["en"] * 10
    out, per_record = language_summary(records, unique, dup, 8, 0, ["en"])
    assert out["detected"] == 8 and sum(out["counts"].values()) == 8 and per_record is None
    out, _ = language_summary(records, unique, dup, None, 0, None)
    assert out["warning"] is None  # a scorer of unknown languages: counts only
    out, _ = language_summary(records[25:], np.arange(15), np.full(15, -1), None, 0, ["en"])
    assert out["warning"] is None  # 5 of 15 in Chinese: not most


def test_select_warns_on_data_outside_the_scorers_languages(config):
    with pytest.warns(CarSelectWarning, match="not in the scorer's languages"):
        sel = select(zh_records(40), config.replace(language_sample=None))
    s = sel.summary()
    assert s["languages"]["counts"] == {"zh": 40} and any("languages" in w for w in s["warnings"])
    assert {r["language"] for r in sel.annotations()} == {"zh"}
    sel = select(make_records(40), config.replace(language_sample=0))
    assert sel.languages is None and "language" not in next(sel.annotations())
    with pytest.raises(CarSelectError, match="language_sample"):
        config.replace(language_sample=-1).validate()


def test_duplicates_get_their_copys_language(config):
    records = make_records(30)
    sel = select(records + [records[2]], config.replace(language_sample=None))
    rows = list(sel.annotations())
    assert rows[30]["language"] == rows[2]["language"] == "en"


def test_run_writes_the_manifest_beside_the_annotated_file(config, tmp_path):
    src = tmp_path / "in.json"
    src.write_text(json.dumps([{"instruction": r.instruction, "input": r.input, "output": r.output}
                               for r in make_records(40)]))
    ann, report = tmp_path / "ann.jsonl", tmp_path / "r.html"
    result = api.run(str(src), config.replace(budget=12), output=str(tmp_path / "o.json"), annotated=str(ann),
                     report=str(report))
    m = json.loads((tmp_path / "ann.jsonl.manifest.json").read_text())
    assert m == result.summary()["manifest"]
    assert m["format"] == "car-select-manifest" and m["car_select_version"]
    assert m["input"] == {"path": str(src), "sha256": hashlib.sha256(src.read_bytes()).hexdigest(), "records": 40}
    assert m["seed"] == 42 and m["config"]["budget"] == 12 and m["config"]["scorer"] == config.scorer
    assert set(m["config"]) == set(Config.field_names())
    assert m["scorer"]["fingerprint"] and m["embedder"]["name"] == "all-MiniLM-L6-v2" and m["embedder"]["fingerprint"]
    chosen = result.selection.indices.tolist()
    assert m["selected"] == {"count": 12, "indices_sha256": hashlib.sha256(json.dumps(chosen).encode()).hexdigest()}
    rows = [json.loads(line) for line in ann.read_text().splitlines()]
    assert len(rows) == 40 and all("index" in r for r in rows)  # the rows stay one per record
    html = report.read_text()
    assert "<h2>Run manifest</h2>" in html and m["input"]["sha256"] in html and "<h2>Languages</h2>" in html
    # a second run with the same settings selects the same records (the manifest's claim)
    again = api.run(str(src), config.replace(budget=12))
    assert again.selection.indices.tolist() == chosen


def test_input_sha256_of_a_folder(tmp_path):
    (tmp_path / "a").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_text("y")
    first = input_sha256(tmp_path)
    (tmp_path / "sub" / "b").write_text("z")
    assert first and input_sha256(tmp_path) != first and input_sha256("hf://owner/name") is None


def test_detection_needs_enough_text_and_confidence():
    """Issue 33: "pcm" in English sets, "vo" in a Chinese one, "uz" for a one-line file: short or unsure
    texts are "und" (undetermined) instead of the detector's best guess."""
    from car_select.languages import MIN_CHARS, MIN_CONFIDENCE, _classify

    short = "Hi there"
    assert len(short) < MIN_CHARS and detect([short]) == ["und"]
    # long enough, but the detector spreads its probability: no language is reported for it
    unsure = "ok ok 123 456 789 ok ok 123 456 789"
    code, probability = _classify(unsure)
    assert probability < MIN_CONFIDENCE and detect([unsure]) == ["und"]
    assert detect(["Name three primary colors and explain how they mix into secondary colors."]) == ["en"]


def test_undetermined_records_never_warn_about_the_scorers_languages():
    records = [Record("Hi", "Hello!")] * 3 + [Record(ZH[0], ZH[1])]
    out, _ = language_summary(records, np.arange(4), np.full(4, -1), None, 0, ["en"])
    assert out["counts"] == {"und": 3, "zh": 1} and out["warning"] is None
    out, _ = language_summary(records[3:], np.arange(1), np.full(1, -1), None, 0, ["en"])
    assert out["warning"].startswith("1 of 1 record (100%) is not in the scorer's languages")


def test_annotated_languages_for_every_record_or_for_none():
    """language_sample None detects every record and annotates each; a sample annotates none, even when the
    input is smaller than the sample (so a row's keys do not depend on the input's size)."""
    records = make_records(12)
    _, per_record = language_summary(records, np.arange(12), np.full(12, -1), 500, 0, ["en"])
    assert per_record is None
    _, per_record = language_summary(records, np.arange(12), np.full(12, -1), None, 0, ["en"])
    assert len(per_record) == 12
