"""Decontamination tests (selection/decontaminate.py): exact after normalisation, 13-word n-grams, embeddings."""

import numpy as np

from car_select.selection.decontaminate import NGRAM, find_contaminated, normalise, user_texts

QUESTION = ("Compose an engaging travel blog post about a recent trip to Hawaii, highlighting cultural experiences "
            "and must-see attractions.")


def test_normalise_drops_case_punctuation_and_extra_whitespace():
    assert normalise("  Hello,\n\tWORLD!!  (again) ") == "hello world again"
    assert normalise("¿Qué tal?") == "qué tal"


def test_exact_match_after_normalisation_and_13_word_ngrams():
    prompts = [[QUESTION], ["What is 2+2?"]]
    records = [
        [QUESTION.lower().rstrip(".")],  # exact after normalisation
        ["Question: " + QUESTION],  # shares every 13-gram
        ["what is 2 times 2"],  # another question
        [" ".join(QUESTION.split()[:NGRAM - 1]) + " in spring"],  # 12 words in common only
        ["Tell me a joke", "WHAT IS 2+2?"],  # a later user turn matches
    ]
    by, how, best = find_contaminated(records, prompts)
    assert by.tolist() == [0, 0, -1, -1, 1]
    assert how == ["exact", "ngram", None, None, "exact"]
    assert best is None


def test_embedding_near_duplicates_at_the_threshold():
    reduced = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], dtype=np.float32)
    tests = np.array([[1.0, 0.05]], dtype=np.float32)
    by, how, best = find_contaminated([["a"], ["b"], ["c"]], [["zzz"]], reduced, tests, threshold=0.9)
    assert by.tolist() == [0, -1, -1] and how == ["embedding", None, None]
    assert best[0] > 0.99 and 0.8 < best[1] < 0.9
    by, _, _ = find_contaminated([["a"], ["b"], ["c"]], [["zzz"]], reduced, tests, threshold=None)
    assert by.tolist() == [-1, -1, -1]


def test_user_texts_are_every_user_turn_and_the_instruction_with_its_input():
    texts = user_texts([("hi", "", "hello"), ("Summarise this", "A long text", "Short")])
    assert texts == ["hi", "Summarise this", "Summarise this\nA long text"]
