"""Input URLs (`s3://`, `gs://`, `hdfs://`, `file://`, ...) through pyarrow's filesystems, which
pyarrow (already a dependency) resolves from the URL; credentials come from the usual environment.
Only reading: the readers open a URL's bytes here, and a sharded input lists a URL folder here.
Outputs are local paths (`outputs.py` refuses URLs)."""

from __future__ import annotations

from urllib.parse import quote

from ..errors import CarSelectError
from .hf import HF_PREFIX


def is_url(path: str) -> bool:
    return "://" in path and not path.startswith(HF_PREFIX)


def _resolve(url: str):
    """(filesystem, path inside it), or a one-line error naming the URL."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(url)
    except (pa.ArrowException, ValueError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CarSelectError(f"{url}: cannot open this URL: {reason}") from None


def open_url(url: str):
    """A seekable binary file; a missing one raises FileNotFoundError like `open`."""
    import pyarrow.fs as pafs

    fs, path = _resolve(url)
    kind = fs.get_file_info(path).type
    if kind == pafs.FileType.NotFound:
        raise FileNotFoundError(url)
    if kind == pafs.FileType.Directory:
        raise IsADirectoryError(url)
    return fs.open_input_file(path)


def url_kind(url: str) -> str | None:
    """"file", "dir", or None when nothing is there."""
    import pyarrow.fs as pafs

    fs, path = _resolve(url)
    kind = fs.get_file_info(path).type
    return {pafs.FileType.File: "file", pafs.FileType.Directory: "dir"}.get(kind)


def list_url(url: str) -> list[str]:
    """Every file below a URL folder, as URLs (the folder's scheme and authority kept), sorted, with
    their paths relative to the folder."""
    import pyarrow.fs as pafs

    if any(c in url for c in "*?["):
        raise CarSelectError(f"{url}: globs are not supported in URLs; name the folder")
    fs, root = _resolve(url)
    base = url.split("?", 1)[0].rstrip("/")
    given = quote(root.rstrip("/"))  # the URL's own spelling of the path: what precedes it is kept
    prefix = base[:len(base) - len(given)] if base.endswith(given) else url.split("://", 1)[0] + "://"
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    return sorted(prefix + quote(i.path) for i in infos if i.type == pafs.FileType.File)
