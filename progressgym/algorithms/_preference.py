"""The skeleton the four baselines share: elicit preferences, turn them into training pairs, train, save.

Each step of a :class:`PreferenceExaminee`:

1. asks the judge about the canonical preference items of the elicitation scenarios
   (:mod:`progressgym.elicitation`);
2. turns the records into training pairs (:meth:`PreferenceExaminee.training_pairs`: the step's own
   preferences for the lifelong algorithms, extrapolated ones for the extrapolative algorithms);
3. trains from the previous step's model (or from the initial model with ``independent``)
   (:meth:`PreferenceExaminee.train`: DPO, or a reward model and RL);
4. saves the model to ``<workdir>/step-NNN`` (replacing what an interrupted attempt left there).

All randomness comes from the step seed, and the state (current model, preference history, per-step log)
is a JSON dict, so a resumed run repeats a step exactly.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from progressgym.algorithms._config import PreferenceConfig
from progressgym.algorithms._examinee import TrainedExaminee
from progressgym.algorithms._training import OptimSettings, TrainingPair, pairs_from_records
from progressgym.core import JudgeInterface, StepInfo, derive_seed
from progressgym.elicitation import PreferenceRecord, elicit_preferences, preference_items
from progressgym.error import InvalidInput
from progressgym.evaluation.items import Scenario
from progressgym.model_ref import ModelRef


class PreferenceExaminee(TrainedExaminee):
    """Base of the baselines that learn from pairwise preferences elicited from the judge.

    Subclasses implement :meth:`train` (DPO or RLHF) and may override :meth:`training_pairs`.

    Attributes:
        history: Per step, each item's direction (``+1`` A, ``-1`` B, ``0`` missing), by item key.
    """

    config_cls: ClassVar[type[Any] | None] = PreferenceConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.history: list[dict[str, int]] = []

    # ------------------------------------------------------------------------------------------ episode

    def reset(self, *, initial_model: ModelRef, workdir: Path, seed: int) -> None:
        """Start from ``initial_model``; resolve the configuration's preset from its timeline."""
        super().reset(initial_model=initial_model, workdir=workdir, seed=seed)
        self.history = []

    def update(self, judge: JudgeInterface, step: StepInfo) -> ModelRef:
        """Elicit, build training pairs, train from the current (or initial) model, save."""
        settings = self.settings
        started = time.perf_counter()
        scenarios = judge.elicitation_scenarios()
        items = preference_items(
            scenarios,
            pairs_per_scenario=settings.pairs_per_scenario or None,
            max_items=settings.max_items or None,
        )
        records, stats = elicit_preferences(
            judge,
            items,
            method=settings.elicitation,
            margin=settings.margin,
            max_new_tokens=settings.answer_tokens,
        )
        self.history.append({r.key: r.direction for r in records})
        elicited = time.perf_counter()
        pairs, notes = self.training_pairs(records, step)
        start = self.step_start()
        entry: dict[str, Any] = {
            "step": step.step,
            "century": step.century,
            **dataclasses.asdict(stats),
            **notes,
            "pairs": len(pairs),
            "copies": sum(p.copies for p in pairs),
        }
        if pairs:
            by_id = {s.id: s for s in scenarios}
            entry.update(self.train(start, pairs, by_id, self.step_dir(step), seed=step.seed))
        self.adopt(step, start, trained=bool(pairs))
        entry["elicit_seconds"] = round(elicited - started, 3)
        entry["train_seconds"] = round(time.perf_counter() - elicited, 3)
        self.log.append(entry)
        return self.current_model

    # ------------------------------------------------------------------------------------------- hooks

    def training_pairs(
        self, records: Sequence[PreferenceRecord], step: StepInfo
    ) -> tuple[list[TrainingPair], dict[str, Any]]:
        """The pairs to train on at this step (default: this step's preferences, weighted as configured).

        Returns:
            The pairs and a few numbers for the step's log.
        """
        pairs = pairs_from_records(
            records, weighting=self.settings.weighting, max_copies=self.settings.max_copies
        )
        return pairs, {}

    @abc.abstractmethod
    def train(
        self,
        start: ModelRef,
        pairs: Sequence[TrainingPair],
        scenarios: Mapping[str, Scenario],
        out: Path,
        *,
        seed: int,
    ) -> dict[str, Any]:
        """Train from ``start`` on ``pairs`` and save the model to ``out``; returns numbers for the step's log."""

    # -------------------------------------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        """The current model, the preference history, the per-step log and the resolved settings."""
        state = super().state_dict()
        state.update(history=[dict(h) for h in self.history])
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        super().load_state_dict(state)
        self.history = [{str(k): int(v) for k, v in h.items()} for h in state.get("history", [])]


class ExtrapolatingMixin:
    """Training pairs from preferences extrapolated ``timesteps_ahead`` steps into the future.

    Mix in before a :class:`PreferenceExaminee` subclass; the configuration needs the
    :class:`~progressgym.algorithms._config.ExtrapolationFields`.
    """

    settings: Any
    history: list[dict[str, int]]
    timeline: str | None

    def training_pairs(
        self, records: Sequence[PreferenceRecord], step: StepInfo
    ) -> tuple[list[TrainingPair], dict[str, Any]]:
        """Extrapolate every item's direction over the history; its multiplicity becomes the copies."""
        from progressgym.extrapolation import extrapolate_directions

        ahead = self.timesteps_ahead(step)
        report = extrapolate_directions(
            self.history,
            order=self.settings.extrapolation_order,
            timesteps_ahead=ahead,
            max_multiplicity=self.settings.max_multiplicity,
        )
        by_key = {r.key: r for r in records}
        pairs = []
        for item in report.directions:
            record = by_key[item.key]
            chosen, rejected = (
                (record.action_a, record.action_b)
                if item.direction > 0
                else (record.action_b, record.action_a)
            )
            pairs.append(TrainingPair(record.scenario_id, chosen, rejected, item.multiplicity))
        notes = {
            "timesteps_ahead": ahead,
            "order": report.order,
            "dropped_missing": report.missing_latest,
            "dropped_zero": report.zero,
            "reversed": report.reversed,
            "capped": report.capped,
        }
        return pairs, notes

    def timesteps_ahead(self, step: StepInfo) -> int:
        """``timesteps_ahead`` from the configuration, else Predict's k (read from the episode length), else 1."""
        if self.settings.timesteps_ahead is not None:
            return int(self.settings.timesteps_ahead)
        if step.challenge.lower().startswith("predict") and self.timeline is not None:
            from progressgym.timeline import get_timeline

            try:
                centuries = len(get_timeline(self.timeline).centuries)
            except KeyError:
                return 1
            # Predict runs N - 1 - k steps on a timeline of N centuries.
            return max(1, centuries - 1 - step.n_steps)
        return 1


def optim_settings(settings: Any, prefix: str = "") -> OptimSettings:
    """The :class:`OptimSettings` of a configuration's fields, ``prefix`` selecting ``rm_``/``rl_`` ones."""
    scheduler = getattr(settings, f"{prefix}lr_scheduler")
    kwargs: tuple[tuple[str, float], ...] = ()
    if scheduler == "polynomial":
        # The reference's reward-model schedule: polynomial decay to 1e-8 with power 3; RL: linear decay.
        kwargs = (("lr_end", 1e-8), ("power", 3.0 if prefix == "rm_" else 1.0))
    return OptimSettings(
        learning_rate=getattr(settings, f"{prefix}learning_rate"),
        scheduler=scheduler,
        warmup_ratio=getattr(settings, f"{prefix}warmup_ratio"),
        epochs=getattr(settings, f"{prefix}epochs"),
        batch_size=getattr(settings, f"{prefix}batch_size"),
        grad_accum=getattr(settings, f"{prefix}grad_accum"),
        max_length=settings.max_length,
        scheduler_kwargs=kwargs,
    )


def purpose_seed(seed: int, purpose: str) -> int:
    """A seed for one purpose within a step (e.g. the reward model vs the RL phase)."""
    return derive_seed(seed, purpose)


def check_scenarios(pairs: Sequence[TrainingPair], scenarios: Mapping[str, Scenario]) -> None:
    """Every pair must name an elicitation scenario."""
    for pair in pairs:
        if pair.scenario_id not in scenarios:
            raise InvalidInput(
                f"training pair names {pair.scenario_id!r}, which is not an elicitation scenario"
            )


__all__ = [
    "ExtrapolatingMixin",
    "PreferenceExaminee",
    "check_scenarios",
    "optim_settings",
    "purpose_seed",
]
