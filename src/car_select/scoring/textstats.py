"""Cheap text statistics of a (prompt, response) pair, given to the scorer as explicit inputs.

The encoder sees at most max_length tokens, so an answer repeated twice, padded with filler past
the window, or a 20,000-word loop of one token looks to it like its first 256 tokens. These
statistics are computed on the whole response, in microseconds, with no model: length, how much of
it repeats itself, how much of it is the prompt given back, whether it ends mid-sentence; and, since
mean-pooled features see which words a text holds more than their order, whether its words are in
an order (compression, brackets, line breaks). The head learns how much each matters from pairs
where length and quality disagree (corruption negatives).
"""

from __future__ import annotations

import math
import random
import re
import zlib
from collections import Counter
from collections.abc import Sequence

import numpy as np

# 4: order and layout statistics appended (a scorer taking the first 18 or 20 is unchanged); 5: every
# statistic reads the response with its padding whitespace removed, and two are appended (whitespace
# excess, uppercase share). Appending one changes no earlier one, so no scorer taking the earlier
# ones needs a new version (experiments/common.py appends two that were tried and not shipped;
# copied_from_prompt_share was appended after 5 the same way)
STATS_VERSION = 5
STAT_NAMES = (
    "log_chars",
    "log_words",
    "repeated_4gram_share",
    "repeated_line_share",
    "top_word_share",
    "compression_ratio",
    "distinct_first_100",
    "ends_cleanly",
    "words_from_prompt",
    "prompt_words_covered",
    "echo_8gram_share",
    "log_length_ratio",
    "is_empty",
    "letter_share",
    "head_overlap",
    "tail_overlap",
    "tail_first_person",
    "tail_second_person",
    "lowercase_after_sentence_end",
    "article_before_function_word",
    "order_compression_gain",
    "bracket_mismatch_share",
    "line_breaks_per_word",
    "whitespace_excess",
    "uppercase_share",
    "copied_from_prompt_share",
)
_EDGE = 30  # words at each end of the response: padding is added there, past the encoder's window
_FIRST = {"i", "me", "my", "mine", "myself", "we", "us", "our"}
_SECOND = {"you", "your", "yours", "yourself"}
_WORD = re.compile(r"\w+", re.UNICODE)
_CLEAN_END = set('.!?)]}"\'`*>:;')
_TOKEN = re.compile(r"\S+")
# Words an article is almost never followed by in running text: in words put in random order it
# often is, which the pooled encoder features, mostly bag-of-words, hardly notice.
_FUNCTION = {"the", "a", "an", "of", "to", "in", "and", "for", "with", "on", "is", "are", "was", "that", "by",
             "as", "or"}
_SCAN = 20_000  # characters looked at for the n-gram statistics (length counts the whole text)
_ORDER_SCAN = 4_000  # characters compressed for the order statistic: order shows in any few lines
_BRACKET = re.compile(r"[()\[\]{}]")
_OPENER = {")": "(", "]": "[", "}": "{"}
_LINE_END_SPACE = re.compile(r"[ \t]+(?=\n)")
_BLANK_LINES = re.compile(r"\n{3,}")
_INNER_SPACE = re.compile(r"(?<=\S)[ \t]{2,}")
_INDENT = re.compile(r"(?m)^[ \t]{33,}")
_COPY_RUN = 6  # words in a row that count as copied from the prompt


def copied_share(words: Sequence[str], prompt_words: Sequence[str], run: int = _COPY_RUN) -> float:
    """Share of the response's words inside a run of `run` or more words found, in that order, in the
    prompt (its instruction and its input): an answer that pastes its context back. echo_8gram_share
    counts distinct character 8-grams instead, which a long pasted input followed by more text dilutes."""
    if len(words) < run or len(prompt_words) < run:
        return 0.0
    grams = set(zip(*(prompt_words[i:] for i in range(run))))
    covered = np.zeros(len(words), dtype=bool)
    for i, gram in enumerate(zip(*(words[i:] for i in range(run)))):
        if gram in grams:
            covered[i:i + run] = True
    return float(covered.mean())


def tidy_whitespace(text: str) -> str:
    """The text without padding whitespace: trailing spaces, more than one blank line, runs of spaces
    inside a line, indentation past 32, and the ends stripped. The encoder's tokens never see
    whitespace, but length and layout statistics would, so 2,000 appended spaces made an answer look
    longer and better laid out; code keeps its indentation and line breaks."""
    text = _LINE_END_SPACE.sub("", text)
    text = _BLANK_LINES.sub("\n\n", text)
    text = _INNER_SPACE.sub(" ", text)
    text = _INDENT.sub(" " * 32, text)
    return text.strip()


def _repeated_share(items: Sequence) -> float:
    return 1.0 - len(set(items)) / len(items) if items else 0.0


def _char_grams(text: str, n: int = 8) -> set[str]:
    text = " ".join(text.lower().split())
    return {text[i:i + n] for i in range(max(0, len(text) - n + 1))}


def _edge_overlap(edge: list[str], rest: set[str], prompt: set[str]) -> float:
    """Share of an end's content words found in the prompt or the rest of the response: low for
    generic padding, high for an answer that keeps talking about its subject."""
    content = [w for w in edge if len(w) > 3]
    return sum(w in rest or w in prompt for w in content) / len(content) if content else 0.0


def _word_order(tokens: list[str]) -> list[float]:
    """The two word-order statistics over the response's whitespace-separated tokens: a lowercase word
    after a sentence end, an article before a function word or punctuation; both near 0 in running
    text and high in shuffled words."""
    ends = [i for i in range(len(tokens) - 1) if len(tokens[i]) > 1 and tokens[i][-1] in ".!?"]
    articles = [i for i in range(len(tokens) - 1) if tokens[i].lower() in ("the", "a", "an")]
    return [sum(tokens[i + 1][:1].islower() for i in ends) / len(ends) if ends else 0.0,
            sum(tokens[i + 1].lower().strip(".,;:!?") in _FUNCTION or tokens[i][-1] in ".,;:!?" for i in articles)
            / len(articles) if articles else 0.0]


def _order_and_layout(head: str, words: list[str]) -> list[float]:
    """Three statistics that see the order and layout of the words, which the mean-pooled encoder
    features hardly do (code with its words shuffled looks to them much like the code):
    - how much better the words compress in their own order than in a fixed shuffle of them (as one
      space-separated line each, so only order counts): phrases and code idioms that recur compress,
      and shuffling breaks them; about 0 for words already in random order;
    - the share of brackets that close nothing or the wrong opener, or are never closed;
    - line breaks per word (capped at 1): layout that lists and code have and a flattened text lacks.
    words: head's whitespace-separated tokens."""
    gain = 0.0
    if len(words) >= 6:
        kept = words[:len(head[:_ORDER_SCAN].split())]
        shuffled = random.Random(len(kept)).sample(kept, len(kept))
        size = [len(zlib.compress(" ".join(w).encode("utf-8", "surrogatepass"))) for w in (kept, shuffled)]
        gain = 10.0 * (1.0 - size[0] / size[1])  # x10: about 0.5 for running text
    stack: list[str] = []
    wrong = closers = 0
    for ch in _BRACKET.findall(head):
        if ch in _OPENER:
            closers += 1
            if stack and stack[-1] == _OPENER[ch]:
                stack.pop()
            else:
                wrong += 1
        else:
            stack.append(ch)
    brackets = closers + len(stack)
    return [gain, (wrong + len(stack)) / brackets if brackets else 0.0,
            min(1.0, head.count("\n") / len(words)) if words else 0.0]


def text_stats(prompt: str, response: str, count: int = len(STAT_NAMES)) -> np.ndarray:
    """The first `count` of STAT_NAMES for a rendered prompt and its response, each roughly in [0, 1]
    (the word-order, order and layout ones, last, are computed only when asked for). Every one but
    whitespace_excess reads the response with tidy_whitespace applied."""
    raw_response, response = response, tidy_whitespace(response)
    head = response[:_SCAN]
    words = [w.lower() for w in _WORD.findall(head)]
    n_words_total = len(words) if len(response) <= _SCAN else int(len(words) * len(response) / len(head))
    prompt_words = [w.lower() for w in _WORD.findall(prompt[:_SCAN])]
    prompt_set = set(prompt_words)
    grams4 = list(zip(words, words[1:], words[2:], words[3:]))
    lines = [ln.strip() for ln in re.split(r"[\n.!?]+", head) if len(ln.strip()) > 3]
    raw = head.encode("utf-8", "surrogatepass")
    stripped = response.rstrip()
    content = [w for w in prompt_set if len(w) > 3]
    word_set = set(words)
    resp_grams = _char_grams(head)
    letters = [c for c in head if c.isalpha()]  # letter share and, when asked for, uppercase share
    tail_words = [w.lower() for w in _WORD.findall(response[-_SCAN:])]
    edge = max(3, min(_EDGE, len(tail_words) // 3))  # a short answer's ends are its thirds
    first, last = words[:edge], tail_words[-edge:]
    row = [
        math.log1p(len(response)) / 10.0,
        math.log1p(n_words_total) / 8.0,
        _repeated_share(grams4),
        _repeated_share(lines),
        Counter(words).most_common(1)[0][1] / len(words) if words else 0.0,
        len(zlib.compress(raw)) / len(raw) if raw else 0.0,
        len(set(words[:100])) / len(words[:100]) if words else 0.0,
        float(bool(stripped) and stripped[-1] in _CLEAN_END),
        sum(w in prompt_set for w in words) / len(words) if words else 0.0,
        sum(w in word_set for w in content) / len(content) if content else 0.0,
        len(resp_grams & _char_grams(prompt[:_SCAN])) / len(resp_grams) if resp_grams else 0.0,
        math.log((n_words_total + 1) / (len(prompt_words) + 1)) / 5.0,
        float(not response.strip()),
        len(letters) / len(head) if head else 0.0,
        _edge_overlap(first, set(words[edge:]), prompt_set),
        _edge_overlap(last, set(tail_words[:-edge]), prompt_set),
        sum(w in _FIRST for w in last) / len(last) if last else 0.0,
        sum(w in _SECOND for w in last) / len(last) if last else 0.0,
    ]
    if count > len(row):
        tokens = _TOKEN.findall(head)  # split once for the order statistics
        row += _word_order(tokens)
        if count > len(row):
            row += _order_and_layout(head, tokens)
        if count > len(row):
            row += [1.0 - len(response) / len(raw_response) if raw_response else 0.0,
                    sum(c.isupper() for c in letters) / len(letters) if letters else 0.0]
        if count > len(row):
            row.append(copied_share(words, prompt_words))
    return np.array(row[:count], dtype=np.float32)


def text_stats_batch(prompts: Sequence[str], responses: Sequence[str], count: int = len(STAT_NAMES)) -> np.ndarray:
    """(n, count) float32: the first `count` statistics of each pair."""
    if not prompts:
        return np.zeros((0, count), dtype=np.float32)
    return np.stack([text_stats(p, r, count) for p, r in zip(prompts, responses)])
