"""The grid driver: runs the cells in local processes or Ray tasks and records their outcomes."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from progressgym._paths import claim_new_dir
from progressgym.error import DependencyNotInstalled, Error, InvalidInput
from progressgym.grid._manifest import (
    CellStatus,
    GridReport,
    _clip,
    _driver_lock,
    _now,
    _one_line,
    _write_manifest,
    read_manifest,
)
from progressgym.grid._spec import (
    _PARENT_ENV,
    GRID_FILE,
    LOGS,
    RUNS,
    Executor,
    GridSpec,
    make_grid,
)


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
