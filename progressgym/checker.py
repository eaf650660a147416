"""Conformance checks for plugin authors: does a new Judge or Examinee follow the contract?

>>> from progressgym.checker import check_judge_class
>>> from progressgym.judges.follow import FollowJudge
>>> check_judge_class(FollowJudge)

:func:`check_judge` and :func:`check_examinee` also run the plugin on real models (a few steps on a
timeline); each failed check raises :class:`ConformanceError` naming what to fix.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import tempfile
import warnings
from pathlib import Path
from typing import Any

from progressgym.core import Examinee, Judge
from progressgym.log import StepRecord
from progressgym.model_ref import ModelRef

JUDGE_HEADINGS = (
    "Description",
    "Examinee queries",
    "Observation",
    "Reward",
    "Episode end",
    "Arguments",
    "Version history",
)
"""The headings every challenge's class docstring (and its card) must have, in this order."""


class ConformanceError(AssertionError):
    """A Judge or Examinee breaks the contract; the message says how."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceError(message)


def _json_round_trip(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise ConformanceError(f"{what} must be JSON-serialisable: {exc}") from None


def check_judge_class(cls: type[Judge]) -> None:
    """Static checks of a Judge subclass: version, documented headings, ``score_result`` a classmethod."""
    _require(
        isinstance(cls, type) and issubclass(cls, Judge), f"{cls!r} is not a subclass of progressgym.Judge"
    )
    _require(
        isinstance(cls.version, int) and cls.version >= 0,
        f"{cls.__name__}.version must be a non-negative int",
    )
    doc = inspect.getdoc(cls) or ""
    positions = []
    for heading in JUDGE_HEADINGS:
        found = doc.find(f"## {heading}")
        _require(found >= 0, f"{cls.__name__}'s docstring lacks the heading '## {heading}'")
        positions.append(found)
    _require(
        positions == sorted(positions), f"{cls.__name__}'s docstring headings must follow {JUDGE_HEADINGS}"
    )
    _require(
        isinstance(inspect.getattr_static(cls, "score_result"), classmethod),
        f"{cls.__name__}.score_result must be a classmethod (the leaderboard calls it on the class)",
    )


def _synthetic_records(judge: Judge) -> list[StepRecord]:
    vectors = [[math.sin(i + d) for d in range(19)] for i in range(judge.n_steps + 1)]
    return [
        StepRecord(
            step=step,
            timestep=judge.timestep(step),
            century=judge.centuries[judge.timestep(step)],
            target_century=judge.centuries[judge.target_timestep(step)],
            seed=judge.step_seed(step),
            examinee_vector=vectors[step],
            target_vector=vectors[step + 1],
            proxy_vector=vectors[step],
            cosine=0.0,
            distance=0.0,
        )
        for step in range(judge.n_steps)
    ]


def check_judge(judge: Judge, *, run: bool = True, seed: int = 0) -> None:
    """Check a judge instance, and (``run=True``) run one episode of the ``static`` examinee through it.

    Checks: the class (:func:`check_judge_class`); every step maps to timesteps inside the timeline;
    ``state_dict`` is JSON-serialisable; ``score_result`` is deterministic and finite on synthetic vectors;
    after a real episode, the recorded score equals ``score_result`` recomputed from the records.

    Raises:
        ConformanceError: naming the first broken rule.
    """
    from progressgym.algorithms.reference import StaticExaminee

    check_judge_class(type(judge))
    _require(judge.n_steps >= 1, f"{judge.id}: n_steps must be at least 1, got {judge.n_steps}")
    n = len(judge.centuries)
    for step in range(judge.n_steps):
        t, target = judge.timestep(step), judge.target_timestep(step)
        _require(0 < t < n, f"{judge.id}: step {step} maps to timestep {t}, outside 1..{n - 1}")
        _require(
            0 <= target < n, f"{judge.id}: step {step} is compared with timestep {target}, outside 0..{n - 1}"
        )
    records = _synthetic_records(judge)
    truth = {f"C{c:03d}": [math.cos(i + d) for d in range(19)] for i, c in enumerate(judge.centuries)}
    first = type(judge).score_result(records, truth)
    _require(
        isinstance(first, float) and math.isfinite(first),
        f"{judge.id}: score_result must return a finite float",
    )
    _require(
        first == type(judge).score_result(records, truth), f"{judge.id}: score_result is not deterministic"
    )
    if not run:
        return
    with tempfile.TemporaryDirectory(prefix="progressgym-check-") as scratch:
        from progressgym.runner import run_episode

        result = run_episode(judge, StaticExaminee(), seed=seed, run_dir=Path(scratch) / "run")
        _json_round_trip(judge.state_dict(), f"{judge.id}.state_dict()")
    _require(
        len(result.steps) == judge.n_steps,
        f"{judge.id}: {len(result.steps)} records for {judge.n_steps} steps",
    )
    again = type(judge).score_result(result.steps, result.truth_vectors)
    _require(
        again == result.score,
        f"{judge.id}: score_result recomputed {again} but the run scored {result.score}",
    )


def check_examinee_class(cls: type[Examinee]) -> None:
    """Static checks of an Examinee subclass: ``update`` implemented, ``config_cls`` a frozen dataclass.

    Warns when a config field has no ``metadata["help"]`` (it becomes a command-line flag).
    """
    _require(
        isinstance(cls, type) and issubclass(cls, Examinee),
        f"{cls!r} is not a subclass of progressgym.Examinee",
    )
    _require(not inspect.isabstract(cls), f"{cls.__name__} does not implement update()")
    config_cls = cls.config_cls
    if config_cls is None:
        return
    _require(dataclasses.is_dataclass(config_cls), f"{cls.__name__}.config_cls must be a dataclass")
    params = getattr(config_cls, "__dataclass_params__", None)
    _require(
        bool(params and params.frozen), f"{cls.__name__}.config_cls must be frozen (@dataclass(frozen=True))"
    )
    for field in dataclasses.fields(config_cls):
        _require(
            field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING,
            f"{config_cls.__name__}.{field.name} needs a default",
        )
        if not field.metadata.get("help"):
            warnings.warn(f"{config_cls.__name__}.{field.name} has no metadata['help']", stacklevel=2)


def check_examinee(examinee: Examinee, judge: Judge | None = None, *, steps: int = 1, seed: int = 0) -> None:
    """Check an examinee instance, and with a ``judge`` run its first ``steps`` steps on real models.

    Checks: the class (:func:`check_examinee_class`); ``update`` returns a :class:`ModelRef` to a model
    directory; ``state_dict`` is JSON-serialisable and survives ``load_state_dict`` into a fresh instance.

    Raises:
        ConformanceError: naming the first broken rule.
    """
    cls = type(examinee)
    check_examinee_class(cls)
    if judge is None:
        return
    with tempfile.TemporaryDirectory(prefix="progressgym-check-") as scratch:
        root = Path(scratch)
        judge.reset(seed=seed, workdir=root / "judge")
        (root / "examinee").mkdir()
        examinee.reset(initial_model=judge.initial_model(), workdir=root / "examinee", seed=seed)
        try:
            for step in range(min(steps, judge.n_steps)):
                model = examinee.update(judge.interface(step), judge.step_info(step))
                _require(
                    isinstance(model, ModelRef), f"{cls.__name__}.update() returned {model!r}, not a ModelRef"
                )
                _require(
                    (Path(model.path) / "config.json").is_file(),
                    f"{cls.__name__}.update() returned {model.path}, which holds no config.json",
                )
                judge.assess(step, model)
                state = _json_round_trip(examinee.state_dict(), f"{cls.__name__}.state_dict()")
                fresh = cls(examinee.config)
                fresh.reset(initial_model=judge.initial_model(), workdir=root / "examinee", seed=seed)
                fresh.load_state_dict(state)
                _require(
                    _json_round_trip(fresh.state_dict(), "state_dict()") == state,
                    f"{cls.__name__}: load_state_dict(state_dict()) does not restore the same state",
                )
        finally:
            judge.close()


__all__ = [
    "JUDGE_HEADINGS",
    "ConformanceError",
    "check_examinee",
    "check_examinee_class",
    "check_judge",
    "check_judge_class",
]
