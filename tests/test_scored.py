"""What was scored (issue 33 item 4): texts per record, the aggregation, system prompts, the scorer's token
window and how many texts filled it; in the summary, --json, the manifest and the report."""

import json
import math
import warnings

import numpy as np
import pytest

from car_select import Config, Record, api, select
from car_select.errors import CarSelectWarning
from car_select.scored import describe, describe_lines, scorer_window
from car_select.scoring.scorer import DEFAULT_SCORER_DIR
from test_pipeline import make_records


@pytest.fixture(scope="module")
def config(random_head_scorer_dir, tmp_path_factory):
    return Config(scorer=random_head_scorer_dir, cache_dir=str(tmp_path_factory.mktemp("cache")), n1=5,
                  precision="fp32", compare_seeds=2)


def test_the_window_is_read_from_the_scorers_config():
    saved = json.loads((DEFAULT_SCORER_DIR / "config.json").read_text())
    tokens, tail = saved["max_length"], saved["head"]["tail_tokens"]
    assert scorer_window(Config()) == {"tokens": tokens, "head": tokens - tail, "tail": tail}
    assert scorer_window(Config(scorer="hf-reward:some/model")) is None


def test_conversations_are_described_per_exchange_with_their_system_prompts():
    records = [Record("q", "a"), Record("and then?", "the end", history=(("start", "once"), ("go on", "so"))),
               Record("hi", "hello", system="You are terse.")]
    d = describe(records, Config(turn_aggregate="min"), {"tokens": 256, "head": 192, "tail": 64}, 1, "sharegpt")
    assert (d["records"], d["texts"], d["multi_turn_records"], d["system_prompts_not_scored"]) == (3, 5, 1, 1)
    assert d["turn_aggregate"] == "min" and d["schema"] == "sharegpt"
    text = dict(describe_lines(d))
    assert text["scored"].startswith("5 texts from 3 distinct records (schema sharegpt): one per exchange")
    assert 'aggregated by turn_aggregate "min"' in text["scored"] and "1 system prompt not scored" in text["scored"]
    assert "first 192 and last 64" in text["window"] and "1 text filled it" in text["window"]
    single = describe([Record("q", "a")], Config(), None, None, "alpaca")
    assert describe_lines(single) == [("scored", "1 text, one per distinct record (schema alpaca)")]


def test_a_text_longer_than_the_window_is_counted_and_said(config, tmp_path):
    """A 15 MB record is scored on 256 tokens; the run says so (here a few thousand words do)."""
    records = make_records(20)
    records[4] = Record("Summarise this.", " ".join(f"word{i}" for i in range(3000)))
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"instruction": r.instruction, "input": r.input, "output": r.output}) + "\n"
                           for r in records))
    result = api.run(str(src), config, annotated=str(tmp_path / "ann.jsonl"))
    scored = result.summary()["scored"]
    assert scored["texts_cut"] == 1 and scored["schema"] == "alpaca" and scored["texts"] == 20
    assert scored["window"] == scorer_window(config)
    manifest = json.loads((tmp_path / "ann.jsonl.manifest.json").read_text())
    assert manifest["scored"] == scored
    from car_select.cli.run import format_summary

    text = format_summary(result.summary())
    assert "1 text filled it" in text and "(schema alpaca)" in text


def test_a_one_record_run_says_nothing_it_cannot_know(config):
    """One short record: no language is judged (so no warning), and no similarity is claimed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CarSelectWarning)
        sel = select([Record("Say hi.", "Hi!")], config)
    assert caught and not any("scorer's languages" in str(w.message) for w in caught)  # it warns of other things
    s = sel.summary()
    assert s["languages"]["counts"] == {"und": 1} and s["languages"]["warning"] is None
    assert math.isnan(s["against_random"]["selected"]["facility_location"])
    from car_select.cli.run import format_summary

    line = next(x for x in format_summary(s).splitlines() if "similarity to nearest kept" in x)
    assert "n/a" in line and "0.0000" not in line
