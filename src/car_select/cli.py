"""Command-line interface: argument parsing and error messages only; the work is in the Python API.

Every mistake a user can make ends as one line on stderr and exit status 2 (CarSelectError);
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .config import Config
from .errors import CarSelectError

PROG = "car-select"

RUN_EXAMPLE = """\
example:
  car-select run alpaca_data.json -o selected.json --annotated annotated.jsonl --report report.html
  car-select run chats.jsonl -o best.jsonl --n1 500 --n2 2 --format jsonl --fields instruction=prompt,output=response
  car-select run alpaca_data.json -o best5k.json --budget 5000           # exactly 5,000 records
  car-select run judged.jsonl -o best.jsonl --fraction 0.02 --score-field rating --min-score 7
  car-select run shards/ -o out/ --annotated ann/ --engine ray --address auto   # folder of JSONL/Parquet shards on a Ray cluster
"""
SCORE_EXAMPLE = """\
example:
  car-select score alpaca_data.json -o scored.json            # adds a "score" field to every record
"""
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
  # the paper's IQS recipe (the shipped car-paper scorer, byte for byte)
  car-select train-scorer --recipe car-paper --seed 42 -o car-paper \\
      --train ../shared/data/car-expert-revised/expert-revised/APE_score_train.csv \\
      --valid ../shared/data/car-expert-revised/expert-revised/APE_score_valid.csv
"""
CACHE_EXAMPLE = """\
example:
  car-select cache info                        # namespaces, shards, rows, bytes
  car-select cache prune                       # unreadable shards, killed runs' temporaries, old formats
  car-select cache prune --older-than 30       # also namespaces not written for 30 days
"""
EVAL_EXAMPLE = """\
example:
  car-select eval-scorer --test ../shared/data/car-expert-revised/expert-revised/APE_score_test.csv --json
  car-select eval-scorer --robustness my_data.jsonl --scorer my-scorer     # accuracy per corruption kind
  car-select eval-scorer --scorer car-paper                                # the card stored with a scorer
"""


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (exit 2), like every other user error."""

    def error(self, message: str):  # noqa: D401
        raise CarSelectError(f"{self.prog}: {message}")


def _formatter(prog):
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _add_input_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("input and output")
    g.add_argument("--format", dest="file_format", help="input file format: json, jsonl, csv, parquet, hf (default: detected)")
    g.add_argument("--schema", help="record schema: alpaca, alpaca-history, sharegpt, messages, turns (default: detected)")
    g.add_argument("--fields", help="map field names, e.g. instruction=prompt,output=response")
    g.add_argument("--output-format", help="output file format (default: the input's)")
    g.add_argument("--overwrite", action="store_true", help="replace an existing output")


def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--scorer", help="scorer directory or official COMET .ckpt (default: the shipped scorer)")
    g.add_argument("--embedder", default=None, help="sentence-transformers model for the clustering embedding: "
                   "a folder, owner/name or hf://owner/name (default: the scorer's own pass)")
    g.add_argument("--precision", choices=["auto", "bf16", "fp32"], default=None)
    g.add_argument("--device", default=None, help="auto, cpu, cuda")
    g.add_argument("--batch-tokens", type=int, default=None, help="tokens per encoder batch")
    g.add_argument("--cache-dir", help="feature cache folder (default: ~/.cache/car-select)")
    g.add_argument("--no-cache", action="store_true", help="neither read nor write the feature cache")


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description="CaR instruction-data selection: expert-aligned quality ranking "
                    "plus diversity-preserving clustering (Ge et al., EMNLP 2024).", formatter_class=_formatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = sub.add_parser("run", help="select a subset (score, embed, cluster, select, write)", epilog=RUN_EXAMPLE,
                         formatter_class=_formatter, description="Select the global top n1 records by quality "
                         "score plus the top n2 of every k-means cluster, and write them in the input's format.")
    run.add_argument("input", help="dataset file or folder (or hf://owner/name[:split])")
    run.add_argument("-o", "--output", required=True, help="where to write the selected records")
    run.add_argument("--config", help="TOML file with any of these options (flags override it)")
    g = run.add_argument_group("selection (defaults are the paper's)")
    g.add_argument("--n1", type=int, default=None, help="global top records by score (1000)")
    g.add_argument("--budget", type=int, default=None, metavar="N",
                   help="keep exactly N records: the smallest n1 whose top-n1 plus cluster tops reach N")
    g.add_argument("--fraction", type=float, default=None, metavar="F",
                   help="keep round(F x records read) records, as --budget")
    g.add_argument("--min-score", type=float, default=None, metavar="S",
                   help="keep only records scoring at least S (before the rule)")
    g.add_argument("--score-field", default=None, metavar="NAME",
                   help="use this numeric field of every record as its score (no scorer; records are only embedded)")
    g.add_argument("--n2", type=int, default=None, help="top records per cluster (1)")
    g.add_argument("--clusters", type=int, default=None, help="k for k-means (int(sqrt(n/2)))")
    g.add_argument("--pca-variance", type=float, default=None, help="share of variance PCA keeps (0.95)")
    g.add_argument("--seed", type=int, default=None, help="random seed (42)")
    g.add_argument("--kmeans", dest="kmeans_backend", choices=["faiss", "sklearn"], default=None)
    g.add_argument("--fit-sample", type=int, default=None, help="fit PCA/k-means on at most this many rows")
    g = run.add_argument_group("reports")
    g.add_argument("--annotated", help="JSONL with index, score, cluster, selected, reason per input record")
    g.add_argument("--report", help="self-contained HTML report")
    g.add_argument("--figures", help="folder for PNG figures (cluster map, score histogram)")
    g.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")
    g = run.add_argument_group("engine")
    g.add_argument("--engine", choices=["local", "ray"], default="local")
    g.add_argument("--address", help="Ray cluster address (default: start a local one)")
    _add_input_options(run)
    _add_model_options(run)

    score = sub.add_parser("score", help="add a quality score to every record", epilog=SCORE_EXAMPLE,
                           formatter_class=_formatter)
    score.add_argument("input")
    score.add_argument("-o", "--output", required=True)
    score.add_argument("-q", "--quiet", action="store_true")
    _add_input_options(score)
    _add_model_options(score)

    train = sub.add_parser("train-scorer", help="train a quality scorer on preference pairs", epilog=TRAIN_EXAMPLE,
                           formatter_class=_formatter, description="Train on the expert-revised CSV (src,score), "
                           "the pairs CSV (src,pos,neg) or JSONL {prompt, chosen, rejected}, plus corruption "
                           "negatives; the epoch with the best mean validation pairwise accuracy is kept. Output: "
                           "safetensors + config.json, with the scorer's card.")
    train.add_argument("--recipe", choices=["default", "car-paper"], default="default",
                       help="default (multi-view head, pairwise loss, corruption negatives) or car-paper (the "
                       "paper's IQS: whole-text view, regression to 0/1, no negatives)")
    train.add_argument("--train", action="append", required=True, help="training pairs; repeatable")
    train.add_argument("--valid", action="append", required=True, help="validation pairs; repeatable")
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
    train.add_argument("--length-reference", metavar="DATA", help="dataset for the card's Spearman(score, length)")
    train.add_argument("--cache-dir", help="where training features are kept for a retrain on the same data "
                       "(default: ~/.cache/car-select)")
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
    train.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    train.add_argument("--device", default="auto")
    train.add_argument("--overwrite", action="store_true")
    train.add_argument("-q", "--quiet", action="store_true")

    cache = sub.add_parser("cache", help="inspect or prune the feature cache", epilog=CACHE_EXAMPLE,
                           formatter_class=_formatter)
    cache.add_argument("action", choices=["info", "prune"])
    cache.add_argument("--cache-dir", help="feature cache folder (default: ~/.cache/car-select)")
    cache.add_argument("--all", action="store_true", help="prune: remove every namespace")
    cache.add_argument("--older-than", type=float, default=None, metavar="DAYS",
                       help="prune: remove namespaces not written for this many days")
    cache.add_argument("--dry-run", action="store_true", help="prune: list what would be removed")
    cache.add_argument("--json", action="store_true")

    ev = sub.add_parser("eval-scorer", help="how good is a scorer: pairwise accuracy, robustness, its card",
                        epilog=EVAL_EXAMPLE, formatter_class=_formatter, description="Pairwise accuracy on "
                        "preference pairs beside the longer-answer baseline; --robustness degrades a dataset's "
                        "answers (repetition, filler, truncation, off-topic, ...) and reports, per kind, how often "
                        "the original scores above its degraded copy. With no data option: the scorer's card.")
    ev.add_argument("--test", action="append", default=[], help="preference pairs (CSV or JSONL); repeatable")
    ev.add_argument("--robustness", action="append", default=[], metavar="DATA",
                    help="dataset (any supported format) whose answers are degraded into pairs; repeatable")
    ev.add_argument("--length-reference", action="append", default=[], metavar="DATA",
                    help="dataset for the Spearman correlation of score with answer length; repeatable")
    ev.add_argument("--max-records", type=int, default=300, help="records sampled per --robustness dataset (300)")
    ev.add_argument("--kinds", help="comma-separated corruption kinds (default: every kind but "
                    "off_topic_similar, the answer to the most similar other request, which is asked for by name)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the record sample and the corruptions (0)")
    ev.add_argument("--card", action="store_true", help="print the card stored with the scorer (the default "
                    "when no data option is given)")
    ev.add_argument("--save-card", action="store_true", help="merge the figures into the card in the scorer's config.json")
    ev.add_argument("--trained-on", action="append", default=[], metavar="TEXT",
                    help="with --save-card: what the scorer was trained on (default: what its card said)")
    ev.add_argument("--scorer", help="scorer directory, official .ckpt or 'car-paper' (default: the shipped scorer)")
    ev.add_argument("--json", action="store_true", help="print everything as one JSON object")
    ev.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    ev.add_argument("--device", default="auto")
    return parser


def _load_toml(path: str) -> dict:
    import tomllib

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise CarSelectError(f"{path}: no such file") from None
    except OSError as e:  # a folder, no permission, ...
        raise CarSelectError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise CarSelectError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise CarSelectError(f"{path}: malformed TOML: {e}") from None
    return {k.replace("-", "_"): v for k, v in data.items()}


def _config_tokens(parser: Parser, command: str, path: str, settings: dict) -> list[str]:
    """A TOML file's settings as the flags they stand for, so they get exactly the flags' type and
    choice checks (and flags given on the command line, parsed later, override them)."""
    sub = parser._subparsers._group_actions[0].choices[command]
    actions = {a.dest: a for a in sub._actions if a.option_strings}
    tokens: list[str] = []
    for key, value in settings.items():
        action = actions.get(key)
        if action is None or key in ("config", "help"):
            raise CarSelectError(f'{path}: unknown option "{key}"')
        flag = max(action.option_strings, key=len)
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            if not isinstance(value, bool):
                raise CarSelectError(f"{path}: {key} must be true or false, got {value!r}")
            if value == isinstance(action, argparse._StoreTrueAction):
                tokens.append(flag)
            continue
        if isinstance(value, (dict, list)) or isinstance(value, bool) and action.type is not None:
            raise CarSelectError(f"{path}: {key} = {value!r}: expected a single {getattr(action.type, '__name__', 'string')}")
        if isinstance(value, float) and action.type is int:
            raise CarSelectError(f"{path}: {key} must be an integer, got {value!r}")
        if isinstance(value, bool):
            value = str(value).lower()
        tokens.append(f"{flag}={value}")
    return tokens


def _apply_config_file(parser: Parser, argv: list[str]) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if getattr(args, "config", None):
        settings = _load_toml(args.config)
        tokens = _config_tokens(parser, args.command, args.config, settings)
        at = argv.index(args.command) + 1
        try:
            args = parser.parse_args(argv[:at] + tokens + argv[at:])
        except CarSelectError as e:
            raise CarSelectError(f"{args.config}: {e}") from None
    return args


def config_from_args(args: argparse.Namespace) -> Config:
    """Config from parsed flags: only the options given override the paper's defaults."""
    changes = {name: getattr(args, name) for name in Config.field_names() if getattr(args, name, None) is not None}
    if getattr(args, "no_cache", False):
        changes["use_cache"] = False
    config = Config(**changes)
    config._cli_names = True  # its errors name flags, not API arguments
    return config.validate()


def _fields(args):
    from .formats import parse_fields

    return parse_fields(args.fields) if args.fields else None


def _read(args):
    from .api import read_input

    return read_input(args.input, file_format=args.file_format, schema=args.schema, fields=_fields(args))


def _plan(args, source, **extra):
    from .api import plan_outputs

    return plan_outputs(source, output=args.output, output_format=args.output_format,
                        overwrite=args.overwrite, cli=True, file_format=args.file_format, **extra)


def _print_summary(args, summary: dict) -> None:
    if args.json:
        print(json.dumps(summary))
    elif not args.quiet:
        print(format_summary(summary))


def cmd_run(args) -> int:
    from .formats.sources import is_sharded

    _check_budget_flags(args)
    if args.address and args.engine != "ray":
        raise CarSelectError("--address needs --engine ray")
    config = config_from_args(args)
    quiet = args.quiet or args.json
    # every output against the input and each other before anything is read or loaded
    outputs = _plan(args, args.input, annotated=args.annotated, report=args.report, figures=args.figures)
    # a single file is read here, before the heavy imports, so a bad input fails fast; a sharded
    # input is read by the engine (on the Ray engine, as Ray tasks)
    source = args.input if args.engine == "ray" and is_sharded(args.input) else _read(args)
    from . import api  # heavy (torch, transformers): only once the input and options are known good

    result = api.run(source, config, output_format=args.output_format, engine=args.engine, address=args.address,
                     quiet=quiet, outputs=outputs, file_format=args.file_format, schema=args.schema,
                     fields=_fields(args))
    _print_summary(args, result.summary())
    return 0


def _check_budget_flags(args) -> None:
    if getattr(args, "n1", None) is not None and (args.budget is not None or args.fraction is not None):
        raise CarSelectError(f"--n1 and --{'budget' if args.budget is not None else 'fraction'} are exclusive: "
                             "a budget chooses n1")


def format_summary(s: dict) -> str:
    lines = [
        f"records read        {s['records_read']:,}",
        f"duplicates dropped  {s['duplicates_dropped']:,}",
        f"clusters (k)        {s['k']:,}",
        f"PCA components      {s['pca_components']} (explaining {s['pca_variance_explained']:.1%} of variance)",
        f"selected            {s['selected']:,} ({s['selected_top_n1']:,} top-n1 + {s['selected_cluster_top']:,} "
        f"cluster tops; {s['clusters_covered']:,} clusters covered)",
        *([f"rule                n1 {s['n1']:,}, n2 {s['n2']:,}"
           + (f" (the smallest n1 for a budget of {s['budget']:,})" if s.get("budget") is not None else "")
           + (f"; {s['eligible']:,} records score at least {s['min_score']:g}" if s.get("min_score") is not None
              else "")] if s.get("n1") is not None else []),
        f"cache hits          {s['cache_hits']:,} texts",
        "time per stage      " + ", ".join(f"{k} {v:.1f}s" for k, v in s["stage_seconds"].items()),
    ]
    if s.get("languages"):
        lang = s["languages"]
        shown = ", ".join(f"{code} {n:,}" for code, n in list(lang["counts"].items())[:6])
        lines.append(f"languages           {shown}" + (f" (a sample of {lang['detected']:,} of {lang['of']:,})"
                                                       if lang["detected"] < lang["of"] else ""))
    if s.get("against_random"):
        from .value import format_comparison

        lines.extend(format_comparison(s["against_random"]))
    if s.get("output"):
        lines.append(f"written             {s['output']}")
    return "\n".join(lines)


def cmd_score(args) -> int:
    config = config_from_args(args)
    dataset = _read(args)
    outputs = _plan(args, dataset)
    from . import api

    api.score_dataset(dataset, config, output=args.output, output_format=args.output_format, quiet=args.quiet,
                      outputs=outputs)
    return 0


def cmd_train(args) -> int:
    from .atomic import check_writable
    from .scoring import card as cards
    from .scoring.train import RECIPES, TrainSettings, train_scorer, training_data

    check_writable(args.output, overwrite=args.overwrite, directory=True)
    if os.path.isdir(args.output) and os.listdir(args.output) and not args.overwrite:
        raise CarSelectError(f"cannot write {args.output}: it already exists (pass --overwrite to replace it)")
    for flag, value in (("--negatives-max-records", args.negatives_max_records), ("--max-train-pairs", args.max_train_pairs)):
        if value is not None and value < 1:
            raise CarSelectError(f"{flag} must be >= 1, got {value}")
    settings = TrainSettings(encoder=args.encoder, seed=args.seed, max_length=args.max_length,
                             precision=args.precision, device=args.device, train_encoder=args.train_encoder,
                             **RECIPES[args.recipe])
    for flag, name in (("epochs", "epochs"), ("objective", "objective"), ("members", "members"), ("lr", "lr_head"),
                       ("off_topic_weight", "off_topic_weight"), ("tail_tokens", "tail_tokens")):
        if getattr(args, flag) is not None:
            setattr(settings, name, getattr(args, flag))
    if args.hidden_sizes:
        try:
            settings.hidden_sizes = [int(x) for x in args.hidden_sizes.split(",") if x.strip()]
        except ValueError:
            raise CarSelectError(f"--hidden-sizes must be comma-separated integers, got {args.hidden_sizes!r}") from None
    settings.validate()
    train_weights = None
    if args.train_weights is not None:
        try:
            train_weights = [float(x) for x in args.train_weights.split(",")]
        except ValueError:
            raise CarSelectError(f"--train-weights must be comma-separated numbers, got {args.train_weights!r}") from None
    data = training_data(args.train, args.valid, robustness_paths=args.valid_robustness,
                         negatives_from=args.negatives_from, max_train_pairs=args.max_train_pairs,
                         negatives_max_records=args.negatives_max_records,
                         negatives_per_answer=settings.negatives_per_answer, seed=args.seed,
                         train_weights=train_weights, off_topic_weight=settings.off_topic_weight)
    t = time.perf_counter()
    from .config import default_cache_dir

    cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
    result = train_scorer(data.train, data.valid, settings, quiet=args.quiet, cache_dir=cache_dir,
                          pair_weights=data.weights)
    result.scorer.meta["training"]["seconds"] = round(time.perf_counter() - t, 1)
    card = cards.card_from_training(result, data.valid, data.trained_on)
    if args.length_reference:
        card["length_spearman"][os.path.basename(args.length_reference)] = cards.length_correlation(
            result.scorer, args.length_reference)
    result.scorer.meta["card"] = card
    result.scorer.save(args.output)
    if not args.quiet:
        print(cards.format_card(card))
        print(f"best epochs {result.best_epochs}; saved {args.output} in {time.perf_counter() - t:.0f}s")
    return 0


def cmd_eval(args) -> int:
    from .scoring import card as cards
    from .scoring.corruptions import KINDS

    if args.max_records < 1:
        raise CarSelectError(f"--max-records must be >= 1, got {args.max_records}")
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()] if args.kinds else None
    for kind in kinds or ():
        if kind not in KINDS:
            raise CarSelectError(f"--kinds: unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    for path in (*args.test, *args.robustness, *args.length_reference):
        if not os.path.exists(path):
            raise CarSelectError(f"{path}: no such file")
    from .scoring.scorer import Scorer

    scorer = Scorer.load(args.scorer)
    if args.card or not (args.test or args.robustness or args.length_reference):
        card = scorer.meta.get("card")
        if card is None:
            raise CarSelectError(f"{args.scorer or 'the shipped scorer'}: has no card; pass --test, --robustness "
                                 "or --length-reference to evaluate it")
        print(json.dumps(card) if args.json else cards.format_card(card))
        return 0
    scorer.to(args.device, args.precision)
    result = {
        "validation": {os.path.basename(p): cards.evaluate_test(scorer, p) for p in args.test},
        "robustness": {os.path.basename(p): cards.evaluate_robustness(scorer, p, args.max_records, args.seed, kinds)
                       for p in args.robustness},
        "length_spearman": {os.path.basename(p): cards.length_correlation(scorer, p, seed=args.seed)
                            for p in args.length_reference},
    }
    if args.save_card:
        old = scorer.meta.get("card") or {}
        result = {"trained_on": args.trained_on or old.get("trained_on", []), **result}
        result = cards.save_card(args.scorer, result)
    if args.json:
        print(json.dumps(result))
    else:
        print(cards.format_card(result))
    return 0


def cmd_cache(args) -> int:
    from .cache import cache_info, prune_cache

    root = Path(args.cache_dir) if args.cache_dir else Config().resolved_cache_dir()
    if args.action == "info":
        info = cache_info(root)
        if args.json:
            print(json.dumps({"cache_dir": str(root), "namespaces": info}))
        else:
            print(f"cache {root}: {len(info)} namespace(s)")
            for ns in info:
                print(f"  {ns['namespace']}  {ns['shards']} shards, {ns['rows']:,} rows, {ns['bytes'] / 2**20:.1f} MiB"
                      + (f", {ns['unreadable_shards']} unreadable" if ns["unreadable_shards"] else "")
                      + ("" if ns["current_format"] else ", old format"))
        return 0
    if args.older_than is not None and args.older_than < 0:
        raise CarSelectError(f"--older-than must be >= 0, got {args.older_than}")
    removed = prune_cache(root, everything=args.all, older_than_days=args.older_than, dry_run=args.dry_run)
    if args.json:
        print(json.dumps({"cache_dir": str(root), "removed": removed, "dry_run": args.dry_run}))
    else:
        for path in removed:
            print(("would remove " if args.dry_run else "removed ") + path)
    return 0


COMMANDS = {"cache": cmd_cache, "run": cmd_run, "score": cmd_score, "train-scorer": cmd_train, "eval-scorer": cmd_eval}


def _one_line_warnings() -> None:
    """CarSelectWarning prints as `car-select: warning: <message>` on stderr, every time."""
    import warnings

    from .errors import CarSelectWarning

    shown = warnings.showwarning
    if getattr(shown, "car_select", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, CarSelectWarning):
            print(f"{PROG}: warning: {' '.join(str(message).split())}", file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    show.car_select = True
    warnings.showwarning = show
    warnings.simplefilter("always", CarSelectWarning)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Before torch/faiss load: OpenMP threads that sleep instead of spinning while waiting keep faiss
    # k-means 3-4x faster when the cores are shared with other work (benchmarks/README.md).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    _one_line_warnings()
    try:
        parser = build_parser()
        args = _apply_config_file(parser, argv)
        return COMMANDS[args.command](args)
    except CarSelectError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
