"""Shipped rubrics and a user's prompt file: placeholders filled, braces elsewhere left alone."""

import pytest

from car_select.errors import CarSelectError
from car_select.judge.prompts import RUBRICS, load_prompt, parse_scale, rubric_for


def test_shipped_rubrics_fill_every_placeholder():
    for rubric in RUBRICS.values():
        text = rubric.fill("Add 2 and 3.", "", "5")
        assert "Instruction: Add 2 and 3." in text and "Response: 5" in text and "Input: (none)" in text
        assert "{" not in text
        assert rubric.scale == (0.0, 5.0)


def test_prompt_file_keeps_other_braces(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text('Reply as JSON {"score": N}.\nQ: {instruction} {input}\nA: {response}\n{unknown}')
    rubric = load_prompt(path, parse_scale("1,10"))
    text = rubric.fill("Say {hi}", "x", "{hi}")
    assert text == 'Reply as JSON {"score": N}.\nQ: Say {hi} x\nA: {hi}\n{unknown}'
    assert rubric.scale == (1.0, 10.0)


@pytest.mark.parametrize("content, message", [
    ("Rate: {instruction}", "no {response} placeholder"),
    ("Rate: {response}", "no {instruction} placeholder"),
])
def test_bad_prompt_files(tmp_path, content, message):
    path = tmp_path / "p.txt"
    path.write_text(content)
    with pytest.raises(CarSelectError, match=message.replace("{", r"\{").replace("}", r"\}")):
        load_prompt(path)


def test_missing_prompt_file_and_bad_scale(tmp_path):
    with pytest.raises(CarSelectError, match="no such file"):
        rubric_for(None, str(tmp_path / "absent.txt"))
    with pytest.raises(CarSelectError, match="LOW must be below HIGH"):
        parse_scale("5,1")
    with pytest.raises(CarSelectError, match="two numbers"):
        parse_scale("five")
