"""The pooled encoder features of every training and validation text, computed once.

With a frozen encoder (the shipped scorers' recipe) every distinct (prompt, response) text is encoded
once and only its pooled layers are kept, so an epoch is a few seconds of head training on a CPU. The
table is cached on disk by encoder, settings and exact text list: retraining other head settings on
the same data reads it back, and it holds the same bytes a fresh computation gives.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..encoding.batching import pad_batch, run_batches
from ..encoding.device import autocast
from ..render import RESPONSE_MARK
from ..scoring.scorer import Scorer
from .pairs import PreferencePair

TRAIN_FEATURES_VERSION = 1  # bump when what TrainingFeatures computes changes


def pair_texts(pairs: Sequence[PreferencePair], objective: str) -> tuple[list[tuple[str, str | None]], np.ndarray]:
    """Unique (prompt, response) items and, per pair, indices of (chosen, rejected[, prompt]) into them.
    A None response means "encode the prompt string alone" (the triplet's texts)."""
    items: list[tuple[str, str | None]] = []
    index: dict[tuple[str, str | None], int] = {}

    def idx(item: tuple[str, str | None]) -> int:
        if item not in index:
            index[item] = len(items)
            items.append(item)
        return index[item]

    rows = []
    for p in pairs:
        if objective == "triplet":
            rows.append((idx((f"Response: {p.chosen}", None)), idx((f"Response: {p.rejected}", None)),
                         idx((p.prompt, None))))
            # the triplet anchor is the (revised) instruction, as in the paper's pairs CSV
        else:
            rows.append((idx((p.prompt, p.chosen)), idx((p.rejected_prompt or p.prompt, p.rejected))))
    return items, np.asarray(rows, dtype=np.int64)


class TrainingFeatures:
    """Pooled features of an item table: precomputed (frozen encoder) or computed per batch.
    Calling it with item rows gives what the head takes: (pooled, stats or None).
    A subclass may pool more views (pool, views) and name them in the cache key (cache_key_views)."""

    def __init__(self, scorer: Scorer, items: list[tuple[str, str | None]], precompute: bool, batch_tokens: int,
                 desc: str, quiet: bool = False, cache_dir: str | os.PathLike | None = None):
        self.scorer = scorer
        cfg = scorer.head_config
        self.multi_view = cfg.multi_view
        self.starts = self.stats = None
        if self.multi_view:
            self.ids, self.starts, stats = scorer.pair_inputs([p for p, _ in items], [r or "" for _, r in items])
            self.stats = torch.from_numpy(stats)
        else:
            self.ids = scorer.tokenize([p if r is None else f"{p}{RESPONSE_MARK}{r}" for p, r in items])
        self.table = None
        cache_file = self._cache_file(cache_dir, items, batch_tokens) if precompute and cache_dir else None
        if cache_file is not None and cache_file.is_file():
            try:
                self.table = torch.load(cache_file, weights_only=True)
                return
            except Exception:  # an unreadable file is recomputed and replaced, never trusted
                self.table = None
        if precompute:
            from tqdm.auto import tqdm

            shape = (len(items), self.views(), cfg.num_layers, cfg.hidden_size) if self.multi_view else \
                (len(items), cfg.num_layers, cfg.hidden_size)
            self.table = torch.zeros(shape)
            with tqdm(total=len(items), desc=f"encode {desc}", unit="text", leave=False, disable=quiet) as bar:
                for batch, (pooled,) in run_batches(self.pool, self.ids, pad_id=scorer.pad_id,
                                                    batch_tokens=batch_tokens, device=scorer.device,
                                                    dtype=scorer.dtype, fixed_layout=True,
                                                    progress=lambda n, _t: bar.update(n),
                                                    extras=(self.starts,) if self.multi_view else ()):
                    self.table[torch.as_tensor(batch)] = torch.from_numpy(pooled)
            if cache_file is not None:
                from ..atomic import atomic_path

                cache_file.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(cache_file) as tmp:
                    torch.save(self.table, tmp)

    def _cache_file(self, cache_dir, items, batch_tokens: int) -> Path:
        """One file per (encoder, settings, exact item list): retraining with other head settings on
        the same data reuses the features; they are the same bytes a fresh computation gives."""
        h = hashlib.sha256()
        s = self.scorer
        h.update(json.dumps([TRAIN_FEATURES_VERSION, s.fingerprint(embedding_only=True), s.max_length,
                             self.multi_view, self.cache_key_views(), s.head_config.tail_tokens,
                             str(s.dtype), s.device.type,
                             batch_tokens]).encode())
        for p, r in items:
            h.update(json.dumps([p, r]).encode("utf-8", "surrogatepass"))
        return Path(cache_dir) / "training-features" / f"{h.hexdigest()[:32]}.pt"

    def views(self) -> int:
        """How many views a multi-view table holds per text."""
        return len(self.scorer.head_config.views)

    def cache_key_views(self) -> list[str]:
        return list(self.scorer.head_config.views)

    def pool(self, input_ids, mask, starts=None):
        """(pooled layers,) of one batch: (batch, views, layers, hidden), or (batch, layers, hidden)."""
        model = self.scorer.model
        return (model.pooled_views(input_ids, mask, starts) if self.multi_view else model.pooled_layers(input_ids, mask),)

    def __call__(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        device = self.scorer.device
        stats = self.stats[torch.as_tensor(rows)].to(device) if self.stats is not None else None
        if self.table is not None:
            return self.table[torch.as_tensor(rows)].to(device), stats
        input_ids, mask = pad_batch([self.ids[i] for i in rows], self.scorer.pad_id)
        starts = torch.as_tensor(self.starts[rows]).to(device) if self.starts is not None else None
        with autocast(device, self.scorer.dtype):
            return self.pool(input_ids.to(device), mask.to(device), starts)[0], stats
