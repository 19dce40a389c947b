"""What the experiments share: the retrain command's data and cached features, one head trained and
kept at its best validation epoch, the validation figures, and the inputs tried and not shipped.

Every experiment here judges on validation data only (CaR valid, Auto-J, the LIMA and Code Alpaca
corruption suites); none looks at test data. Features come from the cache `car-select train-scorer`
fills, so after the retrain command of docs/scorer.md most experiments take minutes. Run one as
`python experiments/NAME.py --out experiments/results/NAME.json` with car_select installed; Python puts
this folder on the path, so each imports this module as a sibling.

Inputs tried and not shipped live here, not in the package: the response's first and second half
pooled apart (HALF_VIEWS: HalvesHead over ExperimentFeatures with halves) and two statistics past the
shipped 25 (EXTRA_STAT_NAMES: ExperimentFeatures with extra_stats).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from car_select.scoring.model import ScoringHead
from car_select.scoring.textstats import STAT_NAMES, tidy_whitespace
from car_select.training.corruptions import KINDS, SUITE_KINDS
from car_select.training.data import kind_weights, training_data
from car_select.training.evaluate import evaluate_pairs, robustness_report, spearman
from car_select.training.features import TrainingFeatures
from car_select.training.train import TrainSettings, prepare, seed_everything

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
# The extra statistics were tried after the first 25 of STAT_NAMES; the package appended
# copied_from_prompt_share (issue 34) later, so these experiments keep reading the 25 then their extras.
EXTRA_STATS_AFTER = 25
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


def seed_heads(config, train_feats, rows, weights, data, valid_feats, valid_rows, settings, seeds=SEEDS,
               make_head=None):
    """One head per seed (default SEEDS, as the shipped scorer's members): (each head's scores of the
    validation items, its best epoch). settings: the TrainSettings whose epochs, patience, lr_head and
    weight_decay the heads train with; make_head: as train_head's."""
    scores, epochs = [], []
    for seed in seeds:
        head, epoch, _ = train_head(config, train_feats, rows, weights, data.valid, valid_feats, valid_rows,
                                    settings.epochs, settings.patience, seed=seed, lr=settings.lr_head,
                                    weight_decay=settings.weight_decay, make_head=make_head)
        scores.append(head_scores(head, valid_feats, len(valid_feats.table)))
        epochs.append(epoch)
    return scores, epochs


def record_seed_heads(results: dict, name: str, figures, *seed_heads_args, seeds=SEEDS, make_head=None) -> None:
    """Train seed_heads(*seed_heads_args) and keep each seed's head and their mean (what would ship)
    as results "NAME, seed S" and "NAME, both seeds"; figures(per-item scores) -> that variant's summary."""
    member_scores, epochs = seed_heads(*seed_heads_args, seeds=seeds, make_head=make_head)
    for seed, scores, epoch in zip(seeds, member_scores, epochs):
        record_result(results, f"{name}, seed {seed}", figures(scores), epoch)
    record_result(results, f"{name}, both seeds", figures(np.mean(member_scores, 0)), epochs)


def parse_args(doc: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--cache-dir", default=None, help="train-scorer's cache folder (default: the usual one)")
    ap.add_argument("--out", default=None, help="write the results here as JSON (experiments/results/NAME.json)")
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
                            settings_changes: dict | None = None, halves: bool = False, **data_options):
    """recipe_data, its settings and its cached features:
    (data, settings, scorer, train features, train rows, valid features, valid rows).
    text_stats: how many statistics the features hold, STAT_NAMES then EXTRA_STAT_NAMES (18: what these
    variants were run with; the settings keep at most the shipped 25, the features add the rest);
    settings_changes: other TrainSettings than the defaults (tail_tokens); halves: five views, the
    response's halves after the three shipped ones (for HalvesHead)."""
    data = recipe_data(args, max_train_pairs, **data_options)
    settings = TrainSettings(seed=42, text_stats=min(text_stats, EXTRA_STATS_AFTER), **(settings_changes or {}))
    features = experiment_features(halves, text_stats - settings.text_stats)
    return (data, settings, *prepare(data.train, data.valid, settings, cache_dir=args.cache_dir, features=features))


def shipped_recipe_features(args, text_stats: int = TrainSettings.text_stats, negative_kinds=None, halves: bool = False,
                            **settings_changes):
    """default_recipe_features for the retrain command's data (every judged pair at weight 0.25,
    negatives of corruptions.TRAINING_KINDS, off_topic ones at the shipped weight, the shipped statistics
    and settings unless told otherwise) with the LIMA and Code Alpaca validation suites.
    negative_kinds: other kinds to draw the negatives from (left_out_variants: every kind)."""
    return default_recipe_features(
        args, max_train_pairs=None, text_stats=text_stats, settings_changes=settings_changes,
        negative_kinds=negative_kinds, halves=halves,
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


# ---- validation figures beside the accuracies -----------------------------------------------------------
OFF_TOPIC_KIND = "off_topic"


def length_figures(valid: dict, rows: np.ndarray, scores: np.ndarray) -> dict:
    """Beside the accuracies the epoch is chosen on: each preference set's length-controlled accuracy
    (pairs whose better answer is not the longer one), since a statistic may teach the head length."""
    return {f"{name} length-controlled": round(evaluate_pairs(pairs, chosen, rejected).length_controlled_accuracy, 4)
            for name, pairs, chosen, rejected in set_scores(valid, rows, scores) if not name.startswith("robustness:")}


def off_topic_figures(valid: dict, rows: np.ndarray, scores: np.ndarray) -> dict:
    """Each validation suite's off_topic accuracy (another record's answer)."""
    return {f"{name} off_topic":
            round(robustness_report(pairs, chosen, rejected)["per_kind"][OFF_TOPIC_KIND]["accuracy"], 4)
            for name, pairs, chosen, rejected in set_scores(valid, rows, scores) if name.startswith("robustness:")}


def figures(valid: dict, rows: np.ndarray, scores: np.ndarray) -> dict:
    return {**summary(valid, rows, scores), **off_topic_figures(valid, rows, scores),
            **length_figures(valid, rows, scores)}


def length_lean(valid: dict, rows: np.ndarray, scores: np.ndarray) -> dict:
    """Spearman of score with answer length (characters) over the real answers of the preference sets
    (CaR valid, Auto-J), each answer once: how much a head leans on length, on validation data (the
    card's figure is on Alpaca records, which these variants do not encode)."""
    length_of, start = {}, 0
    for name, pairs in valid.items():
        if not name.startswith("robustness:"):
            for p, (c, r) in zip(pairs, rows[start:start + len(pairs)]):
                length_of[c], length_of[r] = len(p.chosen), len(p.rejected)
        start += len(pairs)
    items = np.array(list(length_of))
    return {"length lean (Spearman, CaR valid and Auto-J answers)":
            round(spearman(scores[items], np.array(list(length_of.values()))), 4)}


def variant_figures(valid: dict, rows: np.ndarray, scores: np.ndarray) -> dict:
    """figures and length_lean: what the variants since head_settings_variants.py report."""
    return {**figures(valid, rows, scores), **length_lean(valid, rows, scores)}


def retrain_command_variants(doc: str, variants: dict) -> int:
    """Each variant (name: TrainSettings changes, text_stats among them, up to STAT_NAMES and
    EXTRA_STAT_NAMES) trained as what would ship on the retrain command's data (every judged pair at
    weight 0.25, negatives of the training kinds, off_topic ones at the recipe's weight; LIMA and Code
    Alpaca validation suites), twice: two heads from seeds 42 and 43, and from 44 and 45, so a
    difference can be set beside the seeds' own."""
    args = parse_args(doc)
    results = {}
    for name, changes in variants.items():
        changes = dict(changes)
        data, settings, scorer, tf, tr, vf, vr = shipped_recipe_features(
            args, text_stats=changes.pop("text_stats", TrainSettings.text_stats), **changes)
        config = replace(scorer.head_config, members=1, text_stats=tf.stats.shape[1])
        for seeds in ((42, 43), (44, 45)):
            record_seed_heads(results, f"{name} (seeds {seeds[0]} and {seeds[1]})",
                              lambda scores: variant_figures(data.valid, vr, scores),
                              config, tf, tr, data.weights, data, vf, vr, settings, seeds=seeds)
    write_results(results, args.out)
    return 0


# ---- inputs tried and not shipped ----------------------------------------------------------------------
# The response's first and second half (by tokens), pooled apart: their cosines with the prompt and with
# each other show an answer that drifts onto another topic half way, or says the same thing twice.
HALF_VIEWS = ("response_first_half", "response_second_half")
# Statistics 26 and 27, after textstats.STAT_NAMES (a head takes the first N of both, in this order).
EXTRA_STAT_NAMES = ("second_half_new_words", "prompt_words_in_text")
_SCAN = 20_000  # characters of the response read, as textstats reads them
_WORD = re.compile(r"\w+", re.UNICODE)
_LETTERS = re.compile(r"[^\W\d_]+", re.UNICODE)
_RENDER_LABELS = {"instruction", "input"}


def second_half_new_words(words: list[str], prompt: set[str]) -> float:
    """Share of the distinct content words of the response's second half found in neither its first
    half nor the prompt: high where another answer was appended, past the encoder's window too."""
    half = len(words) // 2
    first = set(words[:half])
    second = [w for w in set(words[half:]) if len(w) > 3]
    return sum(w not in first and w not in prompt for w in second) / len(second) if second else 0.0


def prompt_words_in_text(prompt: str, text: str) -> float:
    """Share of the prompt's content words (letters only, over 3 of them, the rendered labels aside)
    found anywhere in the response's lowercased text, inside identifiers too (reverse in
    reverse_string or reverseString): code answers name things after the request in words that
    whole-word matching misses, and code written for another request does not."""
    content = {w for w in _LETTERS.findall(prompt[:_SCAN].lower()) if len(w) > 3} - _RENDER_LABELS
    text = text.lower()
    return sum(w in text for w in content) / len(content) if content else 0.0


def extra_stats(prompt: str, response: str, count: int = len(EXTRA_STAT_NAMES)) -> np.ndarray:
    """The first `count` of EXTRA_STAT_NAMES for a rendered prompt and its response (the response
    read as textstats.text_stats reads it: padding whitespace removed, its first 20,000 characters)."""
    head = tidy_whitespace(response)[:_SCAN]
    words = [w.lower() for w in _WORD.findall(head)]
    prompt_words = {w.lower() for w in _WORD.findall(prompt[:_SCAN])}
    row = [second_half_new_words(words, prompt_words)]
    if count > 1:
        row.append(prompt_words_in_text(prompt, head))
    return np.array(row[:count], dtype=np.float32)


def masked_mean_halves(hidden_states, attention_mask: torch.Tensor, response_start: torch.Tensor) -> torch.Tensor:
    """(batch, 2, layers, hidden), fp32: every layer pooled over the first and over the second half of
    the response's tokens (the first takes the middle token of an odd count); an empty half pools to
    zeros. Padding is on the right."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)[None, :]
    in_response = (positions >= response_start[:, None]) & attention_mask.bool()
    middle = response_start + (in_response.sum(1) + 1) // 2
    masks = [in_response & (positions < middle[:, None]), in_response & (positions >= middle[:, None])]
    parts = torch.stack(masks, 1).to(torch.float32)  # (b, 2, t)
    denom = parts.sum(-1).clamp(min=1)[:, :, None, None]
    return torch.stack([torch.bmm(parts, h.float()) for h in hidden_states], 2) / denom


class ExperimentFeatures(TrainingFeatures):
    """TrainingFeatures (multi-view) with the inputs tried and not shipped: with `halves`, two more views
    (HALF_VIEWS) after the three shipped ones; with `extra_stats`, that many of EXTRA_STAT_NAMES after
    the statistics the settings take. Make a class with experiment_features."""

    halves = False
    extra_stats = 0

    def __init__(self, scorer, items, *args, **kwargs):
        super().__init__(scorer, items, *args, **kwargs)
        if self.extra_stats:
            extra = np.zeros((len(items), self.extra_stats), dtype=np.float32)
            for i, (p, r) in enumerate(items):
                extra[i] = extra_stats(p, r or "", self.extra_stats)
            self.stats = torch.cat([self.stats, torch.from_numpy(extra)], 1)

    def views(self) -> int:
        return super().views() + (len(HALF_VIEWS) if self.halves else 0)

    def cache_key_views(self) -> list[str]:
        return super().cache_key_views() + (list(HALF_VIEWS) if self.halves else [])

    def pool(self, input_ids, mask, starts=None):
        if not self.halves:
            return super().pool(input_ids, mask, starts)
        from car_select.scoring.model import masked_mean_views

        hidden = self.scorer.model.hidden_states(input_ids, mask)
        return (torch.cat([masked_mean_views(hidden, mask, starts), masked_mean_halves(hidden, mask, starts)], 1),)


def experiment_features(halves: bool = False, extra: int = 0) -> type[TrainingFeatures]:
    """The features class for prepare(): the package's own when nothing extra is asked for."""
    if extra < 0 or extra > len(EXTRA_STAT_NAMES):
        raise ValueError(f"at most {EXTRA_STATS_AFTER + len(EXTRA_STAT_NAMES)} statistics, asked for {extra} extra")
    if not halves and not extra:
        return TrainingFeatures
    return type("ExperimentFeatures", (ExperimentFeatures,), {"halves": halves, "extra_stats": extra})


class HalvesHead(nn.Module):
    """A multi-view head that also takes the per-layer cosines of the prompt with each half of the
    response and of the halves with each other, over five-view features. config: the head's, three
    views. It is a ScoringHead whose statistics are those cosines followed by the text statistics, so
    its estimator's inputs are in the order the five-view head had when it was in the package."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.inner = ScoringHead(replace(config, text_stats=config.text_stats + 3 * config.num_layers))

    def forward(self, pooled: torch.Tensor, stats: torch.Tensor | None = None) -> torch.Tensor:
        pooled = pooled.float()
        prompt, first, second = pooled[:, 1], pooled[:, 3], pooled[:, 4]
        parts = [nn.functional.cosine_similarity(a, b, dim=-1, eps=1e-6)
                 for a, b in ((prompt, first), (prompt, second), (first, second))]
        if self.config.text_stats:
            parts.append(stats.float())
        return self.inner(pooled[:, :3], torch.cat(parts, -1))

