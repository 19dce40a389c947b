"""Broken turns (issue 34): an empty reply or a leaked role marker flags its record, which a run drops
with its own reason unless keep_broken_turns keeps it eligible."""

import numpy as np
import pytest

from car_select import Config, Record, select
from car_select.selection.turn_checks import exchange_problem, role_marker, turn_flags


def test_empty_and_whitespace_replies_are_broken_in_any_exchange():
    record = Record(instruction="and then?", output="The end.", history=(("start a story", " \n\t"), ("go on", "ok")))
    assert turn_flags(record) == [{"exchange": 0, "why": "empty reply"}]
    assert turn_flags(Record(instruction="q", output="")) == [{"exchange": 0, "why": "empty reply"}]
    assert turn_flags(Record(instruction="q", output="a fine answer")) == []


@pytest.mark.parametrize("reply, marker", [
    ("Paris is the capital.\n\nHuman: Uh, and of Spain?", "Human:"),
    ("Human: Uh... I don't know", "Human:"),
    ("Sure.\nUser: thanks", "User:"),
    ("Here it is.\n### Response: more", "### Response"),
    ("It is 4.<|im_end|>", "<|im_end|>"),
    ("[INST] tell me more [/INST]", "[INST]"),
])
def test_a_role_marker_at_a_line_start_is_found(reply, marker):
    assert role_marker("What is the capital of France?", reply) == marker
    assert exchange_problem("What is the capital of France?", reply) == f"role marker {marker!r} in the reply"


def test_markers_inside_a_line_or_asked_for_are_not_flagged():
    request = "Explain how login works."
    assert role_marker(request, "The user: a person who logs in. The assistant: a program.") is None
    assert role_marker(request, "Each user types a password.\nThe server checks it.") is None
    # a request for dialogue may be answered with speaker lines, and one naming the role too
    assert role_marker("Write a dialogue between a customer and a clerk", "User: hi\nAssistant: hello") is None
    assert role_marker("Show what a user might type", "User: reset my password") is None
    # template tokens are leaks whatever was asked
    assert role_marker("Write a conversation", "A: hi <|im_start|>") == "<|im_start|>"


def _conversations(n):
    topics = ["cooking pasta", "python lists", "the french revolution", "photosynthesis", "saving money"]
    return [Record(instruction=f"And what else about {topics[i % 5]}? ({i})",
                   output=f"More about {topics[i % 5]}: it matters. " * (1 + i % 4),
                   history=((f"Tell me about {topics[i % 5]} ({i})", f"Here is a fact about {topics[i % 5]}. " * 3),))
            for i in range(n)]


@pytest.fixture
def config(random_head_scorer_dir, tmp_path):
    return Config(scorer=random_head_scorer_dir, cache_dir=str(tmp_path / "cache"), n1=10, n2=1, precision="fp32",
                  language_sample=0, compare_seeds=0)


def test_broken_conversations_are_dropped_with_their_own_reason_and_flag(config):
    records = _conversations(40)
    broken = {3: "", 11: "Sure.\n\nHuman: Uh, what?", 25: "   "}
    for i, last in broken.items():
        records[i] = Record(instruction=records[i].instruction, output=last, history=records[i].history)
    sel = select(records, config.replace(fraction=0.5))
    assert len(sel.indices) == 20
    assert not set(broken) & set(sel.indices.tolist())
    rows = list(sel.annotations())
    for i in broken:
        assert rows[i]["reason"] == "broken_turn" and not rows[i]["selected"]
        assert rows[i]["flags"][0]["exchange"] == 1
    assert rows[11]["flags"] == [{"exchange": 1, "why": "role marker 'Human:' in the reply"}]
    assert all("flags" not in rows[i] for i in range(40) if i not in broken)
    assert sel.summary()["broken_turns_dropped"] == 3


def test_keep_broken_turns_keeps_them_eligible_and_flagged(config):
    records = _conversations(40)
    records[3] = Record(instruction=records[3].instruction, output="", history=records[3].history)
    kept = select(records, config.replace(fraction=0.5, keep_broken_turns=True))
    dropped = select(records, config.replace(fraction=0.5))
    rows = list(kept.annotations())
    assert rows[3]["flags"] == [{"exchange": 1, "why": "empty reply"}] and rows[3]["reason"] != "broken_turn"
    assert kept.summary()["broken_turns_kept_eligible"] == 1
    # the same scores; only eligibility differs
    assert np.array_equal(kept.scores, dropped.scores)
    assert (kept.eligible, dropped.eligible) == (40, 39)


def test_nothing_left_to_select_is_one_line_error(config):
    from car_select.errors import CarSelectError

    records = [Record(instruction=f"q{i}", output="") for i in range(10)]
    with pytest.raises(CarSelectError, match="every one of the 10 distinct records has a broken exchange"):
        select(records, config.replace(n1=2))
