import sys
from pathlib import Path

# pg_testkit sits beside this file; the suite runs with --import-mode=importlib, which leaves sys.path alone.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pg_testkit import judge_kwargs, pg_cache, test_bank, test_timelines, use_pg_cache  # noqa: E402

__all__ = ["judge_kwargs", "pg_cache", "test_bank", "test_timelines", "use_pg_cache"]
