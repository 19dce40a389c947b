"""car-select: CaR (Clustering and Ranking) instruction-data selection.

    import car_select
    ds = car_select.read_dataset("alpaca_data.json")
    sel = car_select.select(ds.records, car_select.Config(n1=1000, n2=1))
    car_select.write_subset(ds, sel.indices, "selected.json")
"""

from .api import RunResult, run, score_records
from .config import Config
from .errors import CarSelectError
from .formats import Dataset, read_dataset, write_subset
from .pipeline import Selection, select
from .records import Record
from .scoring.scorer import Scorer

__all__ = ["CarSelectError", "Config", "Dataset", "Record", "RunResult", "Scorer", "Selection", "read_dataset",
           "run", "score_records", "select", "write_subset"]
__version__ = "0.1.0"
