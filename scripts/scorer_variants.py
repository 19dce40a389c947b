"""Scorer variants tried on validation only, on the 0.1 default's training data and features (3,000
judged pairs; the default since ships all of them, see all_judged_variants.py).

Every variant is one head (seed 42) over the same frozen multi-view features as the shipped default,
trained with the pairwise loss and kept at its best epoch by the mean validation accuracy (as
`train-scorer` does). What changes is which training pairs count and how much, or how two heads are
combined. Nothing here looks at test data. Features come from the cache `train-scorer` fills, so
after a `train-scorer` run on the same data (`--max-train-pairs 3000` in place of `--train-weights`
in the README's command) this takes minutes.

    python scripts/scorer_variants.py --out docs/scorer_variants.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from car_select.scoring.corruptions import KINDS, SUITE_KINDS
from car_select.scoring.evaluate import evaluate_pairs, robustness_report
from car_select.scoring.model import ScoringHead
from car_select.scoring.train import TrainSettings, kind_weights, prepare, seed_everything, training_data

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
CAR = "APE_score_train.csv"
JUDGED = "train.jsonl"


def head_scores(head, feats, n: int) -> np.ndarray:
    head.eval()
    with torch.no_grad():
        return torch.cat([head(*feats(np.arange(k, min(n, k + 1024)))) for k in range(0, n, 1024)]).numpy()


def set_scores(valid: dict, rows: np.ndarray, item_scores: np.ndarray):
    """(name, pairs, chosen scores, rejected scores) per validation set; `rows` are every set's rows,
    concatenated in order."""
    start = 0
    for name, pairs in valid.items():
        r = rows[start:start + len(pairs)]
        start += len(pairs)
        yield name, pairs, item_scores[r[:, 0]], item_scores[r[:, 1]]


def summary(valid: dict, rows: np.ndarray, item_scores: np.ndarray) -> dict:
    """Accuracy per validation set (worst corruption kind too) for per-item scores."""
    out = {}
    for name, pairs, chosen, rejected in set_scores(valid, rows, item_scores):
        if name.startswith("robustness:"):
            rep = robustness_report(pairs, chosen, rejected)
            out[name] = round(rep["accuracy"], 4)
            worst = min(rep["per_kind"], key=lambda k: rep["per_kind"][k]["accuracy"])
            out[f"{name} worst"] = f"{rep['per_kind'][worst]['accuracy']:.4f} ({worst})"
        else:
            out[name] = round(evaluate_pairs(pairs, chosen, rejected).pairwise_accuracy, 4)
    out["mean"] = round(float(np.mean([v for k, v in out.items() if not k.endswith("worst")])), 4)
    return out


def pair_loss(score, rows: np.ndarray, weights: torch.Tensor) -> torch.Tensor:
    """Weighted logistic loss of pair rows (chosen, rejected); score(item indices) -> their scores."""
    both = score(np.concatenate([rows[:, 0], rows[:, 1]]))
    return (weights * nn.functional.softplus(both[len(rows):] - both[:len(rows)])).sum() / weights.sum()


def train_head(config, train_feats, rows, weights, valid, valid_feats, valid_rows, epochs, patience, loss="pairwise",
               labels=None, criterion=None, make_head=None, n_valid=None, seed=42, lr=1e-3, weight_decay=0.01):
    """One head; keeps the epoch whose validation summary is best by `criterion` (default: the mean).
    loss "pairwise": weighted logistic loss on rows (chosen, rejected); "classify": rows are item
    indices, labels 1 for a corrupted answer (a defect detector whose output is its logit).
    train_feats / valid_feats: item rows -> the head's arguments; make_head: another head than
    ScoringHead(config), over n_valid validation items. seed: of the head's initialisation and batch order
    (the default scorer's members are seeds 42, 43, ...). lr, weight_decay: AdamW's, as TrainSettings'
    lr_head and weight_decay."""
    seed_everything(seed)
    head = make_head() if make_head else ScoringHead(config)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    w = torch.as_tensor(weights, dtype=torch.float32)
    criterion = criterion or (lambda s: s["mean"])
    best = (-1.0, 0, None, None)
    for epoch in range(1, epochs + 1):
        head.train()
        order = rng.permutation(len(rows))
        for start in range(0, len(order), 64):
            b = order[start:start + 64]
            if loss == "classify":
                target = torch.as_tensor(labels[b], dtype=torch.float32)
                value = nn.functional.binary_cross_entropy_with_logits(head(*train_feats(rows[b])), target)
            else:
                value = pair_loss(lambda items: head(*train_feats(items)), rows[b], w[b])
            opt.zero_grad()
            value.backward()
            opt.step()
        scores = head_scores(head, valid_feats, n_valid or len(valid_feats.table))
        s = summary(valid, valid_rows, -scores if loss == "classify" else scores)
        if criterion(s) > best[0]:
            best = (criterion(s), epoch, copy.deepcopy(head.state_dict()), s)
        elif epoch - best[1] >= patience:
            break
    head.load_state_dict(best[2])
    return head, best[1], best[3]


SEEDS = (42, 43)  # the shipped scorer's two members


def seed_heads(config, train_feats, rows, weights, data, valid_feats, valid_rows, settings, seeds=SEEDS):
    """One head per seed (default SEEDS, as the shipped scorer's members): (each head's scores of the
    validation items, its best epoch). settings: the TrainSettings whose epochs, patience, lr_head and
    weight_decay the heads train with."""
    scores, epochs = [], []
    for seed in seeds:
        head, epoch, _ = train_head(config, train_feats, rows, weights, data.valid, valid_feats, valid_rows,
                                    settings.epochs, settings.patience, seed=seed, lr=settings.lr_head,
                                    weight_decay=settings.weight_decay)
        scores.append(head_scores(head, valid_feats, len(valid_feats.table)))
        epochs.append(epoch)
    return scores, epochs


def record_seed_heads(results: dict, name: str, figures, *seed_heads_args, seeds=SEEDS) -> None:
    """Train seed_heads(*seed_heads_args) and keep each seed's head and their mean (what would ship)
    as results "NAME, seed S" and "NAME, both seeds"; figures(per-item scores) -> that variant's summary."""
    member_scores, epochs = seed_heads(*seed_heads_args, seeds=seeds)
    for seed, scores, epoch in zip(seeds, member_scores, epochs):
        record_result(results, f"{name}, seed {seed}", figures(scores), epoch)
    record_result(results, f"{name}, both seeds", figures(np.mean(member_scores, 0)), epochs)


def parse_args(doc: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--cache-dir", default=None, help="train-scorer's cache folder (default: the usual one)")
    ap.add_argument("--out", default=None, help="write the results here as JSON")
    args = ap.parse_args()
    if args.cache_dir is None:
        from car_select.config import default_cache_dir

        args.cache_dir = default_cache_dir()
    return args


def recipe_data(args: argparse.Namespace, max_train_pairs: int | None = 3000, *,
                negative_kinds=SUITE_KINDS, train_weights=None, robustness=("lima-1k/lima.json",),
                off_topic_weight=1.0):
    """The retrain command's training and validation data, at most max_train_pairs per file (3,000: the
    0.1 default's sample; None: every pair). By default with negatives of the 11 kinds these variants
    were run with (before off_topic_similar joined the training kinds; None: every kind).
    robustness: the validation corruption suites, as paths under args.data."""
    d = args.data
    return training_data([f"{d}/car-expert-revised/expert-revised/{CAR}", f"{d}/preference-dev/{JUDGED}"],
                         [f"{d}/car-expert-revised/expert-revised/APE_score_valid.csv",
                          f"{d}/preference-dev/valid_autoj_human.jsonl"],
                         robustness_paths=[f"{d}/{r}" for r in robustness],
                         negatives_from=[f"{d}/stanford-alpaca-52k/alpaca_data.json"],
                         max_train_pairs=max_train_pairs, negatives_max_records=500, seed=42,
                         negative_kinds=negative_kinds, train_weights=train_weights,
                         off_topic_weight=off_topic_weight)


def default_recipe_features(args: argparse.Namespace, max_train_pairs: int | None = 3000, text_stats: int = 18,
                            settings_changes: dict | None = None, **data_options):
    """recipe_data, its settings and its cached features:
    (data, settings, scorer, train features, train rows, valid features, valid rows).
    text_stats: how many of textstats.STAT_NAMES the head takes (18: what these variants were run with);
    settings_changes: other TrainSettings than the defaults (views, tail_tokens)."""
    data = recipe_data(args, max_train_pairs, **data_options)
    settings = TrainSettings(seed=42, text_stats=text_stats, **(settings_changes or {}))
    return (data, settings, *prepare(data.train, data.valid, settings, cache_dir=args.cache_dir))


def shipped_recipe_features(args, text_stats: int = TrainSettings.text_stats, negative_kinds=None, **settings_changes):
    """default_recipe_features for the retrain command's data (every judged pair at weight 0.25,
    negatives of corruptions.TRAINING_KINDS, off_topic ones at the shipped weight, the shipped statistics
    and settings unless told otherwise) with the LIMA and Code Alpaca validation suites.
    negative_kinds: other kinds to draw the negatives from (left_out_variants: every kind)."""
    return default_recipe_features(
        args, max_train_pairs=None, text_stats=text_stats, settings_changes=settings_changes,
        negative_kinds=negative_kinds,
        train_weights=[1, 0.25], robustness=("lima-1k/lima.json", "code-alpaca/new_codealpaca.json"),
        off_topic_weight=TrainSettings.off_topic_weight)


def left_out_variants(doc: str, variants: dict, figures, always_left_out: tuple = ()) -> int:
    """Train each variant (name: the kinds it leaves out of training, with always_left_out) on the
    retrain command's cached features and write the results; figures(valid, rows, scores) -> a summary."""
    args = parse_args(doc)
    data, settings, scorer, tf, tr, vf, vr = shipped_recipe_features(args, negative_kinds=tuple(KINDS))
    config = replace(scorer.head_config, members=1)
    results = {}
    for name, left_out in variants.items():
        by_kind = dict.fromkeys((*left_out, *always_left_out), 0.0)
        w = np.array(data.weights) * np.array(kind_weights(data.train, by_kind))
        record_seed_heads(results, name, lambda scores: figures(data.valid, vr, scores),
                          config, tf, tr[w > 0], w[w > 0], data, vf, vr, settings)
    write_results(results, args.out)
    return 0


def record_result(results: dict, name: str, summary_: dict, epoch: int | list[int] | None) -> None:
    """Keep one variant's validation summary and show it at once (runs take minutes)."""
    results[name] = {**summary_, "best_epoch": epoch}
    print(json.dumps({name: results[name]}), file=sys.stderr, flush=True)


def write_results(results: dict, out: str | None) -> None:
    text = json.dumps(results, indent=1)
    print(text)
    if out:
        from car_select.atomic import atomic_path

        with atomic_path(out) as tmp:
            with open(tmp, "w") as f:
                f.write(text + "\n")


def main() -> int:
    args = parse_args(__doc__)
    data, settings, scorer, tf, tr, vf, vr = default_recipe_features(args)
    config = replace(scorer.head_config, members=1)
    source = np.array(data.sources)
    results = {}

    def pairwise(name, weights, criterion=None, features=(tf, vf), head_config=config):
        w = np.array([weights.get(s, 0.0) for s in source])
        head, epoch, s = train_head(head_config, features[0], tr[w > 0], w[w > 0], data.valid, features[1], vr,
                                    settings.epochs, settings.patience, criterion=criterion)
        record_result(results, name, s, epoch)
        return head

    every = {CAR: 1, JUDGED: 1, "negatives": 1}
    joint = pairwise("every source, equal weights (the shipped recipe, one head)", every)
    # The same with the two word-order statistics of textstats.STAT_NAMES (the 19th and 20th): the
    # encoder features come from the same cache, only the statistics are recomputed.
    _, wide_tf, _, wide_vf, _ = prepare(data.train, data.valid, replace(settings, text_stats=20),
                                        cache_dir=args.cache_dir)
    pairwise("the same with all 20 statistics (+ 2 of word order)", every,
             features=(wide_tf, wide_vf), head_config=replace(config, text_stats=20))
    pairwise("expert pairs x2, judged pairs x0.5", {CAR: 2, JUDGED: 0.5, "negatives": 1})
    pairwise("expert pairs and negatives, no judged pairs", {CAR: 1, "negatives": 1})
    pairwise("judged pairs only", {JUDGED: 1})
    expert = pairwise("expert pairs only, epoch chosen on CaR valid", {CAR: 1},
                      criterion=lambda s: s["APE_score_valid.csv"])

    # Expert head plus a defect detector: score = expert - w * softplus(defect logit), i.e. the
    # expert's score plus w * log P(clean). Clean: every real answer; corrupted: the negatives' copies.
    neg = tr[source == "negatives"]
    clean = np.unique(np.concatenate([tr[source != "negatives"].ravel(), neg[:, 0]]))
    bad = np.setdiff1d(np.unique(neg[:, 1]), clean)
    items = np.concatenate([clean, bad])
    labels = np.concatenate([np.zeros(len(clean)), np.ones(len(bad))])
    defect, epoch, _ = train_head(config, tf, items, np.ones(len(items)), data.valid, vf, vr, settings.epochs,
                                  settings.patience, loss="classify",
                                  labels=labels, criterion=lambda s: s["robustness:lima.json"])
    e, dlogit = head_scores(expert, vf, len(vf.table)), head_scores(defect, vf, len(vf.table))
    for w in (2, 4, 8):
        record_result(results, f"expert head - {w} x softplus(defect detector logit)",
                      summary(data.valid, vr, e - w * np.logaddexp(0, dlogit)), epoch)

    # The joint head plus a bounded share of the expert head: tanh caps how far the expert's view
    # (which prefers longer, friendlier answers, filler included) can move a score.
    def z(x):
        return (x - x.mean()) / x.std()

    j = head_scores(joint, vf, len(vf.table))
    for w in (0.25, 0.5):
        record_result(results, f"joint head + {w} x tanh(2 x standardised expert head)",
                      summary(data.valid, vr, z(j) + w * np.tanh(2 * z(e))), None)

    write_results(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
