"""`car-select eval-scorer`: pairwise accuracy, robustness per corruption kind, or a scorer's card."""

from __future__ import annotations

import json

from ..errors import CarSelectError
from .options import PRECISION_HELP, SCORER_HELP, formatter

EVAL_EXAMPLE = """\
example:
  car-select eval-scorer --test ../shared/data/car-expert-revised/expert-revised/APE_score_test.csv --json
  car-select eval-scorer --robustness my_data.jsonl --scorer my-scorer     # accuracy per corruption kind
  car-select eval-scorer --scorer car-paper                                # the card stored with a scorer
"""


def add_parser(sub):
    ev = sub.add_parser("eval-scorer", help="how good is a scorer: pairwise accuracy, robustness, its card",
                        epilog=EVAL_EXAMPLE, formatter_class=formatter, description="Pairwise accuracy on "
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
    ev.add_argument("--scorer", metavar="SCORER", help=SCORER_HELP)
    ev.add_argument("--json", action="store_true", help="print everything as one JSON object")
    ev.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto", help=PRECISION_HELP)
    ev.add_argument("--device", default="auto")
    return ev


def main(args) -> int:
    from ..scoring.scorer import Scorer
    from ..training import card as cards
    from ..training.corruptions import KINDS

    if args.max_records < 1:
        raise CarSelectError(f"--max-records must be >= 1, got {args.max_records}")
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()] if args.kinds else None
    for kind in kinds or ():
        if kind not in KINDS:
            raise CarSelectError(f"--kinds: unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    data = {"test": args.test, "robustness": args.robustness, "length_reference": args.length_reference}
    cards.check_evaluation(**data)  # every file exists, before the scorer loads
    scorer = Scorer.load(args.scorer)
    if args.card or not any(data.values()):
        card = scorer.meta.get("card")
        if card is None:
            raise CarSelectError(f"{args.scorer or 'the shipped scorer'}: has no card; pass --test, --robustness "
                                 "or --length-reference to evaluate it")
        print(json.dumps(card) if args.json else cards.format_card(card))
        return 0
    scorer.to(args.device, args.precision)
    result = cards.evaluate(scorer, **data, max_records=args.max_records, seed=args.seed, kinds=kinds)
    if args.save_card:
        result = cards.save_card(args.scorer, result, trained_on=args.trained_on)
    print(json.dumps(result) if args.json else cards.format_card(result))
    return 0
