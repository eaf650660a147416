"""Every challenge as a Gymnasium environment: ``gymnasium.make("progressgym/Follow-v0")``.

>>> import gymnasium, progressgym
>>> "progressgym/Follow-v0" in gymnasium.registry
True

One episode walks through the timeline; one step is one century::

    env = gymnasium.make("progressgym/Follow-v0", timeline="mini")
    obs, info = env.reset(seed=0)                 # info["initial_model"]: the model to start from
    model_path = info["initial_model"]
    while True:
        judge = env.unwrapped.judge_interface     # ask the present's values (compare, generate, score)
        model_path = my_update(judge, model_path)  # learn; return a save_pretrained directory
        obs, reward, terminated, truncated, info = env.step(model_path)
        if terminated:
            break                                 # info["score"]: the challenge's score

Actions are model directories given as text. An action that names no model the judge can load (e.g. the
random text ``check_env`` sends, a directory with only a ``config.json``, a malformed ``config.json``, missing or
truncated weights) forfeits the step, deterministically and without loading anything: reward 0,
``info["invalid_action"] = True``, no value vectors, and in Coevolve no proxy update.

After :meth:`ProgressGymEnv.close` the environment refuses ``step``, ``reset`` and ``judge_interface`` with a
``RuntimeError``; make a new one.
"""

from __future__ import annotations

import shutil
import string
import tempfile
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from progressgym.core import Judge, JudgeInterface
from progressgym.log import StepRecord
from progressgym.model_ref import ModelRef, model_dir_problem

MAX_ACTION_LENGTH = 4096
"""Longest model path an action may hold."""

_FILE_BACKENDS = ("hf", "vllm")
"""Backends that load a model directory's transformers files (whose completeness is checked before a step)."""

UNLIMITED = -1
"""``budget_left`` when the challenge sets no query budget."""


def _int(value: int) -> np.ndarray:
    return np.asarray(value, dtype=np.int64)


class ProgressGymEnv(gymnasium.Env[dict[str, Any], str]):
    """A challenge's judge as a Gymnasium environment.

    Observation (``Dict``): ``timestep`` (t of the coming step, 1..n_steps; n_steps + 1 once the episode is
    over), ``century`` (the present century; once over, the century after the last step, or the last
    century) and ``budget_left`` (queries allowed in the coming step, -1 when unlimited, 0 once over), each
    an int64 scalar array.

    Action (``Text``, printable characters): the path of the examinee's current model.

    Reward: the step's reward from the judge (the cosine similarity of value vectors in Follow and Predict,
    the proxy's suffix-max similarity in Coevolve); 0 for an invalid action.

    Info: ``timestep``, ``century``, ``target_century``, ``invalid_action``, ``examinee_vector``,
    ``target_vector``, ``cosine``, ``distance`` (and ``proxy_vector`` in Coevolve); on the final step also
    ``score``. :meth:`reset` adds ``initial_model`` (the path to start from) and ``n_steps``.

    Queries go through :attr:`judge_interface`, the :class:`~progressgym.core.JudgeInterface` of the
    current step.

    Args:
        challenge: The challenge id, e.g. ``"Follow-v0"``.
        workdir: Where the judge writes files (Coevolve's proxies); a temporary directory, removed by
            :meth:`close`, when not given.
        render_mode: Unsupported; must be ``None``.
        **kwargs: Judge arguments (``timeline``, ``backend``, ``timesteps_ahead``, ...).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        challenge: str = "Follow-v0",
        *,
        workdir: str | None = None,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        from progressgym.registration import make_judge

        if render_mode is not None:
            raise ValueError("progressgym environments do not render")
        self.render_mode = render_mode
        self.judge: Judge = make_judge(challenge, **kwargs)
        n = self.judge.n_steps
        self.observation_space = spaces.Dict(
            {
                "timestep": spaces.Box(low=0, high=n + 1, shape=(), dtype=np.int64),
                "century": spaces.Box(low=0, high=10_000, shape=(), dtype=np.int64),
                "budget_left": spaces.Box(
                    low=UNLIMITED, high=np.iinfo(np.int32).max, shape=(), dtype=np.int64
                ),
            }
        )
        self.action_space = spaces.Text(max_length=MAX_ACTION_LENGTH, charset=string.printable)
        self._workdir_arg = workdir
        self._tempdir: str | None = None
        self._step = 0
        self._closed = False

    @property
    def judge_interface(self) -> JudgeInterface:
        """The current step's :class:`~progressgym.core.JudgeInterface` (compare, generate, score)."""
        self._check_open()
        if self._step >= self.judge.n_steps:
            raise RuntimeError("the episode is over; call reset()")
        return self.judge.interface(self._step)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode; ``seed`` seeds the judge (a seedless reset draws one from ``np_random``)."""
        self._check_open()
        super().reset(seed=seed)
        judge_seed = seed if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
        self.judge.reset(seed=judge_seed, workdir=self._workdir())
        self._step = 0
        info: dict[str, Any] = {
            "initial_model": self.judge.initial_model().path,
            "n_steps": self.judge.n_steps,
            "timestep": self.judge.timestep(0),
            "century": self.judge.centuries[self.judge.timestep(0)],
        }
        return self._observation(), info

    def step(self, action: str) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Submit the examinee's model for the current step and move to the next century."""
        self._check_open()
        if self._step >= self.judge.n_steps:
            raise RuntimeError("the episode is over; call reset()")
        model = _model_ref(action, check_files=self.judge.backend in _FILE_BACKENDS)
        record = self.judge.assess(self._step, model)
        self._step += 1
        terminated = self._step >= self.judge.n_steps
        info = _record_info(record)
        if terminated:
            info["score"] = self.judge.score()
        return self._observation(), float(record.reward), terminated, False, info

    def close(self) -> None:
        """Release loaded models and remove the temporary work directory; the environment cannot be used after."""
        self._closed = True
        self.judge.close()
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the environment is closed; make a new one (gymnasium.make)")

    def _workdir(self) -> Path:
        if self._workdir_arg is not None:
            return Path(self._workdir_arg)
        if self._tempdir is None:
            self._tempdir = tempfile.mkdtemp(prefix="progressgym-env-")
        return Path(self._tempdir)

    def _observation(self) -> dict[str, np.ndarray]:
        n = self.judge.n_steps
        budget = self.judge.query_budget
        if self._step < n:
            t = self.judge.timestep(self._step)
            left_value = UNLIMITED if budget is None else budget
        else:
            t = self.judge.timestep(n - 1) + 1
            left_value = UNLIMITED if budget is None else 0
        century = self.judge.centuries[min(t, len(self.judge.centuries) - 1)]
        return {"timestep": _int(t), "century": _int(century), "budget_left": _int(left_value)}


def _model_ref(action: object, *, check_files: bool = True) -> ModelRef | None:
    """The model an action names, or ``None`` when it names no model the judge can load.

    With ``check_files`` the directory's files must be complete (see
    :func:`~progressgym.model_ref.model_dir_problem`); otherwise a ``config.json`` is enough.
    """
    if not isinstance(action, str) or not action or "\x00" in action:
        return None
    try:
        path = Path(action)
        if not (path / "config.json").is_file():
            return None
        if check_files and model_dir_problem(path) is not None:
            return None
        return ModelRef.from_path(path)
    except (OSError, ValueError):
        return None


def _record_info(record: StepRecord) -> dict[str, Any]:
    info: dict[str, Any] = {
        "timestep": record.timestep,
        "century": record.century,
        "target_century": record.target_century,
        "invalid_action": record.invalid_action,
    }
    if not record.invalid_action:
        info.update(
            examinee_vector=np.array(record.examinee_vector, dtype=np.float64),
            target_vector=np.array(record.target_vector, dtype=np.float64),
            cosine=record.cosine,
            distance=record.distance,
        )
        if record.proxy_vector is not None:
            info["proxy_vector"] = np.array(record.proxy_vector, dtype=np.float64)
    return info


__all__ = ["MAX_ACTION_LENGTH", "UNLIMITED", "ProgressGymEnv"]
