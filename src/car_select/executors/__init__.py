"""Executors drive the stages (`car_select.stages`): `base.Executor` declares what one does,
`LocalExecutor` runs them in this process, `RayExecutor` on a Ray cluster. Neither knows a file
format; `pipeline.select` is the one pipeline both run."""

from .base import Executor
from .local import LocalExecutor


def executor_for(engine: str = "local", *, address: str | None = None, quiet: bool = True) -> Executor:
    from ..errors import CarSelectError

    if engine == "local":
        return LocalExecutor()
    if engine == "ray":
        from .ray import RayExecutor

        return RayExecutor(address=address, quiet=quiet)
    raise CarSelectError(f"engine must be 'local' or 'ray', got {engine!r}")


__all__ = ["Executor", "LocalExecutor", "executor_for"]
