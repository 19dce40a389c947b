"""High-level calls the CLI and notebooks share: run a selection on a dataset and write its outputs."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence

import numpy as np

from .atomic import atomic_write_text
from .config import Config, check_engine
from .errors import CarSelectError, SettingError
from .formats import Dataset, read_dataset
from .outputs import RunOutputs
from .pipeline import Progress, Selection, select_validated
from .records import Record


class RunResult:
    def __init__(self, selection: Selection, written: dict[str, str]):
        self.selection = selection
        self.written = written

    def summary(self) -> dict:
        return {**self.selection.summary(), **self.written}


def write_annotated(selection: Selection, path: str) -> None:
    lines = (json.dumps(row) for row in selection.annotations())
    atomic_write_text(path, "\n".join(lines) + "\n")


def report_data(dataset: Dataset, selection: Selection, summary: dict):
    """The report's inputs, for unique records only (duplicates are not separate points)."""
    from .report import ReportData
    from .report.data import record_example

    u = selection.unique
    reasons = selection.reason_per_record()
    return ReportData(
        scores=selection.scores[u], clusters=selection.clusters[u], selected=selection.selected_mask()[u],
        reasons=[reasons[i] for i in u], instructions=[record_example(dataset.records[i]) for i in u],
        reduced=selection.reduced, summary=summary,
    )


def given_scores(dataset: Dataset, config: Config):
    """The --score-field values (None without one)."""
    if config.score_field is None:
        return None
    from .given_scores import read_score_field

    return read_score_field(dataset, config.score_field)


def balance_values(dataset: Dataset, config: Config):
    """The Config.balance field's value per record (None without one): a missing one is an error."""
    if config.balance is None:
        return None
    from .given_scores import read_value_field
    from .selection.balance import parse_balance
    from .targeting import value_text

    return [value_text(v) for v in read_value_field(dataset, parse_balance(config.balance)[0])]


MANIFEST_LABEL = "{}'s manifest"


def manifest_path(annotated: str) -> str:
    """Where the run manifest goes: beside the annotated file, `ANNOTATED.manifest.json`."""
    return f"{annotated}.manifest.json"


FIGURE_NAMES = ("cluster_map.png", "score_hist.png", "vs_random.png", "quality_coverage.png")


def _input_format(source: Dataset | str, file_format: str | None) -> tuple[str, bool]:
    """(the input's format, whether it is sharded), cheaply: only a file's first bytes are read."""
    from .formats import detect_file_format
    from .formats.sources import is_sharded, list_files

    if isinstance(source, Dataset):
        return source.file_format, is_sharded(source.path)
    if is_sharded(source):
        return detect_file_format(list_files(source)[0], file_format), True
    return detect_file_format(source, file_format), False


def plan_outputs(source: Dataset | str, *, output: str | None = None, output_format: str | None = None,
                 annotated: str | None = None, report: str | None = None, figures: str | None = None,
                 overwrite: bool = False, cli: bool = False, file_format: str | None = None,
                 example_files: Sequence[tuple[str, str]] = ()) -> RunOutputs:
    """Every output of a run, checked against the input and each other (as files) before any work
    (`source` is the Dataset or the input path, not yet read). Errors name the API argument, or the
    flag when `cli` is true. The selection is a folder (of shards, or a Hugging Face dataset) when its
    format is hf, or the input is sharded and the output path has no data file extension."""
    from .formats.detect import extension_format, output_format_for

    def label(name: str) -> str:
        return f"--{name}" if cli else f"{name}="

    in_fmt, sharded = _input_format(source, file_format)
    path = source.path if isinstance(source, Dataset) else source
    # example_files: (label, path) of the --target and --decontaminate files, inputs no output may replace
    outs = RunOutputs(inputs=[("input", path), *example_files], overwrite=overwrite)
    if output:
        fmt = output_format_for(output, output_format, in_fmt)
        folder = fmt == "hf" or (sharded and extension_format(output) is None)
        if fmt in ("parquet", "hf") and output.lower().endswith(".gz"):
            raise CarSelectError(f"{label('output').rstrip('=')} {output}: {fmt} output cannot be gzipped "
                                 "(Parquet compresses itself); drop the .gz")
        outs.add(label("output"), output, kind="dir" if folder else "file")
    if annotated and (annotated.endswith(("/", os.sep)) or os.path.isdir(annotated)):
        raise CarSelectError(f"{label('annotated').rstrip('=')} {annotated}: is a folder; the annotated rows are one "
                             "JSON Lines file (annotated.jsonl, say)")
    outs.add(label("annotated"), annotated)
    if annotated:  # the run manifest, beside the annotated rows; errors name the option that asked for it
        outs.add(MANIFEST_LABEL.format(label("annotated").rstrip("=")), manifest_path(annotated))
    outs.add(label("report"), report)
    outs.add(label("figures"), figures, kind="files", names=FIGURE_NAMES)
    return outs.check()


def read_input(path: str, *, file_format: str | None = None, schema: str | None = None, fields=None,
               executor=None, keep_rows: bool = False) -> Dataset:
    """A dataset file, a Hugging Face folder or hub id, or a sharded input (a folder of data files or
    a glob), every file read with `read_dataset`, by the executor (Ray reads on its workers, and keeps
    the raw rows there unless `keep_rows`)."""
    import functools

    from .executors import LocalExecutor

    read_one = functools.partial(read_dataset, file_format=file_format, schema=schema, fields=fields)
    return (executor or LocalExecutor()).read(path, read_one, keep_rows=keep_rows)


def run(dataset: Dataset | str, config: Config | None = None, *, output: str | None = None,
        output_format: str | None = None, annotated: str | None = None, report: str | None = None,
        figures: str | None = None, engine: str = "local", address: str | None = None,
        quiet: bool = True, overwrite: bool = False, outputs: RunOutputs | None = None,
        file_format: str | None = None, schema: str | None = None, fields=None,
        rows_per_shard: int = 100_000, order: str = "score") -> RunResult:
    """Select from a dataset (a Dataset, or a path: a file, a folder of shards, a glob) and write
    whatever outputs are asked for. One pipeline whatever the engine ("local" or "ray": where the
    stages run). Every output is written to a temporary sibling and all are moved into place
    together at the end: an error or interrupt part-way changes no existing file.
    An existing output is refused unless `overwrite=True`; an input is never overwritten."""
    from .executors import executor_for

    config = (config or Config()).validate()
    check_engine(engine, address)
    if order not in ("score", "input"):  # the written selection: by descending score, or as in the input
        raise CarSelectError(f"order must be 'score' or 'input', got {order!r}")
    executor = executor_for(engine, address=address, quiet=quiet)
    if outputs is None:
        outputs = plan_outputs(dataset, output=output, output_format=output_format, annotated=annotated,
                               report=report, figures=figures, overwrite=overwrite, file_format=file_format,
                               example_files=[(f"{name}=", p) for name in ("targets", "decontaminate")
                                              for p in getattr(config, name)])
    by_label = {o.label.strip("-=").rstrip("="): o for o in outputs.outputs}
    progress = Progress(quiet)
    with outputs.transaction():
        t = time.perf_counter()
        if not isinstance(dataset, Dataset):
            dataset = read_input(dataset, file_format=file_format, schema=schema, fields=fields, executor=executor,
                                 keep_rows=config.score_field is not None or config.balance is not None)
        read_seconds = time.perf_counter() - t
        selection = select_validated(dataset.records, config, progress=progress, scores=given_scores(dataset, config),
                                     executor=executor, balance_values=balance_values(dataset, config))
        selection.stage_seconds = {"read": read_seconds, **selection.stage_seconds}
        if selection.scored is not None:
            selection.scored["schema"] = dataset.schema
        from .manifest import build_manifest

        selection.manifest = build_manifest(config, dataset.path, len(dataset.records), selection.indices,
                                            scored=selection.scored)
        written: dict[str, str] = {}
        t = time.perf_counter()
        if "output" in by_label:
            out = by_label["output"]
            indices = sorted(selection.indices) if order == "input" else selection.indices
            executor.write(dataset, indices, outputs.temp(out), out.kind == "dir", output_format, rows_per_shard)
            written["output"] = out.path
        if "annotated" in by_label:
            write_annotated(selection, outputs.temp(by_label["annotated"]))
            from .manifest import dump

            atomic_write_text(outputs.temp(by_label[MANIFEST_LABEL.format("annotated")]), dump(selection.manifest))
            written["annotated"] = by_label["annotated"].path
            written["annotated_manifest"] = by_label[MANIFEST_LABEL.format("annotated")].path
        selection.stage_seconds["write"] = time.perf_counter() - t
        if "report" in by_label or "figures" in by_label:
            t = time.perf_counter()
            from .report import write_figures, write_report

            data = report_data(dataset, selection, {**selection.summary(), "input": dataset.path,
                                                    "scorer": config.scorer or "default"})
            if "report" in by_label:
                write_report(outputs.temp(by_label["report"]), data, seed=config.seed)
                written["report"] = by_label["report"].path
            if "figures" in by_label:
                write_figures(outputs.temp(by_label["figures"]), data, seed=config.seed)
                written["figures"] = by_label["figures"].path
            selection.stage_seconds["report"] = time.perf_counter() - t
    return RunResult(selection, written)


def write_subset(dataset: Dataset, indices: Sequence[int], path: str, file_format: str | None = None, *,
                 overwrite: bool = False) -> str:
    """Write `dataset`'s records at `indices` (in that order) to `path`, with the CLI's protection: the
    input is never overwritten, an existing file only with `overwrite=True`, and the file changes by one
    rename after it is written in full. Returns the path written."""
    outputs = plan_outputs(dataset, output=path, output_format=file_format, overwrite=overwrite)
    out = outputs.outputs[0]
    with outputs.transaction():
        from .formats.sources import write_selection

        write_selection(dataset, indices, outputs.temp(out), out.kind == "dir", file_format)
    return out.path


def score_records(records: Sequence[Record], config: Config | None = None, quiet: bool = True) -> np.ndarray:
    """Quality score per record (multi-turn records aggregate their exchanges)."""
    from .cache import open_cache
    from .features import FeatureExtractor, aggregate, segment_records

    config = (config or Config()).validate()
    extractor = FeatureExtractor(None, config)
    cache = open_cache(config, extractor)
    segments = segment_records(records)
    with Progress(quiet).bar("score", len(segments.prompts)) as tick:
        feats, _ = extractor.extract(segments, cache, progress=tick)
    scores, _ = aggregate(segments.owner, len(records), feats["scores"], feats["embeddings"], feats["counts"],
                          config.turn_aggregate)
    return scores


def score_dataset(dataset: Dataset, config: Config | None = None, *, output: str, output_format: str | None = None,
                  quiet: bool = True, overwrite: bool = False, outputs: RunOutputs | None = None,
                  score_column: str = "score", overwrite_field: bool = False) -> np.ndarray:
    """Score every record and write them all with one more field, `score_column`. A record that
    already has that field is an error (before any work) unless `overwrite_field`."""
    if outputs is None:
        outputs = plan_outputs(dataset, output=output, output_format=output_format, overwrite=overwrite)
    if not isinstance(score_column, str) or not score_column.strip():
        raise SettingError(f"{{}} must name a field, got {score_column!r}", "score_column")
    if not overwrite_field:
        from .given_scores import refuse_existing_field

        refuse_existing_field(dataset, score_column, "score_column")
    with outputs.transaction():
        scores = score_records(dataset.records, config, quiet)
        out = outputs.outputs[0]
        from .formats.sources import write_selection

        write_selection(dataset, range(len(dataset.records)), outputs.temp(out), out.kind == "dir", output_format,
                        add_columns={score_column: [float(s) for s in scores]})
    return scores
