"""car-select: CaR (Clustering and Ranking) instruction-data selection.

    import car_select
    ds = car_select.read_dataset("alpaca_data.json")
    sel = car_select.select(ds.records, car_select.Config(n1=1000, n2=1))
    car_select.write_subset(ds, sel.indices, "selected.json")
"""

import importlib

# Public names and the module that defines each; imported on first use so that the CLI can report a
# bad input file before torch and transformers are even loaded.
_EXPORTS = {
    "CarSelectError": "errors", "Config": "config", "Record": "records", "Dataset": "formats",
    "read_dataset": "formats", "write_subset": "api", "Selection": "pipeline", "select": "pipeline",
    "RunResult": "api", "run": "api", "score_records": "api", "Scorer": "scoring.scorer",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'car_select' has no attribute {name!r}")
