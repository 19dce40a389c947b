import json

import pytest

from car_select.errors import CarSelectError
from car_select.training.evaluate import evaluate_pairs, pairwise_accuracy
from car_select.training.pairs import read_pairs

FOUR_PAIRS = '''src,score
"Instruction: A. Response: short",0
"Instruction: A. Response: a much longer better answer",1
"Instruction: B. Response: long original answer here",0
"Instruction: B. Response: tight",1
"Instruction: C. Response: x",1
"Instruction: C. Response: yy",0
"Instruction: D. Response: same",0
"Instruction: D2. Response: same but revised",1
'''


def test_metric_on_a_hand_made_four_pair_file(tmp_path):
    f = tmp_path / "four.csv"
    f.write_text(FOUR_PAIRS)
    pairs = read_pairs(f)
    assert [p.prompt for p in pairs] == ["Instruction: A.", "Instruction: B.", "Instruction: C.", "Instruction: D2."]
    assert pairs[2].chosen == "x" and pairs[2].rejected == "yy"  # rows may come (1, 0)
    assert pairs[3].rejected_prompt == "Instruction: D."  # the experts also revised the instruction
    # a scorer right on pairs 0 and 1, wrong on 2, tied on 3 -> (1 + 1 + 0 + 0.5) / 4
    result = evaluate_pairs(pairs, [0.9, 0.8, 0.1, 0.5], [0.1, 0.2, 0.7, 0.5])
    assert result.pairwise_accuracy == pytest.approx(0.625)
    # longer wins: pair 0 (revised longer) right, 1 wrong, 2 wrong, 3 right -> 0.5
    assert result.length_baseline_accuracy == pytest.approx(0.5)
    # revised not longer: pairs 1 and 2 -> (1 + 0) / 2
    assert result.n_length_controlled == 2
    assert result.length_controlled_accuracy == pytest.approx(0.5)


def test_tie_counts_half():
    assert pairwise_accuracy([1, 1], [1, 0]) == 0.75


def test_pairs_csv_and_jsonl(tmp_path):
    csv_file = tmp_path / "p.csv"
    csv_file.write_text('src,pos,neg\n"Instruction: Q ","Response: good","Response: bad"\n')
    (p,) = read_pairs(csv_file)
    assert (p.prompt, p.chosen, p.rejected) == ("Instruction: Q", "good", "bad")
    assert p.chosen_text == "Instruction: Q Response: good"
    jl = tmp_path / "p.jsonl"
    jl.write_text(json.dumps({"prompt": "Q", "input": "ctx", "chosen": "good", "rejected": "bad"}) + "\n")
    (q,) = read_pairs(jl)
    assert q.chosen_text == "Instruction: Q Input: ctx Response: good"


@pytest.mark.parametrize("content,name,message", [
    ('src,score\n"Instruction: A. Response: a",0\n"Instruction: A. Response: b",0\n', "s.csv", "line 3"),
    ('src,score\n"Instruction: A. Response: a",0\n', "odd.csv", "odd number of rows"),
    ('src,score\n"Instruction: A. Response: a",zero\n"Instruction: A. Response: b",1\n', "t.csv", 'field "score"'),
    ('src,score\n"no template here",0\n"nor here",1\n', "u.csv", "line 3"),
    ('foo,bar\n1,2\n', "h.csv", "unknown header"),
    ('{"prompt": "Q", "chosen": "a"}\n', "m.jsonl", 'line 1: missing field "rejected"'),
    ('{"prompt": "Q", "chosen": 1, "rejected": "b"}\n', "w.jsonl", 'field "chosen" must be a string'),
    ('{"prompt": \n', "bad.jsonl", "line 1: malformed JSON"),
])
def test_malformed_rows_name_the_file_and_line(tmp_path, content, name, message):
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(CarSelectError) as e:
        read_pairs(f)
    assert str(f) in str(e.value) and message in str(e.value)
    assert "\n" not in str(e.value)
