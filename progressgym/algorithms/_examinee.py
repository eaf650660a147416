"""The examinee base every trained algorithm shares: settings per timeline, the step's start and output, the log.

Both families (the preference baselines of :mod:`progressgym.algorithms._preference` and the judge-taught
algorithms of :mod:`progressgym.algorithms._judged`) resolve their configuration's preset from the initial
model's timeline, start each step from the previous step's model (or the initial model with
``independent``), write the step's model to ``<workdir>/step-NNN`` and keep a per-step log in their JSON
state, so a resumed run repeats a step exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from progressgym.algorithms._config import timeline_of
from progressgym.core import Examinee, StepInfo
from progressgym.model_ref import ModelRef

if TYPE_CHECKING:
    from progressgym.algorithms._training import LoraSettings


class TrainedExaminee(Examinee):
    """An examinee that trains a new model at every step, with a preset-resolved configuration.

    Attributes:
        config: The configuration as given (``auto``/``None`` fields allowed).
        settings: The configuration resolved for the run's timeline (set by :meth:`reset`).
        initial: The initial model.
        timeline: The initial model's timeline (which preset ``auto`` picks).
        log: Per step, what happened (counts, seconds).
    """

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.settings: Any = self.config
        self.initial: ModelRef | None = None
        self.timeline: str | None = None
        self.log: list[dict[str, Any]] = []

    def reset(self, *, initial_model: ModelRef, workdir: Path, seed: int) -> None:
        """Start from ``initial_model``; resolve the configuration's preset from its timeline."""
        super().reset(initial_model=initial_model, workdir=workdir, seed=seed)
        self.initial = initial_model
        self.timeline = timeline_of(initial_model.name)
        self.settings = self.config.resolved(self.timeline)
        self.log = []

    # ------------------------------------------------------------------------------------------- a step

    def step_start(self) -> ModelRef:
        """The model this step trains from: the previous step's, or the initial one with ``independent``."""
        start = self.initial if self.settings.independent else self.current_model
        assert start is not None, "reset() must come before update()"
        return start

    def step_dir(self, step: StepInfo) -> Path:
        """Where this step's model is written."""
        return self.workdir / f"step-{step.step:03d}"

    def adopt(self, step: StepInfo, start: ModelRef, *, trained: bool) -> ModelRef:
        """Make the step's model current: the one written to :meth:`step_dir`, or ``start`` if none was."""
        self.model = (
            ModelRef.from_path(
                self.step_dir(step), name=f"{self.name or type(self).__name__}/step-{step.step + 1}"
            )
            if trained
            else start
        )
        return self.current_model

    # -------------------------------------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        """The current model, the per-step log and the resolved settings."""
        state = super().state_dict()
        state.update(log=[dict(e) for e in self.log], settings=dataclasses.asdict(self.settings))
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        super().load_state_dict(state)
        self.log = [dict(e) for e in state.get("log", [])]

    # ------------------------------------------------------------------------------------------ helpers

    def formats(self) -> tuple[str, ...]:
        """The question formats training examples are written in."""
        from progressgym.algorithms._training import parse_formats

        return parse_formats(self.settings.formats)

    def lora(self) -> LoraSettings | None:
        """The LoRA settings, when LoRA is on."""
        from progressgym.algorithms._training import LoraSettings

        s = self.settings
        return LoraSettings(r=s.lora_r, alpha=s.lora_alpha, dropout=s.lora_dropout) if s.use_lora else None


__all__ = ["TrainedExaminee"]
