"""`car-select rate`: rate records with an LLM judge behind an OpenAI-compatible endpoint (judge/)."""

from __future__ import annotations

import sys
import textwrap

from .options import add_input_options, formatter

RATE_EXAMPLE = """\
examples:
  # a local vLLM / llama.cpp / Ollama server, 2,000 records spread over the data's topics
  car-select rate alpaca_data.json -o rated.jsonl --endpoint http://localhost:8000/v1 --model Qwen2.5-7B-Instruct \\
      --sample 2000 --concurrency 16
  # a hosted API: the key is read from the environment variable the flag names, never from the command line
  car-select rate data.jsonl -o rated.jsonl --endpoint https://api.openai.com/v1 --model gpt-4o-mini \\
      --api-key-env OPENAI_API_KEY --rubric helpfulness --sample 5000
  # your own prompt: {instruction}, {input} and {response} are filled in; --scale bounds the reply
  car-select rate data.jsonl -o rated.jsonl --endpoint http://localhost:8000/v1 --model m --prompt my.txt --scale 1,10
then: car-select train-scorer --ratings rated.jsonl -o my-scorer; car-select run data.jsonl -o best.json --scorer my-scorer
"""


def add_parser(sub):
    rate = sub.add_parser("rate", help="rate records with an LLM judge (OpenAI-compatible endpoint)",
                          epilog=RATE_EXAMPLE, formatter_class=formatter, description=textwrap.fill(
                              "Ask an LLM judge to rate every record (or a seeded sample spread over the data's "
                              "topics) and write the rated records, unchanged, with one more field holding the "
                              "rating. Every exchange of a conversation is rated as the scorer sees it and the "
                              "record gets their mean. Ratings are cached as they arrive (a rerun, or a run "
                              "resumed after it was killed, sends no request twice); a reply without a rating is "
                              "asked again, then counted and left out, never taken as 0."))
    rate.add_argument("input", help="dataset file or folder (or hf://owner/name[:split])")
    rate.add_argument("-o", "--output", required=True, help="where to write the rated records")
    g = rate.add_argument_group("judge")
    g.add_argument("--endpoint", required=True, metavar="URL",
                   help="the OpenAI-compatible API's base URL (http://localhost:8000/v1) or its /chat/completions URL")
    g.add_argument("--model", required=True, help="the model name the endpoint serves")
    g.add_argument("--api-key-env", dest="api_key_env", metavar="NAME",
                   help="environment variable holding the API key (default: send no key)")
    g.add_argument("--rubric", choices=["accuracy", "helpfulness"], default=None,
                   help="shipped prompt: accuracy (AlpaGasus' 0-5 rubric; the default) or helpfulness (0-5)")
    g.add_argument("--prompt", metavar="FILE", help="your own prompt template with {instruction}, {input} and "
                   "{response} (instead of --rubric)")
    g.add_argument("--scale", metavar="LOW,HIGH", help="the ratings a reply may give; others are unparsable "
                   "(default: the rubric's 0,5; any number for --prompt)")
    g.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (0)")
    g.add_argument("--max-tokens", type=int, default=128, help="reply length limit; the rubrics ask for the "
                   "rating on the first line (128)")
    g = rate.add_argument_group("what and how")
    g.add_argument("--sample", type=int, metavar="N", help="rate N records, seeded and spread over the data's "
                   "topics (TF-IDF k-means clusters, each by its size); default: every record")
    g.add_argument("--seed", type=int, default=42, help="seed of the sample (42)")
    g.add_argument("--rating-field", dest="rating_field", default="rating", metavar="NAME",
                   help='the field that holds the rating (default: "rating")')
    g.add_argument("--overwrite-field", action="store_true", help="replace the field where records have it")
    g.add_argument("--concurrency", type=int, default=4, help="requests in flight at once (4)")
    g.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one reply (60)")
    g.add_argument("--max-retries", type=int, default=5,
                   help="retries of a request after a 429, a 5xx, a timeout or a dropped connection, with "
                   "exponential backoff (5)")
    g.add_argument("--parse-retries", type=int, default=2,
                   help="times a reply without a rating is asked again before the record counts as unrated (2)")
    g.add_argument("--cache-dir", help="where the ratings cache lives (default: ~/.cache/car-select)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary line")
    add_input_options(rate)
    return rate


def main(args) -> int:
    from ..errors import CarSelectError
    from .run import plan, read

    for flag, value, low in (("--concurrency", args.concurrency, 1), ("--max-retries", args.max_retries, 0),
                             ("--parse-retries", args.parse_retries, 0), ("--max-tokens", args.max_tokens, 1),
                             ("--sample", args.sample, 1)):
        if value is not None and value < low:
            raise CarSelectError(f"{flag} must be >= {low}, got {value}")
    if not args.timeout > 0:
        raise CarSelectError(f"--timeout must be > 0, got {args.timeout}")
    if args.prompt is not None and args.rubric is not None:
        raise CarSelectError("--prompt and --rubric are exclusive")
    from ..judge.prompts import parse_scale, rubric_for
    from ..judge.rate import api_key_from

    outputs = plan(args, args.input)  # every output against the input before anything is read
    rubric = rubric_for(args.rubric or "accuracy", args.prompt, parse_scale(args.scale))
    key = api_key_from(args.api_key_env)
    dataset = read(args)
    from ..judge.client import ChatClient
    from ..judge.rate import rate_dataset

    client = ChatClient(args.endpoint, args.model, key, timeout=args.timeout, max_retries=args.max_retries,
                        temperature=args.temperature, max_tokens=args.max_tokens)
    try:
        result = rate_dataset(dataset, rubric, client, output=args.output, outputs=outputs,
                              output_format=args.output_format, sample=args.sample, seed=args.seed,
                              rating_field=args.rating_field, overwrite_field=args.overwrite_field,
                              concurrency=args.concurrency, parse_retries=args.parse_retries,
                              cache_dir=args.cache_dir, quiet=args.quiet)
    finally:
        client.close()
    if not args.quiet:
        s = result.summary()
        print(f"rated {s['rated']:,} of {s['asked']:,} records ({s['requests']:,} requests, {s['tokens']:,} tokens, "
              f"{s['cached_texts']:,} texts from the cache); written {args.output} (field \"{args.rating_field}\")",
              file=sys.stderr)
    return 0
