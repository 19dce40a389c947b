"""`car-select train-scorer`: train a quality scorer on preference pairs (training.train.train_from_files),
or distil per-record ratings into one (--ratings: training.ratings.distill)."""

from __future__ import annotations

import os
import time

from ..errors import CarSelectError
from .options import PRECISION_HELP, formatter

TRAIN_EXAMPLE = """\
examples (from the repository root, with ../shared/data beside it):
  # the shipped default scorer (README: "Retrain")
  car-select train-scorer --seed 42 -o my-scorer \\
      --train ../shared/data/car-expert-revised/expert-revised/APE_score_train.csv \\
      --train ../shared/data/preference-dev/train.jsonl --train-weights 1,0.25 \\
      --negatives-from ../shared/data/stanford-alpaca-52k/alpaca_data.json --negatives-max-records 500 \\
      --valid ../shared/data/car-expert-revised/expert-revised/APE_score_valid.csv \\
      --valid ../shared/data/preference-dev/valid_autoj_human.jsonl --valid-robustness ../shared/data/lima-1k/lima.json \\
      --length-reference ../shared/data/stanford-alpaca-52k/alpaca_data.json
  # distil an LLM judge's ratings (car-select rate) into a scorer; the card reports held-out agreement
  car-select train-scorer --ratings rated.jsonl --rating-field rating -o my-scorer
  # your own preference pairs, without corruption negatives (a harmlessness judge prefers refusals)
  car-select train-scorer --train pairs.jsonl --valid valid_pairs.jsonl --no-negatives -o my-scorer
  # the paper's IQS recipe (the shipped car-paper scorer, byte for byte)
  car-select train-scorer --recipe car-paper --seed 42 -o car-paper \\
      --train ../shared/data/car-expert-revised/expert-revised/APE_score_train.csv \\
      --valid ../shared/data/car-expert-revised/expert-revised/APE_score_valid.csv
"""


def add_parser(sub):
    train = sub.add_parser("train-scorer", help="train a quality scorer on preference pairs or ratings", epilog=TRAIN_EXAMPLE,
                           formatter_class=formatter, description="Train on the expert-revised CSV (src,score), "
                           "the pairs CSV (src,pos,neg) or JSONL {prompt, chosen, rejected}, plus corruption "
                           "negatives; the epoch with the best mean validation pairwise accuracy is kept. Output: "
                           "safetensors + config.json, with the scorer's card.")
    train.add_argument("--recipe", choices=["default", "car-paper"], default="default",
                       help="default (multi-view head, pairwise loss, corruption negatives) or car-paper (the "
                       "paper's IQS: whole-text view, regression to 0/1, no negatives)")
    train.add_argument("--train", action="append", default=[], help="training pairs; repeatable")
    train.add_argument("--valid", action="append", default=[], help="validation pairs; repeatable")
    train.add_argument("--ratings", metavar="DATA", help="instead of pairs: a dataset whose records carry a numeric "
                       "rating (any scale, 0/1 included; `car-select rate` writes one); split by record hash into "
                       "train, validation (chooses pairwise or regression loss, and the epoch) and a held-out tenth "
                       "the card reports")
    train.add_argument("--rating-field", default="rating", metavar="NAME",
                       help='with --ratings: the field holding the rating (default: "rating"); a dotted path reaches '
                       "into nested objects")
    train.add_argument("--no-negatives", action="store_true",
                       help="no corruption negatives: train on the --train pairs alone (they teach that a refusal or "
                       "a degraded answer is worse, which a harmlessness judge contradicts)")
    train.add_argument("--valid-robustness", action="append", default=[], metavar="DATA",
                       help="dataset whose degraded answers (eval-pool wordings) are one more validation set")
    train.add_argument("--negatives-from", action="append", default=[], metavar="DATA",
                       help="dataset whose answers, degraded, are extra training negatives (besides the "
                       "training pairs' own chosen answers)")
    train.add_argument("--negatives-max-records", type=int, default=1000,
                       help="records sampled per --negatives-from / --valid-robustness dataset (1000 / 150)")
    train.add_argument("--max-train-pairs", type=int, default=None, help="pairs sampled per --train file")
    train.add_argument("--train-weights", metavar="W,W,...", default=None,
                       help="each --train file's weight in the pairwise loss, in --train order (default: 1 each; "
                       "corruption negatives weigh 1)")
    train.add_argument("--off-topic-weight", type=float, default=None, metavar="W",
                       help="weight in the loss of the off_topic corruption negatives (another record's answer; "
                       "other negatives weigh 1; default recipe: 3)")
    train.add_argument("--extra-negative-kinds", metavar="KIND,KIND,...", default=None,
                       help="a second draw of negatives, one of these corruption kinds per answer where it applies "
                       "(e.g. input_pasted,input_pasted_extended,role_marker_leaked,summary_longer); 'none' for none")
    train.add_argument("--text-stats", type=int, default=None, metavar="N",
                       help="how many of the text statistics (scoring/textstats.py STAT_NAMES, in order) the head takes")
    train.add_argument("--length-reference", metavar="DATA", help="dataset for the card's Spearman(score, length)")
    train.add_argument("--cache-dir", metavar="DIR", help="where training features are kept for a retrain on the "
                       "same data (default: $CAR_SELECT_CACHE if set, else $XDG_CACHE_HOME/car-select, else "
                       "~/.cache/car-select)")
    train.add_argument("--no-cache", action="store_true", help="neither read nor write training features")
    train.add_argument("-o", "--output", required=True, help="scorer directory to write")
    train.add_argument("--encoder", default="all-MiniLM-L6-v2", help="any Hugging Face encoder name or path")
    train.add_argument("--objective", choices=["regression", "pairwise", "triplet"], default=None,
                       help="regression (paper's IQS; --recipe car-paper's), pairwise (Bradley-Terry; the default "
                       "recipe's) or triplet (paper's Comet)")
    train.add_argument("--epochs", type=int, default=None)
    train.add_argument("--members", type=int, default=None, help="heads trained from consecutive seeds, averaged")
    train.add_argument("--lr", type=float, default=None, help="head learning rate")
    train.add_argument("--hidden-sizes", default=None, help="feed-forward sizes, e.g. 2048,1024")
    train.add_argument("--train-encoder", action="store_true",
                       help="fine-tune the encoder too (the paper's recipe; needs a GPU for xlm-roberta-large)")
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--max-length", type=int, default=256)
    train.add_argument("--tail-tokens", type=int, default=None, metavar="N",
                       help="of a text longer than --max-length, the last N tokens the window keeps (multi-view "
                       "heads; default recipe: a quarter of --max-length, 64 of 256; at most half; 0: the "
                       "first --max-length)")
    train.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto", help=PRECISION_HELP)
    train.add_argument("--device", default="auto")
    train.add_argument("--overwrite", action="store_true")
    train.add_argument("-q", "--quiet", action="store_true")
    return train


def main(args) -> int:
    from ..atomic import check_writable
    from ..config import default_cache_dir
    from ..training.card import format_card
    from ..training.train import RECIPES, TrainSettings, train_from_files

    check_writable(args.output, overwrite=args.overwrite, directory=True)
    if os.path.isdir(args.output) and os.listdir(args.output) and not args.overwrite:
        raise CarSelectError(f"cannot write {args.output}: it already exists (pass --overwrite to replace it)")
    if args.ratings:
        return ratings_main(args)
    if not args.train or not args.valid:
        raise CarSelectError("train-scorer needs --train and --valid pairs, or --ratings")
    for flag, value in (("--negatives-max-records", args.negatives_max_records), ("--max-train-pairs", args.max_train_pairs)):
        if value is not None and value < 1:
            raise CarSelectError(f"{flag} must be >= 1, got {value}")
    settings = TrainSettings(encoder=args.encoder, seed=args.seed, max_length=args.max_length,
                             precision=args.precision, device=args.device, train_encoder=args.train_encoder,
                             **RECIPES[args.recipe])
    if args.no_negatives:
        settings.negatives_per_answer = 0
    if args.extra_negative_kinds is not None:
        from ..training.corruptions import KINDS

        kinds = [k.strip() for k in args.extra_negative_kinds.split(",") if k.strip() and k.strip() != "none"]
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise CarSelectError(f"--extra-negative-kinds: unknown kind {unknown[0]!r}; choose from {', '.join(KINDS)}")
        settings.extra_negative_kinds = kinds
    for flag, name in (("epochs", "epochs"), ("objective", "objective"), ("members", "members"), ("lr", "lr_head"),
                       ("off_topic_weight", "off_topic_weight"), ("tail_tokens", "tail_tokens"),
                       ("text_stats", "text_stats")):
        if getattr(args, flag) is not None:
            setattr(settings, name, getattr(args, flag))
    if args.hidden_sizes:
        settings.hidden_sizes = _hidden_sizes(args.hidden_sizes)
    train_weights = None
    if args.train_weights is not None:
        try:
            train_weights = [float(x) for x in args.train_weights.split(",")]
        except ValueError:
            raise CarSelectError(f"--train-weights must be comma-separated numbers, got {args.train_weights!r}") from None
    started = time.perf_counter()
    result = train_from_files(args.output, args.train, args.valid, settings, valid_robustness=args.valid_robustness,
                              negatives_from=args.negatives_from, negatives_max_records=args.negatives_max_records,
                              max_train_pairs=args.max_train_pairs, train_weights=train_weights,
                              length_reference=args.length_reference,
                              cache_dir=None if args.no_cache else (args.cache_dir or default_cache_dir()),
                              quiet=args.quiet)
    if not args.quiet:
        print(format_card(result.scorer.meta["card"]))
        print(f"best epochs {result.best_epochs}; saved {args.output} in {time.perf_counter() - started:.0f}s")
    return 0


def _hidden_sizes(text: str) -> list[int]:
    """--hidden-sizes "1024,256" as a list; one line for anything else."""
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CarSelectError(f"--hidden-sizes must be comma-separated integers, got {text!r}") from None


def ratings_main(args) -> int:
    """train-scorer --ratings: distil the records' ratings into a scorer folder."""
    from ..api import read_input
    from ..atomic import atomic_path
    from ..config import default_cache_dir
    from ..given_scores import read_score_field

    for flag in ("train", "valid", "valid_robustness", "negatives_from"):
        if getattr(args, flag):
            raise CarSelectError(f"--ratings and --{flag.replace('_', '-')} are exclusive: --ratings trains on "
                                 "ratings alone")
    if args.recipe != "default" or args.objective or args.train_encoder:
        raise CarSelectError("--ratings chooses its own loss over the frozen encoder: drop --recipe, --objective "
                             "and --train-encoder")
    dataset = read_input(args.ratings)
    if not dataset.records:
        raise CarSelectError(f"{args.ratings}: no records")
    ratings = read_score_field(dataset, args.rating_field)  # a missing or non-numeric rating: one line, exit 2
    from ..training.card import format_card
    from ..training.ratings import RatingsSettings, distill

    settings = RatingsSettings(encoder=args.encoder, seed=args.seed, max_length=args.max_length,
                               precision=args.precision, device=args.device)
    for flag, name in (("epochs", "epochs"), ("members", "members"), ("lr", "lr_head"), ("tail_tokens", "tail_tokens")):
        if getattr(args, flag) is not None:
            setattr(settings, name, getattr(args, flag))
    if args.hidden_sizes:
        settings.hidden_sizes = _hidden_sizes(args.hidden_sizes)
    started = time.perf_counter()
    result = distill(dataset.records, ratings, settings, source=os.path.basename(args.ratings),
                     rating_field=args.rating_field, quiet=args.quiet,
                     cache_dir=None if args.no_cache else (args.cache_dir or default_cache_dir()))
    with atomic_path(args.output, directory=True) as tmp:
        result.scorer.save(tmp)
    if not args.quiet:
        print(format_card(result.scorer.meta["card"]))
        trials = ", ".join(f"{loss} {t['criterion']:+.4f}" for loss, t in result.trials.items())
        print(f"loss {result.loss} (validation Spearman: {trials}); saved {args.output} in "
              f"{time.perf_counter() - started:.0f}s")
    return 0
