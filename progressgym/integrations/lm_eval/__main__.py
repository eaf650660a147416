"""``python -m progressgym.integrations.lm_eval --include-path``: where lm-eval finds progressgym's tasks."""

from __future__ import annotations

import argparse
import sys

from progressgym.integrations.lm_eval import CHAT_COMMAND, TASKS, include_path


def main(argv: list[str] | None = None) -> int:
    """Print the include path (``--include-path``) or how to run the tasks."""
    parser = argparse.ArgumentParser(prog="python -m progressgym.integrations.lm_eval", description=__doc__)
    parser.add_argument(
        "--include-path", action="store_true", help="print the folder for lm_eval --include_path"
    )
    args = parser.parse_args(argv)
    if args.include_path:
        print(include_path())
        return 0
    print(f"tasks: {', '.join(TASKS)}")
    print(f"run:   {CHAT_COMMAND}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
