"""Decontamination (`--decontaminate`): records that hold an evaluation prompt are never selected.

A record is contaminated by a test prompt when one of its user texts (the instruction, the
instruction with its input, or any user turn of a conversation)
1. equals the prompt after normalisation (lowercase, punctuation removed, whitespace collapsed);
2. shares an NGRAM-word sequence with it after the same normalisation (13 words: the test of the GPT-3
   and Llama 2 contamination studies, also what Tulu's decontamination scripts use);
3. or is an embedding near-duplicate: the record's user texts and the prompt, each embedded as a record
   with its responses blanked, have cosine similarity at least EMBEDDING_THRESHOLD (the encoder's
   embeddings; prompts against prompts, so a response does not hide a copied question).
The first test that fires is the record's `how`. The threshold was chosen on data
(benchmarks/targeting.py, docs/targeting.md): lightly edited MT-Bench questions injected into Alpaca
that the text tests miss, against the Alpaca records' own similarity to the MT-Bench questions.

Pure: texts and arrays in, arrays out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np

from .knn import unit_rows

CONTAMINATED = "contaminated"
NGRAM = 13
EMBEDDING_THRESHOLD = 0.9
HOW = ("exact", "ngram", "embedding")

_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lowercase, punctuation and symbols dropped (Unicode categories P* and S*), whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    kept = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    return _SPACE.sub(" ", kept).strip()


def ngrams(words: Sequence[str], n: int = NGRAM) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


class TestPrompts:
    """The test prompts' normalised texts and n-grams, for looking records up against."""

    def __init__(self, prompts: Sequence[Sequence[str]], n: int = NGRAM):
        """`prompts`: per test example, its user texts (one for a question, one per turn for MT-Bench)."""
        self.n = n
        self.exact: dict[str, int] = {}
        self.grams: dict[tuple[str, ...], int] = {}
        for k, texts in enumerate(prompts):
            for text in texts:
                norm = normalise(text)
                if norm:
                    self.exact.setdefault(norm, k)
                for gram in ngrams(norm.split(), n):
                    self.grams.setdefault(gram, k)

    def match(self, texts: Sequence[str]) -> tuple[int, str | None]:
        """(the first test example one of `texts` matches, "exact" or "ngram"), or (-1, None)."""
        norms = [normalise(t) for t in texts]
        for norm in norms:
            k = self.exact.get(norm)
            if k is not None and norm:
                return k, "exact"
        for norm in norms:
            words = norm.split()
            for i in range(len(words) - self.n + 1):
                k = self.grams.get(tuple(words[i:i + self.n]))
                if k is not None:
                    return k, "ngram"
        return -1, None


def find_contaminated(record_texts: Sequence[Sequence[str]], prompts: Sequence[Sequence[str]],
                      reduced: np.ndarray | None = None, prompt_reduced: np.ndarray | None = None,
                      threshold: float | None = EMBEDDING_THRESHOLD, n: int = NGRAM,
                      prompt_owner: np.ndarray | None = None
                      ) -> tuple[np.ndarray, list[str | None], np.ndarray | None]:
    """Per record: (the test example that contaminates it, or -1; how: "exact", "ngram", "embedding"
    or None; the highest cosine similarity to a test example, None without embeddings). `record_texts`
    holds each record's user texts; `reduced` and `prompt_reduced` (one row per record and per test
    example, in any one space; with `prompt_owner`, one row per test prompt text, owned by the test
    example it gives) enable the embedding test (threshold None: off)."""
    tests = TestPrompts(prompts, n)
    by = np.full(len(record_texts), -1, dtype=np.int64)
    how: list[str | None] = [None] * len(record_texts)
    for i, texts in enumerate(record_texts):
        k, kind = tests.match(texts)
        if k >= 0:
            by[i], how[i] = k, kind
    best = None
    if reduced is not None and prompt_reduced is not None and len(prompt_reduced) and len(reduced):
        import faiss

        index = faiss.IndexFlatIP(prompt_reduced.shape[1])
        index.add(unit_rows(prompt_reduced))
        sims, nearest = index.search(unit_rows(reduced), 1)
        best = sims[:, 0]
        if threshold is not None:
            hit = (by < 0) & (best >= threshold)
            owner = np.arange(len(prompt_reduced)) if prompt_owner is None else np.asarray(prompt_owner)
            by[hit] = owner[nearest[hit, 0]]
            for i in np.flatnonzero(hit):
                how[i] = "embedding"
    return by, how, best


def user_texts(exchanges: Sequence[tuple[str, str, str]]) -> list[str]:
    """A record's user texts from its (user, input, assistant) exchanges: each user turn, and the final
    one with its input appended where it has one."""
    texts = [u for u, _, _ in exchanges]
    for u, inp, _ in exchanges:
        if inp and inp.strip():
            texts.append(f"{u}\n{inp}")
    return texts
