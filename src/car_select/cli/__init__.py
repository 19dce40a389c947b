"""Command-line interface: argument parsing and error messages only; the work is in the Python API.

One module per subcommand (run, score, rate, train_scorer, eval_scorer, cache); `options` maps flags to
Config fields. Every mistake a user can make ends as one line on stderr and exit status 2
(CarSelectError); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import CarSelectError, SettingError
from . import cache, eval_scorer, rate, run, score, train_scorer
from .options import Settings, flag_name, formatter, read_config_file

PROG = "car-select"
COMMANDS = {"run": run, "score": score, "rate": rate, "train-scorer": train_scorer, "eval-scorer": eval_scorer,
            "cache": cache}


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (exit 2), like every other user error."""

    def error(self, message: str):  # noqa: D401
        command = self.prog.removeprefix(PROG).strip()  # main prints the "car-select: error:" prefix
        raise CarSelectError(f"{command}: {message}" if command else message)


def build_parser() -> tuple[Parser, dict[str, argparse.ArgumentParser]]:
    """The parser and each subcommand's own parser."""
    parser = Parser(prog=PROG, description="CaR instruction-data selection: expert-aligned quality ranking "
                    "plus diversity-preserving clustering (Ge et al., EMNLP 2024).", formatter_class=formatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    return parser, {name: module.add_parser(sub) for name, module in COMMANDS.items()}


def parse(argv: list[str]) -> tuple[argparse.Namespace, Settings | None]:
    """The flags, with a `run --config` TOML file's run options under them, and the run's settings."""
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    file_fields, file_options, file = {}, {}, getattr(args, "config", None)
    if file:
        file_fields, options = read_config_file(file)
        given = given_options(commands[args.command], argv[argv.index(args.command) + 1:])
        if "engine" in given and args.engine != "ray":  # a flag wins over the file setting it excludes
            options.pop("address", None)
        file_options = {k: v for k, v in options.items() if k not in given}  # flags on the command line win
        for key, value in file_options.items():
            setattr(args, key, value)
    settings = Settings(args, file_fields, file, file_options) if args.command in ("run", "score") else None
    return args, settings


def given_options(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The destinations of the options `argv` gives (argparse sets a default only where the namespace has
    no value yet, so whatever still holds the marker was not given)."""
    unset = object()
    namespace = argparse.Namespace(**{a.dest: unset for a in parser._actions if a.dest != argparse.SUPPRESS})
    parser.parse_args(argv, namespace=namespace)
    return {dest for dest, value in vars(namespace).items() if value is not unset}


def _one_line_warnings() -> None:
    """CarSelectWarning prints as `car-select: warning: <message>` on stderr, every time."""
    import warnings

    from ..errors import CarSelectWarning

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
    settings = None
    try:
        args, settings = parse(argv)
        command = COMMANDS[args.command]
        return command.main(args, settings) if settings is not None else command.main(args)
    except SettingError as e:  # worded with Config field names: say the flag (or the TOML key) instead
        print(f"{PROG}: error: {e.named(settings.name_of if settings else flag_name)}", file=sys.stderr)
        return 2
    except CarSelectError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `car-select ... | head` closed stdout: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush does not fail again
        return 141
