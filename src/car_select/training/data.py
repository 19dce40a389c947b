"""The training and validation pairs a scorer is trained and chosen on: preference pairs read from
files, corruption negatives of answers (corruptions.py), and the validation corruption suites.
`car-select train-scorer` assembles its data with training_data; the experiments reuse its parts."""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import CarSelectError
from .corruptions import TRAINING_KINDS, build_suite
from .pairs import PreferencePair, read_pairs


def answer_items(path: str | os.PathLike, max_records: int | None = 300, seed: int = 0) -> list[tuple[str, str]]:
    """(rendered prompt, answer) of the first exchange of up to max_records records of any dataset
    the readers know, sampled with `seed`; records with an empty answer are left out."""
    from ..formats import read_dataset
    from ..render import render_exchanges

    items = [render_exchanges(r)[0] for r in read_dataset(str(path)).records]
    items = [it for it in items if it[1].strip()]
    if max_records is not None and len(items) > max_records:
        items = [items[i] for i in sorted(random.Random(seed).sample(range(len(items)), max_records))]
    if not items:
        raise CarSelectError(f"{path}: no records with a non-empty answer")
    return items


def robustness_pairs(path: str | os.PathLike, max_records: int | None = 300, seed: int = 0,
                     kinds: Sequence[str] | None = None):
    """The diagnostic suite: every corruption kind of every sampled answer, eval-pool wordings."""
    return build_suite(answer_items(path, max_records, seed), kinds, seed=seed, pool="eval")


def with_negatives(pairs: Sequence[PreferencePair], extra_answers: Sequence[tuple[str, str]] = (),
                   per_answer: int = 1, seed: int = 42, kinds: Sequence[str] | None = None,
                   extra_kinds: Sequence[str] = ()) -> list[PreferencePair]:
    """`pairs` plus corruption negatives: every distinct chosen answer of `pairs`, and every
    (prompt, answer) of `extra_answers`, above `per_answer` degraded copies of itself (train-pool
    wordings, kinds drawn evenly from `kinds`, None: corruptions.TRAINING_KINDS). These pairs are where length and
    quality disagree, or where a fluent answer does not answer this request. extra_kinds: a second draw,
    one of these kinds per answer where it applies (corruptions.COPY_KINDS: most need an input), after
    the first; the first draw is the same with or without it."""
    if per_answer < 1:
        return list(pairs)
    items = list(dict.fromkeys([(p.prompt, p.chosen) for p in pairs] + list(extra_answers)))
    negatives = build_suite(items, kinds or list(TRAINING_KINDS), seed=seed, pool="train", per_item=per_answer)
    if extra_kinds:
        negatives += build_suite(items, list(extra_kinds), seed=seed, pool="train", per_item=1)
    return list(pairs) + negatives


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
                  negative_kinds: Sequence[str] | None = None, off_topic_weight: float = 1.0,
                  extra_negative_kinds: Sequence[str] = ()) -> TrainingData:
    """The training and validation pairs `car-select train-scorer` assembles from its data options:
    every --train file (at most max_train_pairs each, sampled with `seed`), corruption negatives of
    their chosen answers and of negatives_from's answers, each --valid file and a corruption suite
    (eval-pool wordings) of 150 answers per robustness path. train_weights: one per --train file, the
    weight of its pairs in the loss (negatives weigh 1, off_topic ones off_topic_weight); weights are
    None where every pair weighs 1. negative_kinds: the corruption kinds the negatives are drawn from
    (None: corruptions.TRAINING_KINDS; the validation suites keep the diagnostic's kinds);
    extra_negative_kinds: with_negatives' extra_kinds."""
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
        train = with_negatives(train, extra, negatives_per_answer, seed, negative_kinds, extra_negative_kinds)
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
