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
import os
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch import nn

from ..errors import CarSelectError
from ..scoring.model import OBJECTIVES, VIEW_SETS, ScoringHead
from ..scoring.scorer import Scorer
from ..scoring.textstats import STAT_NAMES
from .evaluate import ScorerEvaluation, evaluate_pairs
from .features import TrainingFeatures, pair_texts
from .pairs import PreferencePair


@dataclass
class TrainSettings:
    encoder: str = "all-MiniLM-L6-v2"
    # Defaults: the shipped default scorer's recipe, chosen on validation (see README); RECIPES holds
    # the other shipped scorer's ("car-paper": the paper's IQS objective over the whole-text view).
    objective: str = "pairwise"
    # The response's halves as well lost on validation (experiments/halves_variants.py)
    views: list[str] = field(default_factory=lambda: list(VIEW_SETS[1]))
    # All 25 of textstats.STAT_NAMES: the order and layout ones were chosen on a Code Alpaca corruption
    # suite held apart for validation (experiments/order_stat_variants.py); the last 2 (whitespace
    # excess, uppercase share) see padding and shouting the uncased encoder cannot; two more lost on
    # validation (experiments/halves_variants.py, experiments/subword_stat_variants.py)
    text_stats: int = 25
    # Of a text longer than the window, the last tokens kept in place of those before them, so the
    # head sees what was appended to a long answer (multi-view heads only; 0: the first max_length;
    # at most half of max_length; None: a quarter of max_length, 64 of 256)
    tail_tokens: int | None = None
    negatives_per_answer: int = 1  # corruption negatives per chosen answer (used by the CLI's data assembly)
    # A second draw of negatives, one of these kinds per answer where it applies (data.with_negatives'
    # extra_kinds; corruptions.COPY_KINDS: the input pasted, a role marker leaked, a summary longer than
    # its source). Empty: none (see docs/scorer.md for what training on them did on validation)
    extra_negative_kinds: list[str] = field(default_factory=list)
    # Loss weight of the off_topic negatives (another record's answer; other negatives weigh 1): at 1 the
    # head ranked fluent code for another request above the right answer (validation only:
    # experiments/off_topic_weight_variants.py)
    off_topic_weight: float = 3.0
    hidden_sizes: list[int] = field(default_factory=lambda: [1024])
    activation: str = "Tanh"
    dropout: float = 0.1
    max_length: int = 256
    epochs: int = 12
    batch_pairs: int = 64
    lr_head: float = 1e-3
    weight_decay: float = 0.01
    patience: int = 4  # epochs without a better validation criterion before stopping
    members: int = 2  # heads trained from consecutive seeds and averaged
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

    def __post_init__(self):
        if self.tail_tokens is None:
            self.tail_tokens = self.max_length // 4

    def validate(self) -> "TrainSettings":
        if list(self.views) not in VIEW_SETS:
            raise CarSelectError(f"views must be one of {VIEW_SETS}, got {self.views}")
        if not 0 <= self.text_stats <= len(STAT_NAMES):
            raise CarSelectError(f"text_stats must be between 0 and {len(STAT_NAMES)}, got {self.text_stats}")
        if not 0 <= self.tail_tokens <= self.max_length // 2:
            # more would let the tail crowd out the text's start (or, past max_length, overflow the window)
            raise CarSelectError(f"tail_tokens must be between 0 and half of max_length ({self.max_length // 2}), "
                                 f"got {self.tail_tokens}")
        if self.tail_tokens and list(self.views) == ["full"]:
            raise CarSelectError("tail_tokens needs the multi-view head (views other than ['full'])")
        if self.objective == "triplet" and (list(self.views) != ["full"] or self.text_stats):
            raise CarSelectError("the triplet objective takes the whole-text view only (--recipe car-paper)")
        if self.objective not in OBJECTIVES:
            raise CarSelectError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.epochs < 1 or self.batch_pairs < 1 or self.members < 1:
            raise CarSelectError("--epochs, --batch-pairs and --members must be >= 1")
        return self


# Settings that differ from TrainSettings' defaults, per shipped scorer recipe.
RECIPES = {
    "default": {},
    "car-paper": {"objective": "regression", "views": ["full"], "text_stats": 0, "tail_tokens": 0, "negatives_per_answer": 0,
                  "off_topic_weight": 1.0, "epochs": 20, "patience": 8, "members": 4, "batch_pairs": 32},
}


@dataclass
class TrainResult:
    scorer: Scorer
    best_epochs: list[int]  # per member
    valid: dict[str, ScorerEvaluation]  # per validation set
    history: list[dict]
    valid_scores: dict[str, tuple[np.ndarray, np.ndarray]]  # (chosen, rejected) per validation set


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

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


def _loss(scorer: Scorer, feats, rows: np.ndarray, settings: TrainSettings,
          weights: torch.Tensor | None = None) -> torch.Tensor:
    head = scorer.model.head
    if settings.objective == "triplet":
        a, c, n = head(*feats(rows[:, 2])), head(*feats(rows[:, 0])), head(*feats(rows[:, 1]))
        return nn.functional.triplet_margin_loss(a, c, n, margin=settings.triplet_margin)
    both = head(*feats(np.concatenate([rows[:, 0], rows[:, 1]])))
    chosen, rejected = both[: len(rows)], both[len(rows):]
    if settings.objective == "regression":
        return 0.5 * (((chosen - 1) ** 2).mean() + (rejected ** 2).mean())
    losses = nn.functional.softplus(rejected - chosen)
    return losses.mean() if weights is None else (weights * losses).sum() / weights.sum()


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


def _valid_scores(scorer: Scorer, valid: dict[str, Sequence[PreferencePair]], feats, rows: np.ndarray,
                  objective: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(chosen, rejected) scores per validation set; `rows` are every set's rows, concatenated in order."""
    chosen, rejected = _scores(scorer, feats, rows, objective)
    out, start = {}, 0
    for name, pairs in valid.items():
        out[name] = (chosen[start:start + len(pairs)], rejected[start:start + len(pairs)])
        start += len(pairs)
    return out


def _validate(scorer: Scorer, valid: dict[str, Sequence[PreferencePair]], feats, rows: np.ndarray,
              objective: str) -> dict[str, ScorerEvaluation]:
    """Evaluation per validation set."""
    scores = _valid_scores(scorer, valid, feats, rows, objective)
    return {name: evaluate_pairs(pairs, *scores[name]) for name, pairs in valid.items()}


def _criterion(evaluations: dict[str, ScorerEvaluation]) -> float:
    """What chooses the epoch: the mean pairwise accuracy over the validation sets."""
    return float(np.mean([e.pairwise_accuracy for e in evaluations.values()]))


def _train_member(scorer: Scorer, head: nn.Module, train_feats, train_rows, valid, valid_feats, valid_rows,
                  settings: TrainSettings, seed: int, quiet: bool,
                  pair_weights: np.ndarray | None = None) -> tuple[int, list[dict]]:
    """Train `head` (and the encoder when asked); leaves the best validation epoch's weights loaded.
    pair_weights: each training pair's weight in the pairwise loss (None: all equal)."""
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
            batch = order[start:start + settings.batch_pairs]
            loss = _loss(scorer, train_feats, train_rows[batch], settings,
                         None if pair_weights is None else torch.as_tensor(pair_weights[batch], device=scorer.device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
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


def prepare(train: Sequence[PreferencePair], valid: dict[str, Sequence[PreferencePair]], settings: TrainSettings,
            quiet: bool = False, cache_dir: str | os.PathLike | None = None, features=TrainingFeatures):
    """A new scorer for `settings` (encoder frozen) and the features of every training and validation
    text: (scorer, train features, train rows, valid features, valid rows), rows being each pair's
    (chosen, rejected[, anchor]) indices into its features. features: the TrainingFeatures class (the
    experiments pass a subclass with more inputs)."""
    settings.validate()  # the experiments call this without train_scorer
    seed_everything(settings.seed)
    head = {"hidden_sizes": list(settings.hidden_sizes), "activation": settings.activation,
            "dropout": settings.dropout, "objective": settings.objective, "views": list(settings.views),
            "text_stats": settings.text_stats,
            "tail_tokens": settings.tail_tokens,
            "output_size": settings.triplet_dim if settings.objective == "triplet" else 1}
    scorer = Scorer.new(settings.encoder, head, settings.max_length, train_encoder=settings.train_encoder)
    scorer.to(settings.device, settings.precision)
    for p in scorer.model.encoder.parameters():
        p.requires_grad_(False)
    train_texts, train_rows = pair_texts(train, settings.objective)
    valid_texts, valid_rows = pair_texts([p for pairs in valid.values() for p in pairs], settings.objective)
    precompute = not settings.train_encoder
    scorer.model.eval()
    train_feats = features(scorer, train_texts, precompute, settings.batch_tokens, "train", quiet, cache_dir)
    valid_feats = features(scorer, valid_texts, precompute, settings.batch_tokens, "valid", quiet, cache_dir)
    return scorer, train_feats, train_rows, valid_feats, valid_rows


def train_scorer(train: Sequence[PreferencePair],
                 valid: Sequence[PreferencePair] | dict[str, Sequence[PreferencePair]],
                 settings: TrainSettings, quiet: bool = False,
                 cache_dir: str | os.PathLike | None = None,
                 pair_weights: Sequence[float] | None = None) -> TrainResult:
    """Train on `train`; each epoch is judged by the mean pairwise accuracy over the validation
    sets (a list is one set named "valid"). pair_weights: one per training pair, for the pairwise
    objective (None: all pairs weigh the same)."""
    settings.validate()
    if pair_weights is not None:
        if settings.objective != "pairwise":
            raise CarSelectError(f"pair weights need the pairwise objective, not {settings.objective}")
        if len(pair_weights) != len(train):
            raise CarSelectError(f"{len(pair_weights)} pair weights for {len(train)} training pairs")
        pair_weights = np.asarray(pair_weights, dtype=np.float32)
    valid = dict(valid) if isinstance(valid, dict) else {"valid": list(valid)}
    if settings.train_encoder and settings.members != 1:
        raise CarSelectError("--members must be 1 with --train-encoder (the members would share one encoder)")
    scorer, train_feats, train_rows, valid_feats, valid_rows = prepare(train, valid, settings, quiet, cache_dir)

    # Each member starts from its own seed and keeps its own best validation epoch.
    single = replace(scorer.head_config, members=1)
    members, best_epochs, history = [], [], []
    for m in range(settings.members):
        member = ScoringHead(single).to(scorer.device)
        epoch, hist = _train_member(scorer, member, train_feats, train_rows, valid, valid_feats, valid_rows,
                                    settings, settings.seed + m, quiet, pair_weights)
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
    valid_scores = _valid_scores(scorer, valid, valid_feats, valid_rows, settings.objective)
    evaluations = {name: evaluate_pairs(pairs, *valid_scores[name]) for name, pairs in valid.items()}
    scorer.meta = {"training": {**asdict(settings), "best_epochs": best_epochs, "train_pairs": len(train),
                                "valid_pairs": {k: len(v) for k, v in valid.items()}},
                   "valid": {k: e.to_dict() for k, e in evaluations.items()}}
    return TrainResult(scorer, best_epochs, evaluations, history, valid_scores)


def train_from_files(output: str | os.PathLike, train: Sequence[str], valid: Sequence[str], settings: TrainSettings, *,
                     valid_robustness: Sequence[str] = (), negatives_from: Sequence[str] = (),
                     negatives_max_records: int = 1000, max_train_pairs: int | None = None,
                     train_weights: Sequence[float] | None = None, length_reference: str | None = None,
                     cache_dir: str | os.PathLike | None = None, quiet: bool = False) -> TrainResult:
    """What `car-select train-scorer` does: assemble the pairs of the files (data.training_data), train
    (train_scorer), and save the scorer to `output` with its card (the validation figures training
    computed, and Spearman(score, length) on `length_reference` when given), which it also keeps in
    result.scorer.meta["card"]. cache_dir: where the training features are kept (None: nowhere)."""
    import time

    from . import card as cards
    from .data import training_data

    settings.validate()
    data = training_data(train, valid, robustness_paths=valid_robustness, negatives_from=negatives_from,
                         max_train_pairs=max_train_pairs, negatives_max_records=negatives_max_records,
                         negatives_per_answer=settings.negatives_per_answer, seed=settings.seed,
                         train_weights=train_weights, off_topic_weight=settings.off_topic_weight,
                         extra_negative_kinds=settings.extra_negative_kinds)
    started = time.perf_counter()
    result = train_scorer(data.train, data.valid, settings, quiet=quiet, cache_dir=cache_dir,
                          pair_weights=data.weights)
    result.scorer.meta["training"]["seconds"] = round(time.perf_counter() - started, 1)
    card = cards.card_from_training(result, data.valid, data.trained_on)
    if length_reference:
        card["length_spearman"][os.path.basename(length_reference)] = cards.length_correlation(
            result.scorer, length_reference)
    result.scorer.meta["card"] = card
    result.scorer.save(output)
    return result
