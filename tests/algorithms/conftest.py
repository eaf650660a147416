"""The challenge tests' tiny timelines and small item bank, shared with the algorithm tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "challenges"))

from pg_testkit import judge_kwargs, pg_cache, test_bank, test_timelines, use_pg_cache  # noqa: E402

__all__ = ["judge_kwargs", "pg_cache", "test_bank", "test_timelines", "use_pg_cache"]
