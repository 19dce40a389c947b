"""Every file a run writes, checked against its inputs and against each other before any work, then
written to temporary siblings and committed together at the end (or not at all).

Paths are compared as files, not strings: real paths (symlinks resolved) and, for what exists, the
device and inode, so `link.json -> real.json` as input and `real.json` as output is the same file.
An output may not be a device, pipe or socket (`-o /dev/stdout`), nor `-`; an output folder that
holds an input (or an input folder that holds an output) collides too.

`--overwrite` replaces only what the run itself writes: a file output replaces that one file; a
folder output (Ray shards, a Hugging Face dataset folder) replaces an existing folder only when it is
empty or was written by car-select (it carries MARKER); figures replace their own PNG files only.

A run killed with SIGKILL leaves at most hidden temporaries named `.car-select-<pid>-*`; the next run
that writes beside them removes those whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .errors import CarSelectError

MARKER = ".car-select-output"  # in every folder output car-select writes (so --overwrite may replace it)
_TEMP = re.compile(r"^\.car-select-(\d+)-[0-9a-f]{8}\.")


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def fsync_dir(path: str) -> None:
    """Make a rename or a new entry in `path` durable (no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_tree(path: str) -> None:
    """fsync every file and folder under `path` (a folder output before it is renamed into place)."""
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError), open(os.path.join(root, name), "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(root)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_stale_temporaries(folder: str) -> None:
    """Remove `.car-select-<pid>-*` temporaries in `folder` left by runs that were killed."""
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            m = _TEMP.match(name)
            if m and not _pid_alive(int(m.group(1))):
                _remove(os.path.join(folder, name))


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)


def temp_sibling(target: str) -> str:
    """A hidden name beside `target` that keeps its file name at the end (so its extensions, which
    choose the format and compression, stay the same)."""
    parent, name = os.path.split(os.path.abspath(target))
    return os.path.join(parent, f".car-select-{os.getpid()}-{uuid.uuid4().hex[:8]}.{name}")


@dataclass
class _Path:
    """A path as a file: its real path and, when it exists, (device, inode) and kind."""

    given: str
    real: str
    ident: tuple[int, int] | None
    mode: int | None

    @classmethod
    def of(cls, path: str) -> "_Path":
        real = os.path.realpath(path)
        try:
            st = os.stat(path)
            return cls(path, real, (st.st_dev, st.st_ino), st.st_mode)
        except OSError:
            return cls(path, real, None, None)

    @property
    def is_dir(self) -> bool:
        return self.mode is not None and stat.S_ISDIR(self.mode)

    def same(self, other: "_Path") -> bool:
        return self.real == other.real or (self.ident is not None and self.ident == other.ident)

    def inside(self, folder: "_Path") -> bool:
        """True when this path is `folder` or lies under it."""
        if self.same(folder):
            return True
        base = folder.real.rstrip(os.sep) + os.sep
        if self.real.startswith(base):
            return True
        # a folder reached through another name (bind mount, hard-linked parent): walk up by inode
        if folder.ident is None:
            return False
        p = os.path.dirname(self.real)
        while True:
            with contextlib.suppress(OSError):
                st = os.stat(p)
                if (st.st_dev, st.st_ino) == folder.ident:
                    return True
            up = os.path.dirname(p)
            if up == p:
                return False
            p = up


@dataclass
class Output:
    """One output: a file, a folder replaced as a whole, or named files inside a folder."""

    label: str  # how errors name it: "--output" on the CLI, "output" in the API
    path: str
    kind: str  # "file", "dir" or "files"
    names: tuple[str, ...] = ()  # kind "files": the file names written inside `path`
    temp: str | None = None

    def targets(self) -> list[str]:
        if self.kind == "files":
            return [os.path.join(self.path, n) for n in self.names]
        return [self.path]


@dataclass
class RunOutputs:
    """The set of outputs of one run. `check()` before any work; each writer writes to `temp(out)`;
    `commit()` moves everything into place at the end; `discard()` (on any error or interrupt)
    removes every temporary and leaves every existing file as it was."""

    inputs: Sequence[tuple[str, str]] = ()  # (label, path) of every input file or folder
    overwrite: bool = False
    outputs: list[Output] = field(default_factory=list)

    def add(self, label: str, path: str | os.PathLike | None, kind: str = "file",
            names: Iterable[str] = ()) -> Output | None:
        if path is None or path == "":
            return None
        out = Output(label, os.fspath(path), kind, tuple(names))
        self.outputs.append(out)
        return out

    # ---------------------------------------------------------------------------------------------
    # checks, before any work

    def check(self) -> "RunOutputs":
        for out in self.outputs:
            if out.path == "-":
                raise self._fail(out, "writing to standard output is not supported; name a file")
            if "://" in out.path:  # outputs are committed by local renames, which a URL has no equivalent of
                raise self._fail(out, "outputs are written to local paths only; write here, then copy it "
                                      "(e.g. aws s3 cp --recursive)")
        self._check_collisions()  # first: "it is the input" says more than "it already exists"
        for out in self.outputs:
            self._check_one(out)
        for out in self.outputs:
            folder = out.path if out.kind == "files" and os.path.isdir(out.path) else os.path.dirname(
                os.path.abspath(out.path))
            remove_stale_temporaries(folder)
        return self

    def _fail(self, out: Output, why: str) -> CarSelectError:
        return CarSelectError(f"{out.label} {out.path}: {why}")

    def _check_one(self, out: Output) -> None:
        if out.kind == "files":
            self._check_parent(out, out.path)
            if os.path.lexists(out.path) and not os.path.isdir(out.path):
                raise self._fail(out, "is a file, not a folder")
            for target in out.targets():
                self._check_target(out, target, want_dir=False)
            return
        self._check_parent(out, out.path)
        self._check_target(out, out.path, want_dir=out.kind == "dir")

    def _check_parent(self, out: Output, path: str) -> None:
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.exists(parent):
            raise self._fail(out, f"directory {os.path.dirname(path) or parent} does not exist")
        if not os.path.isdir(parent):
            raise self._fail(out, f"{parent} is not a directory")
        problem = probe_writable(parent)
        if problem:
            raise self._fail(out, f"directory {parent} is not writable ({problem})")

    def _check_target(self, out: Output, target: str, want_dir: bool) -> None:
        if not os.path.lexists(target):
            return
        try:
            mode = os.stat(target).st_mode
        except OSError:  # a dangling symlink: the rename replaces the link itself
            mode = None
        shown = target if target != out.path else out.path
        if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise CarSelectError(f"{out.label} {shown}: is not a regular file (a device, pipe or socket); "
                                 "name a file")
        if mode is not None and stat.S_ISDIR(mode) and not want_dir:
            raise CarSelectError(f"{out.label} {shown}: is a directory")
        if mode is not None and stat.S_ISREG(mode) and want_dir:
            raise CarSelectError(f"{out.label} {shown}: is a file, not a folder")
        if want_dir and mode is not None:
            entries = [e for e in os.listdir(target) if e != MARKER]
            if not entries and not os.path.exists(os.path.join(target, MARKER)):
                return  # an empty folder: nothing of anyone's to replace
            if not self.overwrite:
                raise CarSelectError(f"{out.label} {shown}: it already exists ({_overwrite_hint(out)})")
            if not os.path.exists(os.path.join(target, MARKER)) and not _is_hf_folder(target):
                raise CarSelectError(f"{out.label} {shown}: holds files car-select did not write; --overwrite "
                                     "replaces only car-select's own output folders, so name a new folder")
            return
        if not self.overwrite:
            raise CarSelectError(f"{out.label} {shown}: it already exists ({_overwrite_hint(out)})")

    def _check_collisions(self) -> None:
        ins = [(label, path, _Path.of(path)) for label, path in self.inputs if path and "://" not in path]
        outs = []
        for out in self.outputs:
            for target in out.targets():
                outs.append((out, target, _Path.of(target), out.kind == "dir"))
        for out, target, p, is_folder in outs:
            for label, path, q in ins:
                if p.same(q) or (q.is_dir and p.inside(q)) or (is_folder and q.inside(p)):
                    raise CarSelectError(f"{out.label} {target}: is the input {path} or overlaps it "
                                         f"({label}); writing it would destroy the input")
        # a figures folder may hold the input (only its own PNG names are written), but no other
        # output may be that folder, which the commit creates
        outs += [(o, o.path, _Path.of(o.path), False) for o in self.outputs if o.kind == "files"]
        for i, (a, ta, pa, fa) in enumerate(outs):
            for b, tb, pb, fb in outs[i + 1:]:
                if a is b:
                    continue
                if pa.same(pb) or (fa and pb.inside(pa)) or (fb and pa.inside(pb)):
                    raise CarSelectError(f"{a.label} {ta} and {b.label} {tb} are the same file or overlap; "
                                         "give each output its own path")

    # ---------------------------------------------------------------------------------------------
    # writing and committing

    def temp(self, out: Output) -> str:
        """Where to write `out` now: a fresh temporary file path (kind "file"), an empty temporary
        folder (kinds "dir" and "files")."""
        if out.temp is None:
            out.temp = temp_sibling(out.path)
            if out.kind != "file":
                try:
                    os.mkdir(out.temp)
                except OSError as exc:
                    raise self._fail(out, f"cannot write: {_reason(exc)}") from None
        return out.temp

    def commit(self) -> None:
        """Move every written temporary into place. Each target changes by one rename, and only
        after every output has been written in full."""
        pending = [o for o in self.outputs if o.temp is not None]
        for out in pending:  # durable before any becomes visible
            if os.path.isdir(out.temp):
                if out.kind == "dir":
                    with open(os.path.join(out.temp, MARKER), "w"):
                        pass
                fsync_tree(out.temp)
            else:
                with contextlib.suppress(OSError), open(out.temp, "rb") as fh:
                    os.fsync(fh.fileno())
        try:
            for out in pending:
                if out.kind == "file":
                    _keep_mode(out.temp, out.path)
                    os.replace(out.temp, out.path)
                elif out.kind == "dir":
                    _replace_dir(out.temp, out.path)
                else:
                    if not os.path.isdir(out.path):
                        os.mkdir(out.path)
                    for name in out.names:
                        src = os.path.join(out.temp, name)
                        if os.path.exists(src):
                            os.replace(src, os.path.join(out.path, name))
                    fsync_dir(out.path)
                    _remove(out.temp)
                out.temp = None
                fsync_dir(os.path.dirname(os.path.abspath(out.path)))
        except OSError as exc:
            self.discard()
            raise CarSelectError(f"cannot write {out.path}: {_reason(exc)}") from None

    def discard(self) -> None:
        for out in self.outputs:
            if out.temp is not None:
                _remove(out.temp)
                out.temp = None

    @contextlib.contextmanager
    def transaction(self):
        """Commit on success; on any exception (Ctrl-C included) remove every temporary."""
        try:
            yield self
        except BaseException:
            self.discard()
            raise
        self.commit()

    def written(self) -> dict[str, str]:
        return {o.label.lstrip("-"): o.path for o in self.outputs}


def _overwrite_hint(out: Output) -> str:
    """How to replace an existing output, in the caller's terms: the CLI's flag or the API's argument."""
    return "pass --overwrite to replace it" if out.label.startswith("--") else "pass overwrite=True to replace it"


def probe_writable(folder: str) -> str | None:
    """Why a new file cannot be created in `folder`, or None. Creates and removes a hidden sibling, since
    permission bits alone say yes where the file system says no (root in /proc, a read-only mount)."""
    probe = os.path.join(folder, f".car-select-{os.getpid()}-{uuid.uuid4().hex[:8]}.probe")
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError as exc:
        return _reason(exc)
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return None


def _is_hf_folder(path: str) -> bool:
    from .formats.hf import is_hf_folder

    return is_hf_folder(path)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _keep_mode(tmp: str, target: str) -> None:
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    with contextlib.suppress(OSError):
        os.chmod(tmp, mode)


def _replace_dir(tmp: str, target: str) -> None:
    """Move folder `tmp` onto `target`: the old folder is renamed aside first and removed only once
    the new one is in place (never deleted before its replacement is complete)."""
    os.chmod(tmp, 0o777 & ~_umask())
    if not os.path.lexists(target):
        os.rename(tmp, target)
        return
    backup = temp_sibling(target) + ".old"
    os.rename(target, backup)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(backup, target)
        raise
    _remove(backup)
