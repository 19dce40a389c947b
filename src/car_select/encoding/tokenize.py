"""Token ids per text, unpadded: plain truncation, or a long text's start and end."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def tokenize(tokenizer, texts: Sequence[str], max_length: int) -> list[np.ndarray]:
    """Token ids per text, truncated to max_length, unpadded. Explicit padding/truncation arguments
    override whatever the tokenizer.json was saved with (the bundled one pads and truncates at 128)."""
    ids: list[np.ndarray] = []
    chunk = 4096  # bounded memory for the fast tokenizer's batch call
    for start in range(0, len(texts), chunk):
        enc = tokenizer(
            list(texts[start : start + chunk]),
            padding=False,
            truncation=True,
            max_length=max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        ids.extend(np.asarray(x, dtype=np.int64) for x in enc["input_ids"])
    return ids


def tokenize_head_tail(tokenizer, texts: Sequence[str], max_length: int, tail: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Token ids per text: a text longer than max_length keeps its first max_length - tail tokens and
    its last `tail` (its final special token among them), so the window sees how a long text ends
    (what was appended to it) as well as how it starts. Also returns how many of each text's ids
    come from its start (all of them where nothing was cut)."""
    whole = tokenize(tokenizer, texts, 1_000_000)  # effectively uncut, without the too-long warning
    ids, heads = [], []
    for x in whole:
        if len(x) > max_length:
            x = np.concatenate([x[:max_length - tail], x[len(x) - tail:]])
            heads.append(max_length - tail)
        else:
            heads.append(len(x))
        ids.append(x)
    return ids, np.asarray(heads, dtype=np.int64)
