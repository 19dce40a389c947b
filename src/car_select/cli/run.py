"""`car-select run`: select a subset (score, embed, cluster, select, write)."""

from __future__ import annotations

import json
import textwrap

from ..scored import describe_lines
from ..wording import count, plural, threshold
from .options import OUTPUT_FORMAT_RULE, Settings, add_field_option, add_input_options, add_model_options, formatter

RUN_EXAMPLE = """\
example:
  car-select run alpaca_data.json -o selected.json --annotated annotated.jsonl --report report.html
  car-select run chats.jsonl -o best.jsonl --n1 500 --n2 2 --format jsonl --fields instruction=prompt,output=response
  car-select run alpaca_data.json -o best100.json --budget 100           # exactly 100 records
  car-select run judged.jsonl -o best.jsonl --fraction 0.02 --score-field rating --min-score 7
  car-select run data.jsonl -o subset.json --order input                 # JSON array, in the input's order
  car-select run alpaca_data.json -o qd.json --strategy qd --fraction 0.1 --near-duplicates 0.95
  car-select run shards/ -o out/ --annotated annotated.jsonl --engine ray  # a folder of shards, on Ray
  # on a running Ray cluster, add --address auto (or the head's address)
"""


def add_parser(sub):
    run = sub.add_parser("run", help="select a subset (score, embed, cluster, select, write)", epilog=RUN_EXAMPLE,
                         formatter_class=formatter, description=textwrap.fill(
                             "Score every record, embed and cluster it, and keep a subset: by default the paper's "
                             "rule, the global top n1 records by quality score plus the top n2 of every k-means "
                             "cluster; --strategy qd (quality-diversity coverage) or deita (score first, near-copies "
                             "apart) with --budget N. The kept records are written unchanged, by descending score "
                             "(or in input order with --order input). Output format: " + OUTPUT_FORMAT_RULE + "."))
    run.add_argument("input", help="dataset file or folder (or hf://owner/name[:split])")
    run.add_argument("-o", "--output", required=True, help="where to write the selected records")
    run.add_argument("--config", help="TOML file setting Config fields (n1 = 500, kmeans_backend = \"sklearn\", "
                     "use_cache = false, ...) and run options (annotated, report, engine, ...); flags override it "
                     "field by field, and a file setting a flag excludes gives way (budget = 100 with --n1 10: n1 10)")
    run.add_argument("--order", choices=["score", "input"], default="score",
                     help="the selection's order in the output: score (descending; the default) or input")
    g = run.add_argument_group("selection (defaults are the paper's)")
    add_field_option(g, "n1", type=int, help="global top records by score (1000)")
    add_field_option(g, "budget", type=int, metavar="N",
                     help="keep exactly N records (N >= 1): the smallest n1 whose top-n1 plus cluster tops reach N; "
                     "N above the distinct records is an error")
    add_field_option(g, "fraction", type=float, metavar="F",
                     help="keep round(F x records read) records, as --budget (0 < F <= 1); a count of 0, or above "
                     "the distinct records, is an error")
    add_field_option(g, "min_score", type=float, metavar="S",
                     help="keep only records scoring at least S (before the rule)")
    add_field_option(g, "min_percentile", type=float, metavar="P",
                     help="keep only records scoring at least the P-th percentile of this input's scores "
                     "(0 <= P < 100; 25 drops the bottom quarter): --min-score on the data's own scale")
    add_field_option(g, "strategy", metavar="{car,qd,deita}",
                     help="car (default): the paper's rule, top n1 plus each cluster's top n2; qd: quality-diversity, "
                     "greedy coverage of the whole dataset (cosine facility location over a 32-neighbour graph of "
                     "the clustering's PCA embeddings) plus --quality-weight x score scaled to [0, 1]; deita: best "
                     "score first, skipping a record whose cosine similarity to a kept one exceeds --max-similarity. "
                     "qd and deita need --budget or --fraction and take no --n1/--n2")
    add_field_option(g, "quality_weight", type=float, metavar="W",
                     help="qd: what the best score is worth against covering a record's whole neighbourhood "
                     "(W >= 0; 1.0, chosen on Alpaca; higher: closer to top by score)")
    add_field_option(g, "max_similarity", type=float, metavar="T",
                     help="deita: skip a record whose cosine similarity to a kept one exceeds T (0 < T <= 1; 0.9)")
    add_field_option(g, "near_duplicates", type=float, metavar="T",
                     help="before selecting, drop records whose cosine similarity to a better-scored kept one is at "
                     "least T (0 < T <= 1; 0.95 catches lightly edited copies); off by default")
    add_field_option(g, "targets", action="append", metavar="FILE",
                     help="examples of the tasks the data is for (records or prompts alone, any input format; "
                     "repeatable): the strategy keeps the budget from the records nearest them (round-robin over "
                     "the examples, a pool of twice the budget); needs --budget or --fraction")
    add_field_option(g, "decontaminate", action="append", metavar="FILE",
                     help="evaluation prompts to keep out (repeatable; e.g. MT-Bench's question.jsonl): a record "
                     "whose instruction or user turn matches one after normalisation, shares 13 words in a row "
                     "with one, or is an embedding near-duplicate of one is never selected (reason contaminated)")
    add_field_option(g, "balance", metavar="FIELD[:equal]",
                     help="split the budget among the values of this record field (a dotted path, as --fields), in "
                     "proportion to the input, or equally with FIELD:equal; the strategy fills each quota")
    add_field_option(g, "score_field", metavar="NAME",
                     help="use this numeric field of every record as its score (no scorer; records are only "
                     "embedded); a dotted path reaches into nested objects")
    add_field_option(g, "keep_broken_turns", action="store_true", default=None,
                     help="keep records with a broken exchange (an empty reply, a leaked role marker such as "
                     "'Human:') eligible; by default they are dropped (reason broken_turn) and flagged")
    add_field_option(g, "n2", type=int, help="top records per cluster (1)")
    add_field_option(g, "clusters", type=int, help="k for k-means (int(sqrt(n/2)))")
    add_field_option(g, "pca_variance", type=float,
                     help="share of variance PCA keeps (0.95)")
    add_field_option(g, "seed", type=int, help="random seed (42)")
    add_field_option(g, "kmeans_backend", choices=["faiss", "sklearn"],
                     help="k-means implementation: faiss (fast; the default) or sklearn (the official code's KMeans, "
                     "10 restarts); the clusters can differ")
    add_field_option(g, "fit_sample", type=int,
                     help="fit PCA/k-means on at most this many rows")
    g = run.add_argument_group("reports")
    g.add_argument("--annotated", help="JSONL with index, score, cluster, selected, reason per input record")
    g.add_argument("--report", help="self-contained HTML report")
    g.add_argument("--figures", help="folder for PNG figures (cluster map, score histogram)")
    g.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")
    g = run.add_argument_group("engine")
    g.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local (this process; the default) or ray (the same stages on Ray: a cluster at --address, "
                   "else a local one; docs/ray.md); both write the same bytes")
    g.add_argument("--address", help="Ray cluster address (default: start a local one)")
    add_input_options(run)
    add_model_options(run)
    return run


def fields(args):
    from ..formats import parse_fields

    return parse_fields(args.fields) if args.fields else None


def read(args):
    from ..api import read_input

    return read_input(args.input, file_format=args.file_format, schema=args.schema, fields=fields(args))


def plan(args, source, **extra):
    from ..api import plan_outputs

    return plan_outputs(source, output=args.output, output_format=args.output_format,
                        overwrite=args.overwrite, cli=True, file_format=args.file_format, **extra)


def main(args, settings: Settings) -> int:
    from ..formats.sources import is_sharded

    from ..config import check_engine

    check_engine(args.engine, args.address)  # before anything is read (api.run checks it too)
    # every output against the input and each other before anything is read or loaded
    examples = [("--target", p) for p in settings.config.targets] + [
        ("--decontaminate", p) for p in settings.config.decontaminate]
    outputs = plan(args, args.input, annotated=args.annotated, report=args.report, figures=args.figures,
                   example_files=examples)
    # a single file is read here, before the heavy imports, so a bad input fails fast; a sharded
    # input is read by the engine (on the Ray engine, as Ray tasks)
    source = args.input if args.engine == "ray" and is_sharded(args.input) else read(args)
    from .. import api  # heavy (torch, transformers): only once the input and options are known good

    result = api.run(source, settings.config, output_format=args.output_format, engine=args.engine,
                     address=args.address, quiet=args.quiet or args.json, outputs=outputs,
                     file_format=args.file_format, schema=args.schema, fields=fields(args), order=args.order)
    if args.json:
        print(json.dumps(result.summary()))
    elif not args.quiet:
        print(format_summary(result.summary()))
    return 0


def _selected_by(s: dict) -> str:
    """How the selection splits by reason: CaR's top-n1 and cluster tops, or another strategy's reasons."""
    if "strategy" not in s and "selected_top_n1" in s:
        return f"{s['selected_top_n1']:,} top-n1 + {s['selected_cluster_top']:,} cluster tops"
    counts = " + ".join(f"{n:,} {k.removeprefix('selected_').replace('_', ' ')}" for k, n in s.items()
                        if k.startswith("selected_"))
    return f"{s.get('strategy', 'car')}: {counts or 'none'}"


# The run's outputs as RunResult.summary names them, in the order the summary lists them.
WRITTEN = ("output", "annotated", "annotated_manifest", "report", "figures")


def format_summary(s: dict) -> str:
    lines = [
        f"records read        {s['records_read']:,}",
        f"duplicates dropped  {s['duplicates_dropped']:,}",
        f"clusters (k)        {s['k']:,}",
        f"PCA components      {s['pca_components']} (explaining {s['pca_variance_explained']:.1%} of variance)",
        *([f"near-duplicates     {s['near_duplicates_dropped']:,} dropped"] if "near_duplicates_dropped" in s else []),
        *([f"broken turns        {s['broken_turns_dropped']:,} dropped (an empty reply or a leaked role marker; "
            "--keep-broken-turns keeps them)"] if "broken_turns_dropped" in s else []),
        *([f"broken turns        {s['broken_turns_kept_eligible']:,} kept eligible, flagged"]
          if "broken_turns_kept_eligible" in s else []),
        f"selected            {s['selected']:,} ({_selected_by(s)}; {count(s['clusters_covered'], 'cluster')} "
        "covered)",
        *([f"rule                n1 {s['n1']:,}, n2 {s['n2']:,}"
           + (f" (the smallest n1 for a budget of {s['budget']:,})" if s.get("budget") is not None else "")
           + (f"; {count(s['eligible'], 'record')} {plural(s['eligible'], 'scores', 'score')} at least "
              f"{threshold(s['min_score'])}" if s.get("min_score") is not None else "")
           + (f" (the {s['min_percentile']:g}th percentile)" if s.get("min_percentile") is not None else "")]
          if s.get("n1") is not None else []),
        *(f"{label:20s}{text}" for label, text in (describe_lines(s["scored"]) if s.get("scored") else [])),
        f"cache hits          {count(s['cache_hits'], 'text')}",
        "time per stage      " + ", ".join(f"{k} {v:.1f}s" for k, v in s["stage_seconds"].items()),
    ]
    if s.get("languages"):
        lang = s["languages"]
        shown = ", ".join(f"{code} {n:,}" for code, n in list(lang["counts"].items())[:6])
        lines.append(f"languages           {shown}" + (f" (a sample of {lang['detected']:,} of {lang['of']:,})"
                                                       if lang["detected"] < lang["of"] else "")
                     + ("; und: too little text, or no language likely enough" if "und" in lang["counts"] else ""))
    from ..targeting import format_aims

    lines.extend(format_aims(s))
    if s.get("against_random"):
        from ..selection.baselines import format_comparison

        lines.extend(format_comparison(s["against_random"]))
    written = [s[key] for key in WRITTEN if s.get(key)]
    if written:
        lines.append(f"written             {', '.join(written)}")
    return "\n".join(lines)
