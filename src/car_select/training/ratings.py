"""Distil per-record ratings (an LLM judge's 0-5, a 1-10, a 0/1 membership) into a scorer folder.

The recipe of FineWeb-Edu, Nemotron-CC and DEITA: rate a sample with a strong judge (`car-select
rate`), train a small head on the ratings over the frozen encoder's pooled layers and the text
statistics (the shipped default scorer's inputs, so the folder scores and embeds in one pass and
works with `--scorer DIR` everywhere), then score everything with it.

- Every exchange of a rated record is one training text (the scorer scores exchanges and averages
  them), labelled with its record's rating.
- The records are split by their record hash (`record_bucket`): bucket 9 of 10 is the held-out test
  set the card reports, bucket 8 the validation set that chooses the loss and the epoch, the rest
  train. A text's bucket depends on the text alone, so copies of a record never straddle a split.
- Two losses are tried, the better on validation kept: "pairwise" (each training text against a
  random training text with a different rating, logistic loss on the score difference: only the order
  of the ratings matters, so any scale works, binary included) and "regression" (squared error to the
  standardised rating: uses the scale's distances). The criterion is the Spearman correlation of
  score with rating on the validation texts (for 0/1 ratings a monotone function of the AUC).
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from ..errors import CarSelectError
from ..render import render_exchanges, render_record

LOSSES = ("pairwise", "regression")
BUCKETS = 10
TEST_BUCKET, VALID_BUCKET = 9, 8


def record_hash(record) -> int:
    """The record hash: the first 8 bytes, big-endian, of SHA-256 of the record's rendered text
    (render.render_record, UTF-8; the feature cache keys texts by the same digest). It depends on
    the record's content only, so it is the same in any file, order or format."""
    return int.from_bytes(hashlib.sha256(render_record(record).encode("utf-8")).digest()[:8], "big")


def record_bucket(record, buckets: int = BUCKETS) -> int:
    """record_hash(record) mod `buckets`."""
    return record_hash(record) % buckets


@dataclass
class RatingsSettings:
    """What a distilled scorer is: the default scorer's inputs (multi-view head over frozen
    all-MiniLM-L6-v2 with the 25 text statistics), a smaller head, and the losses tried."""

    encoder: str = "all-MiniLM-L6-v2"
    losses: list[str] = field(default_factory=lambda: list(LOSSES))
    hidden_sizes: list[int] = field(default_factory=lambda: [256])
    dropout: float = 0.1
    text_stats: int = 25
    max_length: int = 256
    tail_tokens: int = 64
    epochs: int = 30
    patience: int = 5
    batch_size: int = 256
    lr_head: float = 1e-3
    weight_decay: float = 0.01
    members: int = 2
    seed: int = 42
    batch_tokens: int = 16384
    device: str = "auto"
    precision: str = "auto"

    def validate(self) -> "RatingsSettings":
        for loss in self.losses:
            if loss not in LOSSES:
                raise CarSelectError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        if not self.losses:
            raise CarSelectError("at least one loss is needed")
        if self.epochs < 1 or self.members < 1 or self.batch_size < 2:
            raise CarSelectError("epochs and members must be >= 1 and batch_size >= 2")
        return self


@dataclass
class RatedTexts:
    """Every exchange of the rated records: (prompt, response) items, the record each came from, and
    that record's rating and bucket."""

    items: list[tuple[str, str]]
    owner: np.ndarray  # (texts,) record index
    ratings: np.ndarray  # (texts,) the owner's rating
    buckets: np.ndarray  # (texts,) the owner's record bucket

    def rows(self, mask: np.ndarray) -> np.ndarray:
        return np.flatnonzero(mask)


def rated_texts(records: Sequence, ratings: Sequence[float]) -> RatedTexts:
    items, owner = [], []
    for i, record in enumerate(records):
        for pair in render_exchanges(record):
            items.append(pair)
            owner.append(i)
    owner = np.asarray(owner, dtype=np.int64)
    buckets = np.array([record_bucket(r) for r in records], dtype=np.int64)
    return RatedTexts(items, owner, np.asarray(ratings, dtype=np.float64)[owner], buckets[owner])


def new_scorer(settings: RatingsSettings, objective: str = "pairwise"):
    """A fresh scorer of `settings`' shape, encoder frozen, on the settings' device."""
    from ..scoring.scorer import Scorer

    head = {"hidden_sizes": list(settings.hidden_sizes), "activation": "Tanh", "dropout": settings.dropout,
            "objective": objective, "views": ["full", "prompt", "response"], "text_stats": settings.text_stats,
            "tail_tokens": settings.tail_tokens, "members": settings.members}
    scorer = Scorer.new(settings.encoder, head, settings.max_length)
    scorer.to(settings.device, settings.precision)
    for p in scorer.model.encoder.parameters():
        p.requires_grad_(False)
    scorer.model.eval()
    return scorer


def text_features(items: Sequence[tuple[str, str]], settings: RatingsSettings, *, quiet: bool = False,
                  cache_dir: str | os.PathLike | None = None, desc: str = "rated"):
    """The pooled views and statistics of every item (training.features.TrainingFeatures: computed
    once by one encoder pass, cached by encoder, settings and exact item list)."""
    from .features import TrainingFeatures

    scorer = new_scorer(settings)
    return scorer, TrainingFeatures(scorer, list(items), True, settings.batch_tokens, desc, quiet, cache_dir)


# ---- evaluation -----------------------------------------------------------------------------------

def auc(scores, labels) -> float | None:
    """ROC AUC of scores for 0/1 labels (None when one class is absent)."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) != 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels == labels.max(), scores))


def agreement(scores, ratings) -> dict:
    """Spearman correlation of scores with ratings, and the AUC where the ratings take two values."""
    from .evaluate import spearman

    scores, ratings = np.asarray(scores, dtype=np.float64), np.asarray(ratings, dtype=np.float64)
    out = {"spearman": round(spearman(scores, ratings), 4) if np.ptp(ratings) > 0 and np.ptp(scores) > 0 else None}
    if len(np.unique(ratings)) == 2:
        out["auc"] = round(auc(scores, ratings), 4)
    return out


def by_record(owner: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(records, mean of values per record) for texts owned by records (the scorer's mean aggregate)."""
    records, inverse = np.unique(owner, return_inverse=True)
    sums = np.bincount(inverse, weights=values)
    return records, sums / np.bincount(inverse)


# ---- training -------------------------------------------------------------------------------------

def head_scores(head: nn.Module, feats, rows: np.ndarray) -> np.ndarray:
    """A head's scores of the feature rows `rows`, in eval mode."""
    out = []
    head.eval()
    with torch.no_grad():
        for start in range(0, len(rows), 2048):
            out.append(head(*feats(rows[start:start + 2048])).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def _partners(ratings: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For every text, a random text with a different rating (sorted ratings: draw outside the own block)."""
    order = np.argsort(ratings, kind="stable")
    sorted_r = ratings[order]
    lo = np.searchsorted(sorted_r, ratings, side="left")  # the own rating's block is [lo, hi)
    hi = np.searchsorted(sorted_r, ratings, side="right")
    outside = len(ratings) - (hi - lo)
    pick = (rng.random(len(ratings)) * outside).astype(np.int64)
    pick = np.where(pick < lo, pick, pick + (hi - lo))
    return order[pick]


def _criterion(scores: np.ndarray, ratings: np.ndarray, owner: np.ndarray) -> float:
    """What chooses the epoch and the loss: Spearman(score, rating) over the validation records."""
    _, s = by_record(owner, scores)
    _, r = by_record(owner, ratings)
    from .evaluate import spearman

    value = spearman(s, r) if np.ptp(s) > 0 else 0.0
    return -1.0 if math.isnan(value) else value


def train_head(scorer, feats, texts: RatedTexts, train_rows: np.ndarray, valid_rows: np.ndarray, loss: str,
               settings: RatingsSettings, quiet: bool = True) -> tuple[nn.Module, dict]:
    """A head (settings.members heads from consecutive seeds, averaged) trained with `loss` on
    train_rows, each member's epoch chosen on valid_rows. Returns (head, {"criterion", "best_epochs"})."""
    from dataclasses import replace

    from tqdm.auto import trange

    from ..scoring.model import ScoringHead
    from .train import seed_everything

    config = replace(scorer.head_config, objective=loss)
    single = replace(config, members=1)
    ratings = texts.ratings[train_rows]
    target = (ratings - ratings.mean()) / (ratings.std() or 1.0)
    device = scorer.device
    members, best_epochs = [], []
    for m in range(settings.members):
        seed = settings.seed + m
        seed_everything(seed)
        head = ScoringHead(single).to(device)
        optimizer = torch.optim.AdamW(head.parameters(), lr=settings.lr_head, weight_decay=settings.weight_decay)
        rng = np.random.default_rng(seed)
        best = (-math.inf, 0, None)
        for epoch in trange(1, settings.epochs + 1, desc=f"{loss} (seed {seed})", leave=False, disable=quiet):
            head.train()
            order = rng.permutation(len(train_rows))
            partner = _partners(ratings, rng) if loss == "pairwise" else None
            for start in range(0, len(order), settings.batch_size):
                batch = order[start:start + settings.batch_size]
                if loss == "pairwise":
                    both = head(*feats(np.concatenate([train_rows[batch], train_rows[partner[batch]]])))
                    s, p = both[: len(batch)], both[len(batch):]
                    sign = torch.as_tensor(np.sign(ratings[batch] - ratings[partner[batch]]), device=device,
                                           dtype=s.dtype)
                    value = nn.functional.softplus(-sign * (s - p)).mean()
                else:
                    s = head(*feats(train_rows[batch]))
                    value = ((s - torch.as_tensor(target[batch], device=device, dtype=s.dtype)) ** 2).mean()
                optimizer.zero_grad()
                value.backward()
                optimizer.step()
            crit = _criterion(head_scores(head, feats, valid_rows), texts.ratings[valid_rows], texts.owner[valid_rows])
            if crit > best[0]:
                best = (crit, epoch, copy.deepcopy(head.state_dict()))
            elif epoch - best[1] >= settings.patience:
                break
        head.load_state_dict(best[2])
        members.append(head)
        best_epochs.append(best[1])
    head = ScoringHead(config).to(device)
    if settings.members > 1:
        for target_member, trained in zip(head.members, members):
            target_member.load_state_dict(trained.state_dict())
    else:
        head.load_state_dict(members[0].state_dict())
    head.eval()
    crit = _criterion(head_scores(head, feats, valid_rows), texts.ratings[valid_rows], texts.owner[valid_rows])
    return head, {"criterion": round(crit, 4), "best_epochs": best_epochs}


@dataclass
class RatingsResult:
    scorer: object  # the trained Scorer, its card in scorer.meta["card"]
    loss: str
    trials: dict  # loss -> {"criterion", "best_epochs"}
    test_scores: np.ndarray  # per test record (mean over its exchanges)
    test_records: np.ndarray  # record indices of the test set


def split_masks(texts: RatedTexts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, valid, test) masks over texts, by record bucket."""
    test = texts.buckets == TEST_BUCKET
    valid = texts.buckets == VALID_BUCKET
    return ~(test | valid), valid, test


def check_ratings(texts: RatedTexts, train: np.ndarray, valid: np.ndarray, where: str) -> None:
    """A one-line error unless each split can teach or judge an order of ratings."""
    for name, mask in (("training", train), ("validation", valid)):
        if len(np.unique(texts.ratings[mask])) < 2:
            which = f"neither {TEST_BUCKET} nor {VALID_BUCKET}" if name == "training" else str(VALID_BUCKET)
            raise CarSelectError(f"{where}: the {name} split (record hash mod {BUCKETS} {which}) has "
                                 f"{int(mask.sum())} texts and fewer than two distinct ratings; rate more records")


def train_on_ratings(texts: RatedTexts, feats, scorer, settings: RatingsSettings, *,
                     train: np.ndarray, valid: np.ndarray, quiet: bool = True) -> tuple[str, nn.Module, dict]:
    """Train one head per loss in settings.losses; the best on validation is loaded into `scorer`.
    Returns (loss, head, trials)."""
    train_rows, valid_rows = np.flatnonzero(train), np.flatnonzero(valid)
    trials, heads = {}, {}
    for loss in settings.losses:
        heads[loss], trials[loss] = train_head(scorer, feats, texts, train_rows, valid_rows, loss, settings, quiet)
    loss = max(settings.losses, key=lambda name: trials[name]["criterion"])
    scorer.model.head = heads[loss]
    scorer._fingerprint = None
    return loss, heads[loss], trials


def distill(records: Sequence, ratings: Sequence[float], settings: RatingsSettings | None = None, *,
            source: str = "ratings", rating_field: str = "rating", quiet: bool = True,
            cache_dir: str | os.PathLike | None = None) -> RatingsResult:
    """Train a scorer on `ratings` (one per record), choose the loss on the validation bucket and
    write the held-out bucket's agreement into its card (beside output length and the shipped
    default scorer). `source`: what the card says it was trained on."""
    settings = (settings or RatingsSettings()).validate()
    texts = rated_texts(records, ratings)
    train, valid, test = split_masks(texts)
    check_ratings(texts, train, valid, source)
    scorer, feats = text_features(texts.items, settings, quiet=quiet, cache_dir=cache_dir)
    loss, head, trials = train_on_ratings(texts, feats, scorer, settings, train=train, valid=valid, quiet=quiet)
    test_rows = np.flatnonzero(test)
    held_out = {}
    test_records = np.zeros(0, dtype=np.int64)
    test_scores = np.zeros(0)
    if len(test_rows):
        test_records, test_scores = by_record(texts.owner[test_rows], head_scores(head, feats, test_rows))
        held_out = held_out_report(records, ratings, test_records, test_scores, feats, test_rows, texts)
    n_train_records = len(np.unique(texts.owner[train]))
    scorer.meta["training"] = {**asdict(settings), "loss": loss, "trials": trials, "rating_field": rating_field,
                               "records": {"train": n_train_records, "valid": len(np.unique(texts.owner[valid])),
                                           "test": len(test_records)}}
    scorer.meta["card"] = {
        "trained_on": [f"{source}: field \"{rating_field}\" of {n_train_records:,} records "
                       f"(record hash mod {BUCKETS} neither {TEST_BUCKET} nor {VALID_BUCKET}); loss {loss}, chosen on "
                       f"validation (Spearman {trials[loss]['criterion']:+.4f})"],
        "validation": {}, "robustness": {}, "length_spearman": {},
        "ratings": held_out,
    }
    return RatingsResult(scorer, loss, trials, test_scores, test_records)


def output_length(records: Sequence, indices: Sequence[int]) -> np.ndarray:
    """Characters of each record's answers (all exchanges), the naive baseline."""
    return np.array([sum(len(a) for _, _, a in records[i].exchanges()) for i in indices], dtype=np.float64)


def default_scores(feats, rows: np.ndarray, owner: np.ndarray, scorer_name: str = "default") -> np.ndarray | None:
    """The shipped scorer's record scores from the same features (its head takes the same inputs),
    or None where its inputs differ."""
    from ..scoring.scorer import Scorer

    shipped = Scorer.load(scorer_name)
    mine = feats.scorer.head_config
    theirs = shipped.head_config
    if (list(theirs.views), theirs.text_stats, theirs.tail_tokens, shipped.max_length, shipped.encoder_name) != \
            (list(mine.views), mine.text_stats, mine.tail_tokens, feats.scorer.max_length, feats.scorer.encoder_name):
        return None
    head = shipped.model.head.to(feats.scorer.device)
    return by_record(owner, head_scores(head, feats, rows))[1]


def held_out_report(records, ratings, test_records, test_scores, feats, test_rows, texts) -> dict:
    """The card's held-out figures: agreement of the scorer, of output length, of the shipped default."""
    truth = np.asarray(ratings, dtype=np.float64)[test_records]
    report = {"n_records": int(len(test_records)), "distinct_ratings": int(len(np.unique(truth))),
              "scorer": agreement(test_scores, truth),
              "output_length": agreement(output_length(records, test_records), truth)}
    shipped = default_scores(feats, test_rows, texts.owner[test_rows])
    if shipped is not None:
        report["default_scorer"] = agreement(shipped, truth)
    return report
