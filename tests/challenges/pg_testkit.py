"""Test timelines, a small item bank and CLI helpers shared by the challenge, env and run-CLI tests.

Importable from a subprocess (``PYTHONPATH=tests/challenges``): :func:`cli` registers the test timelines and
a failing test algorithm, then runs ``python -m progressgym.run`` with the remaining arguments.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from progressgym.core import Examinee, JudgeInterface, StepInfo
from progressgym.model_ref import ModelRef
from progressgym.timeline import CENTURIES, CenturyModel, Timeline, get_timeline, register_timeline

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

TIMELINE = "test-tiny"
"""Nine tiny random chat models, C013..C021."""
SHORT_TIMELINE = "test-tiny3"
"""The first three of them, C013..C015 (the same models, so their vectors are cached once)."""
SHORT_CENTURIES = CENTURIES[:3]


def build_test_timeline(timeline: Timeline, directory: Path) -> None:
    """Builder of the test timelines: one random tiny model per century, seeded with the century."""
    from progressgym.tiny import DEFAULT_TINY_CORPUS, build_tiny_model

    for member in timeline.members:
        build_tiny_model(directory / member.code, corpus=DEFAULT_TINY_CORPUS, seed=member.century)


def register_test_timelines() -> None:
    """Register ``test-tiny`` and ``test-tiny4`` (replacing earlier registrations)."""
    builder = "pg_testkit:build_test_timeline"
    register_timeline(
        Timeline(
            TIMELINE,
            "test: nine random tiny models",
            tuple(CenturyModel(c) for c in CENTURIES),
            builder=builder,
        ),
        overwrite=True,
    )
    register_timeline(
        Timeline(
            SHORT_TIMELINE,
            "test: three random tiny models",
            tuple(CenturyModel(c) for c in SHORT_CENTURIES),
            builder=builder,
        ),
        overwrite=True,
    )


def write_test_bank(path: Path) -> Path:
    """A 2-scenarios-per-stratum extract of the core bank (both splits measure every dimension)."""
    from progressgym.evaluation.banks import core_files
    from progressgym.evaluation.items import scenario_from_record

    kept: dict[str, int] = {}
    lines = []
    for file in core_files():
        for line in file.read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            stratum = scenario_from_record(json.loads(line)).stratum
            if kept.get(stratum, 0) < 2:
                kept[stratum] = kept.get(stratum, 0) + 1
                lines.append(line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class FailingExaminee(Examinee):
    """Adopts the true model (privileged) until step ``fail_at``, where it raises."""

    fail_at = 1

    def update(self, judge: JudgeInterface, step: StepInfo) -> ModelRef:
        if step.step == self.fail_at and not os.environ.get("PG_TEST_NO_FAIL"):
            raise ValueError(f"scripted failure at step {step.step}")
        self.model = judge.reveal_target()
        return self.model


@dataclass(frozen=True)
class Settings:
    scale: float = field(default=1.0, metadata={"help": "a scale that changes nothing"})
    note: str = field(default="", metadata={"help": "a note kept in the result"})
    verbose: bool = field(default=False, metadata={"help": "a switch"})


class ConfiguredExaminee(Examinee):
    """Keeps the initial model; has a configuration."""

    config_cls = Settings

    def update(self, judge: JudgeInterface, step: StepInfo) -> ModelRef:
        return self.current_model


def register_test_algorithms() -> None:
    from progressgym.registration import ALGORITHMS, register_algorithm

    if "test-failing" not in ALGORITHMS:
        register_algorithm("test-failing", FailingExaminee)
    if "test-configured" not in ALGORITHMS:
        register_algorithm("test-configured", ConfiguredExaminee)


def cli() -> None:
    """``python -c 'import pg_testkit; pg_testkit.cli()' ARGS``: the run CLI with the test registrations."""
    register_test_timelines()
    register_test_algorithms()
    from progressgym.run import main

    sys.exit(main(sys.argv[1:]))


def run_cli(
    *args: str, cache: Path | None, cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess (with the test registrations); ``cache`` sets ``PROGRESSGYM_CACHE``."""
    return subprocess.run(
        cli_command(*args), capture_output=True, text=True, env=cli_env(cache), cwd=cwd, timeout=timeout
    )


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "import pg_testkit; pg_testkit.cli()", *args]


def cli_env(cache: Path | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)])}
    if cache is not None:
        env["PROGRESSGYM_CACHE"] = str(cache)
    return env


# ------------------------------------------------------------------------------------------- fixtures


_SESSION: dict[str, Path] = {}
"""Session directories, shared by every module that imports these fixtures (each import defines them anew)."""


@pytest.fixture(scope="session")
def pg_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session cache directory holding the built test timelines and their cached vectors."""
    if "cache" not in _SESSION:
        _SESSION["cache"] = tmp_path_factory.mktemp("pg-cache")
    return _SESSION["cache"]


@pytest.fixture
def use_pg_cache(pg_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``PROGRESSGYM_CACHE`` at the session cache for one test."""
    monkeypatch.setenv("PROGRESSGYM_CACHE", str(pg_cache))
    return pg_cache


@pytest.fixture(scope="session")
def test_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if "bank" not in _SESSION:
        _SESSION["bank"] = write_test_bank(tmp_path_factory.mktemp("pg-bank") / "pgtest.jsonl")
    return _SESSION["bank"]


@pytest.fixture
def test_timelines(use_pg_cache: Path) -> Iterator[tuple[str, str]]:
    """Registered test timelines (the short one built) in the session cache."""
    register_test_timelines()
    register_test_algorithms()
    get_timeline(SHORT_TIMELINE).models()
    yield TIMELINE, SHORT_TIMELINE


@pytest.fixture
def judge_kwargs(test_timelines: tuple[str, str], test_bank: Path) -> dict[str, Any]:
    """Judge arguments for quick tests: the three-century timeline, the small bank, label questions, CPU."""
    return {"timeline": SHORT_TIMELINE, "bank": str(test_bank), "eval_formats": ["label"], "device": "cpu"}


def cli_flags(judge_kwargs: dict[str, Any], *, progress: bool = False) -> list[str]:
    """The run command's flags for the quick-test judge (``judge_kwargs``): timeline, bank, label questions, CPU."""
    flags = [
        "--timeline",
        judge_kwargs["timeline"],
        "--bank",
        str(judge_kwargs["bank"]),
        "--eval-format",
        "label",
    ]
    flags += ["--device", "cpu"]
    return flags if progress else [*flags, "--no-progress"]
