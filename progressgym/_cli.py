"""Shared behaviour of progressgym's command-line tools: one-line errors and exit status 2."""

from __future__ import annotations

import sys
from collections.abc import Callable

from progressgym.error import Error

EXIT_USAGE = 2


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run ``main`` and turn a progressgym error into one line on stderr and exit status 2.

    Args:
        main: The tool's entry point; returns an exit status.
        argv: Arguments (defaults to ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    try:
        return main(argv)
    except Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
