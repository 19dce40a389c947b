"""Score and embed records: one encoder pass per exchange text, cached, aggregated per record.

When the scorer's frozen encoder is all-MiniLM-L6-v2 (the shipped default), the pass that scores a
text also yields its clustering embedding. Otherwise the scorer and the embedder run separately.
Multi-turn records are scored per exchange (aggregated by Config.turn_aggregate) and embedded as the
token-weighted mean of their exchanges' mean-pooled embeddings (see render.py for why).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .cache import FeatureCache, text_keys
from .config import Config
from .records import Record
from .render import RESPONSE_MARK, render_exchanges
from .scoring.scorer import Scorer

ProgressFn = Callable[[int, int], None]  # (texts done, tokens done) increments


@dataclass
class Segments:
    """Every exchange of every record, flattened: what the encoder actually sees."""

    prompts: list[str]
    responses: list[str]
    owner: np.ndarray  # (m,) record position of each segment

    @property
    def texts(self) -> list[str]:
        return [f"{p}{RESPONSE_MARK}{r}" for p, r in zip(self.prompts, self.responses)]


def segment_records(records: Sequence[Record]) -> Segments:
    prompts, responses, owner = [], [], []
    for i, record in enumerate(records):
        for p, r in render_exchanges(record):
            prompts.append(p)
            responses.append(r)
            owner.append(i)
    return Segments(prompts, responses, np.asarray(owner, dtype=np.int64))


def aggregate(owner: np.ndarray, n: int, scores: np.ndarray, embeddings: np.ndarray, counts: np.ndarray,
              how: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """Per-record score and embedding from per-segment ones (identity for single-turn records)."""
    if len(owner) == n and (n == 0 or (owner == np.arange(n)).all()):
        return scores.astype(np.float32), embeddings.astype(np.float32)
    rec_scores = np.zeros(n, dtype=np.float64)
    if how == "mean":
        rec_scores = np.bincount(owner, weights=scores, minlength=n) / np.bincount(owner, minlength=n)
    elif how == "min":
        rec_scores[:] = np.inf
        np.minimum.at(rec_scores, owner, scores)
    else:  # "last": the final exchange, the one a trainer usually supervises
        rec_scores[owner] = scores  # later segments overwrite earlier ones
    weights = counts.astype(np.float64)[:, None]
    emb = np.zeros((n, embeddings.shape[1]), dtype=np.float64)
    np.add.at(emb, owner, embeddings * weights)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return rec_scores.astype(np.float32), emb.astype(np.float32)


class FeatureExtractor:
    """Turns segments into (score, embedding, token count) per segment, through the cache."""

    def __init__(self, scorer: Scorer, config: Config, embedder: Scorer | None = None):
        self.scorer = scorer
        self.config = config
        # One pass when the scorer can embed like the clustering model; else a separate embedder.
        self.embedder = None if (embedder is None and scorer.embeds_like_minilm and scorer.objective != "triplet") else (
            embedder or Scorer.new(config.embedder or "all-MiniLM-L6-v2").eval_mode()
        )
        if self.embedder is not None:
            self.embedder.to(config.device, config.precision)

    @property
    def passes(self) -> int:
        return 1 if self.embedder is None else 2

    def namespace(self) -> str:
        s = self.scorer
        key = f"{s.fingerprint()}-{str(s.dtype).removeprefix('torch.')}"
        if self.embedder is not None:
            # the embedder's head is unused (and random): only its encoder identifies its embeddings
            key += f"+emb-{self.embedder.fingerprint(embedding_only=True)}-{str(self.embedder.dtype).removeprefix('torch.')}"
        return key

    def compute(self, segments: Segments, progress: ProgressFn | None = None) -> dict[str, np.ndarray]:
        """Uncached computation for a list of segments."""
        bt = self.config.batch_tokens
        if self.embedder is None:
            scores, emb, counts = self.scorer.score_and_embed(segments.texts, bt, progress)
        else:
            scores = self.scorer.score_pairs(segments.prompts, segments.responses, bt)
            _, emb, counts = self.embedder.score_and_embed(segments.texts, bt, progress)
        return {"scores": scores.astype(np.float32), "embeddings": emb.astype(np.float32), "counts": counts}

    def extract(self, segments: Segments, cache: FeatureCache | None = None, chunk: int = 2048,
                progress: ProgressFn | None = None) -> tuple[dict[str, np.ndarray], int]:
        """Features for every segment, reading what the cache has and writing the rest to it chunk by
        chunk (so an interrupted run resumes from its last finished chunk). Returns (features, hits)."""
        m = len(segments.prompts)
        keys = text_keys(segments.texts)
        out = {
            "scores": np.zeros(m, dtype=np.float32),
            "embeddings": np.zeros((m, self.scorer.model.head.config.hidden_size if self.embedder is None
                                    else self.embedder.model.head.config.hidden_size), dtype=np.float32),
            "counts": np.zeros(m, dtype=np.int64),
        }
        found = np.zeros(m, dtype=bool)
        if cache is not None:
            found, cached = cache.lookup(keys)
            if cached is not None:
                for name in out:
                    out[name][found] = cached[name]
        # Identical texts are computed once: map every missing key to its first occurrence.
        missing = np.flatnonzero(~found)
        _, first, inverse = np.unique(keys[missing], return_index=True, return_inverse=True)
        todo = missing[np.sort(first)]
        if progress is not None and len(todo) < len(missing):
            progress(len(missing) - len(todo), 0)
        for start in range(0, len(todo), chunk):
            part = todo[start:start + chunk]
            feats = self.compute(Segments([segments.prompts[i] for i in part], [segments.responses[i] for i in part],
                                          segments.owner[part]), progress)
            for name in out:
                out[name][part] = feats[name]
            if cache is not None:
                cache.put(keys[part], feats)
        if len(todo) < len(missing):  # fill duplicates from their first occurrence
            firsts = missing[first]
            for name in out:
                out[name][missing] = out[name][firsts[inverse]]
        return out, int(found.sum())
