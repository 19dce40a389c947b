"""The CLI's one map between flags and Config fields (and the API arguments it names), and a run's
Config from its flags and a TOML file.

To add a flag for a Config field: add `field: "--flag"` to FIELD_FLAGS and declare it with
`add_field_option(group, field, ...)` (parsed into `field`, None when not given, so a TOML file's value
or the Config default applies).
A TOML file (`run --config`) sets Config fields by their field names and the run options in
RUN_FILE_OPTIONS by their names; flags given on the command line override it.
"""

from __future__ import annotations

import argparse
import sys

from ..config import Config, check_together, overridden
from ..errors import CarSelectError, SettingError
from ..scoring.named import SCORER_FORMS

FIELD_FLAGS = {
    "n1": "--n1", "n2": "--n2", "budget": "--budget", "fraction": "--fraction", "min_score": "--min-score",
    "min_percentile": "--min-percentile",
    "score_field": "--score-field", "clusters": "--clusters", "pca_variance": "--pca-variance", "seed": "--seed",
    "kmeans_backend": "--kmeans", "fit_sample": "--fit-sample", "scorer": "--scorer", "embedder": "--embedder",
    "precision": "--precision", "device": "--device", "batch_tokens": "--batch-tokens", "cache_dir": "--cache-dir",
    "use_cache": "--no-cache", "strategy": "--strategy", "quality_weight": "--quality-weight",
    "max_similarity": "--max-similarity", "near_duplicates": "--near-duplicates",
    "targets": "--target", "decontaminate": "--decontaminate", "balance": "--balance",
    "keep_broken_turns": "--keep-broken-turns",
}
# API arguments (not Config fields) that errors name: api.run / api.score_dataset / formats
ARGUMENT_FLAGS = {"output_format": "--output-format", "score_column": "--score-column",
                  "overwrite_field": "--overwrite-field", "order": "--order", "engine": "--engine",
                  "address": "--address", "api_key_env": "--api-key-env", "rating_field": "--rating-field",
                  "sample": "--sample", "concurrency": "--concurrency"}

# run options besides Config fields that a TOML file may set: name -> type, or the allowed values
RUN_FILE_OPTIONS: dict[str, type | tuple[str, ...]] = {
    "annotated": str, "report": str, "figures": str, "json": bool, "quiet": bool, "engine": ("local", "ray"),
    "address": str, "file_format": str, "schema": str, "fields": str, "output_format": str, "overwrite": bool,
    "order": ("score", "input"),
}


class Settings:
    """A run's Config and how its errors name each field: the flag, or the TOML key and file.

    Flags override the --config file field by field, and a file setting that excludes a flag gives way to it
    (config.overridden: the file's `budget` and `--n1` mean n1). What is left is checked as Config(...) is:
    the same exclusions, the same messages, in the CLI's names."""

    def __init__(self, args: argparse.Namespace, file_fields: dict | None = None, file: str | None = None,
                 file_options: dict | None = None):
        self.flags = {f: getattr(args, f) for f in FIELD_FLAGS if getattr(args, f, None) is not None}
        self.file = file
        self.file_fields = {k: v for k, v in overridden(file_fields or {}, self.flags).items() if k not in self.flags}
        self.file_options = dict(file_options or {})  # run options the file set and no flag overrode
        try:
            given = {**self.file_fields, **self.flags}
            self.config = Config(**given)
            check_together(given)  # a flag or key that repeats a default is still given: --n1 1000 --budget 5
        except SettingError as e:
            raise CarSelectError(e.named(self.name_of)) from None

    def name_of(self, field: str) -> str:
        if (field in self.file_fields or field in self.file_options) and field not in self.flags:
            return f"{field} in {self.file}"
        return flag_name(field)


def flag_name(field: str) -> str:
    """The flag for a Config field or API argument (the field's own name where no flag sets it)."""
    return FIELD_FLAGS.get(field) or ARGUMENT_FLAGS.get(field) or field


def read_config_file(path: str) -> tuple[dict, dict]:
    """(Config fields, run options) from a TOML file; unknown keys and mistyped run options are errors
    naming the file (Config checks its own fields' values)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # tomllib is 3.11+; tomli is the same parser
        import tomli as tomllib

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
    fields, options = {}, {}
    names = set(Config.field_names())
    for key, value in data.items():
        key = key.replace("-", "_")
        if key in names:
            fields[key] = value
        elif key in RUN_FILE_OPTIONS:
            options[key] = _checked_option(path, key, value)
        else:
            raise CarSelectError(f'{path}: unknown option "{key}" (Config fields and '
                                 f'{", ".join(RUN_FILE_OPTIONS)} are known)')
    return fields, options


def _checked_option(path: str, key: str, value):
    kind = RUN_FILE_OPTIONS[key]
    if isinstance(kind, tuple):
        if value not in kind:
            raise CarSelectError(f"{path}: {key} must be {' or '.join(kind)}, got {value!r}")
    elif kind is bool:
        if not isinstance(value, bool):
            raise CarSelectError(f"{path}: {key} must be true or false, got {value!r}")
    elif not isinstance(value, kind):
        raise CarSelectError(f"{path}: {key} must be a {kind.__name__}, got {value!r}")
    return value


def add_field_option(group, field: str, **kwargs) -> None:
    """The flag FIELD_FLAGS names for Config field `field`, parsed into `field` (None when not given)."""
    group.add_argument(FIELD_FLAGS[field], dest=field, **kwargs)


def formatter(prog):
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


OUTPUT_FORMAT_RULE = ("the output's format: a known extension decides it (.json: a JSON array, .jsonl/.ndjson: "
                      "JSON Lines, .csv, .parquet, each optionally .gz); with no known extension, the input's "
                      "format; --output-format that contradicts the extension is an error")


def add_input_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("input and output")
    g.add_argument("--format", dest="file_format", help="input file format: json, jsonl, csv, parquet, hf (default: detected)")
    g.add_argument("--schema", help="record schema: alpaca, alpaca-history, sharegpt, messages, turns (default: detected)")
    g.add_argument("--fields", help="map field names to columns, e.g. instruction=prompt,output=response; a "
                   "dotted path reaches into nested objects and lists (output=instances.0.output)")
    g.add_argument("--output-format", help="json, jsonl, csv, parquet or hf; " + OUTPUT_FORMAT_RULE)
    g.add_argument("--overwrite", action="store_true", help="replace an existing output")


# Help shared by subcommands: the scorer's forms, the encoder's precision, the feature cache's folder.
SCORER_HELP = "the quality scorer: " + SCORER_FORMS + " (default: default)"
PRECISION_HELP = "encoder precision: auto (bf16 where the CPU or GPU supports it, else fp32; the default), bf16 or fp32"
CACHE_DIR_HELP = ("feature cache folder (default: $CAR_SELECT_CACHE if set, else $XDG_CACHE_HOME/car-select, "
                  "else ~/.cache/car-select)")


def add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    add_field_option(g, "scorer", metavar="SCORER", help=SCORER_HELP)
    add_field_option(g, "embedder", help="sentence-transformers model for the clustering "
                     "embedding: a folder, owner/name or hf://owner/name (default: the scorer's own pass)")
    add_field_option(g, "precision", choices=["auto", "bf16", "fp32"], help=PRECISION_HELP)
    add_field_option(g, "device", help="auto, cpu, cuda")
    add_field_option(g, "batch_tokens", type=int, help="tokens per encoder batch")
    add_field_option(g, "cache_dir", metavar="DIR", help=CACHE_DIR_HELP)
    add_field_option(g, "use_cache", action="store_false", default=None,
                     help="neither read nor write the feature cache")
