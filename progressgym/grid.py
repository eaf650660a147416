"""Grids of runs: every combination of algorithms, challenges and seeds, run in parallel and resumable.

``python -m progressgym.run --grid`` builds a :class:`GridSpec` from flags or a TOML/JSON file
(:func:`load_grid_config`) and calls :func:`run_grid`; ``--resume GRID_DIR`` calls :func:`resume_grid`.

Grid directory layout::

    GRID_DIR/
      grid.json             the manifest: the grid's settings and every cell with its state (written by the
                            driver only, atomically)
      runs/<cell>/          each cell's run directory (``python -m progressgym.run --resume`` works on it)
      logs/<cell>.log       each cell's output; logs/<cell>.pid holds the id of the process running it

A cell is one run (``<challenge>_<algorithm>_seed<N>``, e.g. ``Follow-v0_static_seed0``). Each runs in its own
process, started by the driver (``local`` executor) or by a Ray task that declares the cell's CPU and GPU
needs (``ray`` executor; the task waits for the process). A cell whose process dies is reported as failed and
the other cells go on. Running the grid again with ``--resume GRID_DIR`` skips the finished cells and
continues the others from their last completed step (see :func:`progressgym.runner.resume_run`).

Cells share the vector cache (:mod:`progressgym.evaluation.cache`): entries are written to a temporary file
and renamed, so concurrent cells that evaluate the same model each write a complete entry with the same
vector and readers never see half of one. On a Ray cluster the grid directory must be on a file system every
node sees at the same path; cells get the driver's ``PROGRESSGYM_*`` variables (cache and model folders).
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from progressgym._paths import atomic_write_json, atomic_write_text, claim_new_dir
from progressgym._registry import did_you_mean
from progressgym.error import DependencyNotInstalled, Error, InvalidInput

GRID_FILE = "grid.json"
GRID_VERSION = 1
"""Layout version of ``grid.json``."""
RUNS = "runs"
LOGS = "logs"
EXECUTORS = ("local", "ray")
STATES = ("pending", "running", "done", "failed")
OPTIONS = (
    "timeline",
    "backend",
    "device",
    "backend_options",
    "query_budget",
    "bank",
    "bank_path",
    "eval_formats",
    "model_dir",
    "timesteps_ahead",
)
"""Judge arguments a grid may set for all its cells (the flags of a single run)."""
CONFIG_KEYS = (
    "algorithms",
    "challenges",
    "seeds",
    "options",
    "algorithm_config",
    "executor",
    "max_parallel",
    "num_cpus",
    "num_gpus",
    "ray_address",
)
"""Keys of a grid configuration file."""

_PARENT_ENV = "PROGRESSGYM_GRID_PARENT"
_LOCK = ".lock"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_INT_OPTIONS = ("query_budget", "timesteps_ahead")
_PATH_OPTIONS = ("bank_path", "model_dir")


# ------------------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class Cell:
    """One run of a grid.

    Attributes:
        challenge: The challenge id, e.g. ``Follow-v0``.
        algorithm: The registered algorithm name.
        seed: The run seed.
    """

    challenge: str
    algorithm: str
    seed: int

    @property
    def id(self) -> str:
        """``<challenge>_<algorithm>_seed<N>``, safe as a file name."""
        return _UNSAFE.sub("-", f"{self.challenge}_{self.algorithm}_seed{self.seed}")


@dataclass(frozen=True)
class GridSpec:
    """What a grid runs: every combination of its algorithms, challenges and seeds.

    Attributes:
        algorithms: Registered algorithm names.
        challenges: Challenge names or ids (``follow``, ``Predict-v0``); :meth:`checked` turns them into ids.
        seeds: Run seeds.
        options: Judge arguments shared by every cell (see :data:`OPTIONS`); ``timesteps_ahead`` goes only to
            the challenges that take it.
        algorithm_config: Per algorithm, the fields of its configuration that differ from the defaults.
    """

    algorithms: tuple[str, ...]
    challenges: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    options: Mapping[str, Any] = field(default_factory=dict)
    algorithm_config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def checked(self) -> GridSpec:
        """This grid with challenge ids, checked the way a single run checks its flags (nothing is loaded).

        Raises:
            InvalidInput: for an empty or repeated list, an unknown option or a bad value.
            UnknownName: for an unknown challenge, algorithm, timeline, backend or bank.
        """
        from progressgym.registration import challenge_spec, make_examinee

        algorithms = _unique("algorithms", self.algorithms)
        challenges = _unique("challenges", [challenge_spec(name).id for name in self.challenges])
        seeds = _unique("seeds", [_int("seeds", s) for s in self.seeds])
        unknown = sorted(set(self.options) - set(OPTIONS))
        if unknown:
            raise InvalidInput(did_you_mean("grid option", unknown[0], list(OPTIONS)))
        options = {k: v for k, v in self.options.items() if v is not None}
        for name in _INT_OPTIONS:
            if name in options:
                options[name] = _int(name, options[name])
        if "eval_formats" in options:
            formats = options["eval_formats"]
            options["eval_formats"] = [formats] if isinstance(formats, str) else list(formats)
        stray = sorted(set(self.algorithm_config) - set(algorithms))
        if stray:
            raise InvalidInput(
                f"algorithm_config names {stray[0]!r}, which is not among the grid's algorithms"
            )
        for name in algorithms:
            make_examinee(name, dict(self.algorithm_config.get(name, {})))
        spec = GridSpec(
            algorithms=tuple(algorithms),
            challenges=tuple(challenges),
            seeds=tuple(seeds),
            options=options,
            algorithm_config={k: dict(v) for k, v in self.algorithm_config.items() if v},
        )
        if "timesteps_ahead" in options and not any(_takes_timesteps(c) for c in challenges):
            raise InvalidInput(f"timesteps_ahead applies to Predict only, not {', '.join(challenges)}")
        for challenge in challenges:
            challenge_spec(challenge).make(**spec.judge_kwargs(challenge))
        ids = [cell.id for cell in spec.cells()]
        if len(set(ids)) != len(ids):
            raise InvalidInput("two cells of the grid would share a directory name; rename an algorithm")
        return spec

    def cells(self) -> list[Cell]:
        """Every cell, challenge by challenge, then algorithm, then seed."""
        return [Cell(c, a, s) for c in self.challenges for a in self.algorithms for s in self.seeds]

    def judge_kwargs(self, challenge: str) -> dict[str, Any]:
        """The judge arguments of ``challenge``'s cells."""
        kwargs = dict(self.options)
        if "timesteps_ahead" in kwargs and not _takes_timesteps(challenge):
            del kwargs["timesteps_ahead"]
        return kwargs

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in ``grid.json``."""
        return {
            "algorithms": list(self.algorithms),
            "challenges": list(self.challenges),
            "seeds": list(self.seeds),
            "options": dict(self.options),
            "algorithm_config": {k: dict(v) for k, v in self.algorithm_config.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GridSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(
            algorithms=tuple(data["algorithms"]),
            challenges=tuple(data["challenges"]),
            seeds=tuple(data["seeds"]),
            options=dict(data.get("options", {})),
            algorithm_config={k: dict(v) for k, v in data.get("algorithm_config", {}).items()},
        )


@dataclass(frozen=True)
class Executor:
    """Where and how many cells run at once (not part of a grid's identity: a resume may change it).

    Attributes:
        kind: ``local`` (processes on this machine) or ``ray`` (one Ray task per cell).
        max_parallel: Cells running at once (default: 1 locally; with Ray, as many as the resources allow).
        num_cpus: CPU cores each cell needs (a Ray resource; also the cell's thread count).
        num_gpus: GPUs each cell needs (a Ray resource; Ray sets the cell's ``CUDA_VISIBLE_DEVICES``).
        ray_address: A running Ray cluster to join (default: start a local one for the grid).
    """

    kind: str = "local"
    max_parallel: int | None = None
    num_cpus: float | None = None
    num_gpus: float | None = None
    ray_address: str | None = None

    def checked(self) -> Executor:
        """These settings, checked.

        Raises:
            InvalidInput: for an unknown executor, a non-positive count, or a Ray setting on ``local``.
        """
        if self.kind not in EXECUTORS:
            raise InvalidInput(did_you_mean("executor", self.kind, list(EXECUTORS)))
        if self.max_parallel is not None and _int("max_parallel", self.max_parallel) < 1:
            raise InvalidInput(f"max_parallel must be at least 1, got {self.max_parallel}")
        if self.num_cpus is not None and not _number("num_cpus", self.num_cpus) > 0:
            raise InvalidInput(f"num_cpus must be positive, got {self.num_cpus}")
        if self.num_gpus is not None and _number("num_gpus", self.num_gpus) < 0:
            raise InvalidInput(f"num_gpus must not be negative, got {self.num_gpus}")
        if self.kind == "local" and self.num_gpus:
            raise InvalidInput("num_gpus needs the ray executor (the local executor does not place cells)")
        if self.kind == "local" and self.ray_address:
            raise InvalidInput("ray_address needs the ray executor")
        return self


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


# ----------------------------------------------------------------------------------- configuration file


def load_grid_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a grid configuration file (``.toml`` or ``.json``) into a dict of :data:`CONFIG_KEYS`.

    Example (TOML)::

        algorithms = ["static", "oracle"]
        challenges = ["follow", "predict"]
        seeds = [0, 1, 2]
        executor = "ray"
        num_cpus = 1

        [options]                    # judge arguments of every cell
        timeline = "mini"
        eval_formats = ["label"]

        [algorithm_config.lifelong-dpo]
        preset = "mini"

    Paths among the options (a ``.jsonl`` bank, ``bank_path``, ``model_dir``) are relative to the file's folder.

    Raises:
        InvalidInput: when the file is missing, malformed, or has an unknown key.
    """
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read grid config {file}: {exc.strerror or exc}") from None
    suffix = file.suffix.lower()
    try:
        if suffix == ".toml":
            data = _toml().loads(raw.decode("utf-8"))
        elif suffix == ".json":
            data = json.loads(raw)
        else:
            raise InvalidInput(f"grid config {file} must be a .toml or .json file")
    except (ValueError, UnicodeDecodeError) as exc:
        detail = " ".join(str(exc).split())
        raise InvalidInput(f"grid config {file} is not valid {suffix[1:].upper()} ({detail})") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"grid config {file} must hold a table of settings")
    for key in data:
        if key not in CONFIG_KEYS:
            raise InvalidInput(f"grid config {file}: " + did_you_mean("key", key, list(CONFIG_KEYS)))
    for key in ("options", "algorithm_config"):
        if key in data and not isinstance(data[key], dict):
            raise InvalidInput(f"grid config {file}: {key} must be a table")
    for name, value in data.get("algorithm_config", {}).items():
        if not isinstance(value, dict):
            raise InvalidInput(f"grid config {file}: algorithm_config.{name} must be a table")
    for key in ("algorithms", "challenges", "seeds"):
        if key in data and isinstance(data[key], str):
            data[key] = parse_list(data[key])
    options = dict(data.get("options", {}))
    for name in (*_PATH_OPTIONS, "bank"):
        value = options.get(name)
        if isinstance(value, str) and _is_path_option(name, value) and not Path(value).is_absolute():
            options[name] = str(file.parent / value)
    if options:
        data["options"] = options
    return data


def make_grid(settings: Mapping[str, Any]) -> tuple[GridSpec, Executor]:
    """The checked grid and executor from settings (a configuration file's dict, flags laid over it).

    Relative paths among the options are made absolute (cells do not run in the current directory).

    Raises:
        InvalidInput: when ``algorithms`` or ``challenges`` is missing, or any setting is invalid.
    """
    for key in ("challenges", "algorithms"):
        if not settings.get(key):
            raise InvalidInput(f"a grid needs {key} (--{key} a,b or {key} in --grid-config)")
    for key in ("algorithms", "challenges", "seeds"):
        if key in settings and not isinstance(settings[key], (list, tuple)):
            raise InvalidInput(f"{key} must be a list, got {settings[key]!r}")
    options = dict(settings.get("options") or {})
    for name in (*_PATH_OPTIONS, "bank"):
        value = options.get(name)
        if isinstance(value, str) and _is_path_option(name, value):
            options[name] = str(Path(value).expanduser().resolve())
    spec = GridSpec(
        algorithms=tuple(str(a) for a in settings["algorithms"]),
        challenges=tuple(str(c) for c in settings["challenges"]),
        seeds=tuple(settings["seeds"] if settings.get("seeds") is not None else (0,)),
        options=options,
        algorithm_config=dict(settings.get("algorithm_config") or {}),
    ).checked()
    executor = Executor(
        kind=str(settings.get("executor") or "local"),
        max_parallel=settings.get("max_parallel"),
        num_cpus=settings.get("num_cpus"),
        num_gpus=settings.get("num_gpus"),
        ray_address=settings.get("ray_address"),
    ).checked()
    return spec, executor


def parse_list(text: str) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (empty items dropped)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``.

    Raises:
        InvalidInput: when an item is not an integer.
    """
    return [_int("seeds", part) for part in parse_list(text)]


# ------------------------------------------------------------------------------------------ the driver


def run_grid(
    spec: GridSpec,
    out: str | os.PathLike[str] | None = None,
    *,
    executor: Executor | None = None,
    progress: bool = True,
) -> GridReport:
    """Run every cell of a new grid and return the report (failed cells do not stop the others).

    Args:
        spec: The grid (checked with :meth:`GridSpec.checked` here).
        out: The grid directory: new, or empty (default: a new ``runs/grid_<time>``).
        executor: How cells run (default: one at a time on this machine).
        progress: Print a line on stderr as each cell starts and ends.

    Returns:
        The report; ``report.ok`` is false when a cell failed.

    Raises:
        InvalidInput: when ``out`` holds files, or a setting is invalid.
    """
    spec = spec.checked()
    executor = (executor or Executor()).checked()
    with _session(executor) as ray:
        return _new_grid(spec, out, executor, ray, progress=progress)


def _new_grid(
    spec: GridSpec, out: str | os.PathLike[str] | None, executor: Executor, ray: Any, *, progress: bool
) -> GridReport:
    if out is None:
        grid_dir = claim_new_dir(Path("runs") / f"grid_{datetime.now():%Y%m%d-%H%M%S}")
    else:
        grid_dir = Path(out)
        if (grid_dir / GRID_FILE).exists():
            raise InvalidInput(f"{grid_dir} already holds a grid; resume it with --grid --resume {grid_dir}")
        if grid_dir.exists() and (not grid_dir.is_dir() or any(grid_dir.iterdir())):
            raise InvalidInput(f"{grid_dir} already exists and is not empty; choose another --out")
        grid_dir.mkdir(parents=True, exist_ok=True)
    grid_dir = grid_dir.resolve()
    cells = [CellStatus.of(cell) for cell in spec.cells()]
    with _driver_lock(grid_dir):
        _write_manifest(grid_dir, spec, executor, cells, created_at=_now())
        return _drive(grid_dir, spec, executor, cells, ray, progress=progress)


def resume_grid(
    grid_dir: str | os.PathLike[str],
    settings: Mapping[str, Any] | None = None,
    *,
    progress: bool = True,
) -> GridReport:
    """Finish a grid: skip its finished cells, continue the partial ones, start the rest.

    Args:
        grid_dir: The grid directory (holding ``grid.json``).
        settings: Settings as for :func:`make_grid`, usually the flags of the command that started the grid.
            The grid's own settings fill what is missing; the result must be the grid's own spec. Executor
            settings (``executor``, ``max_parallel``, ``num_cpus``, ``num_gpus``, ``ray_address``) replace
            the recorded ones for this invocation.
        progress: Print a line on stderr as each cell starts and ends.

    Returns:
        The report.

    Raises:
        InvalidInput: when the directory is not a grid, or ``settings`` describe another grid.
    """
    manifest = read_manifest(grid_dir)
    root = Path(grid_dir).resolve()
    stored = GridSpec.from_dict(manifest["spec"])
    given = dict(settings or {})
    merged: dict[str, Any] = {**manifest.get("executor", {}), **stored.to_dict()}
    recorded = merged["executor"] = merged.pop("kind", "local")
    for key, value in given.items():
        if key == "options":
            merged["options"] = {**stored.options, **value}
        elif value is not None:
            merged[key] = value
    if given.get("executor") not in (None, recorded):
        # another executor: the recorded resource settings were the other executor's
        for key in ("max_parallel", "num_cpus", "num_gpus", "ray_address"):
            merged[key] = given.get(key)
    spec, executor = make_grid(merged)
    differ = [k for k, v in stored.to_dict().items() if spec.to_dict()[k] != v]
    if differ:
        raise InvalidInput(
            f"{root} holds a different grid ({', '.join(differ)} differ); drop the grid flags to resume it as it is"
        )
    by_id = {c["id"]: CellStatus.from_dict(c) for c in manifest["cells"]}
    cells = [by_id.get(cell.id) or CellStatus.of(cell) for cell in stored.cells()]
    with _session(executor) as ray, _driver_lock(root):
        _write_manifest(root, stored, executor, cells, created_at=manifest.get("created_at"))
        return _drive(root, stored, executor, cells, ray, progress=progress)


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


def _drive(
    grid_dir: Path,
    spec: GridSpec,
    executor: Executor,
    cells: list[CellStatus],
    ray: Any,
    *,
    progress: bool,
) -> GridReport:
    from progressgym.runner import RESULT

    todo = []
    for cell in cells:
        if (grid_dir / cell.run_dir / RESULT).is_file():
            if cell.state != "done":
                _finish(grid_dir, cell, 0, cell.seconds or 0.0)
            cell.earlier = cell.state == "done"
        else:
            cell.state, cell.score = "pending", None
            todo.append(cell)
    (grid_dir / LOGS).mkdir(exist_ok=True)
    (grid_dir / RUNS).mkdir(exist_ok=True)

    def save() -> None:
        _write_manifest(grid_dir, spec, executor, cells)

    save()
    notify = _Notifier(len(cells), enabled=progress)
    for cell in cells:
        if cell.earlier:
            notify("done earlier", cell)
    try:
        if ray is not None:
            _run_ray(ray, grid_dir, todo, executor, save, notify)
        else:
            _run_local(grid_dir, todo, executor, save, notify)
    finally:
        for cell in cells:
            if cell.state == "running":
                cell.state, cell.error = "failed", "interrupted"
        save()
    return GridReport(grid_dir, cells)


def _run_local(
    grid_dir: Path,
    todo: list[CellStatus],
    executor: Executor,
    save: Callable[[], None],
    notify: _Notifier,
) -> None:
    queue = collections.deque(todo)
    limit = executor.max_parallel or 1
    running: dict[str, tuple[CellStatus, subprocess.Popen[bytes], float]] = {}
    env = _cell_env(executor.num_cpus)
    try:
        while queue or running:
            while queue and len(running) < limit:
                cell = queue.popleft()
                _start(cell, save, notify)
                process = _spawn(grid_dir, cell.id, cell.attempts, env)
                running[cell.id] = (cell, process, time.monotonic())
            for key, (cell, process, started) in list(running.items()):
                code = process.poll()
                if code is not None:
                    del running[key]
                    _finish(grid_dir, cell, code, time.monotonic() - started)
                    save()
                    notify(cell.state, cell)
            time.sleep(0.1)
    finally:
        for _cell, process, _started in running.values():
            _stop(process)


@contextlib.contextmanager
def _session(executor: Executor) -> Iterator[Any]:
    """For the ray executor: Ray, started (or joined) and checked against the cells' needs; else ``None``.

    A Ray instance this call starts is shut down at the end; one already initialised is left running.
    """
    if executor.kind != "ray":
        yield None
        return
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        import logging

        try:
            ray.init(
                address=executor.ray_address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = executor.ray_address or "a local Ray instance"
            raise InvalidInput(f"cannot start or join {where} ({_one_line(exc)})") from None
    try:
        _check_ray_resources(ray.cluster_resources(), executor)
        yield ray
    finally:
        if started_here:
            ray.shutdown()


def _run_ray(
    ray: Any,
    grid_dir: Path,
    todo: list[CellStatus],
    executor: Executor,
    save: Callable[[], None],
    notify: _Notifier,
) -> None:
    pending: dict[Any, tuple[CellStatus, float]] = {}
    try:
        task = ray.remote(_ray_cell).options(
            num_cpus=executor.num_cpus if executor.num_cpus is not None else 1,
            num_gpus=executor.num_gpus or 0,
            max_retries=0,
        )
        env = _forwarded_env()
        queue = collections.deque(todo)
        while queue or pending:
            while queue and (executor.max_parallel is None or len(pending) < executor.max_parallel):
                cell = queue.popleft()
                _start(cell, save, notify)
                ref = task.remote(str(grid_dir), cell.id, cell.attempts, env)
                pending[ref] = (cell, time.monotonic())
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                cell, started = pending.pop(ref)
                try:
                    code = int(ray.get(ref))
                except Exception as exc:  # the task's worker died or Ray lost it
                    code = -1
                    cell.error = f"Ray task failed: {_one_line(exc)}"
                _finish(grid_dir, cell, code, time.monotonic() - started, reason=cell.error)
                save()
                notify(cell.state, cell)
    finally:
        for ref in pending:  # interrupted: stop the cells still running (their processes follow)
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)


def _ray_cell(grid_dir: str, cell_id: str, attempt: int, env: dict[str, str]) -> int:
    """The Ray task of one cell: run it in a child process and return its exit status.

    Ray has set this worker's ``CUDA_VISIBLE_DEVICES`` and ``OMP_NUM_THREADS`` from the task's resources;
    the child inherits them.
    """
    child_env = _cell_env(None)
    child_env.update(env)
    child_env[_PARENT_ENV] = str(os.getpid())
    process = _spawn(Path(grid_dir), cell_id, attempt, child_env)
    try:
        return process.wait()
    finally:
        _stop(process)


def _check_ray_resources(resources: Mapping[str, float], executor: Executor) -> None:
    cpus, gpus = executor.num_cpus if executor.num_cpus is not None else 1, executor.num_gpus or 0
    have_cpus, have_gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    if cpus > have_cpus:
        raise InvalidInput(f"each cell asks for {cpus:g} CPUs but the Ray cluster has {have_cpus:g}")
    if gpus > have_gpus:
        raise InvalidInput(f"each cell asks for {gpus:g} GPUs but the Ray cluster has {have_gpus:g}")


def _start(cell: CellStatus, save: Callable[[], None], notify: _Notifier) -> None:
    cell.state, cell.error, cell.score, cell.seconds = "running", None, None, None
    cell.attempts += 1
    save()
    notify("started", cell)


def _spawn(grid_dir: Path, cell_id: str, attempt: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start the process of one cell, its output going to the cell's log."""
    log = grid_dir / LOGS / f"{cell_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**env}
    env.setdefault(_PARENT_ENV, str(os.getpid()))
    with log.open("ab") as handle:
        handle.write(f"--- {_now()} attempt {attempt} on {socket.gethostname()}\n".encode())
        handle.flush()
        return subprocess.Popen(
            [sys.executable, "-m", "progressgym.grid", "--cell", str(grid_dir), cell_id],
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=grid_dir,
            env=env,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _finish(
    grid_dir: Path, cell: CellStatus, code: int, seconds: float, *, reason: str | None = None
) -> None:
    """Record a cell's outcome from its exit status, its ``result.json`` and the end of its log."""
    from progressgym.log import read_result
    from progressgym.runner import RESULT

    cell.seconds = round(seconds, 2)
    result_file = grid_dir / cell.run_dir / RESULT
    if code == 0 and result_file.is_file():
        try:
            cell.score, cell.state, cell.error = read_result(result_file).score, "done", None
            return
        except Error as exc:
            reason = str(exc)
    cell.state, cell.score = "failed", None
    cell.error = reason or _failure_reason(grid_dir / cell.log, code)


def _failure_reason(log: Path, code: int) -> str:
    """One line: the ``error:`` line of the cell's output, the signal that killed it, or its last line."""
    try:
        with log.open("rb") as handle:
            handle.seek(max(0, log.stat().st_size - 65536))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        lines = []
    tail = lines
    for index in range(len(lines) - 1, -1, -1):  # only what the last attempt wrote
        if lines[index].startswith("--- ") and " attempt " in lines[index]:
            tail = lines[index + 1 :]
            break
    errors = [line[len("error: ") :] for line in tail if line.startswith("error: ")]
    if errors:
        return _clip(errors[-1])
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    last = next((line.strip() for line in reversed(tail) if line.strip()), "")
    return _clip(f"exit status {code}" + (f": {last}" if last else ""))


class _Notifier:
    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total, self.enabled, self.ended = total, enabled, 0

    def __call__(self, event: str, cell: CellStatus) -> None:
        if event != "started":
            self.ended += 1
        if not self.enabled:
            return
        detail = ""
        if event == "done":
            detail = f" score {cell.score:.4f} in {cell.seconds:.1f} s"
        elif event == "failed":
            detail = f": {cell.error}"
        where = "" if event == "started" else f"[{self.ended}/{self.total}] "
        print(f"{where}{event} {cell.id}{detail}", file=sys.stderr, flush=True)


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


# -------------------------------------------------------------------------------------- the cell process


def run_cell(grid_dir: str | os.PathLike[str], cell_id: str) -> Any:
    """Run (or continue) one cell of a grid in this process and return its :class:`RunResult`.

    A cell whose run directory holds a ``config.json`` is continued with
    :func:`progressgym.runner.resume_run`; otherwise it starts from the grid's settings.
    """
    from progressgym.registration import make_examinee, make_judge
    from progressgym.runner import CONFIG, resume_run, run_episode

    root = Path(grid_dir)
    spec = GridSpec.from_dict(read_manifest(root)["spec"])
    cell = next((c for c in spec.cells() if c.id == cell_id), None)
    if cell is None:
        raise InvalidInput(f"{root} has no cell {cell_id!r}")
    run_dir = root / RUNS / cell.id
    if (run_dir / CONFIG).is_file():
        return resume_run(run_dir)
    judge = make_judge(cell.challenge, **spec.judge_kwargs(cell.challenge))
    examinee = make_examinee(cell.algorithm, dict(spec.algorithm_config.get(cell.algorithm, {})))
    return run_episode(judge, examinee, seed=cell.seed, run_dir=run_dir, algorithm=cell.algorithm)


def _cell_main(argv: list[str]) -> int:
    """``python -m progressgym.grid --cell GRID_DIR CELL_ID``: the process of one cell (started by the driver)."""
    from progressgym._cli import run_cli

    if len(argv) != 3 or argv[0] != "--cell":
        print(
            "python -m progressgym.grid runs one cell for the grid driver; "
            "start grids with python -m progressgym.run --grid",
            file=sys.stderr,
        )
        return 2
    grid_dir, cell_id = Path(argv[1]), argv[2]
    _watch_parent(os.environ.get(_PARENT_ENV))
    atomic_write_text(grid_dir / LOGS / f"{cell_id}.pid", f"{os.getpid()}\n")

    def main(_: list[str] | None) -> int:
        from progressgym.run import summary

        result = run_cell(grid_dir, cell_id)
        print(summary(result, grid_dir / RUNS / cell_id), flush=True)
        return 0

    return run_cli(main, [])


def _watch_parent(parent: str | None) -> None:
    """End this process when the process that started it is gone (a killed Ray worker or driver)."""
    if not parent or not parent.isdigit():
        return
    expected = int(parent)

    def watch() -> None:
        while True:
            if os.getppid() != expected:
                print(
                    "error: the process that started this cell ended; stopping", file=sys.stderr, flush=True
                )
                os._exit(3)
            time.sleep(1.0)

    threading.Thread(target=watch, name="progressgym-grid-parent", daemon=True).start()


# ------------------------------------------------------------------------------------------------ helpers


def _cell_env(num_cpus: float | None) -> dict[str, str]:
    """The environment of a cell's process."""
    import progressgym

    env = dict(os.environ)
    package_root = str(Path(progressgym.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if num_cpus is not None and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(max(1, int(num_cpus)))
    return env


def _forwarded_env() -> dict[str, str]:
    """The driver's ``PROGRESSGYM_*`` variables, handed to every cell."""
    return {k: v for k, v in os.environ.items() if k.startswith("PROGRESSGYM_") and k != _PARENT_ENV}


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise DependencyNotInstalled(
            "the ray executor needs Ray: pip install 'progressgym[grid]' (or use --executor local)"
        ) from None
    return ray


def _toml() -> Any:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise DependencyNotInstalled(
                "reading TOML on Python 3.10 needs tomli (pip install tomli); or write the grid config as JSON"
            ) from None
    return tomllib


def _takes_timesteps(challenge: str) -> bool:
    from progressgym.registration import challenge_spec

    return "timesteps_ahead" in inspect.signature(challenge_spec(challenge).judge_class()).parameters


def _is_path_option(name: str, value: str) -> bool:
    return name in _PATH_OPTIONS or (name == "bank" and value.endswith(".jsonl"))


def _unique(what: str, values: Sequence[Any]) -> list[Any]:
    if not values:
        raise InvalidInput(f"{what} must not be empty")
    seen: list[Any] = []
    for value in values:
        if value in seen:
            raise InvalidInput(f"{what} lists {value!r} twice")
        seen.append(value)
    return seen


def _int(what: str, value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidInput(f"{what}: {value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    raise InvalidInput(f"{what}: {value!r} is not an integer")


def _number(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{what}: {value!r} is not a number")
    return float(value)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    first = text.split(". ")[0] if text else ""
    return _clip(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)


def _clip(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


__all__ = [
    "CONFIG_KEYS",
    "EXECUTORS",
    "GRID_FILE",
    "OPTIONS",
    "Cell",
    "CellStatus",
    "Executor",
    "GridReport",
    "GridSpec",
    "load_grid_config",
    "make_grid",
    "parse_list",
    "parse_seeds",
    "read_manifest",
    "resume_grid",
    "run_cell",
    "run_grid",
]


if __name__ == "__main__":
    sys.exit(_cell_main(sys.argv[1:]))
