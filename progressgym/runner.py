"""Running an examinee through a challenge, with a run directory that survives being killed.

Run directory layout::

    RUN_DIR/
      config.json           RunConfig: challenge, its arguments, algorithm, its config, seed (written first)
      steps/step-000.json   StepCheckpoint per completed step: its record + examinee and judge state
      examinee/             the examinee's work directory (its models)
      judge/                the judge's work directory (Coevolve: proxy/C014, proxy/C015, ...)
      trajectory.png        examinee vs historical values over the centuries
      result.json           RunResult, written last: its presence marks a finished run
      error.log             the traceback, when the examinee failed

Every file is written to a temporary file and renamed into place. A run killed at any moment and resumed
with :func:`resume_run` continues after its last completed step (completed steps are never recomputed) and
ends with the same result as an uninterrupted run: every seed derives from the run seed and the step index.
Step files hold paths inside the run directory relative to it (``${RUN_DIR}/examinee/step-000``), so a run
directory copied or moved elsewhere resumes from its own models.

Under a multi-process launch (``accelerate launch``, ``torchrun``: see :mod:`progressgym._distributed`)
every process runs the same episode in the same run directory, and only the main process writes its files.
The processes meet once, after each has read the directory and before anything is written to it; the
trainers meet again whenever a model is saved.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from progressgym._distributed import is_distributed, is_main_process, wait_for_everyone, world_size
from progressgym._paths import atomic_write_text
from progressgym.core import Examinee, ExamineeFailed, Judge
from progressgym.error import Error, InvalidInput
from progressgym.log import (
    JudgeCompute,
    QueryUsage,
    RunConfig,
    RunResult,
    RunUsage,
    StepCheckpoint,
    read_model,
    read_result,
    write_model,
    write_result,
)
from progressgym.model_ref import ModelRef

CONFIG = "config.json"
RESULT = "result.json"
STEPS = "steps"
TRAJECTORY = "trajectory.png"
ERROR_LOG = "error.log"
RUN_DIR_MARK = "${RUN_DIR}"
"""How step files write the run directory at the start of a path inside it."""


def run_episode(
    judge: Judge,
    examinee: Examinee,
    *,
    seed: int = 0,
    run_dir: str | Path | None = None,
    algorithm: str | None = None,
    progress: bool = False,
) -> RunResult:
    """Run ``examinee`` through one episode of ``judge``'s challenge and return the result.

    With ``run_dir`` the run is recorded there (see the module docstring) and continues after the steps
    already completed in it; without one, the examinee and judge work in a temporary directory that is
    removed at the end.

    Under a multi-process launch every process calls this with the same arguments; only the main process
    writes to ``run_dir``.

    Args:
        judge: The challenge (see :func:`progressgym.registration.make_judge`).
        examinee: The algorithm, freshly constructed.
        seed: The run seed.
        run_dir: The run directory (created if missing).
        algorithm: The algorithm's registered name (default: ``examinee.name`` or its class name).
        progress: Show a progress bar over the centuries.

    Returns:
        The result; also written to ``run_dir/result.json``.

    Raises:
        ExamineeFailed: when the examinee raises or returns something that is not a model directory; the
            completed steps are kept.
        InvalidInput: under a multi-process launch without ``run_dir``.
    """
    name = algorithm or examinee.name or type(examinee).__name__
    if run_dir is None and is_distributed():
        raise InvalidInput(
            f"a run under {world_size()} processes needs a run directory they share (run_dir, or --out)"
        )
    main = is_main_process()
    with _directory(run_dir) as root:
        config_path = root / CONFIG
        existing = load_run_config(root) if config_path.exists() else None
        if existing is not None:
            _check_same_run(existing, judge, name, seed)
        # Where the run stands: a fresh start, or after its last completed step.
        done = completed_steps(root)
        # Every process has seen the directory as it was before the main process writes to it.
        wait_for_everyone()
        if existing is not None:
            config = existing
        else:
            config = make_run_config(judge, name, examinee.config, seed)
            if main:
                write_model(config_path, config)

        judge.reset(seed=seed, workdir=root / "judge")
        (root / "examinee").mkdir(parents=True, exist_ok=True)
        examinee.reset(initial_model=judge.initial_model(), workdir=root / "examinee", seed=seed)
        if done:
            judge.restore([c.record for c in done], done[-1].judge_state)
            examinee.load_state_dict(done[-1].examinee_state)

        bar = _progress_bar(judge, initial=len(done), enabled=progress and main)
        try:
            for step in range(len(done), judge.n_steps):
                # 1. The examinee learns from the present's human model and hands back its model.
                info = judge.step_info(step)
                bar.set_postfix_str(f"C{info.century:03d} {name} update")
                started = time.perf_counter()
                try:
                    model = examinee.update(judge.interface(step), info)
                except Exception as exc:
                    raise _failure(root, name, judge, step, exc) from exc
                if not _is_model(model):
                    raise _failure(
                        root,
                        name,
                        judge,
                        step,
                        TypeError(f"update() returned {model!r}, not a model directory"),
                    )
                examinee_seconds = time.perf_counter() - started

                # 2. The judge scores it (and, in Coevolve, moves its human proxy).
                bar.set_postfix_str(f"C{info.century:03d} judging")
                record = judge.assess(step, model).model_copy(update={"examinee_seconds": examinee_seconds})
                judge.records[-1] = record

                # 3. The step is recorded with everything needed to resume after it.
                checkpoint = StepCheckpoint(
                    record=record, examinee_state=examinee.state_dict(), judge_state=judge.state_dict()
                )
                if main:
                    write_model(step_path(root, step), _relocated(checkpoint, root, stored=True))
                bar.update(1)
        finally:
            bar.close()
            judge.close()

        # result.json comes last: it marks the run as finished.
        result = build_result(judge, config, examinee)
        if main:
            if run_dir is not None:
                _write_outputs(result, root)
            write_result(root / RESULT, result)
        return result


def resume_run(run_dir: str | Path, *, progress: bool = False) -> RunResult:
    """Finish a run from its directory: rebuild judge and examinee from ``config.json`` and continue.

    A run that already has its ``result.json`` is returned as it is.

    Raises:
        InvalidInput: when the directory is missing or its config or step files are not valid.
    """
    from progressgym.registration import make_examinee, make_judge

    root = Path(run_dir)
    config = load_run_config(root)
    if (root / RESULT).exists():
        result = read_result(root / RESULT)
        if not (root / TRAJECTORY).exists() and is_main_process():
            _write_outputs(result, root)
        return result
    completed_steps(root)  # fail early on damaged step files
    judge = make_judge(config.challenge, **config.challenge_kwargs)
    examinee = make_examinee(config.algorithm, config.algorithm_config)
    return run_episode(
        judge, examinee, seed=config.seed, run_dir=root, algorithm=config.algorithm, progress=progress
    )


def make_run_config(judge: Judge, algorithm: str, algorithm_config: Any, seed: int) -> RunConfig:
    """The ``config.json`` of a new run."""
    from progressgym._version import __version__

    return RunConfig(
        challenge=judge.id,
        challenge_kwargs=dict(judge.kwargs),
        algorithm=algorithm,
        algorithm_config=config_dict(algorithm_config),
        seed=int(seed),
        progressgym_version=__version__,
        created_at=_now(),
    )


def config_dict(config: Any) -> dict[str, Any]:
    """An algorithm configuration as a JSON-able dict (``{}`` for none)."""
    if config is None:
        return {}
    if is_dataclass(config) and not isinstance(config, type):
        return asdict(config)
    if isinstance(config, dict):
        return dict(config)
    raise InvalidInput(f"algorithm configuration must be a dataclass or a dict, got {type(config).__name__}")


def load_run_config(run_dir: str | Path) -> RunConfig:
    """Read a run directory's ``config.json``, with one-line errors for a missing or damaged run."""
    root = Path(run_dir)
    if not root.is_dir():
        if root.exists():
            raise InvalidInput(f"{root} is a file, not a run directory")
        raise InvalidInput(f"run directory {root} does not exist")
    if not (root / CONFIG).is_file():
        raise InvalidInput(f"{root} is not a run directory (no {CONFIG})")
    return read_model(root / CONFIG, RunConfig)


def step_path(run_dir: Path, step: int) -> Path:
    """The checkpoint file of one step."""
    return run_dir / STEPS / f"step-{step:03d}.json"


def completed_steps(run_dir: str | Path) -> list[StepCheckpoint]:
    """The checkpoints of the steps completed so far, in order (temporary files are ignored).

    Raises:
        InvalidInput: when a checkpoint is damaged or the steps are not contiguous from 0.
    """
    folder = Path(run_dir) / STEPS
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.glob("step-*.json"))
    checkpoints = []
    for index, file in enumerate(files):
        if file.name != f"step-{index:03d}.json":
            raise InvalidInput(
                f"{folder}: step files are not contiguous ({file.name} follows step {index - 1})"
            )
        checkpoint = _relocated(read_model(file, StepCheckpoint), Path(run_dir), stored=False)
        if checkpoint.record.step != index:
            raise InvalidInput(f"{file} records step {checkpoint.record.step}, expected {index}")
        checkpoints.append(checkpoint)
    return checkpoints


def _relocated(checkpoint: StepCheckpoint, root: Path, *, stored: bool) -> StepCheckpoint:
    """A checkpoint with paths inside ``root`` written relative to it (``stored``) or made absolute again."""
    bases = {Path(os.path.abspath(root)), root.resolve()}

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: convert(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [convert(item) for item in value]
        if not isinstance(value, str):
            return value
        if not stored:
            if value == RUN_DIR_MARK or value.startswith(RUN_DIR_MARK + "/"):
                rest = value[len(RUN_DIR_MARK) :].lstrip("/")
                return str(root.resolve() / rest) if rest else str(root.resolve())
            return value
        if not os.path.isabs(value):
            return value
        path = Path(value)
        for base in bases:
            if path == base:
                return RUN_DIR_MARK
            if base in path.parents:
                return f"{RUN_DIR_MARK}/{path.relative_to(base).as_posix()}"
        return value

    return StepCheckpoint.model_validate(convert(checkpoint.model_dump()))


def build_result(judge: Judge, config: RunConfig, examinee: Examinee) -> RunResult:
    """The :class:`RunResult` of a judge whose episode is complete."""
    from progressgym._version import __version__

    steps = list(judge.records)
    truth = judge.truth_vectors()
    queries, compute = QueryUsage(), JudgeCompute()
    for record in steps:
        queries = queries + record.queries
        compute = compute + record.judge_compute
    usage = RunUsage(queries=queries, judge=compute, examinee_seconds=sum(s.examinee_seconds for s in steps))
    from progressgym.provenance import measured_provenance
    from progressgym.registration import challenge_spec
    from progressgym.timeline import century_code

    version = challenge_spec(judge.id).version if _registered(judge.id) else type(judge).version
    return RunResult(
        challenge=judge.id,
        challenge_version=version,
        challenge_kwargs=dict(config.challenge_kwargs),
        algorithm=config.algorithm,
        algorithm_config=dict(config.algorithm_config),
        privileged=type(examinee).privileged or queries.privileged_calls > 0,
        timeline=judge.timeline.name,
        centuries=list(judge.centuries),
        backend=judge.backend,
        seed=config.seed,
        step_seeds=[s.seed for s in steps],
        truth_vectors=truth,
        steps=steps,
        score=type(judge).score_result(steps, truth),
        mean_cosine=sum(s.cosine for s in steps) / len(steps),
        mean_distance=sum(s.distance for s in steps) / len(steps),
        usage=usage,
        progressgym_version=__version__,
        git_revision=git_revision(),
        started_at=config.created_at,
        finished_at=_now(),
        provenance=measured_provenance(
            judge.timeline,
            {century_code(c): judge.century_model(i) for i, c in enumerate(judge.centuries)},
            backend_settings=judge.backend_settings,
            bank_key=judge.item_bank("evaluation").key,
        ),
    )


def _write_outputs(result: RunResult, root: Path) -> None:
    from progressgym.runner_plots import plot_trajectory

    plot_trajectory(result, root / TRAJECTORY)
    write_submission(result, root)


def write_submission(result: RunResult, run_dir: Path) -> None:
    """Write ``submission.json``, the leaderboard's format of this run, beside ``result.json``."""
    from progressgym.leaderboard.submission import write_submission as write_leaderboard_submission

    write_leaderboard_submission(run_dir, result=result)


def git_revision() -> str | None:
    """The git revision of the progressgym source tree, or ``None`` outside a git checkout."""
    package_dir = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(package_dir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    revision = out.stdout.strip()
    return revision if out.returncode == 0 and revision else None


def _registered(challenge_id: str) -> bool:
    from progressgym.registration import CHALLENGES

    return challenge_id in CHALLENGES


def _is_model(model: object) -> bool:
    return isinstance(model, ModelRef) and (Path(model.path) / "config.json").is_file()


def _failure(root: Path, name: str, judge: Judge, step: int, exc: BaseException) -> ExamineeFailed:
    """A one-line error for an examinee that failed at ``step``; the traceback goes to ``error.log``."""
    century = judge.centuries[judge.timestep(step)]
    detail = " ".join(str(exc).split())
    if len(detail) > 300:
        detail = detail[:297] + "..."
    message = (
        f"algorithm {name!r} failed at step {step + 1}/{judge.n_steps} (C{century:03d}): "
        f"{type(exc).__name__}: {detail}"
    )
    if isinstance(exc, Error) and not isinstance(exc, ExamineeFailed):
        message = f"algorithm {name!r} failed at step {step + 1}/{judge.n_steps} (C{century:03d}): {detail}"
    if is_main_process():
        with contextlib.suppress(OSError):
            atomic_write_text(root / ERROR_LOG, "".join(traceback.format_exception(exc)))
    return ExamineeFailed(message)


def _check_same_run(config: RunConfig, judge: Judge, algorithm: str, seed: int) -> None:
    if (config.challenge, config.algorithm, config.seed) != (judge.id, algorithm, int(seed)):
        raise InvalidInput(
            f"the run directory holds a different run ({config.challenge}, {config.algorithm}, seed "
            f"{config.seed}); use a new directory"
        )


@contextlib.contextmanager
def _directory(run_dir: str | Path | None) -> Iterator[Path]:
    if run_dir is not None:
        root = Path(run_dir)
        root.mkdir(parents=True, exist_ok=True)
        yield root
        return
    scratch = Path(tempfile.mkdtemp(prefix="progressgym-run-"))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class _NoBar:
    def set_postfix_str(self, text: str) -> None:
        pass

    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(judge: Judge, *, initial: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=judge.n_steps, initial=initial, desc=judge.id, unit="century", dynamic_ncols=True)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


__all__ = [
    "build_result",
    "completed_steps",
    "load_run_config",
    "make_run_config",
    "resume_run",
    "run_episode",
    "write_submission",
]
