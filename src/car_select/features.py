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
from .encoding.device import resolve_device, resolve_precision
from .encoding.settings import EncoderSettings, use_settings
from .scoring.scorer import Scorer, saved_one_pass_fingerprint

ProgressFn = Callable[[int, int], None]  # (texts done, tokens done) increments
# Texts per encoder call (FeatureExtractor.extract's chunks: what an interrupted run resumes from), and
# records per Featurize call on Ray (executors/ray.py). A text's features do not depend on its chunk
# (encoding/batching.py batches one token count at a time), so any chunking gives the same numbers.
ENCODE_CHUNK = 2048


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
              how: str = "mean_min") -> tuple[np.ndarray, np.ndarray]:
    """Per-record score and embedding from per-segment ones (identity for single-turn records)."""
    if len(owner) == n and (n == 0 or (owner == np.arange(n)).all()):
        return scores.astype(np.float32), embeddings.astype(np.float32)
    rec_scores = np.zeros(n, dtype=np.float64)
    if how in ("mean", "mean_min"):
        rec_scores = np.bincount(owner, weights=scores, minlength=n) / np.bincount(owner, minlength=n)
    if how in ("min", "mean_min"):
        worst = np.full(n, np.inf)
        np.minimum.at(worst, owner, scores)
        # mean_min: half the mean, half the worst exchange (experiments/turn_aggregate_variants.py)
        rec_scores = worst if how == "min" else 0.5 * (rec_scores + worst)
    if how == "last":  # the final exchange, the one a trainer usually supervises
        rec_scores[owner] = scores  # later segments overwrite earlier ones
    weights = counts.astype(np.float64)[:, None]
    emb = np.zeros((n, embeddings.shape[1]), dtype=np.float64)
    np.add.at(emb, owner, embeddings * weights)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return rec_scores.astype(np.float32), emb.astype(np.float32)


def load_scorer(config: Config) -> Scorer:
    return Scorer.load(config.scorer).to(config.device, config.precision)


class FeatureExtractor:
    """Turns segments into (score, embedding, token count) per segment, through the cache.

    Given no scorer, it loads the configured one only when something is not cached: a saved scorer's
    cache key comes from its files, so re-selecting from a warm cache never loads a model."""

    def __init__(self, scorer: Scorer | None, config: Config, embedder: Scorer | None = None):
        self._scorer = scorer
        self.config = config
        self._embedder_arg = embedder
        self._embedder: Scorer | None | bool = False  # False: not decided yet

    @property
    def scorer(self) -> Scorer:
        if self._scorer is None:
            self._scorer = load_scorer(self.config)
        return self._scorer

    @property
    def embedder(self) -> Scorer | None:
        """None when the scorer's own pass gives the clustering embedding; else a separate encoder."""
        if self._embedder is False:
            one_pass = (self._embedder_arg is None and not self.config.embedder
                        and self.scorer.embeds_like_minilm and self.scorer.objective != "triplet")
            if one_pass:
                self._embedder = None
            elif self._embedder_arg is not None:
                self._embedder = self._embedder_arg
            else:  # a sentence-transformers model with its own pooling (not a scorer with a random head)
                from .embedder import SentenceEmbedder

                self._embedder = SentenceEmbedder(self.config.embedder or "all-MiniLM-L6-v2",
                                                  max_length=self.config.max_length).eval_mode()
            if self._embedder is not None:
                self._embedder.to(self.config.device, self.config.precision)
        return self._embedder

    def _saved_one_pass_fingerprint(self) -> str | None:
        if self._scorer is not None or self._embedder_arg is not None or self.config.embedder:
            return None
        return saved_one_pass_fingerprint(self.config.scorer)

    @property
    def passes(self) -> int:
        if self._saved_one_pass_fingerprint():
            return 1
        return 1 if self.embedder is None else 2

    def namespace(self) -> str:
        known = self._saved_one_pass_fingerprint()
        if known:
            dtype = resolve_precision(self.config.precision, resolve_device(self.config.device))
            return f"{known}-{str(dtype).removeprefix('torch.')}"
        s = self.scorer
        key = f"{s.fingerprint()}-{str(s.dtype).removeprefix('torch.')}"
        if self.embedder is not None:
            # the embedder's head is unused (and random): only its encoder identifies its embeddings
            key += f"+emb-{self.embedder.fingerprint(embedding_only=True)}-{str(self.embedder.dtype).removeprefix('torch.')}"
        return key

    def compute(self, segments: Segments, progress: ProgressFn | None = None) -> dict[str, np.ndarray]:
        """Uncached computation for a list of segments."""
        bt = self.config.batch_tokens
        with use_settings(EncoderSettings.of(self.config)):  # this run's encoder knobs, not the defaults
            if self.embedder is None:
                scores, emb, counts = self.scorer.score_and_embed_pairs(segments.prompts, segments.responses, bt,
                                                                        progress)
            else:
                scores = self.scorer.score_pairs(segments.prompts, segments.responses, bt)
                _, emb, counts = self.embedder.score_and_embed(segments.texts, bt, progress)
        return {"scores": scores.astype(np.float32), "embeddings": emb.astype(np.float32), "counts": counts}

    def extract(self, segments: Segments, cache: FeatureCache | None = None,
                progress: ProgressFn | None = None) -> tuple[dict[str, np.ndarray], int]:
        """Features for every segment, reading what the cache has and writing the rest to it ENCODE_CHUNK
        texts at a time (so an interrupted run resumes from its last finished chunk). Returns (features, hits)."""
        m = len(segments.prompts)
        keys = text_keys(segments.texts)
        out = {
            "scores": np.zeros(m, dtype=np.float32),
            "embeddings": None,  # (m, hidden) once the width is known (from the cache or the model)
            "counts": np.zeros(m, dtype=np.int64),
        }
        found = np.zeros(m, dtype=bool)
        if cache is not None:
            found, cached = cache.lookup(keys)
            if cached is not None:
                out["embeddings"] = np.zeros((m, cached["embeddings"].shape[1]), dtype=np.float32)
                for name in out:
                    out[name][found] = cached[name]
        # Identical texts are computed once: map every missing key to its first occurrence.
        missing = np.flatnonzero(~found)
        _, first, inverse = np.unique(keys[missing], return_index=True, return_inverse=True)
        todo = missing[np.sort(first)]
        if progress is not None and len(todo) < len(missing):
            progress(len(missing) - len(todo), 0)
        for start in range(0, len(todo), ENCODE_CHUNK):
            part = todo[start:start + ENCODE_CHUNK]
            feats = self.compute(Segments([segments.prompts[i] for i in part], [segments.responses[i] for i in part],
                                          segments.owner[part]), progress)
            if out["embeddings"] is None:
                out["embeddings"] = np.zeros((m, feats["embeddings"].shape[1]), dtype=np.float32)
            for name in out:
                out[name][part] = feats[name]
            if cache is not None:
                cache.put(keys[part], feats)
        if len(todo) < len(missing):  # fill duplicates from their first occurrence
            firsts = missing[first]
            for name in out:
                out[name][missing] = out[name][firsts[inverse]]
        return out, int(found.sum())
