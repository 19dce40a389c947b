"""The Ray engine's former entry points, kept for callers of the 0.x API: both are now the one
pipeline (`pipeline.select`, `api.run`) driven by `executors.ray.RayExecutor`."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..config import Config
from ..records import Record


def select_with_ray(records: Sequence[Record], config: Config | None = None, address: str | None = None,
                    progress=None, *, actors: int | None = None, runtime_env: dict | None = None):
    """`pipeline.select` with the stages on a Ray cluster: the same `Selection`."""
    from ..executors.ray import RayExecutor
    from ..pipeline import select

    quiet = getattr(progress, "quiet", True)
    executor = RayExecutor(address, actors=actors, quiet=quiet, runtime_env=runtime_env)
    return select(records, config, progress=progress, executor=executor)


def run_ray_files(input_path: str | os.PathLike, output: str | os.PathLike, config: Config | None = None,
                  address: str | None = None, annotated: str | os.PathLike | None = None,
                  file_format: str | None = None, **options) -> dict:
    """`api.run(..., engine="ray")` on a file, folder of shards or glob; returns the run summary."""
    from ..api import run
    from ..executors.ray import import_ray

    import_ray()  # the one-line error first, whatever else is wrong
    result = run(os.fspath(input_path), config, output=os.fspath(output), engine="ray", address=address,
                 annotated=os.fspath(annotated) if annotated else None, file_format=file_format, **options)
    return result.summary()
