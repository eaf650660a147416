"""The process of one grid cell (``python -m progressgym.grid --cell GRID_DIR CELL_ID``)."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from progressgym._paths import atomic_write_text
from progressgym.error import InvalidInput
from progressgym.grid._manifest import read_manifest
from progressgym.grid._spec import (
    _PARENT_ENV,
    LOGS,
    RUNS,
    GridSpec,
)


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
        from progressgym.log import summary

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
