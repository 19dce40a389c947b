"""Token-level views tried on validation only: does the scorer gain from looking at the response's
tokens one by one rather than pooled?

The shipped head sees each layer mean-pooled over the whole text, the prompt and the response. Here
the same head also gets, from the last layer of the same encoder pass, one of:
- "attention": 4 learned attention poolings over the response's tokens;
- "max": the response's tokens max-pooled;
- "alignment": 6 statistics of token-to-token cosine similarity (response tokens' best match in the
  prompt and the reverse, BERTScore-like; adjacent response tokens' similarity; spread around the
  response's mean), meant for off-topic answers and shuffled words.
One head per variant (seed 42), pairwise loss, the epoch kept on the mean validation accuracy, as in
scorer_variants.py, whose data and summary it shares. The last layer's token states of every
training and validation text are kept in memory (about 4 GB in fp16); their encoder pass takes
about 10 minutes on 2 cores, each variant a few more.

    python experiments/token_view_variants.py --out experiments/results/token_view_variants.json
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import torch
from torch import nn
from common import default_recipe_features, parse_args, record_result, train_head, write_results

from car_select.encoding.batching import run_batches
from car_select.scoring.model import FeedForward, ScoringHead


KINDS = {"attention": 4 * 384, "max": 384, "alignment": 6}


def last_layer_tokens(scorer, feats) -> dict:
    """Every text's last-layer token states (n, max_length, hidden) fp16, with lengths and response starts."""
    table = torch.zeros((len(feats.ids), scorer.max_length, scorer.head_config.hidden_size), dtype=torch.float16)
    for batch, (h,) in run_batches(lambda ids, mask: (scorer.model.hidden_states(ids, mask)[-1],), feats.ids,
                                   pad_id=scorer.pad_id, batch_tokens=16384, device=scorer.device,
                                   dtype=scorer.dtype, fixed_layout=True):
        table[torch.as_tensor(batch), :h.shape[1]] = torch.from_numpy(h).half()
    return {"table": table, "lens": torch.tensor([len(x) for x in feats.ids]), "starts": torch.as_tensor(feats.starts),
            "pooled": feats.table, "stats": feats.stats}


def _mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum(1) / mask.sum(1).clamp(min=1)


class TokenViewHead(nn.Module):
    """The shipped head's inputs plus one token-level view; a wider feed-forward on top."""

    def __init__(self, config, kind: str):
        super().__init__()
        self.kind = kind
        self.base = ScoringHead(config)
        base_in = self.base.estimator.ff[0].in_features
        self.base.estimator = FeedForward(base_in + KINDS[kind], config.hidden_sizes, 1, config.activation,
                                          config.dropout)
        if kind == "attention":
            self.queries = nn.Linear(config.hidden_size, 4)

    def token_view(self, h, resp, prompt):
        any_resp = resp.any(1)
        if self.kind == "attention":
            w = self.queries(h).masked_fill(~resp[..., None], -1e4).softmax(1) * any_resp[:, None, None]
            return torch.einsum("btk,bth->bkh", w, h).flatten(1)
        if self.kind == "max":
            return h.masked_fill(~resp[..., None], -1e4).amax(1) * any_resp[:, None]
        hn = nn.functional.normalize(h, dim=-1)
        sim = torch.einsum("bth,bsh->bts", hn, hn).masked_fill(~(resp[:, :, None] & prompt[:, None, :]), -2)
        adjacent = (hn[:, 1:] * hn[:, :-1]).sum(-1)
        both = (resp[:, 1:] & resp[:, :-1]).float()
        centre = nn.functional.normalize((h * resp[..., None]).sum(1), dim=-1)
        r, p = resp.float(), prompt.float()
        return torch.stack([_mean(sim.amax(2).clamp(min=0), r), _mean(sim.amax(1).clamp(min=0), p),
                            _mean((sim.amax(2) > 0.7).float(), r), _mean(adjacent, both),
                            _mean((hn * centre[:, None]).sum(-1), r), _mean((adjacent < 0.5).float(), both)], 1)

    def forward(self, tokens: dict, rows) -> torch.Tensor:
        rows = torch.as_tensor(rows)
        lens, starts = tokens["lens"][rows], tokens["starts"][rows]
        h = tokens["table"][rows, :int(lens.max())].float()
        pos = torch.arange(h.shape[1])[None]
        resp = (pos >= starts[:, None]) & (pos < lens[:, None] - 1)  # the response's tokens, not [SEP]
        prompt = (pos >= 1) & (pos < starts[:, None])
        b = self.base
        pooled, stats = tokens["pooled"][rows].float(), tokens["stats"][rows].float()
        x = torch.cat([b.inputs(pooled, stats), self.token_view(h, resp, prompt)], 1)
        return b.estimator(x).squeeze(-1)


def main() -> int:
    args = parse_args(__doc__)
    data, settings, scorer, tf, tr, vf, vr = default_recipe_features(args)
    config = replace(scorer.head_config, members=1)
    train_tokens, valid_tokens = last_layer_tokens(scorer, tf), last_layer_tokens(scorer, vf)
    results = {}
    for kind in KINDS:
        _, epoch, s = train_head(config, lambda rows: (train_tokens, rows), tr, np.ones(len(tr)), data.valid,
                                 lambda rows: (valid_tokens, rows), vr, settings.epochs, settings.patience,
                                 make_head=lambda: TokenViewHead(config, kind), n_valid=len(vf.table))
        name = f"shipped inputs + {kind} view of the response's tokens"
        record_result(results, name, s, epoch)
    write_results(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
