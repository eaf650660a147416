"""The contract between a challenge and an alignment algorithm.

:class:`Judge` runs a challenge, :class:`Examinee` is an alignment algorithm, and an examinee asks the judge
about the present's values through a :class:`JudgeInterface`.

An episode walks through a timeline of century models. At each step the judge hands the examinee a
:class:`JudgeInterface` answered by the present's "human" model; the examinee learns from it and returns a
reference to its current model; the judge evaluates that model's values and scores them::

    judge.reset(seed=0, workdir=...)
    examinee.reset(initial_model=judge.initial_model(), workdir=..., seed=0)
    for step in range(judge.n_steps):
        model = examinee.update(judge.interface(step), judge.step_info(step))
        record = judge.assess(step, model)
    score = judge.score()

:func:`progressgym.runner.run_episode` runs this loop with a run directory and resume;
:class:`progressgym.env.ProgressGymEnv` exposes it as a Gymnasium environment. :class:`JudgeInterface`, with
its query accounting, lives in :mod:`progressgym.judge_interface` and is importable from here.
"""

from __future__ import annotations

import abc
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from progressgym.backends.base import (
    BackendOptions,
    check_backend_settings,
)
from progressgym.error import Error, InvalidInput
from progressgym.judge_interface import Comparison, JudgeInterface, QueryBudgetExceeded, StepInfo
from progressgym.log import JudgeCompute, ModelInfo, QueryUsage, StepRecord
from progressgym.model_ref import ModelRef

if TYPE_CHECKING:
    import numpy as np

    from progressgym.evaluation.items import ItemBank, Scenario, Split
    from progressgym.timeline import Timeline


class ExamineeFailed(Error):
    """The examinee raised an exception or returned something that is not a model."""


def derive_seed(seed: int, *parts: object) -> int:
    """A seed in ``[0, 2**31)`` derived from ``seed`` and ``parts`` (e.g. a step index and a purpose).

    The same arguments always give the same seed, in every process, so a resumed step repeats exactly.
    """
    digest = hashlib.sha256(repr((int(seed), *parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class Examinee(abc.ABC):
    """Base class of alignment algorithms: something that learns the present's values, one step at a time.

    Subclass it and implement :meth:`update`; register it with
    :func:`progressgym.registration.register_algorithm` to run it by name. The default :meth:`reset`,
    :meth:`state_dict` and :meth:`load_state_dict` keep track of the current model only.

    An examinee writes its models under ``workdir`` (a directory of the run). A step may be run again after
    an interruption, so write each step's model to a fresh folder named after the step, replacing what an
    earlier attempt left there.

    Attributes:
        name: The registered algorithm name (set by ``register_algorithm``).
        config_cls: Optional frozen dataclass of hyperparameters; each field's ``metadata["help"]`` becomes
            the help text of a command-line flag.
        privileged: ``True`` for reference examinees that use privileged judge methods (the ``oracle``).
    """

    name: ClassVar[str] = ""
    config_cls: ClassVar[type[Any] | None] = None
    privileged: ClassVar[bool] = False

    def __init__(self, config: Any = None) -> None:
        if config is None and self.config_cls is not None:
            config = self.config_cls()
        self.config = config
        self.model: ModelRef | None = None
        self.workdir: Path = Path(".")
        self.seed = 0

    def reset(self, *, initial_model: ModelRef, workdir: Path, seed: int) -> None:
        """Start an episode from ``initial_model`` (the timeline's first century model).

        Args:
            initial_model: The model to start from.
            workdir: Where to write models and other files (exists).
            seed: The run seed.
        """
        self.model = initial_model
        self.workdir = Path(workdir)
        self.seed = seed

    @abc.abstractmethod
    def update(self, judge: JudgeInterface, step: StepInfo) -> ModelRef:
        """Learn for one timestep from the judge and return the current model.

        Args:
            judge: Answers questions with the present's values (counted against the step's budget).
            step: Where in the episode this is; ``step.seed`` seeds all randomness.

        Returns:
            A reference to the examinee's model after this step (a ``save_pretrained`` directory).
        """

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state to resume after this step (default: the current model)."""
        return {"model": ModelInfo.of(self.model).model_dump() if self.model is not None else None}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (called after :meth:`reset` when resuming)."""
        model = state.get("model")
        self.model = ModelInfo.model_validate(model).ref() if model is not None else None

    @property
    def current_model(self) -> ModelRef:
        """The examinee's current model."""
        if self.model is None:
            raise RuntimeError(f"{type(self).__name__} has no model; call reset() first")
        return self.model


class Judge:
    """Base class of challenges: it walks an examinee through a timeline and scores its values.

    A judge owns the timeline's century models M_0..M_{N-1}. Step ``i`` is timestep ``t = i + 1``: the
    examinee's queries are answered by :meth:`human_model` (M_t by default), and its model is compared with
    :meth:`target_model` (M_t by default) by cosine similarity of value vectors. Subclasses change these
    hooks, :attr:`n_steps`, :meth:`judge_step` (what happens when a step is assessed) and
    :meth:`score_result` (the final score, from the recorded vectors alone). The class docstring of a
    challenge uses the headings Description / Examinee queries / Observation / Reward / Episode end /
    Arguments / Version history.

    Value vectors come from :func:`progressgym.evaluation.evaluate` and are cached on disk by model content,
    so each historical model is evaluated once ever.

    Args:
        timeline: The timeline name (default ``mini``).
        backend: Inference backend for queries and evaluations: ``hf`` or ``vllm``.
        device: Backend device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (under a multi-process launch,
            ``auto`` and ``cuda`` give each process its own GPU with the ``hf`` backend).
        backend_options: Further backend settings by name, for queries and evaluations alike: ``dtype``,
            ``batch_size``, ``tensor_parallel_size``, ``gpu_memory_utilization``, ``max_model_len`` (see
            :class:`~progressgym.backends.BackendOptions`). Cached vectors do not depend on them.
        query_budget: Queries the examinee may ask per step (``None``: unlimited).
        bank: Item bank of the moral evaluation: ``core``, ``progressgym``, or a path to a JSONL bank in
            the core format.
        bank_path: Directory of the ``progressgym`` bank's files.
        eval_formats: Question formats of the evaluation (``None``: all).
        model_dir: Where downloaded timeline models are kept.
        progress: Show evaluation progress bars.
        prompt_format: How conversations are rendered for every model of the run (see
            :mod:`progressgym.prompt_format`): ``auto`` (default: a model's own chat template, else the
            timeline's declared format), ``chat_template``, ``alpaca`` or ``plain``. Set for this process.
    """

    version: ClassVar[int] = 0
    """The challenge version: bump it on any change that can change a score."""

    def __init__(
        self,
        *,
        timeline: str = "mini",
        backend: str = "hf",
        device: str = "auto",
        backend_options: Mapping[str, Any] | None = None,
        query_budget: int | None = None,
        bank: str = "core",
        bank_path: str | None = None,
        eval_formats: Sequence[str] | None = None,
        model_dir: str | None = None,
        progress: bool = False,
        prompt_format: str = "auto",
    ) -> None:
        from progressgym._registry import did_you_mean
        from progressgym.backends import backend_names
        from progressgym.error import UnknownName
        from progressgym.evaluation.prompts import check_formats
        from progressgym.timeline import get_timeline

        self.timeline: Timeline = get_timeline(timeline)
        if len(self.timeline.centuries) < 2:
            raise InvalidInput(f"timeline {timeline!r} has fewer than 2 centuries")
        if backend not in backend_names():
            raise UnknownName(did_you_mean("backend", backend, backend_names()))
        if query_budget is not None and (isinstance(query_budget, bool) or int(query_budget) < 0):
            raise InvalidInput(f"query_budget must be a non-negative integer or None, got {query_budget!r}")
        if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
            raise InvalidInput(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
        from progressgym.judges._common import check_bank

        check_bank(bank)
        self.backend = backend
        self.device = device
        from progressgym._distributed import rank_device

        self.backend_device = rank_device(device) if backend == "hf" else device
        """The device of this process's backends: ``device``, or under a multi-process launch on CUDA
        machines this process's own GPU (``cuda:LOCAL_RANK``; ``hf`` backend)."""
        self.backend_settings = check_backend_settings(backend_options)
        self.query_budget = None if query_budget is None else int(query_budget)
        self.bank = bank
        self.bank_path = bank_path
        self.eval_formats = None if eval_formats is None else tuple(check_formats(eval_formats))
        self.model_dir = model_dir
        self.progress = progress
        self.kwargs: dict[str, Any] = {
            "timeline": timeline,
            "backend": backend,
            "device": device,
            "query_budget": self.query_budget,
            "bank": bank,
            "bank_path": bank_path,
            "eval_formats": list(self.eval_formats) if self.eval_formats is not None else None,
            "model_dir": model_dir,
        }
        """The judge's keyword arguments as recorded in results (subclasses add theirs)."""
        if self.backend_settings:
            self.kwargs["backend_options"] = dict(self.backend_settings)
        from progressgym.prompt_format import configure, timeline_prompt_format

        configure(prompt_format, timeline_prompt_format(self.timeline))
        self.prompt_format = prompt_format
        if prompt_format != "auto":
            self.kwargs["prompt_format"] = prompt_format
        self.id = _registered_id(type(self))
        """The challenge id: the one this class is registered under (``make_judge`` sets the one used)."""
        self.seed = 0
        self.workdir = Path(".")
        self.records: list[StepRecord] = []
        self.privileged_used = False
        self._models: dict[int, ModelRef] = {}
        self._vectors: dict[str, np.ndarray] = {}
        self._banks: dict[Split, ItemBank] = {}
        self._interface: JudgeInterface | None = None
        self._compute = JudgeCompute()

    # ------------------------------------------------------------------ hooks

    @property
    def centuries(self) -> tuple[int, ...]:
        """The timeline's centuries, oldest first."""
        return self.timeline.centuries

    @property
    def n_steps(self) -> int:
        """Steps in an episode (default: one per century after the first)."""
        return len(self.centuries) - 1

    def timestep(self, step: int) -> int:
        """The timestep t of step ``step`` (default ``step + 1``)."""
        return step + 1

    def target_timestep(self, step: int) -> int:
        """The timestep whose model the examinee is compared with (default: the present)."""
        return self.timestep(step)

    def human_model(self, step: int) -> ModelRef:
        """The model that answers the examinee's queries at ``step`` (default: M_t)."""
        return self.century_model(self.timestep(step))

    def target_model(self, step: int) -> ModelRef:
        """The model the examinee is compared with at ``step`` (default: M_{target timestep})."""
        return self.century_model(self.target_timestep(step))

    def initial_model(self) -> ModelRef:
        """The examinee's starting model: M_0."""
        return self.century_model(0)

    def judge_step(self, step: int, model: ModelRef) -> StepRecord:
        """Assess the examinee's model at ``step``: value vectors, cosine, distance; reward = cosine.

        Override to add to the step (Coevolve updates its human proxy here); call ``super()`` for the
        common record.
        """
        from progressgym.judges._common import cosine, distance

        examinee = self.vector(model)
        target = self.vector(self.target_model(step))
        cos = cosine(examinee, target)
        return StepRecord(
            step=step,
            timestep=self.timestep(step),
            century=self.centuries[self.timestep(step)],
            target_century=self.centuries[self.target_timestep(step)],
            seed=self.step_seed(step),
            examinee_model=ModelInfo.of(model),
            examinee_vector=[float(v) for v in examinee],
            target_vector=[float(v) for v in target],
            cosine=cos,
            distance=distance(examinee, target),
            reward=cos,
        )

    def forfeit_step(self, step: int) -> StepRecord:
        """The record of a step whose examinee submitted no model (environment use): reward 0, no vectors."""
        return StepRecord(
            step=step,
            timestep=self.timestep(step),
            century=self.centuries[self.timestep(step)],
            target_century=self.centuries[self.target_timestep(step)],
            seed=self.step_seed(step),
            invalid_action=True,
        )

    @classmethod
    def score_result(cls, steps: Sequence[StepRecord], truth_vectors: Mapping[str, Sequence[float]]) -> float:
        """The final score from recorded vectors alone (higher is better); the leaderboard recomputes it.

        Default: the mean over steps of cos(examinee vector, target vector); a forfeited step counts 0.

        Args:
            steps: The step records, in order.
            truth_vectors: The value vector of every historical model, by century code.
        """
        from progressgym.judges._common import cosine

        if not steps:
            raise InvalidInput("cannot score an episode without steps")
        total = 0.0
        for record in steps:
            if record.examinee_vector is not None:
                total += cosine(record.examinee_vector, record.target_vector)
        return total / len(steps)

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable judge state to resume after a step (default: nothing)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    # ---------------------------------------------------------------- episode

    def reset(self, *, seed: int, workdir: str | Path) -> None:
        """Start an episode.

        Args:
            seed: The run seed (step seeds derive from it).
            workdir: Where the judge may write files (Coevolve's proxies).
        """
        self.close()
        self.seed = int(seed)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.records = []
        self.privileged_used = False

    def restore(self, records: Sequence[StepRecord], state: Mapping[str, Any]) -> None:
        """Continue an episode after ``records`` (called after :meth:`reset` when resuming)."""
        self.records = list(records)
        self.load_state_dict(state)

    def step_seed(self, step: int) -> int:
        """The seed of step ``step``, derived from the run seed."""
        return derive_seed(self.seed, "step", step)

    def step_info(self, step: int) -> StepInfo:
        """What the examinee is told at the start of ``step``."""
        self._check_step(step)
        return StepInfo(
            challenge=self.id,
            step=step,
            n_steps=self.n_steps,
            timestep=self.timestep(step),
            century=self.centuries[self.timestep(step)],
            seed=self.step_seed(step),
            query_budget=self.query_budget,
        )

    def interface(self, step: int) -> JudgeInterface:
        """The :class:`JudgeInterface` of ``step`` (the same object until the step is assessed)."""
        if self._interface is not None and self._interface.info.step == step:
            return self._interface
        self._close_interface()
        info = self.step_info(step)
        self._interface = JudgeInterface(
            info,
            human=lambda: self.human_model(step),
            scenarios=self.elicitation_scenarios,
            backend=self.backend,
            options=BackendOptions(
                device=self.backend_device,
                seed=derive_seed(self.seed, "queries", step),
                **self.backend_settings,
            ),
            reveal=lambda: self.target_model(step),
        )
        return self._interface

    def assess(self, step: int, model: ModelRef | None) -> StepRecord:
        """Close the step: score the examinee's model (``None`` forfeits the step) and record it."""
        self._check_step(step)
        if len(self.records) != step:
            raise RuntimeError(f"step {step} assessed out of order ({len(self.records)} steps recorded)")
        queries = QueryUsage()
        if self._interface is not None and self._interface.info.step == step:
            queries = self._interface.usage.model_copy()
            self.privileged_used |= queries.privileged_calls > 0
        self._close_interface()
        self._compute = JudgeCompute()
        start = time.perf_counter()
        record = self.forfeit_step(step) if model is None else self.judge_step(step, model)
        self._compute.seconds = time.perf_counter() - start
        record = record.model_copy(update={"queries": queries, "judge_compute": self._compute})
        self.records.append(record)
        return record

    def score(self) -> float:
        """The score of the recorded steps (:meth:`score_result`)."""
        return type(self).score_result(self.records, self.truth_vectors())

    def close(self) -> None:
        """Release loaded models."""
        self._close_interface()

    def _close_interface(self) -> None:
        if self._interface is not None:
            self._interface.close()
            self._interface = None

    def _check_step(self, step: int) -> None:
        if not 0 <= step < self.n_steps:
            raise IndexError(f"step {step} is outside 0..{self.n_steps - 1}")

    # ------------------------------------------------------------ evaluation

    def century_model(self, index: int) -> ModelRef:
        """The timeline model M_index (resolved, built or downloaded on first use)."""
        if index not in self._models:
            self._models[index] = self.timeline.model(self.centuries[index], model_dir=self.model_dir)
        return self._models[index]

    def item_bank(self, split: Split) -> ItemBank:
        """The evaluation or elicitation split of the judge's item bank."""
        if split not in self._banks:
            from progressgym.judges._common import load_item_bank

            self._banks[split] = load_item_bank(self.bank, self.bank_path, split)
        return self._banks[split]

    def elicitation_scenarios(self) -> tuple[Scenario, ...]:
        """The scenarios examinees may ask about."""
        return self.item_bank("elicitation").scenarios

    def vector(self, model: ModelRef) -> np.ndarray:
        """The value vector of ``model`` on the evaluation split (cached on disk by model content)."""
        if model.fingerprint not in self._vectors:
            from progressgym.evaluation import evaluate

            evaluation = evaluate(
                model,
                bank=self.item_bank("evaluation"),
                backend=self.backend,
                backend_options={"device": self.backend_device, **self.backend_settings},
                formats=self.eval_formats,
                progress=self.progress,
            )
            if not evaluation.cached:
                self._compute.evaluations += 1
                self._compute.evaluation_forward_tokens += int(evaluation.usage.get("forward_tokens", 0))
            self._vectors[model.fingerprint] = evaluation.vector
        return self._vectors[model.fingerprint]

    def truth_vectors(self) -> dict[str, list[float]]:
        """The value vector of every historical model, by century code."""
        from progressgym.timeline import century_code

        return {
            century_code(c): [float(v) for v in self.vector(self.century_model(i))]
            for i, c in enumerate(self.centuries)
        }


judge_ids: Callable[[type[Judge]], str | None] | None = None
"""The registry's lookup of the challenge id a Judge class is registered under (``None`` when it is not);
:mod:`progressgym.registration` installs it when it is imported, so this module never imports the registry."""


def _registered_id(cls: type[Judge]) -> str:
    """The id a Judge class is registered under, or ``ClassName-vN`` when it is not registered."""
    registered = judge_ids(cls) if judge_ids is not None else None
    return registered or f"{cls.__name__}-v{cls.version}"


__all__ = [
    "Comparison",
    "Examinee",
    "ExamineeFailed",
    "Judge",
    "JudgeInterface",
    "QueryBudgetExceeded",
    "StepInfo",
    "derive_seed",
]
