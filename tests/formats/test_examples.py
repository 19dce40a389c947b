"""Target and test example files (formats/examples.py): records, or prompts alone, in any input format."""

import json

import pytest

from car_select.errors import SettingError
from car_select.formats.examples import read_examples


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_evaluation_set_layouts_are_prompts(tmp_path):
    rows = [
        {"id": 1, "prompt": "Koala style"},
        {"question_id": 2, "text": "Vicuna style", "category": "generic"},
        {"idx": 3, "Instruction": "WizardLM style"},
        {"question_id": 4, "turns": ["MT-Bench first", "MT-Bench second"]},
        {"conversations": "LIMA test style"},
        {"instruction": "Self-Instruct style", "instances": [{"input": "its input", "output": "x"}]},
    ]
    examples = read_examples(write_jsonl(tmp_path / "eval.jsonl", rows), "decontaminate")
    assert [ex.where for ex in examples] == [f"line {i}" for i in range(1, 7)]
    assert [ex.prompts[0] for ex in examples] == ["Koala style", "Vicuna style", "WizardLM style", "MT-Bench first",
                                                  "LIMA test style", "Self-Instruct style"]
    assert examples[3].prompts == ("MT-Bench first", "MT-Bench second")
    assert examples[3].record.history == (("MT-Bench first", ""),) and examples[3].record.output == ""
    assert examples[5].record.input == "its input" and "Self-Instruct style\nits input" in examples[5].prompts


def test_full_records_and_bare_strings(tmp_path):
    records = tmp_path / "targets.json"
    records.write_text(json.dumps([{"instruction": "Sort a list", "input": "", "output": "sorted(xs)"},
                                   {"conversations": [{"from": "human", "value": "hi"},
                                                      {"from": "gpt", "value": "hello"}]}], indent=1))
    examples = read_examples(str(records), "targets")
    assert examples[0].record.output == "sorted(xs)" and examples[1].record.instruction == "hi"
    assert [ex.where for ex in examples] == ["line 2", "line 7"]  # where each record starts
    strings = tmp_path / "prompts.json"
    strings.write_text(json.dumps(["first prompt", "second prompt"]))
    assert [ex.prompts for ex in read_examples(str(strings), "targets")] == [("first prompt",), ("second prompt",)]


def test_csv_prompts(tmp_path):
    path = tmp_path / "eval.csv"
    path.write_text("id,question\n1,What is CaR?\n2,Why cluster?\n")
    assert [(ex.prompts[0], ex.where) for ex in read_examples(str(path), "targets")] == [
        ("What is CaR?", "line 2"), ("Why cluster?", "line 3")]


@pytest.mark.parametrize("content, message", [
    ("", "decontaminate {path}: no examples (the file is empty)"),
    ("[]", "decontaminate {path}: no examples (the file is empty)"),
    ('{"id": 1, "answer": "x"}\n', 'decontaminate {path}: line 1, record 0: no prompt or record field (the record '
                                   'has: "id", "answer"; expected instruction, prompt, question, text, turns, '
                                   'conversations or messages)'),
    ('{"prompt": "ok"}\n{"prompt": 3}\n', 'decontaminate {path}: line 2, record 1: field "prompt" must be a non-empty '
                                          'string, got int'),
    ("{not json\n", "decontaminate {path}: line 1: invalid JSON at column 2"),
])
def test_bad_files_are_one_line_setting_errors(tmp_path, content, message):
    path = tmp_path / "eval.jsonl"
    path.write_text(content)
    with pytest.raises(SettingError) as info:
        read_examples(str(path), "decontaminate")
    assert str(info.value).startswith(message.format(path=path))
    assert info.value.fields == ("decontaminate",)
    assert "\n" not in str(info.value)


def test_a_missing_file_names_it(tmp_path):
    with pytest.raises(SettingError, match=r"^targets .*absent\.jsonl: file not found$"):
        read_examples(str(tmp_path / "absent.jsonl"), "targets")
