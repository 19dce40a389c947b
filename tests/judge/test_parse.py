"""A judge's reply -> a number, or None: never a silent 0."""

import pytest

from car_select.judge.parse import parse_rating


@pytest.mark.parametrize("reply, scale, expected", [
    ("4", (0, 5), 4.0),
    ("4.5\nThe answer is accurate.", (0, 5), 4.5),
    ("Score: 3/5. It misses a step.", (0, 5), 3.0),
    ("I compared the two. Rating: [[8]]", (1, 10), 8.0),
    ("**2**\nToo short.", (0, 5), 2.0),
    ("<think>maybe 1, maybe 5</think>\nScore: 2", (0, 5), 2.0),
    ("The response deserves a 5.", (0, 5), 5.0),
    ("Score: 7", (0, 5), None),  # outside the rubric's scale
    ("I cannot rate this.", (0, 5), None),
    ("Between 2 and 4, I think.", (0, 5), None),  # several unlabelled numbers: unclear
    ("", (0, 5), None),
    (None, None, None),
    ("Score: 12.5", None, 12.5),  # a user's prompt without a scale: any number
])
def test_parse_rating(reply, scale, expected):
    assert parse_rating(reply, scale) == expected
