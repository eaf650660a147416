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

Modules: :mod:`~progressgym.grid._spec` (cells, spec, executor settings, the configuration file),
:mod:`~progressgym.grid._manifest` (``grid.json``, the report), :mod:`~progressgym.grid._executors` (the
driver: local processes or Ray tasks) and :mod:`~progressgym.grid._cell` (the process of one cell).
"""

from progressgym.grid._cell import run_cell
from progressgym.grid._executors import resume_grid, run_grid
from progressgym.grid._manifest import CellStatus, GridReport, read_manifest
from progressgym.grid._spec import (
    CONFIG_KEYS,
    EXECUTORS,
    GRID_FILE,
    GRID_VERSION,
    LOGS,
    OPTIONS,
    RUNS,
    STATES,
    Cell,
    Executor,
    GridSpec,
    load_grid_config,
    make_grid,
    parse_list,
    parse_seeds,
)

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
