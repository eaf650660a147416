"""A run killed with SIGKILL at arbitrary points and resumed ends exactly like an uninterrupted run."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from pg_testkit import cli_command, cli_env, cli_flags, run_cli

from progressgym.log import read_result

pytestmark = pytest.mark.slow


def _args(judge_kwargs, out: Path, *extra: str) -> list[str]:
    return [
        "--challenge",
        "coevolve",
        "--algorithm",
        "oracle",
        "--seed",
        "5",
        "--out",
        str(out),
        *cli_flags(judge_kwargs),
        *extra,
    ]


def _kill_when(
    command: list[str], env: dict[str, str], cwd: Path, appears: Path, timeout: float = 600
) -> None:
    """Start ``command`` and SIGKILL it as soon as ``appears`` exists."""
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + timeout
    try:
        while not appears.exists():
            assert process.poll() is None, (
                f"the run ended (status {process.returncode}) before {appears.name} appeared"
            )
            assert time.monotonic() < deadline, f"{appears} did not appear in {timeout} s"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL


def _complete_files(root: Path) -> None:
    """Every JSON file a reader would open is complete (temporary files start with a dot)."""
    for file in root.rglob("*.json"):
        if not any(part.startswith(".") for part in file.relative_to(root).parts):
            json.loads(file.read_text())


def test_sigkill_and_resume_give_the_uninterrupted_result(judge_kwargs, pg_cache, tmp_path):
    straight = run_cli(*_args(judge_kwargs, tmp_path / "straight"), cache=pg_cache, cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    expected = read_result(tmp_path / "straight" / "result.json")

    run = tmp_path / "killed"
    env = cli_env(pg_cache)
    # Killed during step 2, right after step 1 was recorded ...
    _kill_when(cli_command(*_args(judge_kwargs, run)), env, tmp_path, run / "steps" / "step-000.json")
    _complete_files(run)
    assert not (run / "result.json").exists()
    first = (run / "steps" / "step-000.json").stat()
    # ... then the resumed run is killed as soon as its last step is recorded (while writing the result).
    _kill_when(cli_command("--resume", str(run)), env, tmp_path, run / "steps" / "step-001.json")
    _complete_files(run)
    again = (run / "steps" / "step-000.json").stat()
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)  # not recomputed

    resumed = run_cli("--resume", str(run), "--no-progress", cache=pg_cache, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    result = read_result(run / "result.json")
    assert result.outcome() == expected.outcome()
    assert [s.proxy_model.fingerprint for s in result.steps] == [
        s.proxy_model.fingerprint for s in expected.steps
    ]
    assert result.score == expected.score
    assert (run / "trajectory.png").is_file()
