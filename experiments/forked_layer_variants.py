"""A fine-tuned copy of the encoder's last layer for the scorer, tried on validation only.

Every scorer so far reads frozen all-MiniLM-L6-v2 features: the clustering embedding must stay the
paper's, and scoring must cost no second encoder pass. The cheapest way to let the scorer learn
from tokens while keeping both is to fork the last transformer layer: the pass runs layers 1-6 as
today (layer 6's mean is the clustering embedding, unchanged), and a trainable copy of layer 6 reads
the same layer-5 states. That costs one more layer, about a sixth of the pass, and lets the copy's
attention relate the response's tokens to the prompt's, which no pooling of frozen states can.

The head is the shipped one (same inputs and statistics) with the copy's output pooled over the
whole text, the prompt and the response as an eighth layer beside the seven frozen ones. It is trained
as probe, then fine-tune: first the head alone over the cached frozen features (the copy still equals
the last layer), with the shipped recipe's data, loss and settings, kept at its best epoch by the
mean of the four validation accuracies (CaR valid, Auto-J, the LIMA and the Code Alpaca validation
suites): the baseline, measured in the same run. Then the copy and the probed head together (AdamW,
the copy at each --fork-lr, the head at --head-lr), with the figures after every epoch. Nothing
here looks at test data.

The layer-5 token states of every text are kept in memory (bf16, 6 GB; 12 GB at peak; --states-dir keeps them
on disk for the next run). On 2 cores their encoder pass takes 7 minutes, the probe 3, and each
fine-tuning epoch 18 (the copy's forward and backward over 35,000 texts): the defaults (one seed,
one learning rate, one epoch) take about 30 minutes, 21 with the states on disk.

    python experiments/forked_layer_variants.py --out experiments/results/forked_layer_variants.json [--states-dir DIR] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import os
import sys
import time
from dataclasses import replace

import numpy as np
import torch
from torch import nn
from common import DATA, pair_loss, record_result, shipped_recipe_features, train_head, variant_figures, write_results

from car_select.encoding.batching import run_batches
from car_select.scoring.model import ScoringHead, masked_mean_views
from car_select.training.train import seed_everything


class TokenStates:
    """Every text's layer-5 token states, packed without padding (bf16), with each text's offset,
    length and response start, and its cached pooled views and statistics (feats').
    states_dir: where the packed states are kept between runs, named by the texts' token ids."""

    def __init__(self, scorer, feats, states_dir: str | None = None):
        lens = torch.tensor([len(x) for x in feats.ids])
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), lens.cumsum(0)])
        self.lens, self.starts = lens, torch.as_tensor(feats.starts)
        self.pooled, self.stats = feats.table, feats.stats
        path = None
        if states_dir:
            key = hashlib.sha256(repr((scorer.fingerprint(embedding_only=True), feats.ids)).encode()).hexdigest()[:32]
            path = os.path.join(states_dir, f"{key}.pt")
            if os.path.exists(path):
                self.flat = torch.load(path, weights_only=True)
                return
        self.flat = torch.zeros((int(lens.sum()), scorer.head_config.hidden_size), dtype=torch.bfloat16)
        for batch, (h,) in run_batches(lambda ids, mask: (scorer.model.hidden_states(ids, mask)[-2],), feats.ids,
                                       pad_id=scorer.pad_id, batch_tokens=16384, device=scorer.device,
                                       dtype=scorer.dtype, fixed_layout=True):
            for row, states in zip(batch, torch.from_numpy(h)):
                n = int(lens[row])
                self.flat[self.offsets[row]:self.offsets[row] + n] = states[:n].to(torch.bfloat16)
        if path:
            from car_select.atomic import atomic_path

            with atomic_path(path) as tmp:
                torch.save(self.flat, tmp)

    def batch(self, rows):
        """(states (b, t, hidden) bf16 right-padded, mask (b, t), response starts, pooled views, stats)."""
        rows = torch.as_tensor(rows)
        t = int(self.lens[rows].max())
        states = torch.zeros((len(rows), t, self.flat.shape[1]), dtype=torch.bfloat16)
        mask = torch.zeros((len(rows), t), dtype=torch.long)
        for i, r in enumerate(rows.tolist()):
            n = int(self.lens[r])
            states[i, :n] = self.flat[self.offsets[r]:self.offsets[r] + n]
            mask[i, :n] = 1
        return states, mask, self.starts[rows], self.pooled[rows].float(), self.stats[rows].float()


class ForkedLayerHead(nn.Module):
    """A head over the seven frozen layers and a trainable copy of the last layer (config: the head's,
    with num_layers counting the copy)."""

    def __init__(self, config, last_layer: nn.Module):
        super().__init__()
        self.fork = copy.deepcopy(last_layer).requires_grad_(True)  # the encoder's own layers are frozen
        self.head = ScoringHead(config)

    def forward(self, store: TokenStates, rows) -> torch.Tensor:
        states, mask, starts, pooled, stats = store.batch(rows)
        additive = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = self.fork(states, attention_mask=additive)
            out = out[0] if isinstance(out, tuple) else out
        views = masked_mean_views([out], mask, starts)  # (b, 3, 1, hidden) fp32
        return self.head(torch.cat([pooled, views], 2), stats)


def scores_of(model, store: TokenStates, n: int, batch: int = 128) -> np.ndarray:
    model.eval()
    order = np.argsort(store.lens.numpy()[:n])  # similar lengths together: less padding
    out = np.zeros(n, dtype=np.float32)
    with torch.no_grad():
        for k in range(0, n, batch):
            rows = order[k:k + batch]
            out[rows] = model(store, rows).float().numpy()
    return out


def length_buckets(rows: np.ndarray, lens: torch.Tensor, rng, batch_pairs: int = 64, pool: int = 16) -> list:
    """Shuffled batches of pair indices; within each run of `pool` batches the pairs are sorted by their
    longer text so a batch pads little (the batches' order is shuffled again)."""
    order = rng.permutation(len(rows))
    longest = np.maximum(lens.numpy()[rows[:, 0]], lens.numpy()[rows[:, 1]])
    batches = []
    for k in range(0, len(order), batch_pairs * pool):
        chunk = order[k:k + batch_pairs * pool]
        chunk = chunk[np.argsort(longest[chunk], kind="stable")]
        batches += [chunk[j:j + batch_pairs] for j in range(0, len(chunk), batch_pairs)]
    return [batches[i] for i in rng.permutation(len(batches))]


class WithLastLayerTwice:
    """Cached pooled features with the last layer's views repeated as an eighth layer: what the forked
    head sees while its copy of the last layer is still the frozen one."""

    def __init__(self, feats):
        self.feats, self.table = feats, feats.table

    def __call__(self, rows):
        pooled, stats = self.feats(rows)
        return torch.cat([pooled, pooled[:, :, -1:]], 2), stats


def fine_tune(model: ForkedLayerHead, train: TokenStates, rows, weights, data, valid: TokenStates, valid_rows,
              epochs: int, seed: int, fork_lr: float, head_lr: float, weight_decay: float = 0.01) -> list[dict]:
    """Train the copy and the head together from a probed head: the validation figures after each epoch,
    epoch 0 (the probed head read through the copy, in bf16) included."""
    seed_everything(seed)
    opt = torch.optim.AdamW([{"params": list(model.head.parameters()), "lr": head_lr},
                             {"params": list(model.fork.parameters()), "lr": fork_lr}], weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    w = torch.as_tensor(weights, dtype=torch.float32)
    start = copy.deepcopy(model.fork)
    figures = [variant_figures(data.valid, valid_rows, scores_of(model, valid, len(valid.lens)))]
    for epoch in range(1, epochs + 1):
        model.train()
        t0 = time.time()
        for b in length_buckets(rows, train.lens, rng):
            loss = pair_loss(lambda items: model(train, items), rows[b], w[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        figures.append(variant_figures(data.valid, valid_rows, scores_of(model, valid, len(valid.lens))))
        moved = sum(float((p - q).norm()) for p, q in zip(model.fork.parameters(), start.parameters()))
        print(f"epoch {epoch}: {time.time() - t0:.0f} s, the copy's weights moved by {moved:.3g}", file=sys.stderr,
              flush=True)
        if not moved:
            raise RuntimeError("the copy of the last layer did not train")
    return figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--states-dir", default=None, help="keep the layer-5 token states here (about 6 GB)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--fork-lr", type=float, action="append", help="the copy's learning rate(s) (default 2e-5)")
    ap.add_argument("--head-lr", type=float, default=1e-4, help="the probed head's learning rate while fine-tuning")
    ap.add_argument("--seeds", default="42")
    ap.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs after the probe")
    args = ap.parse_args()
    if args.cache_dir is None:
        from car_select.config import default_cache_dir
        args.cache_dir = default_cache_dir()
    data, settings, scorer, tf, tr, vf, vr = shipped_recipe_features(args)
    t0 = time.time()
    train, valid = TokenStates(scorer, tf, args.states_dir), TokenStates(scorer, vf, args.states_dir)
    print(f"layer-5 states of {len(train.lens) + len(valid.lens)} texts in {time.time() - t0:.0f} s",
          file=sys.stderr, flush=True)
    wide = replace(scorer.head_config, members=1, num_layers=scorer.head_config.num_layers + 1)
    last_layer = scorer.model.encoder.encoder.layer[-1]
    weights = np.array(data.weights)
    results = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        # 1. the probe: the shipped recipe's head over frozen features (the copy = the last layer)
        probe, epoch, s = train_head(wide, WithLastLayerTwice(tf), tr, weights, data.valid, WithLastLayerTwice(vf),
                                     vr, settings.epochs, settings.patience, seed=seed, lr=settings.lr_head,
                                     weight_decay=settings.weight_decay)
        record_result(results, f"frozen features (the probe), seed {seed}", s, epoch)
        # 2. the copy and the probed head trained together
        for fork_lr in args.fork_lr or [2e-5]:
            model = ForkedLayerHead(wide, last_layer)
            model.head.load_state_dict(probe.state_dict())
            for epoch, s in enumerate(fine_tune(model, train, tr, weights, data, valid, vr, args.epochs, seed,
                                                fork_lr, args.head_lr)):
                record_result(results, f"probe + copy of the last layer at lr {fork_lr:g} (head {args.head_lr:g}), "
                                       f"seed {seed}, epoch {epoch}", s, None)
    write_results(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
