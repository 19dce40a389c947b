"""A corruption suite: degraded copies of good answers, each a pair (original above its copy).

Used twice: as training negatives for a scorer (pool "train"), and as a diagnostic anyone can run
on their own data and any scorer (`car-select eval-scorer --robustness DATA`, pool "eval"). The
filler sentences and refusals come in two disjoint pools, so a scorer checked with the "eval" pool is
checked on wordings it never saw in training.

Every generator is deterministic given (seed, item position, kind): the same data and seed give the
same suite whatever order or subset of kinds is asked for.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import CarSelectError
from .pairs import PreferencePair

# Generic padding that adds words and no content. Two disjoint pools (train / eval).
FILLERS = {
    "train": [
        "I hope this helps!",
        "Let me know if you have any other questions.",
        "This is a great question and there are many things to consider.",
        "Thank you for asking, I am always happy to help with questions like this one.",
        "Please feel free to reach out if you need any further assistance.",
        "In conclusion, this is an important topic that deserves careful thought.",
        "As an AI language model, I strive to provide accurate and helpful information.",
        "There are many different perspectives on this, and it is worth exploring them all.",
        "Overall, I think this answer covers the most important points.",
        "It is important to remember that every situation is unique.",
        "I have done my best to give a complete and thorough answer.",
        "Good luck, and have a wonderful day!",
    ],
    "eval": [
        "I really hope you found this response useful and informative.",
        "Don't hesitate to ask if anything is unclear.",
        "This is a very interesting topic that many people wonder about.",
        "To summarize, the points above should give you a good overview.",
        "Of course, there is always more that could be said about this subject.",
        "Always consult a professional if you are unsure about anything.",
        "I am glad I could assist you with this request today.",
        "Remember that learning is a lifelong journey.",
    ],
}
REFUSALS = {
    "train": [
        "I'm sorry, but I can't help with that request.",
        "I apologize, but I am unable to assist with this.",
        "As an AI, I cannot provide an answer to this question.",
        "Sorry, I cannot do that.",
        "I'm not able to help with that. Is there anything else I can do for you?",
        "Unfortunately, I cannot complete this task.",
    ],
    "eval": [
        "I'm afraid I can't answer that.",
        "My apologies, but this is not something I can help you with.",
        "I am not able to provide that information.",
        "Sorry, but I won't be able to complete this request.",
    ],
}
POOLS = tuple(FILLERS)

_WORD = re.compile(r"\S+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _fillers(rng: random.Random, pool: str, count: int) -> str:
    return " ".join(rng.sample(FILLERS[pool], count))


def repeat(prompt, answer, rng, others, pool):
    """The whole answer two or three times over (padding by repetition)."""
    return "\n\n".join([answer] * rng.choice((2, 3)))


def filler_append(prompt, answer, rng, others, pool):
    return f"{answer}\n\n{_fillers(rng, pool, rng.choice((2, 3)))}"


def filler_prepend(prompt, answer, rng, others, pool):
    return f"{_fillers(rng, pool, rng.choice((2, 3)))}\n\n{answer}"


def truncate(prompt, answer, rng, others, pool):
    """Cut mid-answer, between 25% and 60% of its words (needs at least 8 words)."""
    words = _words(answer)
    if len(words) < 8:
        return None
    keep = max(2, int(len(words) * rng.uniform(0.25, 0.6)))
    return " ".join(words[:keep])


def off_topic(prompt, answer, rng, others, pool):
    """Another record's answer: fluent, and about something else."""
    candidates = [o for o in others if o.strip() != answer.strip()]
    return rng.choice(candidates) if candidates else None


def off_topic_similar(prompt, answer, rng, others, pool):
    """The answer to the most similar other request of the set (`others` holds the answers of the
    nearest requests, nearest first): fluent, on a related subject, and not an answer to this one."""
    return next((o for o in others if o.strip() != answer.strip()), None)


def off_topic_padded(prompt, answer, rng, others, pool):
    """Another record's answer, padded with filler (wrong and long)."""
    other = off_topic(prompt, answer, rng, others, pool)
    return None if other is None else f"{other}\n\n{_fillers(rng, pool, 2)}"


def degenerate(prompt, answer, rng, others, pool):
    """One token repeated, as a decoding loop produces."""
    words = [w for w in _words(answer) if w.isalpha()] or ["the"]
    return " ".join([rng.choice(words)] * rng.choice((20, 50, 200, 1000)))


def echo_instruction(prompt, answer, rng, others, pool):
    """The request given back as the answer."""
    text = re.sub(r"^Instruction:\s*", "", prompt)
    text = re.sub(r"\s*Input:\s*", "\n", text, count=1)
    return None if not text.strip() or text.strip() == answer.strip() else text


def refusal(prompt, answer, rng, others, pool):
    """A canned refusal of a benign request."""
    return rng.choice(REFUSALS[pool])


def shuffle_words(prompt, answer, rng, others, pool):
    """The answer's own words in random order (needs at least 6 words)."""
    words = _words(answer)
    if len(words) < 6:
        return None
    for _ in range(5):
        shuffled = rng.sample(words, len(words))
        if shuffled != words:
            return " ".join(shuffled)
    return None


def empty(prompt, answer, rng, others, pool):
    return ""


def off_topic_appended(prompt, answer, rng, others, pool):
    """The answer with another record's answer after it: longer, and what was added answers something else."""
    other = off_topic(prompt, answer, rng, others, pool)
    return None if other is None else f"{answer}\n\n{other}"


def prompt_words_stuffed(prompt, answer, rng, others, pool):
    """The answer followed by 40 to 150 of the request's own words in random order (keyword stuffing)."""
    words = _words(re.sub(r"^Instruction:\s*|\s*Input:\s*", " ", prompt))
    if not words:
        return None
    return f"{answer} {' '.join(rng.choice(words) for _ in range(rng.randint(40, 150)))}"


def whitespace_pad(prompt, answer, rng, others, pool):
    """The answer padded with spaces and blank lines, which add characters and nothing a reader sees."""
    pad = rng.choice((" " * rng.randint(200, 4000), "\n" * rng.randint(20, 400), (" \n" * rng.randint(20, 400))))
    return f"{pad}{answer}" if rng.random() < 0.25 else f"{answer}{pad}"


def all_caps(prompt, answer, rng, others, pool):
    """The answer shouted in capitals (an uncased encoder cannot see it; a statistic can)."""
    shouted = answer.upper()
    return None if shouted == answer or sum(c.isalpha() for c in answer) < 10 else shouted


_PLAIN_WORD = re.compile(r"\b[A-Za-z]{3,}\b")


def typos(prompt, answer, rng, others, pool):
    """Misspellings: 15% to 40% of the words of three or more letters get one slip (two letters
    swapped, one dropped, doubled or replaced; needs at least 5 such words). Sloppy text, and broken
    identifiers in code, that the subword encoder half reads through."""
    if len(_PLAIN_WORD.findall(answer)) < 5:
        return None
    rate = rng.uniform(0.15, 0.4)

    def slip(match: re.Match) -> str:
        w = match.group()
        if rng.random() >= rate:
            return w
        i, how = rng.randrange(len(w) - 1), rng.randrange(4)
        if how == 0:
            return w[:i] + w[i + 1] + w[i] + w[i + 2:]
        if how == 1:
            return w[:i] + w[i + 1:]
        if how == 2:
            return w[:i + 1] + w[i:]
        return w[:i] + rng.choice(string.ascii_lowercase.replace(w[i].lower(), "")) + w[i + 1:]

    return _PLAIN_WORD.sub(slip, answer)


def lowercased(prompt, answer, rng, others, pool):
    """The answer with every capital lowered (needs at least 3): names, sentence starts and
    case-sensitive code lose their case. The counterpart of all_caps: trained on that alone, the head
    learned that fewer capitals is better and ranked lowercased code above the original."""
    return None if sum(c.isupper() for c in answer) < 3 else answer.lower()


_PUNCTUATION = re.compile(r"[.,;:!?()\[\]{}\"']")


def punctuation_dropped(prompt, answer, rng, others, pool):
    """The answer with its punctuation and brackets removed (needs at least 3 marks): run-on prose,
    code that no longer parses."""
    return None if len(_PUNCTUATION.findall(answer)) < 3 else _PUNCTUATION.sub("", answer)


# Role markers of chat transcripts, in two disjoint pools (train / eval) like the fillers: a reply that
# runs on into the next turn ("...\n\nHuman: and what about...") or opens with one.
ROLE_MARKERS = {
    "train": ["Human:", "User:", "### Instruction:", "<|user|>", "Assistant:"],
    "eval": ["USER:", "### Human:", "Human :", "[INST]", "### Response:"],
}
_INPUT_MARK = " Input: "
_SUMMARY_REQUEST = re.compile(r"\b(summar|extract|shorten|condense|tl;?dr|in (one|a few|two|three) sentences?|"
                              r"brief(ly)?|main (idea|point)s?|key points?|outline)", re.IGNORECASE)


def prompt_input(prompt: str) -> str:
    """The input part of a rendered prompt (`Instruction: ... Input: ...`), "" where there is none."""
    _, mark, rest = prompt.partition(_INPUT_MARK)
    return rest.strip() if mark else ""


def input_pasted(prompt, answer, rng, others, pool):
    """The request's own input given back as the answer (needs an input of 100+ characters that is not
    the answer): a model that copies its context instead of doing the task."""
    source = prompt_input(prompt)
    if len(source) < 100 or source == answer.strip():
        return None
    return source


def input_pasted_extended(prompt, answer, rng, others, pool):
    """The input pasted verbatim, then the answer (or another record's answer) after it: an answer that
    opens with 100+ characters of its own context, longer than the answer alone."""
    source = input_pasted(prompt, answer, rng, others, pool)
    if source is None:
        return None
    after = answer if rng.random() < 0.7 else (off_topic(prompt, answer, rng, others, pool) or answer)
    return f"{source}\n\n{after}"


def role_marker_leaked(prompt, answer, rng, others, pool):
    """A chat transcript's role marker leaked into the reply: the answer running on into a made-up next
    turn (a marker at a line start and another request's words), or opening with the user's marker."""
    marker = rng.choice(ROLE_MARKERS[pool])
    if rng.random() < 0.7:
        other = off_topic(prompt, answer, rng, others, pool) or "Can you tell me more?"
        follow = " ".join(_words(other)[:rng.randint(5, 25)])
        return f"{answer}\n\n{marker} {follow}"
    return f"{marker} {answer}"


def summary_longer(prompt, answer, rng, others, pool):
    """For a request to summarise or extract from an input: the answer with the source appended, so
    it is longer than what it was to shorten (needs such a request, an input of 100+ characters, and
    an answer shorter than it)."""
    instruction = prompt.partition(_INPUT_MARK)[0]
    source = prompt_input(prompt)
    if len(source) < 100 or not _SUMMARY_REQUEST.search(instruction) or len(answer) >= len(source):
        return None
    return f"{answer}\n\n{source}" if rng.random() < 0.5 else f"{answer} {source}"


Generator = Callable[[str, str, random.Random, Sequence[str], str], "str | None"]
KINDS: dict[str, Generator] = {
    "repeat": repeat,
    "filler_append": filler_append,
    "filler_prepend": filler_prepend,
    "truncate": truncate,
    "off_topic": off_topic,
    "off_topic_similar": off_topic_similar,
    "off_topic_padded": off_topic_padded,
    "degenerate": degenerate,
    "echo_instruction": echo_instruction,
    "refusal": refusal,
    "shuffle_words": shuffle_words,
    "empty": empty,
    "off_topic_appended": off_topic_appended,
    "prompt_words_stuffed": prompt_words_stuffed,
    "whitespace_pad": whitespace_pad,
    "all_caps": all_caps,
    "typos": typos,
    "lowercased": lowercased,
    "punctuation_dropped": punctuation_dropped,
    "input_pasted": input_pasted,
    "input_pasted_extended": input_pasted_extended,
    "role_marker_leaked": role_marker_leaked,
    "summary_longer": summary_longer,
}
# The diagnostic's kinds by default (`eval-scorer --robustness`): every kind but off_topic_similar,
# which is harder and partly a judgment of correctness (the answer to a similar request may be
# nearly right), so it is reported on its own (`--kinds off_topic_similar`). Training draws from
# TRAINING_KINDS (below), off_topic_similar included.
SUITE_KINDS = tuple(k for k in KINDS if k != "off_topic_similar")
# The kinds training negatives are drawn from by default: every kind but two the diagnostic keeps.
# prompt_words_stuffed, trained on, cost Auto-J (human-judged pairs) 17 of 971 pairs for no gain in the
# mean of the validation accuracies (experiments/new_kind_variants.py); lowercased, trained on, left the
# head's preference for lowercased code as it was (experiments/spelling_kind_variants.py; validation
# only): case is invisible to the uncased encoder, and no statistic tells lost case from code
# that is lowercase by nature.
# The degraded answers of issue 34 (an input given back, a leaked role marker, a summary longer than its
# source): in the diagnostic, and out of the per-answer draw of TRAINING_KINDS so that adding them left
# the shipped recipe's negatives as they were; training on them is a separate draw (data.with_negatives'
# extra_kinds).
COPY_KINDS = ("input_pasted", "input_pasted_extended", "role_marker_leaked", "summary_longer")
TRAINING_KINDS = tuple(k for k in KINDS if k not in ("prompt_words_stuffed", "lowercased", *COPY_KINDS))


@dataclass(frozen=True)
class CorruptedPair(PreferencePair):
    """A PreferencePair whose rejected answer is a degraded copy of the chosen one."""

    kind: str = ""


def corrupt(prompt: str, answer: str, kind: str, *, seed: int = 0, position: int = 0,
            others: Sequence[str] = (), pool: str = "eval", similar: Sequence[str] = ()) -> str | None:
    """The degraded copy of one answer, or None where the kind does not apply to it. `others`: the
    set's answers (off-topic kinds draw from them); `similar`: the answers of the requests most like
    this one, nearest first (for off_topic_similar)."""
    if kind not in KINDS:
        raise CarSelectError(f"unknown corruption kind {kind!r}; choose from {', '.join(KINDS)}")
    if pool not in POOLS:
        raise CarSelectError(f"unknown pool {pool!r}; choose from {', '.join(POOLS)}")
    rng = random.Random(f"{seed}:{position}:{kind}")  # str seeds are hashed deterministically
    # off-topic answers come from a few sampled records, not a scan of all of them
    sample = [others[rng.randrange(len(others))] for _ in range(min(8, len(others)))] if others else []
    degraded = KINDS[kind](prompt, answer, rng, similar if kind == "off_topic_similar" else sample, pool)
    if degraded is None or degraded == answer:
        return None
    return degraded


def build_suite(items: Sequence[tuple[str, str]], kinds: Sequence[str] | None = None, *, seed: int = 0,
                pool: str = "eval", per_item: int | None = None) -> list[CorruptedPair]:
    """Pairs (original above its degraded copy) from (rendered prompt, good answer) items.

    kinds: None for SUITE_KINDS. per_item=None gives every applicable kind for every item (the
    diagnostic); per_item=1 draws one kind per item (training negatives, spread evenly over the kinds)."""
    kinds = list(kinds or SUITE_KINDS)
    answers = [a for _, a in items]
    if per_item is None:
        drawn = [kinds] * len(items)
    else:
        drawn = [random.Random(f"{seed}:{position}:kinds").sample(kinds, min(per_item, len(kinds)))
                 for position in range(len(items))]
    # neighbours only for the items that drew the kind (about 1 in 12 of the training answers)
    similar = similar_answers(items, rows=[i for i, ks in enumerate(drawn) if "off_topic_similar" in ks])
    pairs = []
    for position, (prompt, answer) in enumerate(items):
        if not answer.strip():
            continue  # an empty answer has nothing to degrade
        for kind in drawn[position]:
            degraded = corrupt(prompt, answer, kind, seed=seed, position=position, others=answers, pool=pool,
                               similar=similar[position])
            if degraded is not None:
                pairs.append(CorruptedPair(prompt, answer, degraded, kind=kind))
    return pairs


def similar_answers(items: Sequence[tuple[str, str]], k: int = 5, rows: Sequence[int] | None = None,
                    chunk: int = 1024) -> list[list[str]]:
    """Per item, the answers of the k other items whose prompts are most alike (TF-IDF cosine over
    the prompts' words, nearest first; items with the same prompt or answer are skipped). Ties go
    to the earlier item, so the result depends only on the items. rows: the items to find
    neighbours for (None: all); the others get an empty list."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    out: list[list[str]] = [[] for _ in items]
    rows = range(len(items)) if rows is None else list(rows)
    if not rows:
        return out
    prompts = [p for p, _ in items]
    stripped = [a.strip() for _, a in items]
    try:
        X = TfidfVectorizer(sublinear_tf=True, dtype=np.float32).fit_transform(prompts)
    except ValueError:  # no word in any prompt
        return out
    for start in range(0, len(rows), chunk):
        block = rows[start:start + chunk]
        sims = (X[block] @ X.T).tocsr()  # sparse: only prompts sharing a word are candidates
        for r, i in enumerate(block):
            lo, hi = sims.indptr[r], sims.indptr[r + 1]
            keep = sims.data[lo:hi] > 0
            cand, sim = sims.indices[lo:hi][keep], sims.data[lo:hi][keep]
            order = np.lexsort((cand, -sim))  # most similar first, ties to the earlier item
            near = out[i]
            for j in cand[order]:
                if prompts[j] != prompts[i] and stripped[j] != stripped[i]:
                    near.append(items[j][1])
                    if len(near) == k:
                        break
    return out
