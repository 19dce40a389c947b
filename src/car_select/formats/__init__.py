"""Dataset files in and out: JSON, JSON Lines, CSV, Parquet and Hugging Face datasets, in the
alpaca, alpaca-history, sharegpt, messages and turns schemas (see `schemas`)."""

from .dataset import Dataset, output_format, read_dataset, write_subset
from .detect import FILE_FORMATS, detect_file_format
from .schemas import CANONICAL_FIELDS, SCHEMAS, parse_fields

__all__ = [
    "CANONICAL_FIELDS",
    "Dataset",
    "FILE_FORMATS",
    "SCHEMAS",
    "detect_file_format",
    "output_format",
    "parse_fields",
    "read_dataset",
    "write_subset",
]
