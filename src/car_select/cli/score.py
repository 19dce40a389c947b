"""`car-select score`: add a quality score to every record."""

from __future__ import annotations

import sys
import textwrap

from .options import Settings, add_input_options, add_model_options, formatter

SCORE_EXAMPLE = """\
example:
  car-select score alpaca_data.json -o scored.json              # adds a "score" field to every record
  car-select score judged.jsonl -o scored.jsonl --score-column car_score   # the records have a "score" already
"""


def add_parser(sub):
    score = sub.add_parser("score", help="add a quality score to every record", epilog=SCORE_EXAMPLE,
                           formatter_class=formatter, description=textwrap.fill(
                               "Score every record with the quality scorer and write the records, unchanged, with "
                               "one more field holding the score. A record that already has that field is an error "
                               "unless --score-column names another field or --overwrite-field is given."))
    score.add_argument("input", help="dataset file or folder (or hf://owner/name[:split])")
    score.add_argument("-o", "--output", required=True, help="where to write the scored records")
    score.add_argument("--score-column", default="score", metavar="NAME",
                       help='the field that holds the score (default: "score")')
    score.add_argument("--overwrite-field", action="store_true",
                       help="replace the score field where records already have it (default: refuse)")
    score.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary line")
    add_input_options(score)
    add_model_options(score)
    return score


def main(args, settings: Settings) -> int:
    from .run import plan, read

    dataset = read(args)
    outputs = plan(args, dataset)
    from .. import api  # heavy (torch, transformers): only once the input and options are known good

    scores = api.score_dataset(dataset, settings.config, output=args.output, output_format=args.output_format,
                               quiet=args.quiet, outputs=outputs, score_column=args.score_column,
                               overwrite_field=args.overwrite_field)
    if not args.quiet:
        from ..wording import count

        print(f'scored {count(len(scores), "record")}; written {args.output} (field "{args.score_column}")',
              file=sys.stderr)
    return 0
