"""Executors drive the stages (`car_select.stages`): `LocalExecutor` in this process, `RayExecutor`
on a Ray cluster. Neither knows a file format; `pipeline.select` is the one pipeline both run."""

from .local import LocalExecutor


def executor_for(engine: str = "local", *, address: str | None = None, quiet: bool = True):
    from ..errors import CarSelectError

    if engine == "local":
        return LocalExecutor()
    if engine == "ray":
        from .ray import RayExecutor

        return RayExecutor(address=address, quiet=quiet)
    raise CarSelectError(f"engine must be 'local' or 'ray', got {engine!r}")


__all__ = ["LocalExecutor", "executor_for"]
