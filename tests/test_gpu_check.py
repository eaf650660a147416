"""The prepared GPU check's CPU-safe parts: they run on a CPU and report each CUDA part as skipped."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_gpu_check_runs_its_cpu_safe_parts_and_skips_cuda(tmp_path: Path) -> None:
    import torch

    env = {**os.environ, "OUT": str(tmp_path / "out"), "PROGRESSGYM_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu_check.sh")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert (tmp_path / "out" / "gpu_check.txt").is_file()
    assert report["parity"]["cpu_replies_nonempty"] == report["parity"]["prompts"] == 8
    assert report["cost"]["prompts"] > 1000 and 2.5 < report["cost"]["chars_per_token"] < 6
    if not torch.cuda.is_available():
        for part in ("parity", "cost", "follow"):
            assert report[part]["cuda"] == "no CUDA device: the CUDA half is skipped"
