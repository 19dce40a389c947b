import json
import re

import numpy as np
import pytest

from car_select.errors import CarSelectError
from car_select.scoring.textstats import STAT_NAMES, text_stats
from car_select.training.corruptions import (COPY_KINDS, FILLERS, KINDS, REFUSALS, ROLE_MARKERS, SUITE_KINDS,
                                             build_suite, corrupt, prompt_input, similar_answers)
from car_select.training.evaluate import robustness_report

ITEMS = [
    ("Instruction: Name three primary colours.", "The three primary colours are red, yellow and blue."),
    ("Instruction: How do I boil an egg?",
     "Put the egg in boiling water for about nine minutes (Delia Smith says ten), then cool it in cold water "
     "before peeling it."),
    ("Instruction: Translate to French. Input: Good morning", "Bonjour, comment allez-vous ce matin ?"),
    ("Instruction: What is the capital of Japan?", "Tokyo is the capital of Japan and its largest city by far."),
]
PROMPT, ANSWER = ITEMS[1]
OTHERS = [a for _, a in ITEMS]


def words(text):
    return re.findall(r"\S+", text)


NEEDS_AN_INPUT = ("input_pasted", "input_pasted_extended", "summary_longer")


def test_every_kind_really_degrades_the_answer():
    for kind in KINDS:
        out = corrupt(PROMPT, ANSWER, kind, seed=3, others=OTHERS, similar=OTHERS[2:])
        if kind in NEEDS_AN_INPUT:  # the egg request has no input to paste
            assert out is None, kind
            continue
        assert out is not None and out != ANSWER, kind
    assert corrupt(PROMPT, ANSWER, "repeat", seed=3).count(ANSWER) in (2, 3)
    appended = corrupt(PROMPT, ANSWER, "filler_append", seed=3)
    assert appended.startswith(ANSWER) and any(f in appended for f in FILLERS["eval"])
    prepended = corrupt(PROMPT, ANSWER, "filler_prepend", seed=3)
    assert prepended.endswith(ANSWER) and any(f in prepended for f in FILLERS["eval"])
    cut = corrupt(PROMPT, ANSWER, "truncate", seed=3)
    assert ANSWER.startswith(cut) and len(words(cut)) < 0.65 * len(words(ANSWER))
    assert corrupt(PROMPT, ANSWER, "off_topic", seed=3, others=OTHERS) in OTHERS[:1] + OTHERS[2:]
    assert corrupt(PROMPT, ANSWER, "off_topic_similar", similar=[ANSWER, OTHERS[3], OTHERS[0]]) == OTHERS[3]
    padded = corrupt(PROMPT, ANSWER, "off_topic_padded", seed=3, others=OTHERS)
    assert any(padded.startswith(o) for o in OTHERS if o != ANSWER) and len(padded) > len(ANSWER) / 2
    loop = words(corrupt(PROMPT, ANSWER, "degenerate", seed=3))
    assert len(set(loop)) == 1 and len(loop) >= 20
    assert "How do I boil an egg?" in corrupt(PROMPT, ANSWER, "echo_instruction", seed=3)
    assert corrupt(PROMPT, ANSWER, "refusal", seed=3) in REFUSALS["eval"]
    shuffled = corrupt(PROMPT, ANSWER, "shuffle_words", seed=3)
    assert sorted(words(shuffled)) == sorted(words(ANSWER)) and shuffled != ANSWER
    assert corrupt(PROMPT, ANSWER, "empty", seed=3) == ""
    appended = corrupt(PROMPT, ANSWER, "off_topic_appended", seed=3, others=OTHERS)
    assert any(appended == f"{ANSWER}\n\n{o}" for o in OTHERS if o != ANSWER)
    stuffed = corrupt(PROMPT, ANSWER, "prompt_words_stuffed", seed=3)
    extra = words(stuffed[len(ANSWER):])
    assert stuffed.startswith(ANSWER) and len(extra) >= 40 and set(extra) <= {"How", "do", "I", "boil", "an", "egg?"}
    padded = corrupt(PROMPT, ANSWER, "whitespace_pad", seed=3)
    assert padded.strip() == ANSWER and len(padded) >= len(ANSWER) + 20
    assert corrupt(PROMPT, ANSWER, "all_caps", seed=3) == ANSWER.upper()
    misspelt = words(corrupt(PROMPT, ANSWER, "typos", seed=3))
    slips = [(a, b) for a, b in zip(misspelt, words(ANSWER)) if a != b]
    assert len(misspelt) == len(words(ANSWER)) and slips  # words keep their places, some are misspelt
    assert all(abs(len(a) - len(b)) <= 1 and (sorted(a) == sorted(b) or sum(x != y for x, y in zip(a, b)) <= 1
                                              or len(a) != len(b)) for a, b in slips)
    assert corrupt(PROMPT, ANSWER, "lowercased", seed=3) == ANSWER.lower()
    assert corrupt(PROMPT, ANSWER, "punctuation_dropped", seed=3) == re.sub(r"[(),.]", "", ANSWER)


def test_generators_are_deterministic_given_a_seed_and_vary_with_it():
    a = build_suite(ITEMS, seed=7)
    assert a == build_suite(ITEMS, seed=7)
    assert a != build_suite(ITEMS, seed=8)
    # a kind's output does not depend on which other kinds are asked for
    only = build_suite(ITEMS, ["truncate"], seed=7)
    assert only == [p for p in a if p.kind == "truncate"]


def test_train_and_eval_pools_share_no_wording():
    assert not set(FILLERS["train"]) & set(FILLERS["eval"])
    assert not set(REFUSALS["train"]) & set(REFUSALS["eval"])
    train = build_suite(ITEMS, ["filler_append", "refusal"], seed=1, pool="train")
    assert all(not any(f in p.rejected for f in FILLERS["eval"] + REFUSALS["eval"]) for p in train)


def test_kinds_that_do_not_apply_are_left_out():
    short = [("Instruction: Say hi.", "Hi!")]
    kinds = {p.kind for p in build_suite(short)}
    assert "truncate" not in kinds and "shuffle_words" not in kinds and "off_topic" not in kinds
    assert {"repeat", "refusal", "degenerate"} <= kinds
    # too few capitals, punctuation marks or words to spoil
    assert {"lowercased", "punctuation_dropped", "typos"}.isdisjoint(kinds)


def test_one_kind_per_item_spreads_over_the_kinds():
    items = (ITEMS + [(SUMMARY_PROMPT, SUMMARY)] * 3) * 50  # some with an input to paste and summarise
    suite = build_suite(items, seed=0, per_item=1, pool="train")
    assert len(suite) >= 0.75 * len(items)
    assert {p.kind for p in suite} == set(SUITE_KINDS)
    every = build_suite(items, KINDS, seed=0, per_item=1, pool="train")
    assert {p.kind for p in every} == set(KINDS)


def test_the_similar_request_kind_takes_the_answer_to_the_nearest_other_prompt():
    items = ITEMS + [
        ("Instruction: How do I poach an egg?", "Slide the egg into simmering water and cook it for three minutes."),
        ("Instruction: What is the capital of France?", "Paris is the capital of France."),
        ("Instruction: Name three primary colours.", "Red, yellow and blue."),  # same prompt: never a neighbour
    ]
    near = similar_answers(items)
    assert near[1][0] == items[4][1]  # boiling an egg -> poaching an egg
    assert near[3][0] == items[5][1]  # capital of Japan -> capital of France
    assert items[6][1] not in near[0] and items[0][1] not in near[6]
    assert all(a != items[i][1] for i, answers in enumerate(near) for a in answers)
    suite = build_suite(items, ["off_topic_similar"], seed=0)
    by_prompt = {p.prompt: p.rejected for p in suite}
    assert by_prompt[items[1][0]] == items[4][1] and by_prompt[items[4][0]] == items[1][1]
    assert suite == build_suite(list(items), ["off_topic_similar"], seed=5)  # depends on the items only
    assert "off_topic_similar" not in {p.kind for p in build_suite(items)}  # asked for by name


def test_unknown_kind_or_pool_is_a_one_line_error():
    with pytest.raises(CarSelectError, match="unknown corruption kind"):
        corrupt(PROMPT, ANSWER, "typo")
    with pytest.raises(CarSelectError, match="unknown pool"):
        corrupt(PROMPT, ANSWER, "repeat", pool="test")


def test_robustness_report_counts_per_kind_on_a_hand_made_set():
    suite = build_suite(ITEMS, ["repeat", "refusal", "empty"], seed=0)
    # a hand-made "scorer": fooled by every repeat, right on every refusal, a tie on every empty answer
    chosen = [1.0] * len(suite)
    rejected = [{"repeat": 2.0, "refusal": 0.0, "empty": 1.0}[p.kind] for p in suite]
    report = robustness_report(suite, chosen, rejected)
    assert {k: v["accuracy"] for k, v in report["per_kind"].items()} == {"repeat": 0.0, "refusal": 1.0, "empty": 0.5}
    assert report["n_pairs"] == len(suite) == 12
    assert report["accuracy"] == pytest.approx(6 / 12, abs=1e-4)
    assert report["worst_kind_accuracy"] == 0.0
    # the baseline: the longer text wins, so every repeat is lost and every empty answer is won
    assert report["per_kind"]["repeat"]["length_baseline"] == 0.0
    assert report["per_kind"]["empty"]["length_baseline"] == 1.0
    json.dumps(report)


def test_text_stats_see_repetition_echo_and_truncation_past_any_token_window():
    base = text_stats(PROMPT, ANSWER)
    assert base.shape == (len(STAT_NAMES),)
    idx = {n: i for i, n in enumerate(STAT_NAMES)}
    twice = text_stats(PROMPT, "\n\n".join([ANSWER] * 40))
    assert twice[idx["repeated_4gram_share"]] > 0.9 > base[idx["repeated_4gram_share"]]
    assert twice[idx["log_chars"]] > base[idx["log_chars"]]
    echo = text_stats(PROMPT, "How do I boil an egg?")
    assert echo[idx["echo_8gram_share"]] > 0.9 > base[idx["echo_8gram_share"]]
    assert text_stats(PROMPT, "Put the egg in boiling")[idx["ends_cleanly"]] == 0 < base[idx["ends_cleanly"]]
    assert text_stats(PROMPT, "")[idx["is_empty"]] == 1
    assert np.isfinite(text_stats("", "\ud800 x " * 3)).all()  # a lone surrogate does not break it


def test_padding_whitespace_changes_no_statistic_but_its_own_and_capitals_show():
    idx = {n: i for i, n in enumerate(STAT_NAMES)}
    code = "def f(x):\n    if x:\n        return 1\n\n    return 2"
    for answer in (ANSWER, code):
        base = text_stats(PROMPT, answer)
        assert base[idx["whitespace_excess"]] == 0  # the answer's own layout is not padding
        for pad in (answer + " " * 3000, "\n" * 300 + answer, answer.replace(" ", " " * 40, 1)):
            padded = text_stats(PROMPT, pad)
            assert padded[idx["whitespace_excess"]] > 0.1
            others = [i for n, i in idx.items() if n != "whitespace_excess"]
            assert np.array_equal(padded[others], base[others])
    assert text_stats(PROMPT, ANSWER.upper())[idx["uppercase_share"]] == 1
    assert text_stats(PROMPT, ANSWER)[idx["uppercase_share"]] < 0.1


def test_word_order_statistics_see_shuffled_words():
    idx = {n: i for i, n in enumerate(STAT_NAMES)}
    answer = ("Put the egg in a pot of cold water. Bring the water to a boil over high heat. Then turn off "
              "the heat and leave the egg in the pot for ten minutes. Cool it under the tap and peel it.")
    base = text_stats(PROMPT, answer)
    assert base[idx["lowercase_after_sentence_end"]] == 0 == base[idx["article_before_function_word"]]
    for seed in range(6):
        shuffled = text_stats(PROMPT, corrupt(PROMPT, answer, "shuffle_words", seed=seed))
        assert shuffled[idx["lowercase_after_sentence_end"]] > 0 and shuffled[idx["article_before_function_word"]] > 0


CODE_ANSWER = '''def is_leap_year(year):
    if (year % 4 == 0 and year % 100 != 0) or (year % 400 == 0):
        return True
    return False

def leap_years(start, end):
    return [year for year in range(start, end + 1) if is_leap_year(year)]

print(leap_years(1990, 2030))'''


def test_order_and_layout_statistics_see_code_with_its_words_shuffled():
    idx = {n: i for i, n in enumerate(STAT_NAMES)}
    prompt = "Instruction: Write a Python function that tells whether a year is a leap year."
    base = text_stats(prompt, CODE_ANSWER)
    assert base[idx["bracket_mismatch_share"]] == 0 and base[idx["line_breaks_per_word"]] > 0.1
    assert base[idx["order_compression_gain"]] > 0.2  # `year % `, `return `, `leap_year(` recur in order
    for seed in range(6):
        shuffled = text_stats(prompt, corrupt(prompt, CODE_ANSWER, "shuffle_words", seed=seed))
        assert shuffled[idx["bracket_mismatch_share"]] > 0.1
        assert shuffled[idx["line_breaks_per_word"]] == 0
        assert shuffled[idx["order_compression_gain"]] < base[idx["order_compression_gain"]] - 0.2
    # the statistic is a property of the text alone, and computing more of them changes none before
    assert np.array_equal(text_stats(prompt, CODE_ANSWER), base)
    assert np.array_equal(text_stats(prompt, CODE_ANSWER, 18), base[:18])
    unbalanced = text_stats(prompt, "print(leap_years(1990, 2030)")
    assert 0 < unbalanced[idx["bracket_mismatch_share"]] < 1
    assert text_stats(prompt, "short")[idx["order_compression_gain"]] == 0  # too few words to tell


def test_card_robustness_table_aligns_long_kind_names():
    from car_select.training.card import format_card

    kinds = {"repeat": 0.5, "prompt_words_stuffed": 0.25, "punctuation_dropped": 1.0}
    card = {"robustness": {"set.json": {
        "accuracy": 0.5, "n_pairs": 30, "length_baseline": 0.5, "worst_kind_accuracy": 0.25,
        "per_kind": {k: {"accuracy": a, "length_baseline": 0.0, "n_pairs": 10} for k, a in kinds.items()}}}}
    rows = [line for line in format_card(card).splitlines() if line.startswith("  ")]
    assert len(rows) == 3
    assert len({row.index("(longer wins") for row in rows}) == 1  # one column, whatever the name's length


SOURCE = ("The Amazon rainforest covers much of the Amazon basin of South America. This basin encompasses seven "
          "million square kilometres, of which five and a half million are covered by the rainforest. The region "
          "includes territory belonging to nine nations and 3,344 indigenous territories.")
SUMMARY_PROMPT = f"Instruction: Summarize the passage in one sentence. Input: {SOURCE}"
SUMMARY = "The Amazon rainforest covers most of a huge basin shared by nine nations."


def test_copy_kinds_paste_the_input_leak_a_role_marker_or_outgrow_the_source():
    assert prompt_input(SUMMARY_PROMPT) == SOURCE and prompt_input(PROMPT) == ""
    assert corrupt(SUMMARY_PROMPT, SUMMARY, "input_pasted", seed=1) == SOURCE
    for seed in range(8):
        extended = corrupt(SUMMARY_PROMPT, SUMMARY, "input_pasted_extended", seed=seed, others=OTHERS)
        assert extended.startswith(SOURCE + "\n\n") and len(extended) > len(SOURCE) + 20
        longer = corrupt(SUMMARY_PROMPT, SUMMARY, "summary_longer", seed=seed)
        assert longer.startswith(SUMMARY) and SOURCE in longer and len(longer) > len(SOURCE)
        leaked = corrupt(PROMPT, ANSWER, "role_marker_leaked", seed=seed, others=OTHERS, pool="train")
        marker = next(m for m in ROLE_MARKERS["train"] if m in leaked)
        assert leaked.startswith(f"{ANSWER}\n\n{marker} ") or leaked == f"{marker} {ANSWER}"
    # a short input, or a request that is not to summarise, gives none
    assert corrupt("Instruction: Translate. Input: Good morning", "Bonjour", "input_pasted") is None
    assert corrupt(SUMMARY_PROMPT.replace("Summarize the passage in one sentence", "Translate the passage into French"),
                   SUMMARY, "summary_longer") is None
    assert not set(ROLE_MARKERS["train"]) & set(ROLE_MARKERS["eval"])


def test_copied_share_sees_a_pasted_input_that_more_text_follows():
    idx = STAT_NAMES.index("copied_from_prompt_share")
    pasted = text_stats(SUMMARY_PROMPT, SOURCE)[idx]
    extended = text_stats(SUMMARY_PROMPT, f"{SOURCE}\n\n{ANSWER} {ANSWER}")[idx]
    own = text_stats(SUMMARY_PROMPT, SUMMARY)[idx]
    assert pasted == 1.0 and 0.4 < extended < 1.0 and own == 0.0
