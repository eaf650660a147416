"""``python -m progressgym.grid --cell GRID_DIR CELL_ID``: the process of one grid cell (started by the driver)."""

import sys

from progressgym.grid._cell import _cell_main

sys.exit(_cell_main(sys.argv[1:]))
