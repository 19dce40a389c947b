"""Train a quality scorer on preference pairs, choosing the checkpoint on validation pairwise accuracy.

Two regimes share one loop:
- frozen encoder (the default, as the shipped scorer): every text's pooled layer features are
  computed once, then only the layer mix and head train, which takes seconds per epoch on a CPU and
  keeps the scorer's encoder identical to the clustering model (one encoder pass at selection time);
- trained encoder (`train_encoder=True`, the paper's recipe for xlm-roberta-large on a GPU): embeddings
  frozen, the encoder frozen for the first `frozen_epochs` of training, AdamW with layer-wise learning
  rate decay on the encoder.
Objectives: "regression" (the paper's IQS: MSE to 1 for the revised answer and 0 for the original),
"pairwise" (Bradley-Terry: logistic loss on the score difference of a pair), and "triplet" (the
paper's "Comet": anchor = instruction, positive = revised, negative = original, score 1/(1+distance)).
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch import nn

from ..encode import run_batches
from ..errors import CarSelectError
from .evaluate import ScorerEvaluation, evaluate_pairs
from .model import OBJECTIVES, ScoringHead
from .pairs import PreferencePair
from .scorer import Scorer


@dataclass
class TrainSettings:
    encoder: str = "all-MiniLM-L6-v2"
    # Defaults: the shipped scorer's recipe, chosen on validation pairwise accuracy (see README).
    objective: str = "regression"
    hidden_sizes: list[int] = field(default_factory=lambda: [1024])
    activation: str = "Tanh"
    dropout: float = 0.1
    max_length: int = 256
    epochs: int = 20
    batch_pairs: int = 32
    lr_head: float = 1e-3
    weight_decay: float = 0.01
    patience: int = 8  # epochs without a better validation accuracy before stopping
    members: int = 4  # heads trained from consecutive seeds and averaged
    triplet_margin: float = 1.0
    triplet_dim: int = 256
    train_encoder: bool = False
    lr_encoder: float = 1e-6  # paper
    layer_decay: float = 0.95  # paper
    frozen_epochs: float = 0.3  # paper: encoder frozen for the first 30% of epoch 1
    seed: int = 42
    batch_tokens: int = 16384  # the training features' batch size: part of what fixes a retrain's bytes
    device: str = "auto"
    precision: str = "auto"

    def validate(self) -> "TrainSettings":
        if self.objective not in OBJECTIVES:
            raise CarSelectError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.epochs < 1 or self.batch_pairs < 1 or self.members < 1:
            raise CarSelectError("--epochs, --batch-pairs and --members must be >= 1")
        return self


@dataclass
class TrainResult:
    scorer: Scorer
    best_epochs: list[int]  # per member
    valid: dict[str, ScorerEvaluation]  # per validation set
    history: list[dict]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _pair_texts(pairs: Sequence[PreferencePair], objective: str) -> tuple[list[tuple[str, str | None]], np.ndarray]:
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


class _Features:
    """Pooled features of an item table: precomputed (frozen encoder) or computed per batch.
    Calling it with item rows gives what the head takes: (pooled, stats or None)."""

    def __init__(self, scorer: Scorer, items: list[tuple[str, str | None]], precompute: bool, batch_tokens: int,
                 desc: str, quiet: bool = False):
        from ..render import RESPONSE_MARK

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
        if precompute:
            from tqdm.auto import tqdm

            shape = (len(items), 3, cfg.num_layers, cfg.hidden_size) if self.multi_view else \
                (len(items), cfg.num_layers, cfg.hidden_size)
            self.table = torch.zeros(shape)
            with tqdm(total=len(items), desc=f"encode {desc}", unit="text", leave=False, disable=quiet) as bar:
                for batch, (pooled,) in run_batches(self._pool, self.ids, pad_id=scorer.pad_id,
                                                    batch_tokens=batch_tokens, device=scorer.device,
                                                    dtype=scorer.dtype, fixed_layout=True,
                                                    progress=lambda n, _t: bar.update(n),
                                                    extras=(self.starts,) if self.multi_view else ()):
                    self.table[torch.as_tensor(batch)] = torch.from_numpy(pooled)

    def _pool(self, input_ids, mask, starts=None):
        model = self.scorer.model
        return (model.pooled_views(input_ids, mask, starts) if self.multi_view else model.pooled_layers(input_ids, mask),)

    def __call__(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        device = self.scorer.device
        stats = self.stats[torch.as_tensor(rows)].to(device) if self.stats is not None else None
        if self.table is not None:
            return self.table[torch.as_tensor(rows)].to(device), stats
        from ..encode import autocast, pad_batch

        input_ids, mask = pad_batch([self.ids[i] for i in rows], self.scorer.pad_id)
        starts = torch.as_tensor(self.starts[rows]).to(device) if self.starts is not None else None
        with autocast(device, self.scorer.dtype):
            return self._pool(input_ids.to(device), mask.to(device), starts)[0], stats


def _scores(scorer: Scorer, feats: torch.Tensor, rows: np.ndarray, objective: str) -> tuple[np.ndarray, np.ndarray]:
    """(chosen, rejected) scores for pair rows, in eval mode."""
    head = scorer.model.head
    out = []
    with torch.no_grad():
        for start in range(0, len(rows), 512):
            r = rows[start:start + 512]
            if objective == "triplet":
                a, c, n = head(*feats(r[:, 2])), head(*feats(r[:, 0])), head(*feats(r[:, 1]))
                out.append(torch.stack([1 / (1 + (a - c).norm(dim=1)), 1 / (1 + (a - n).norm(dim=1))], 1))
            else:
                out.append(torch.stack([head(*feats(r[:, 0])), head(*feats(r[:, 1]))], 1))
    s = torch.cat(out).float().cpu().numpy()
    return s[:, 0], s[:, 1]


def _loss(scorer: Scorer, feats, rows: np.ndarray, settings: TrainSettings) -> torch.Tensor:
    head = scorer.model.head
    if settings.objective == "triplet":
        a, c, n = head(*feats(rows[:, 2])), head(*feats(rows[:, 0])), head(*feats(rows[:, 1]))
        return nn.functional.triplet_margin_loss(a, c, n, margin=settings.triplet_margin)
    both = head(*feats(np.concatenate([rows[:, 0], rows[:, 1]])))
    chosen, rejected = both[: len(rows)], both[len(rows):]
    if settings.objective == "regression":
        return 0.5 * (((chosen - 1) ** 2).mean() + (rejected ** 2).mean())
    return nn.functional.softplus(rejected - chosen).mean()


def _param_groups(scorer: Scorer, head: nn.Module, settings: TrainSettings) -> list[dict]:
    groups = [{"params": list(head.parameters()), "lr": settings.lr_head}]
    if settings.train_encoder:
        enc = scorer.model.encoder
        layers = getattr(getattr(enc, "encoder", None), "layer", None)
        if layers is None:
            raise CarSelectError("--train-encoder needs a BERT-like encoder (with .encoder.layer)")
        n = len(layers)
        for depth, layer in enumerate(layers):  # top layer gets lr_encoder, each lower one decays
            groups.append({"params": list(layer.parameters()),
                           "lr": settings.lr_encoder * settings.layer_decay ** (n - 1 - depth)})
        for p in enc.embeddings.parameters():  # paper: embeddings stay frozen
            p.requires_grad_(False)
    return groups


def _validate(scorer: Scorer, valid: dict[str, Sequence[PreferencePair]], feats, rows: np.ndarray,
              objective: str) -> dict[str, ScorerEvaluation]:
    """Evaluation per validation set; `rows` are every set's pair rows, concatenated in order."""
    chosen, rejected = _scores(scorer, feats, rows, objective)
    out, start = {}, 0
    for name, pairs in valid.items():
        end = start + len(pairs)
        out[name] = evaluate_pairs(pairs, chosen[start:end], rejected[start:end])
        start = end
    return out


def _criterion(evaluations: dict[str, ScorerEvaluation]) -> float:
    """What chooses the epoch: the mean pairwise accuracy over the validation sets."""
    return float(np.mean([e.pairwise_accuracy for e in evaluations.values()]))


def _train_member(scorer: Scorer, head: nn.Module, train_feats, train_rows, valid, valid_feats, valid_rows,
                  settings: TrainSettings, seed: int, quiet: bool) -> tuple[int, list[dict]]:
    """Train `head` (and the encoder when asked); leaves the best validation epoch's weights loaded."""
    from tqdm.auto import trange

    seed_everything(seed)
    scorer.model.head = head
    optimizer = torch.optim.AdamW(_param_groups(scorer, head, settings), weight_decay=settings.weight_decay)
    steps_per_epoch = math.ceil(len(train_rows) / settings.batch_pairs)
    unfreeze_at = int(settings.frozen_epochs * steps_per_epoch)
    rng = np.random.default_rng(seed)
    best = (-1.0, 0, None)
    history = []
    step = 0
    for epoch in trange(1, settings.epochs + 1, desc=f"epochs (seed {seed})", leave=False, disable=quiet):
        head.train()
        if settings.train_encoder:
            scorer.model.encoder.train()
        order = rng.permutation(len(train_rows))
        total = 0.0
        for start in range(0, len(order), settings.batch_pairs):
            if settings.train_encoder and step == unfreeze_at:
                for name, p in scorer.model.encoder.named_parameters():
                    p.requires_grad_(not name.startswith("embeddings."))
            rows = train_rows[order[start:start + settings.batch_pairs]]
            loss = _loss(scorer, train_feats, rows, settings)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
            step += 1
        scorer.model.eval()
        evaluations = _validate(scorer, valid, valid_feats, valid_rows, settings.objective)
        acc = _criterion(evaluations)
        history.append({"seed": seed, "epoch": epoch, "train_loss": total / len(order), "valid_criterion": acc,
                        **{f"valid_{k}": e.pairwise_accuracy for k, e in evaluations.items()}})
        if acc > best[0]:
            state = scorer.model.state_dict() if settings.train_encoder else head.state_dict()
            best = (acc, epoch, copy.deepcopy(state))
        elif epoch - best[1] >= settings.patience:
            break
    (scorer.model if settings.train_encoder else head).load_state_dict(best[2])
    return best[1], history


def train_scorer(train: Sequence[PreferencePair],
                 valid: Sequence[PreferencePair] | dict[str, Sequence[PreferencePair]],
                 settings: TrainSettings, quiet: bool = False) -> TrainResult:
    """Train on `train`; each epoch is judged by the mean pairwise accuracy over the validation
    sets (a list is one set named "valid")."""
    settings.validate()
    valid = dict(valid) if isinstance(valid, dict) else {"valid": list(valid)}
    if settings.train_encoder and settings.members != 1:
        raise CarSelectError("--members must be 1 with --train-encoder (the members would share one encoder)")
    seed_everything(settings.seed)
    head = {"hidden_sizes": list(settings.hidden_sizes), "activation": settings.activation,
            "dropout": settings.dropout, "objective": settings.objective,
            "output_size": settings.triplet_dim if settings.objective == "triplet" else 1}
    scorer = Scorer.new(settings.encoder, head, settings.max_length, train_encoder=settings.train_encoder)
    scorer.to(settings.device, settings.precision)
    for p in scorer.model.encoder.parameters():
        p.requires_grad_(False)
    train_texts, train_rows = _pair_texts(train, settings.objective)
    valid_texts, valid_rows = _pair_texts([p for pairs in valid.values() for p in pairs], settings.objective)
    precompute = not settings.train_encoder
    scorer.model.eval()
    train_feats = _Features(scorer, train_texts, precompute, settings.batch_tokens, "train", quiet)
    valid_feats = _Features(scorer, valid_texts, precompute, settings.batch_tokens, "valid", quiet)

    # Each member starts from its own seed and keeps its own best validation epoch.
    single = replace(scorer.head_config, members=1)
    members, best_epochs, history = [], [], []
    for m in range(settings.members):
        member = ScoringHead(single).to(scorer.device)
        epoch, hist = _train_member(scorer, member, train_feats, train_rows, valid, valid_feats, valid_rows,
                                    settings, settings.seed + m, quiet)
        members.append(member)
        best_epochs.append(epoch)
        history += hist
    if settings.members == 1:
        scorer.model.head = members[0]
    else:
        ensemble = ScoringHead(replace(single, members=settings.members)).to(scorer.device)
        ensemble.members = nn.ModuleList(members)
        scorer.model.head = ensemble
    scorer.eval_mode()
    evaluations = _validate(scorer, valid, valid_feats, valid_rows, settings.objective)
    scorer.meta = {"training": {**asdict(settings), "best_epochs": best_epochs, "train_pairs": len(train),
                                "valid_pairs": {k: len(v) for k, v in valid.items()}},
                   "valid": {k: e.to_dict() for k, e in evaluations.items()}}
    return TrainResult(scorer, best_epochs, evaluations, history)


def score_pairs(scorer: Scorer, pairs: Sequence[PreferencePair], batch_tokens: int = 16384):
    """(chosen scores, rejected scores) for evaluation with any scorer."""
    chosen = scorer.score_pairs([p.prompt for p in pairs], [p.chosen for p in pairs], batch_tokens)
    rejected = scorer.score_pairs([p.rejected_prompt or p.prompt for p in pairs], [p.rejected for p in pairs],
                                  batch_tokens)
    return chosen, rejected
