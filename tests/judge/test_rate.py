"""Rating through a real chat-completions server on 127.0.0.1 (tests/judge_server.py): every record
rated as the server said, through 429s, 5xx, timeouts and garbage; a second run sends nothing."""

import json
import sqlite3
import warnings

import numpy as np
import pytest

from car_select.errors import CarSelectError, CarSelectWarning
from car_select.formats import read_dataset
from car_select.judge.cache import RatingsCache
from car_select.judge.client import ChatClient
from car_select.judge.prompts import RUBRICS
from car_select.judge.rate import rate_dataset, sample_indices
from car_select.records import Record
from judge_server import rating_of

MARKERS = ["[429]", "[503]", "[slow]", "[garbage]", "[notjson]"]


def write_records(path, outputs, history=None):
    rows = [{"instruction": f"Question {i}?", "input": "", "output": out} for i, out in enumerate(outputs)]
    if history:
        for i, turns in history.items():
            rows[i]["history"] = turns
    path.write_text(json.dumps(rows))
    return path


def client_for(server, **kw):
    return ChatClient(server.url, "judge", timeout=kw.pop("timeout", 0.5), backoff=0.01, **kw)


def rate(tmp_path, data, server, out="rated.jsonl", **kw):
    dataset = read_dataset(str(data))
    client = client_for(server)
    try:
        return rate_dataset(dataset, RUBRICS["accuracy"], client, output=str(tmp_path / out),
                            cache_dir=tmp_path / "cache", concurrency=4, **kw)
    finally:
        client.close()


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_record_rated_as_the_server_said_and_a_rerun_sends_nothing(tmp_path, judge_server):
    outputs = [f"answer number {i} " + "x" * i for i in range(20)] + [f"tricky {m} reply" for m in MARKERS]
    data = write_records(tmp_path / "data.json", outputs)
    result = rate(tmp_path, data, judge_server)
    rows = read_jsonl(tmp_path / "rated.jsonl")
    assert [r["output"] for r in rows] == outputs
    assert [r["rating"] for r in rows] == [float(rating_of(o)) for o in outputs]
    assert result.unrated == 0 and result.requests == sum(judge_server.received.values())
    assert all(judge_server.answered[o] == 1 for o in outputs)  # each rating received once
    for marker in MARKERS:  # each misbehaved once, then was asked again
        assert judge_server.received[f"tricky {marker} reply"] == 2
    # every reply received counts its tokens: one per text, and the garbage one (the late and the
    # not-JSON replies carry none the client saw)
    assert result.tokens == 15 * (len(outputs) + 1)
    sent = sum(judge_server.received.values())
    again = rate(tmp_path, data, judge_server, out="again.jsonl")
    assert sum(judge_server.received.values()) == sent and again.requests == 0
    assert again.cached == len(outputs)
    assert (tmp_path / "again.jsonl").read_bytes() == (tmp_path / "rated.jsonl").read_bytes()


def test_unparsable_reply_is_counted_and_left_out_never_zero(tmp_path, judge_server):
    outputs = ["fine answer", "[never] a rating", "another fine one"]
    data = write_records(tmp_path / "data.json", outputs)
    with pytest.warns(CarSelectWarning, match="1 of 3 records unrated"):
        result = rate(tmp_path, data, judge_server, parse_retries=2)
    assert judge_server.received["[never] a rating"] == 3  # asked, then asked twice more
    assert result.unparsable == 1 and result.unrated == 1
    rows = read_jsonl(tmp_path / "rated.jsonl")
    assert [r["output"] for r in rows] == ["fine answer", "another fine one"]
    with sqlite3.connect(tmp_path / "cache" / "ratings.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 2  # the failure is not cached


def test_conversation_rated_per_exchange_as_the_scorer_sees_it(tmp_path, judge_server):
    data = write_records(tmp_path / "data.json", ["last answer!", "single"],
                         history={0: [["first question", "first answer"]]})
    rate(tmp_path, data, judge_server)
    rows = read_jsonl(tmp_path / "rated.jsonl")
    assert rows[0]["rating"] == pytest.approx((rating_of("first answer") + rating_of("last answer!")) / 2)
    assert judge_server.answered["first answer"] == 1 and judge_server.answered["last answer!"] == 1


def test_requests_that_keep_failing_are_counted(tmp_path, judge_server):
    data = write_records(tmp_path / "data.json", ["good", "[gate] held past the timeout"])
    dataset = read_dataset(str(data))
    client = ChatClient(judge_server.url, "judge", timeout=0.2, backoff=0.01, max_retries=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = rate_dataset(dataset, RUBRICS["accuracy"], client, output=str(tmp_path / "o.jsonl"),
                              cache_dir=tmp_path / "cache")
    judge_server.gate.set()
    assert result.failed == 1 and result.unrated == 1
    assert any("timed out after 2 tries" in str(w.message) for w in caught)
    assert [r["output"] for r in read_jsonl(tmp_path / "o.jsonl")] == ["good"]


def test_endpoint_refusals_stop_the_run_and_write_nothing(tmp_path, judge_server):
    data = write_records(tmp_path / "data.json", ["a", "b"])
    dataset = read_dataset(str(data))
    client = ChatClient(judge_server.url, "no-such-model", backoff=0.01)
    with pytest.raises(CarSelectError, match="HTTP 404 for model 'no-such-model'"):
        rate_dataset(dataset, RUBRICS["accuracy"], client, output=str(tmp_path / "o.jsonl"),
                     cache_dir=tmp_path / "cache")
    assert not (tmp_path / "o.jsonl").exists()


def test_existing_field_is_refused(tmp_path, judge_server):
    data = tmp_path / "data.json"
    data.write_text(json.dumps([{"instruction": "q", "output": "a", "rating": 3}]))
    with pytest.raises(CarSelectError, match='record 0 already has a field "rating"'):
        rate(tmp_path, data, judge_server)
    assert sum(judge_server.received.values()) == 0


def test_cache_survives_reopening(tmp_path):
    cache = RatingsCache.in_folder(tmp_path)
    cache.put("k1", 4.5, "4.5", 12, "m")
    cache.close()
    again = RatingsCache.in_folder(tmp_path)
    assert again.get("k1") == 4.5 and again.get("k2") is None and again.get_many(["k1", "k2"]) == {"k1": 4.5}


def test_sample_is_seeded_and_spread_over_topics():
    topics = {"cook pasta sauce recipe kitchen": 60, "python code function bug compile": 30,
              "planet star orbit telescope galaxy": 10}
    records = [Record(words, f"answer {i}") for words, n in topics.items() for i in range(n)]
    picked = sample_indices(records, 20, seed=3)
    assert len(picked) == 20 and len(set(picked.tolist())) == 20
    assert np.array_equal(picked, sample_indices(records, 20, seed=3))
    counts = [int(((picked >= lo) & (picked < lo + n)).sum())
              for lo, n in zip((0, 60, 90), topics.values())]
    assert counts == [12, 6, 2]  # each topic by its share
    assert not np.array_equal(picked, sample_indices(records, 20, seed=4))
    assert np.array_equal(sample_indices(records, 500), np.arange(100))
