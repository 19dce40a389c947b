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
import hashlib
import json
import math
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..encode import run_batches
from ..errors import CarSelectError
from .evaluate import ScorerEvaluation, evaluate_pairs
from .model import OBJECTIVES, VIEW_SETS, ScoringHead
from .pairs import PreferencePair
from .scorer import Scorer
from .textstats import STAT_NAMES


@dataclass
class TrainSettings:
    encoder: str = "all-MiniLM-L6-v2"
    # Defaults: the shipped default scorer's recipe, chosen on validation (see README); RECIPES holds
    # the other shipped scorer's ("car-paper": the paper's IQS objective over the whole-text view).
    objective: str = "pairwise"
    # The response's halves as well (VIEW_SETS[2]) lost on validation (scripts/halves_variants.py, README)
    views: list[str] = field(default_factory=lambda: list(VIEW_SETS[1]))
    # The first 25 of textstats.STAT_NAMES: the order and layout ones were chosen on a Code Alpaca corruption
    # suite held apart for validation (scripts/order_stat_variants.py, README); the last 2 (whitespace
    # excess, uppercase share) see padding and shouting the uncased encoder cannot; the 26th
    # (second_half_new_words) lost on validation (scripts/halves_variants.py, README), and so did the
    # 27th (prompt_words_in_text; scripts/subword_stat_variants.py)
    text_stats: int = 25
    # Of a text longer than the window, the last tokens kept in place of those before them, so the
    # head sees what was appended to a long answer (multi-view heads only; 0: the first max_length;
    # at most half of max_length; None: a quarter of max_length, 64 of 256)
    tail_tokens: int | None = None
    negatives_per_answer: int = 1  # corruption negatives per chosen answer (used by the CLI's data assembly)
    # Loss weight of the off_topic negatives (another record's answer; other negatives weigh 1): at 1 the
    # head ranked fluent code for another request above the right answer (validation only:
    # scripts/off_topic_weight_variants.py, README)
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


TRAIN_FEATURES_VERSION = 1  # bump when what _Features computes changes

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
                 desc: str, quiet: bool = False, cache_dir: str | os.PathLike | None = None):
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
        cache_file = self._cache_file(cache_dir, items, batch_tokens) if precompute and cache_dir else None
        if cache_file is not None and cache_file.is_file():
            try:
                self.table = torch.load(cache_file, weights_only=True)
                return
            except Exception:  # an unreadable file is recomputed and replaced, never trusted
                self.table = None
        if precompute:
            from tqdm.auto import tqdm

            shape = (len(items), len(cfg.views), cfg.num_layers, cfg.hidden_size) if self.multi_view else \
                (len(items), cfg.num_layers, cfg.hidden_size)
            self.table = torch.zeros(shape)
            with tqdm(total=len(items), desc=f"encode {desc}", unit="text", leave=False, disable=quiet) as bar:
                for batch, (pooled,) in run_batches(self._pool, self.ids, pad_id=scorer.pad_id,
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
                             self.multi_view, list(s.head_config.views), s.head_config.tail_tokens,
                             str(s.dtype), s.device.type,
                             batch_tokens]).encode())
        for p, r in items:
            h.update(json.dumps([p, r]).encode("utf-8", "surrogatepass"))
        return Path(cache_dir) / "training-features" / f"{h.hexdigest()[:32]}.pt"

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
            quiet: bool = False, cache_dir: str | os.PathLike | None = None):
    """A new scorer for `settings` (encoder frozen) and the features of every training and validation
    text: (scorer, train features, train rows, valid features, valid rows), rows being each pair's
    (chosen, rejected[, anchor]) indices into its features."""
    settings.validate()  # the variant scripts call this without train_scorer
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
    train_texts, train_rows = _pair_texts(train, settings.objective)
    valid_texts, valid_rows = _pair_texts([p for pairs in valid.values() for p in pairs], settings.objective)
    precompute = not settings.train_encoder
    scorer.model.eval()
    train_feats = _Features(scorer, train_texts, precompute, settings.batch_tokens, "train", quiet, cache_dir)
    valid_feats = _Features(scorer, valid_texts, precompute, settings.batch_tokens, "valid", quiet, cache_dir)
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


def with_negatives(pairs: Sequence[PreferencePair], extra_answers: Sequence[tuple[str, str]] = (),
                   per_answer: int = 1, seed: int = 42, kinds: Sequence[str] | None = None) -> list[PreferencePair]:
    """`pairs` plus corruption negatives: every distinct chosen answer of `pairs`, and every
    (prompt, answer) of `extra_answers`, above `per_answer` degraded copies of itself (train-pool
    wordings, kinds drawn evenly from `kinds`, None: corruptions.TRAINING_KINDS). These pairs are where length and
    quality disagree, or where a fluent answer does not answer this request."""
    from .corruptions import TRAINING_KINDS, build_suite

    if per_answer < 1:
        return list(pairs)
    items = list(dict.fromkeys([(p.prompt, p.chosen) for p in pairs] + list(extra_answers)))
    return list(pairs) + build_suite(items, kinds or list(TRAINING_KINDS), seed=seed, pool="train", per_item=per_answer)


def kind_weights(pairs: Sequence[PreferencePair], by_kind: Mapping[str, float]) -> list[float]:
    """Each pair's loss weight by its corruption kind: by_kind's, 1 for other kinds and for file pairs."""
    return [by_kind.get(getattr(p, "kind", ""), 1.0) for p in pairs]


@dataclass
class TrainingData:
    train: list[PreferencePair]  # file pairs, then corruption negatives (CorruptedPair)
    valid: dict[str, list[PreferencePair]]  # per validation set; "robustness:NAME" for corruption suites
    trained_on: list[str]  # what the scorer card says it was trained on
    sources: list[str]  # per training pair: its file's name, or "negatives"
    weights: list[float] | None = None  # per training pair: its weight in the loss (None: all equal)


def training_data(train_paths: Sequence[str], valid_paths: Sequence[str], *, robustness_paths: Sequence[str] = (),
                  negatives_from: Sequence[str] = (), max_train_pairs: int | None = None,
                  negatives_max_records: int | None = 1000, negatives_per_answer: int = 1,
                  seed: int = 42, train_weights: Sequence[float] | None = None,
                  negative_kinds: Sequence[str] | None = None, off_topic_weight: float = 1.0) -> TrainingData:
    """The training and validation pairs `car-select train-scorer` assembles from its data options:
    every --train file (at most max_train_pairs each, sampled with `seed`), corruption negatives of
    their chosen answers and of negatives_from's answers, each --valid file and a corruption suite
    (eval-pool wordings) of 150 answers per robustness path. train_weights: one per --train file, the
    weight of its pairs in the loss (negatives weigh 1, off_topic ones off_topic_weight); weights are
    None where every pair weighs 1. negative_kinds: the corruption kinds the negatives are drawn from
    (None: corruptions.TRAINING_KINDS; the validation suites keep the diagnostic's kinds)."""
    from .card import answer_items, robustness_pairs
    from .pairs import read_pairs

    if train_weights is not None and len(train_weights) != len(train_paths):
        raise CarSelectError(f"{len(train_weights)} training weights for {len(train_paths)} training files")
    if train_weights is not None and any(not w > 0 for w in train_weights):
        raise CarSelectError(f"training weights must be > 0, got {list(train_weights)}")
    if not off_topic_weight > 0:
        raise CarSelectError(f"the off_topic negatives' weight must be > 0, got {off_topic_weight}")
    train, sources, weights = [], [], []
    for path, weight in zip(train_paths, train_weights or [1.0] * len(train_paths)):
        pairs = sample_pairs(read_pairs(path), max_train_pairs, seed)
        train += pairs
        sources += [os.path.basename(path)] * len(pairs)
        weights += [weight] * len(pairs)
    extra = [it for path in negatives_from for it in answer_items(path, negatives_max_records, seed)]
    if negatives_per_answer:
        train = with_negatives(train, extra, negatives_per_answer, seed, negative_kinds)
        sources += ["negatives"] * (len(train) - len(sources))
        weights += kind_weights(train[len(weights):], {"off_topic": off_topic_weight})
    valid = {os.path.basename(path): read_pairs(path) for path in valid_paths}
    for path in robustness_paths:
        valid[f"robustness:{os.path.basename(path)}"] = robustness_pairs(path, 150, seed=0)
    trained_on = [os.path.basename(p) for p in train_paths]
    if train_weights is not None:
        trained_on = [f"{name} (weight {w:g})" for name, w in zip(trained_on, train_weights)]
    if negatives_per_answer:
        trained_on.append("corruption negatives of the training answers and of "
                          + (", ".join(map(os.path.basename, negatives_from)) or "nothing else")
                          + (f" (off_topic ones at weight {off_topic_weight:g})" if off_topic_weight != 1 else ""))
    return TrainingData(train, valid, trained_on, sources, weights if any(w != 1 for w in weights) else None)


def sample_pairs(pairs: Sequence[PreferencePair], limit: int | None, seed: int) -> list[PreferencePair]:
    """At most `limit` pairs drawn with `seed`, in their file order (all of them when limit is None)."""
    if limit is None or len(pairs) <= limit:
        return list(pairs)
    return [pairs[i] for i in sorted(random.Random(seed).sample(range(len(pairs)), limit))]


def score_pairs(scorer: Scorer, pairs: Sequence[PreferencePair], batch_tokens: int = 16384):
    """(chosen scores, rejected scores) for evaluation with any scorer; every distinct
    (prompt, answer) is scored once."""
    keys = [(p.prompt, p.chosen) for p in pairs] + [(p.rejected_prompt or p.prompt, p.rejected) for p in pairs]
    unique = list(dict.fromkeys(keys))
    scores = scorer.score_pairs([k[0] for k in unique], [k[1] for k in unique], batch_tokens)
    where = {k: i for i, k in enumerate(unique)}
    s = np.array([scores[where[k]] for k in keys])
    return s[: len(pairs)], s[len(pairs):]
