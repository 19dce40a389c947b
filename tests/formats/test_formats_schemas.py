"""Schemas: detection, normalisation of conversations, the `fields` mapping."""

from __future__ import annotations

import json

import pytest

from car_select.errors import CarSelectError
from car_select.formats import SCHEMAS, parse_fields, read_dataset, write_subset
from car_select.records import Record


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_schemas_constant():
    assert SCHEMAS == ("alpaca", "alpaca-history", "sharegpt", "messages", "turns")


def test_alpaca_history(tmp_path, assert_same):
    rows = [
        {"instruction": "q2", "input": "", "output": "a2", "history": [["q0", "a0"], ["q1", "a1"]], "system": "sys"},
        {"instruction": "q", "output": "a", "history": []},
        {"instruction": "x", "output": "y"},  # history is optional per record
    ]
    src = tmp_path / "h.json"
    src.write_text(json.dumps(rows), encoding="utf-8")
    ds = read_dataset(src)
    assert ds.schema == "alpaca-history"
    assert ds.records[0] == Record("q2", "a2", history=(("q0", "a0"), ("q1", "a1")), system="sys")
    assert ds.records[1] == Record("q", "a") and ds.records[2] == Record("x", "y")
    write_subset(ds, [0, 2], tmp_path / "o.json")
    assert_same(json.loads((tmp_path / "o.json").read_text()), [rows[0], rows[2]])


def test_history_detected_beyond_first_record(tmp_path):
    rows = [{"instruction": "a", "output": "b"}, {"instruction": "c", "output": "d", "history": [["e", "f"]]}]
    ds = read_dataset(write_jsonl(tmp_path / "h.jsonl", rows))
    assert ds.schema == "alpaca-history" and ds.records[1].history == (("e", "f"),)


def test_sharegpt(tmp_path, assert_same):
    rows = [
        {
            "id": "c1",
            "conversations": [
                {"from": "system", "value": "be brief"},
                {"from": "human", "value": "hi"},
                {"from": "gpt", "value": "hello"},
                {"from": "human", "value": "2+2?"},
                {"from": "human", "value": "quick"},  # same role twice: joined
                {"from": "gpt", "value": "4"},
                {"from": "human", "value": "thanks"},  # trailing user message: dropped
            ],
        },
        {"conversations": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]},
        {"conversations": [{"from": "gpt", "value": "greeting"}, {"from": "human", "value": "u"}, {"from": "gpt", "value": "a"}]},
        {"conversations": [{"from": "human", "value": "never answered"}]},
        {"system": "top", "conversations": [{"from": "system", "value": "inner"}, {"from": "user", "value": "u"}, {"from": "assistant", "value": "a"}]},
    ]
    ds = read_dataset(write_jsonl(tmp_path / "s.jsonl", rows))
    assert ds.schema == "sharegpt" and len(ds.records) == len(rows)
    assert ds.records[0] == Record("2+2?\nquick", "4", history=(("hi", "hello"),), system="be brief")
    assert ds.records[1] == Record("u", "a")
    assert ds.records[2] == Record("u", "a")  # assistant messages before the first user message are dropped
    assert ds.records[3] == Record("never answered", "")  # kept, with an empty (low-scoring) output
    assert ds.records[4] == Record("u", "a", system="top\ninner")
    write_subset(ds, [4, 0], tmp_path / "o.jsonl")
    got = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text(encoding="utf-8").splitlines()]
    assert_same(got, [rows[4], rows[0]])


def test_openai_messages(tmp_path):
    rows = [
        {
            "messages": [
                {"role": "developer", "content": "rules"},
                {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "x"}}]},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
                {"role": "tool", "content": "42"},
                {"role": "assistant", "content": "It is 42."},
            ]
        }
    ]
    ds = read_dataset(write_jsonl(tmp_path / "m.jsonl", rows))
    assert ds.schema == "messages"
    assert ds.records[0] == Record("42", "It is 42.", history=(("look", ""),), system="rules")


def test_turns_mtbench_style(tmp_path, assert_same):
    rows = [
        {"task": "GR", "id": 1, "history": [{"user": "u1", "bot": "b1"}, {"user": "u2", "bot": "b2"}]},
        {"task": "SI", "id": 2, "history": [{"user": "only", "bot": "turn"}]},
    ]
    ds = read_dataset(write_jsonl(tmp_path / "t.jsonl", rows))
    assert ds.schema == "turns"
    assert ds.records[0] == Record("u2", "b2", history=(("u1", "b1"),))
    assert ds.records[1] == Record("only", "turn")
    write_subset(ds, [1], tmp_path / "o.jsonl")
    assert_same(json.loads((tmp_path / "o.jsonl").read_text()), rows[1])


def test_schema_override(tmp_path):
    rows = [{"instruction": "q", "output": "a", "history": [["u", "b"]]}]
    src = write_jsonl(tmp_path / "x.jsonl", rows)
    ds = read_dataset(src, schema="alpaca")
    assert ds.schema == "alpaca" and ds.records[0].history == (("u", "b"),)
    with pytest.raises(CarSelectError, match=r'record 0: missing field "conversations"'):
        read_dataset(src, schema="sharegpt")
    with pytest.raises(CarSelectError, match="unknown schema 'chatml'"):
        read_dataset(src, schema="chatml")


def test_fields_mapping(tmp_path, assert_same):
    rows = [{"prompt": "p0", "context": "c0", "response": "r0", "id": 0}, {"prompt": "p1", "response": "r1", "id": 1}]
    src = write_jsonl(tmp_path / "f.jsonl", rows)
    fields = parse_fields("instruction=prompt, output=response,input=context")
    ds = read_dataset(src, fields=fields)
    assert ds.schema == "alpaca"
    assert ds.records == [Record("p0", "r0", input="c0"), Record("p1", "r1")]
    write_subset(ds, [1, 0], tmp_path / "o.jsonl")  # written back with the user's own names
    assert_same([json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()], [rows[1], rows[0]])


def test_fields_mapping_conversations_and_csv(tmp_path):
    rows = [{"dialog": [{"from": "human", "value": "u"}, {"from": "gpt", "value": "a"}]}]
    ds = read_dataset(write_jsonl(tmp_path / "c.jsonl", rows), fields={"conversations": "dialog"})
    assert ds.schema == "sharegpt" and ds.records == [Record("u", "a")]
    csv_src = tmp_path / "c.csv"
    csv_src.write_text("question,answer\nq,a\n", encoding="utf-8")
    ds = read_dataset(csv_src, fields={"instruction": "question", "output": "answer"})
    assert ds.records == [Record("q", "a")]


def test_fields_mapping_missing_column_names_the_users_name(tmp_path):
    src = write_jsonl(tmp_path / "f.jsonl", [{"prompt": "p", "answer": "a"}])
    with pytest.raises(CarSelectError) as err:
        read_dataset(src, fields={"instruction": "prompt", "output": "response"})
    assert str(err.value).startswith(f'{src}: line 1, record 0: missing field "response" (the record has: prompt, answer;')


def test_csv_history_as_json_text(tmp_path):
    src = tmp_path / "h.csv"
    src.write_text('instruction,output,history\nq,a,"[[""u"", ""b""]]"\nx,y,\n', encoding="utf-8")
    ds = read_dataset(src)
    assert ds.schema == "alpaca-history"
    assert ds.records == [Record("q", "a", history=(("u", "b"),)), Record("x", "y")]


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("instruction=prompt,output=response", {"instruction": "prompt", "output": "response"}),
        (" input = context ", {"input": "context"}),
        ("conversations=dialog,", {"conversations": "dialog"}),
        ("", {}),
    ],
)
def test_parse_fields(spec, expected):
    assert parse_fields(spec) == expected


@pytest.mark.parametrize(
    "spec, message",
    [
        ("instruction", "expected NAME=COLUMN"),
        ("instruction=", "expected NAME=COLUMN"),
        ("=prompt", "expected NAME=COLUMN"),
        ("question=prompt", "unknown field 'question'"),
        ("output=a,output=b", "mapped twice"),
    ],
)
def test_parse_fields_errors(spec, message):
    with pytest.raises(CarSelectError, match=message) as err:
        parse_fields(spec)
    assert "\n" not in str(err.value)


def test_bad_fields_dict(tmp_path):
    src = write_jsonl(tmp_path / "f.jsonl", [{"instruction": "q", "output": "a"}])
    with pytest.raises(CarSelectError, match="unknown field 'answer'"):
        read_dataset(src, fields={"answer": "output"})
