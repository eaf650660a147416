"""A grid's manifest, ``grid.json``: the cells' states, the report, and the driver's lock."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from progressgym._paths import atomic_write_json
from progressgym.error import InvalidInput
from progressgym.grid._spec import (
    _LOCK,
    GRID_FILE,
    GRID_VERSION,
    LOGS,
    RUNS,
    Cell,
    Executor,
    GridSpec,
)


@dataclass
class CellStatus:
    """A cell as recorded in ``grid.json``.

    Attributes:
        challenge: The challenge id.
        algorithm: The algorithm name.
        seed: The run seed.
        state: ``pending``, ``running``, ``done`` or ``failed``.
        run_dir: The run directory, relative to the grid directory.
        log: The cell's output, relative to the grid directory.
        score: The run's score once done.
        seconds: Wall-clock seconds of the cell's last attempt.
        attempts: How many times the cell was started.
        error: One line saying why the last attempt failed.
        earlier: Finished by an earlier invocation (skipped this time).
    """

    challenge: str
    algorithm: str
    seed: int
    state: str = "pending"
    run_dir: str = ""
    log: str = ""
    score: float | None = None
    seconds: float | None = None
    attempts: int = 0
    error: str | None = None
    earlier: bool = False

    @property
    def id(self) -> str:
        """The cell id (its directory name)."""
        return Cell(self.challenge, self.algorithm, self.seed).id

    @classmethod
    def of(cls, cell: Cell) -> CellStatus:
        """A pending cell."""
        return cls(
            cell.challenge,
            cell.algorithm,
            cell.seed,
            run_dir=f"{RUNS}/{cell.id}",
            log=f"{LOGS}/{cell.id}.log",
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in ``grid.json``."""
        return {
            "id": self.id,
            "challenge": self.challenge,
            "algorithm": self.algorithm,
            "seed": self.seed,
            "state": self.state,
            "run_dir": self.run_dir,
            "log": self.log,
            "score": self.score,
            "seconds": self.seconds,
            "attempts": self.attempts,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellStatus:
        """Inverse of :meth:`to_dict`."""
        return cls(
            challenge=data["challenge"],
            algorithm=data["algorithm"],
            seed=int(data["seed"]),
            state=data["state"],
            run_dir=data["run_dir"],
            log=data["log"],
            score=data.get("score"),
            seconds=data.get("seconds"),
            attempts=int(data.get("attempts", 0)),
            error=data.get("error"),
        )


@dataclass
class GridReport:
    """The outcome of :func:`run_grid` or :func:`resume_grid`.

    Attributes:
        grid_dir: The grid directory.
        cells: Every cell, in grid order.
    """

    grid_dir: Path
    cells: list[CellStatus]

    @property
    def failed(self) -> list[CellStatus]:
        """The cells that did not finish."""
        return [c for c in self.cells if c.state != "done"]

    @property
    def ok(self) -> bool:
        """Whether every cell finished."""
        return not self.failed

    def table(self) -> str:
        """One line per cell (failed ones with their reason), then a summary line."""
        width = max([len(c.id) for c in self.cells] + [4])
        rows = [f"{'cell':<{width}}  {'state':<7}  {'score':>7}  {'seconds':>8}  detail"]
        for c in self.cells:
            score = f"{c.score:.4f}" if c.score is not None else "-"
            seconds = f"{c.seconds:.1f}" if c.seconds is not None and not c.earlier else "-"
            if c.state == "done":
                detail = "finished earlier" if c.earlier else ""
            else:
                detail = f"{c.error or 'not run'} (log: {c.log})"
            rows.append(f"{c.id:<{width}}  {c.state:<7}  {score:>7}  {seconds:>8}  {detail}".rstrip())
        done = sum(c.state == "done" for c in self.cells)
        line = f"{len(self.cells)} cells: {done} done, {len(self.cells) - done} failed; grid directory {self.grid_dir}"
        if not self.ok:
            line += f"; finish it with: python -m progressgym.run --grid --resume {self.grid_dir}"
        rows.append(line)
        return "\n".join(rows)


def read_manifest(grid_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``grid.json`` with one-line errors for a missing or damaged grid."""
    root = Path(grid_dir)
    file = root / GRID_FILE
    if not root.is_dir():
        raise InvalidInput(f"grid directory {root} does not exist")
    if not file.is_file():
        raise InvalidInput(f"{root} is not a grid directory (no {GRID_FILE})")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        if data.get("version") != GRID_VERSION:
            raise ValueError(f"version {data.get('version')!r}, expected {GRID_VERSION}")
        GridSpec.from_dict(data["spec"])
        for cell in data["cells"]:
            CellStatus.from_dict(cell)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"{file} is not a valid grid manifest ({exc})") from None
    return dict(data)


@contextlib.contextmanager
def _driver_lock(grid_dir: Path) -> Iterator[None]:
    """Hold the grid's lock: one driver per grid directory at a time."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with (grid_dir / _LOCK).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise InvalidInput(f"{grid_dir} is being run by another process; wait for it to end") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_manifest(
    grid_dir: Path,
    spec: GridSpec,
    executor: Executor,
    cells: Sequence[CellStatus],
    *,
    created_at: str | None = None,
) -> None:
    file = grid_dir / GRID_FILE
    if created_at is None and file.is_file():
        with contextlib.suppress(ValueError, OSError):
            created_at = json.loads(file.read_text(encoding="utf-8")).get("created_at")
    atomic_write_json(
        file,
        {
            "version": GRID_VERSION,
            "spec": spec.to_dict(),
            "executor": {
                "kind": executor.kind,
                "max_parallel": executor.max_parallel,
                "num_cpus": executor.num_cpus,
                "num_gpus": executor.num_gpus,
                "ray_address": executor.ray_address,
            },
            "created_at": created_at or _now(),
            "updated_at": _now(),
            "cells": [c.to_dict() for c in cells],
        },
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    first = text.split(". ")[0] if text else ""
    return _clip(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)


def _clip(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
