"""High-level calls the CLI and notebooks share: run a selection on a dataset and write its outputs."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import numpy as np

from .atomic import atomic_write_text
from .config import Config
from .errors import CarSelectError
from .formats import Dataset, read_dataset, write_subset
from .pipeline import Progress, Selection, select
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

    u = selection.unique
    reasons = selection.reason_per_record()
    return ReportData(
        scores=selection.scores[u], clusters=selection.clusters[u], selected=selection.selected_mask()[u],
        reasons=[reasons[i] for i in u], instructions=[dataset.records[i].instruction for i in u],
        reduced=selection.reduced, summary=summary,
    )


def given_scores(dataset: Dataset, config: Config, engine: str = "local"):
    """The --score-field values (None without one); budget options the Ray engine lacks are errors."""
    if engine == "ray":
        used = [f"--{n.replace('_', '-')}" for n in ("budget", "fraction", "min_score", "score_field")
                if getattr(config, n) is not None]
        if used:
            raise CarSelectError(f"{', '.join(used)}: not available on the Ray engine yet (use --engine local)")
    if config.score_field is None:
        return None
    from .given_scores import read_score_field

    return read_score_field(dataset, config.score_field)


def run(dataset: Dataset | str, config: Config | None = None, *, output: str | None = None,
        output_format: str | None = None, annotated: str | None = None, report: str | None = None,
        figures: str | None = None, engine: str = "local", address: str | None = None,
        quiet: bool = True) -> RunResult:
    """Select from a dataset (a Dataset or a path) and write whatever outputs are asked for."""
    config = (config or Config()).validate()
    if not isinstance(dataset, Dataset):
        dataset = read_dataset(dataset)
    progress = Progress(quiet)
    given = given_scores(dataset, config, engine)
    if engine == "ray":
        from .engines.ray_engine import select_with_ray

        selection = select_with_ray(dataset.records, config, address=address, progress=progress)
    else:
        selection = select(dataset.records, config, progress=progress, scores=given)
    written: dict[str, str] = {}
    t = time.perf_counter()
    if output:
        write_subset(dataset, selection.indices, output, output_format)
        written["output"] = str(output)
    if annotated:
        write_annotated(selection, annotated)
        written["annotated"] = str(annotated)
    selection.stage_seconds["write"] = time.perf_counter() - t
    if report or figures:
        t = time.perf_counter()
        from .report import write_figures, write_report

        data = report_data(dataset, selection, {**selection.summary(), "input": dataset.path,
                                                "scorer": config.scorer or "default"})
        if report:
            write_report(report, data, seed=config.seed)
            written["report"] = str(report)
        if figures:
            write_figures(figures, data, seed=config.seed)
            written["figures"] = str(figures)
        selection.stage_seconds["report"] = time.perf_counter() - t
    return RunResult(selection, written)


def score_records(records: Sequence[Record], config: Config | None = None, quiet: bool = True) -> np.ndarray:
    """Quality score per record (multi-turn records aggregate their exchanges)."""
    from .cache import FeatureCache
    from .features import FeatureExtractor, aggregate, segment_records

    config = (config or Config()).validate()
    extractor = FeatureExtractor(None, config)
    cache = FeatureCache(config.resolved_cache_dir(), extractor.namespace()) if config.use_cache else None
    segments = segment_records(records)
    with Progress(quiet).bar("score", len(segments.prompts)) as tick:
        feats, _ = extractor.extract(segments, cache, progress=tick)
    scores, _ = aggregate(segments.owner, len(records), feats["scores"], feats["embeddings"], feats["counts"],
                          config.turn_aggregate)
    return scores


def score_dataset(dataset: Dataset, config: Config | None = None, *, output: str, output_format: str | None = None,
                  quiet: bool = True) -> np.ndarray:
    scores = score_records(dataset.records, config, quiet)
    write_subset(dataset, range(len(dataset.records)), output, output_format,
                 add_columns={"score": [float(s) for s in scores]})
    return scores
