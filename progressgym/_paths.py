"""Where progressgym keeps its files, and how it writes them without ever leaving half a file behind."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """The root of progressgym's cache: ``$PROGRESSGYM_CACHE``, else ``$XDG_CACHE_HOME/progressgym``.

    Returns:
        The directory (created if missing).
    """
    explicit = os.environ.get("PROGRESSGYM_CACHE")
    if explicit:
        root = Path(explicit).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(xdg) / "progressgym"
    root.mkdir(parents=True, exist_ok=True)
    return root


def claim_new_dir(base: str | os.PathLike[str]) -> Path:
    """Create and return a directory named ``base``, or ``base-2``, ``base-3``... if that name is taken.

    The directory is created with one ``mkdir`` that fails when the name exists, so processes claiming the
    same name at the same moment each get their own directory.

    Args:
        base: The preferred path (its parent is created if missing).

    Returns:
        The new, empty directory.
    """
    first = Path(base)
    first.parent.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        candidate = first if n == 1 else first.with_name(f"{first.name}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            n += 1
            continue
        return candidate


_PSEUDO_FILESYSTEMS = ("/proc", "/sys", "/dev")
"""Kernel file systems: nothing progressgym writes belongs under them."""


def check_writable_path(path: str | os.PathLike[str], what: str, *, directory: bool = False) -> Path:
    """Refuse, before anything is created, an output path that cannot be written.

    Checks that the path is not under ``/proc``, ``/sys`` or ``/dev``, that its nearest existing ancestor
    is a writable directory (not a file), and that the path itself, if it exists, is of the right kind.

    Args:
        path: The output path (a file, or with ``directory`` a directory to create).
        what: How the error names it, e.g. ``"--out"``.
        directory: Whether the path is a directory (else a file).

    Returns:
        The path.

    Raises:
        InvalidInput: naming the path and what is wrong with it, on one line.
    """
    from progressgym.error import InvalidInput

    target = Path(path).expanduser()
    absolute = Path(os.path.abspath(target))
    for root in _PSEUDO_FILESYSTEMS:
        if absolute == Path(root) or Path(root) in absolute.parents:
            raise InvalidInput(f"{what} {target} is under {root}, a kernel file system; choose another path")
    if target.exists():
        if directory and not target.is_dir():
            raise InvalidInput(f"{what} {target} is a file, not a directory")
        if not directory and target.is_dir():
            raise InvalidInput(f"{what} {target} is a directory, not a file")
        ancestor = absolute if directory else absolute.parent
    else:
        ancestor = absolute.parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise InvalidInput(f"{what} {target} cannot be created: {ancestor} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InvalidInput(f"{what} {target} cannot be written: no write permission in {ancestor}")
    return target


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename.

    Readers see either the old file or the complete new one, never a partial write, even if the process
    is killed mid-way.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) atomically; see :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically; see :func:`atomic_write_bytes`."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def staged_output(out_dir: str | os.PathLike[str]) -> Iterator[tuple[Path, Path]]:
    """A scratch directory beside ``out_dir`` and a path to save a model into, renamed into place on success.

    A failed block leaves ``out_dir`` as it was. Under a multi-process launch every process gets its own
    scratch directory, only the main process is expected to save (and renames the model into place), and on
    success every process waits until it has, so all of them find the model in ``out_dir`` afterwards.

    Yields:
        ``(scratch, staged)``: trainer files go to ``scratch``, the finished model to ``staged``.
    """
    target = Path(out_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        staged = scratch / "model"
        yield scratch, staged
        move_into_place(staged, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def move_into_place(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Move the directory ``source`` to ``target``, replacing what is there; by the main process alone.

    Under a multi-process launch the other processes wait until the move is done, so all of them find the
    directory at ``target`` afterwards.
    """
    from progressgym._distributed import is_main_process, wait_for_everyone

    if is_main_process():
        if Path(target).exists():
            shutil.rmtree(target)
        os.replace(source, target)
    wait_for_everyone()
