"""Hugging Face datasets: `save_to_disk` folders and `hf://owner/name[:split]` hub datasets.

`datasets` is optional (``pip install car-select[hf]``) and imported only here, only when needed.
"""

from __future__ import annotations

import os

from ..errors import CarSelectError

HF_PREFIX = "hf://"
HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
DEFAULT_SPLIT = "train"


def import_datasets(what: str):
    try:
        import datasets
    except ImportError:
        raise CarSelectError(
            f"{what} needs the optional `datasets` package: pip install 'car-select[hf]'"
        ) from None
    return datasets


def is_hf_folder(path: str) -> bool:
    return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, m)) for m in HF_MARKERS)


def parse_hf_uri(uri: str) -> tuple[str, str]:
    """``hf://owner/name[:split]`` -> ``("owner/name", split)`` (split defaults to "train")."""
    rest = uri[len(HF_PREFIX):] if uri.startswith(HF_PREFIX) else uri
    name, sep, split = rest.partition(":")
    name, split = name.strip().strip("/"), split.strip()
    if not name or (sep and not split) or any(c.isspace() for c in name) or name.count("/") > 1:
        raise CarSelectError(f"{uri}: expected hf://owner/name or hf://owner/name:split")
    return name, split or DEFAULT_SPLIT


def _flat(ds):
    if getattr(ds, "_indices", None) is not None:
        ds = ds.flatten_indices()
    return ds


def load_hf(path: str):
    """-> (datasets.Dataset, pyarrow.Table) for a hub URI or a local `save_to_disk` folder."""
    if path.startswith(HF_PREFIX):
        name, split = parse_hf_uri(path)
        datasets = import_datasets(f"{path}: reading a Hugging Face dataset")
        try:
            ds = datasets.load_dataset(name, split=split)
        except Exception as exc:  # network, unknown dataset or split, auth: all the user's to fix
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise CarSelectError(f"{path}: cannot load dataset {name!r} split {split!r}: {reason}") from None
        if isinstance(ds, datasets.DatasetDict):  # pragma: no cover - load_dataset with split= gives a Dataset
            ds = ds[split]
        ds = _flat(ds)
        return ds, ds.data.table
    datasets = import_datasets(f"{path}: reading a Hugging Face dataset folder")
    try:
        ds = datasets.load_from_disk(path)
    except FileNotFoundError as exc:
        raise CarSelectError(f"{path}: not a Hugging Face dataset folder: {' '.join(str(exc).split())}") from None
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise CarSelectError(f"{path}: cannot load the Hugging Face dataset folder: {reason}") from None
    if isinstance(ds, datasets.DatasetDict):
        splits = list(ds.keys())
        if DEFAULT_SPLIT in ds:
            ds = ds[DEFAULT_SPLIT]
        elif len(splits) == 1:
            ds = ds[splits[0]]
        else:
            raise CarSelectError(
                f"{path}: a dataset with splits {', '.join(splits)}; pass one split's folder, e.g. {os.path.join(path, splits[0])}"
            )
    ds = _flat(ds)
    return ds, ds.data.table


def dataset_from_table(table):
    datasets = import_datasets("writing a Hugging Face dataset folder")
    from datasets.table import InMemoryTable

    return datasets.Dataset(InMemoryTable(table))


def save_to_disk(ds, folder: str) -> None:
    """`ds.save_to_disk(folder)` without its progress bar (the CLI keeps stderr for messages)."""
    import datasets

    toggle = all(hasattr(datasets, n) for n in ("are_progress_bars_disabled", "disable_progress_bars"))
    was_disabled = datasets.are_progress_bars_disabled() if toggle else True
    if toggle:
        datasets.disable_progress_bars()
    try:
        ds.save_to_disk(folder)
    finally:
        if toggle and not was_disabled:
            datasets.enable_progress_bars()
