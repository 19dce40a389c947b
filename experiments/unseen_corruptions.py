"""Degradations the corruption suite does not make, as a check of how far the scorer's robustness
carries past the kinds it was trained on (a number holds only where it was measured).

Each kind below is a made-up way to spoil a good answer that no training negative resembles closely:
a flattering preamble, random letters, lorem ipsum, another answer put before this one, each sentence
said twice, the middle cut out, sentences reordered, digits changed (a factual error), the request
restated with a vague non-answer, only the first sentence; and (added with the typos kind) 30% of the
words dropped, one middle sentence dropped, "not" put after the first auxiliary verbs (a reversed
claim), a question taken from another answer appended, another answer's first half in place of this
one's, and this answer's sentences interleaved with another's. Random letters came closer to a
training kind when typos (misspelt words) joined them; it stays, as a check of text that is all
misspelling. Each is scored against the answer it came
from (the answer should win; a tie counts half, as in every robustness figure); "the longer answer
wins" beside it. Answers: 150 sampled records of a
dataset (default LIMA, the validation set; nothing was chosen on these figures).

    python experiments/unseen_corruptions.py --scorer default --scorer car-paper --out experiments/results/unseen_corruptions.json
"""

from __future__ import annotations

import argparse
import os
import random
import re
import string
import sys

from common import DATA, write_results

from car_select.scoring.scorer import Scorer
from car_select.training.corruptions import CorruptedPair
from car_select.training.data import answer_items
from car_select.training.evaluate import robustness_report, score_pairs

LOREM = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et "
         "dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip. ")
FLATTERY = "What a wonderful and insightful question! You are clearly very smart for asking it. "
NEGATABLE = re.compile(r"\b(is|are|can|will|should|does|do)\b")
VAGUE = " That is a good question. The answer depends on many factors, and it is worth considering them carefully."


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if s]


def degraded(prompt: str, answer: str, other: str, rng: random.Random) -> dict[str, str | None]:
    """Each kind's copy of `answer` (None where it does not apply); `other`: another record's answer."""
    words, sents = answer.split(), sentences(answer)
    return {
        "flattering_preamble": FLATTERY + answer,
        "random_letters": " ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 9)))
                                   for _ in words),
        "lorem_ipsum": (LOREM * (len(answer) // len(LOREM) + 1))[:max(len(answer), 60)],
        "other_answer_first": f"{other}\n\n{answer}",
        "each_sentence_twice": " ".join(f"{s} {s}" for s in sents),
        "middle_cut_out": " ".join(words[:len(words) // 4] + words[3 * len(words) // 4:]) if len(words) > 40 else None,
        "sentences_reordered": " ".join(rng.sample(sents, len(sents))) if len(sents) > 3 else None,
        "digits_changed": re.sub(r"\d", lambda m: str((int(m.group()) + 3) % 10), answer),
        "request_restated_vaguely": prompt.split("Instruction: ", 1)[-1] + VAGUE,
        "first_sentence_only": sents[0] if len(sents) > 3 else None,
        "words_dropped": " ".join(w for w in words if rng.random() >= 0.3) if len(words) > 10 else None,
        "one_sentence_dropped": " ".join(s for i, s in enumerate(sents) if i != len(sents) // 2)
        if len(sents) > 3 else None,
        "negated": NEGATABLE.sub(r"\1 not", answer, count=5),
        "stray_question_appended": f"{answer}\n\nNow, {sentences(other)[0].rstrip('.!?')}?" if other.strip() else None,
        "other_first_half": " ".join(other.split()[:len(words) // 2] + words[len(words) // 2:])
        if len(words) > 20 else None,
        "sentences_interleaved": " ".join(s for both in zip(sents, sentences(other)) for s in both)
        if len(sents) > 3 else None,
    }


def probe_pairs(path: str, max_records: int = 150, seed: int = 1) -> list[CorruptedPair]:
    items = answer_items(path, max_records, seed)
    pairs = []
    for i, (prompt, answer) in enumerate(items):
        other = items[(i + 37) % len(items)][1]
        for kind, bad in degraded(prompt, answer, other, random.Random(f"{seed}:{i}")).items():
            if bad is not None and bad != answer:
                pairs.append(CorruptedPair(prompt, answer, bad, kind=kind))
    return pairs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(DATA, "lima-1k", "lima.json"))
    ap.add_argument("--scorer", action="append", help="a shipped scorer's name or a scorer directory (repeatable)")
    ap.add_argument("--out", default=None, help="write the results here as JSON")
    args = ap.parse_args()
    pairs = probe_pairs(args.data)
    results = {"data": os.path.basename(args.data)}
    for name in args.scorer or ["default"]:
        results[name] = robustness_report(pairs, *score_pairs(Scorer.load(name), pairs))
    write_results(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
