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


def silence_progress_bars() -> None:
    """Hide the progress bars of the Hugging Face libraries (``--no-progress``), also those already imported.

    transformers reads the setting once, when it is imported, from ``huggingface_hub``; switching the hub's
    bars off here covers both the models' "Loading weights" bars and the downloads.
    """
    import os

    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()
