"""A scorer card: what a scorer was trained on and how it does where it was not, beside length.

Every figure sits beside the naive baseline ("the longer answer wins"), because an in-distribution
accuracy alone says little: the card carries accuracy on each validation set, the length-controlled
accuracy, the Spearman correlation of score with answer length on a reference set, and the accuracy
per corruption kind (corruptions.py). `car-select eval-scorer` computes these for any scorer; the
training command stores the card in the scorer's config.json, and `eval-scorer --card` prints it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..errors import CarSelectError
from .corruptions import CorruptedPair
from .data import answer_items, robustness_pairs
from .evaluate import evaluate_pairs, robustness_report, score_pairs, spearman
from .pairs import PreferencePair, read_pairs


def _name(path: str | os.PathLike) -> str:
    return os.path.basename(str(path))


def evaluate_test(scorer, path: str | os.PathLike, batch_tokens: int = 16384) -> dict:
    pairs = read_pairs(path)
    return evaluate_pairs(pairs, *score_pairs(scorer, pairs, batch_tokens)).to_dict()


def evaluate_robustness(scorer, path: str | os.PathLike, max_records: int | None = 300, seed: int = 0,
                        kinds: Sequence[str] | None = None, batch_tokens: int = 16384) -> dict:
    pairs = robustness_pairs(path, max_records, seed, kinds)
    return robustness_report(pairs, *score_pairs(scorer, pairs, batch_tokens))


def length_correlation(scorer, path: str | os.PathLike, max_records: int | None = 2000, seed: int = 0,
                       batch_tokens: int = 16384) -> dict:
    """Spearman of score with answer length (characters) over a dataset's records."""
    items = answer_items(path, max_records, seed)
    scores = scorer.score_pairs([p for p, _ in items], [a for _, a in items], batch_tokens)
    return {"spearman": round(spearman(scores, [len(a) for _, a in items]), 4), "n_records": len(items)}


def check_evaluation(test: Sequence[str | os.PathLike] = (), robustness: Sequence[str | os.PathLike] = (),
                     length_reference: Sequence[str | os.PathLike] = (), max_records: int = 300,
                     kinds: Sequence[str] | None = None) -> None:
    """evaluate's arguments checked before any scorer is loaded (every file exists, known kinds)."""
    from .corruptions import KINDS

    if max_records < 1:
        raise CarSelectError(f"max_records must be >= 1, got {max_records}")
    for kind in kinds or ():
        if kind not in KINDS:
            raise CarSelectError(f"kinds: unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    for path in (*test, *robustness, *length_reference):
        if not os.path.exists(path):
            raise CarSelectError(f"{path}: no such file")


def evaluate(scorer, *, test: Sequence[str | os.PathLike] = (), robustness: Sequence[str | os.PathLike] = (),
             length_reference: Sequence[str | os.PathLike] = (), max_records: int = 300, seed: int = 0,
             kinds: Sequence[str] | None = None, batch_tokens: int = 16384) -> dict:
    """The card's figures for `scorer` on the given files, named by their base names: pairwise accuracy on
    each `test` file of preference pairs, accuracy per corruption kind on `max_records` answers of each
    `robustness` dataset (`kinds`: None for every kind but off_topic_similar), and Spearman(score, answer
    length) on each `length_reference` dataset; `seed` draws the records and the corruptions."""
    check_evaluation(test, robustness, length_reference, max_records, kinds)
    return {
        "validation": {_name(p): evaluate_test(scorer, p, batch_tokens) for p in test},
        "robustness": {_name(p): evaluate_robustness(scorer, p, max_records, seed, kinds, batch_tokens)
                       for p in robustness},
        "length_spearman": {_name(p): length_correlation(scorer, p, seed=seed, batch_tokens=batch_tokens)
                            for p in length_reference},
    }


def card_from_training(result, valid: dict[str, Sequence[PreferencePair]], trained_on: Sequence[str]) -> dict:
    """The card's validation and robustness figures from the scores training computed anyway."""
    card = {"trained_on": list(trained_on), "validation": {}, "robustness": {}, "length_spearman": {}}
    for name, pairs in valid.items():
        if pairs and all(isinstance(p, CorruptedPair) for p in pairs):
            card["robustness"][name.removeprefix("robustness:")] = robustness_report(pairs, *result.valid_scores[name])
        else:
            card["validation"][name] = result.valid[name].to_dict()
    return card


def save_card(scorer: str | os.PathLike | None, card: dict, trained_on: Sequence[str] = ()) -> dict:
    """Merge `card` into the card in a saved scorer's config.json (figures of the same name are
    replaced, others kept; the file is replaced atomically). trained_on: what the scorer was trained
    on, when the card says nothing of it (default: what the saved card said). Returns the merged card."""
    import json
    from pathlib import Path

    from ..atomic import atomic_path
    from ..scoring.scorer import FORMAT, scorer_path

    config_file = scorer_path(scorer) / "config.json"
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError):
        config = None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CarSelectError(f"{config_file}: not a car-select scorer's config.json; --save-card needs one")
    merged = dict(config.get("card") or {})
    card = {"trained_on": list(trained_on) or merged.get("trained_on", []), **card}
    for section, figures in card.items():
        merged[section] = {**merged.get(section, {}), **figures} if isinstance(figures, dict) else figures
    config["card"] = merged
    with atomic_path(config_file) as tmp:
        Path(tmp).write_text(json.dumps(config, indent=2) + "\n")
    return merged


def format_card(card: dict) -> str:
    """The card as aligned text lines."""
    lines = []
    if card.get("trained_on"):
        lines.append("trained on          " + ", ".join(card["trained_on"]))
    for name, v in card.get("validation", {}).items():
        lc = v.get("length_controlled_accuracy")
        lines.append(f"{name}: pairwise accuracy {v['pairwise_accuracy']:.4f} ({v['n_pairs']} pairs), "
                     f"longer-answer baseline {v['length_baseline_accuracy']:.4f}, length-controlled "
                     f"{'n/a' if lc is None else f'{lc:.4f}'} ({v['n_length_controlled']} pairs)")
    for name, r in card.get("robustness", {}).items():
        lines.append(f"{name}: robustness {r['accuracy']:.4f} over {r['n_pairs']} pairs (longer-answer baseline "
                     f"{r['length_baseline']:.4f}; worst kind {r['worst_kind_accuracy']:.4f})")
        width = max((len(kind) for kind in r["per_kind"]), default=0)
        for kind, k in r["per_kind"].items():
            lines.append(f"  {kind:<{width}} {k['accuracy']:.4f}  (longer wins {k['length_baseline']:.4f}, "
                         f"{k['n_pairs']} pairs)")
    for name, s in card.get("length_spearman", {}).items():
        lines.append(f"{name}: Spearman(score, answer length) {s['spearman']:+.4f} over {s['n_records']} records")
    if "ratings" in card:  # a scorer distilled from ratings (training/ratings.py)
        lines.extend(format_ratings_card(card["ratings"]))
    return "\n".join(lines)


def format_ratings_card(held_out: dict) -> list[str]:
    """The held-out lines of a distilled scorer's card."""
    if not held_out:
        return ["held out: no records in the test bucket (rate more records)"]
    lines = [f"held out ({held_out['n_records']:,} records, {held_out['distinct_ratings']} distinct ratings):"]
    for name in ("scorer", "output_length", "default_scorer"):
        if name in held_out:
            a = held_out[name]
            parts = [f"Spearman {a['spearman']:+.4f}" if a.get("spearman") is not None else "Spearman n/a"]
            if "auc" in a:
                parts.append(f"AUC {a['auc']:.4f}")
            lines.append(f"  {name.replace('_', ' '):<15} " + ", ".join(parts))
    return lines
