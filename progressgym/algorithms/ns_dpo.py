"""NS-DPO: DPO on every century's preferences so far, each pair's loss discounted by its age.

Non-Stationary DPO (Son et al., "Right Now, Wrong Then: Non-Stationary Direct Preference Optimization under
Preference Drift", ICML 2025) models drifting preferences with a dynamic Bradley-Terry model and weights the
loss of a preference from time ``t`` by ``gamma ** (T - t)`` at time ``T``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from progressgym.algorithms._config import DPOAlgorithmConfig, _help
from progressgym.algorithms._preference import PreferenceExaminee, optim_settings, purpose_seed
from progressgym.algorithms._training import TrainingPair, preference_examples
from progressgym.core import StepInfo
from progressgym.elicitation import PreferenceRecord
from progressgym.error import InvalidInput
from progressgym.evaluation.items import Scenario
from progressgym.model_ref import ModelRef
from progressgym.registration import register_algorithm


@dataclasses.dataclass(frozen=True)
class NSDPOConfig(DPOAlgorithmConfig):
    """Settings of NS-DPO: DPO's (and its presets), plus the discount ``gamma``."""

    gamma: float = dataclasses.field(
        default=0.6,
        metadata=_help(
            "discount per step of age: a preference elicited k steps ago weighs gamma^k against the present's "
            "(1: every century's preferences weigh the same; 0: the present only, as lifelong-dpo)"
        ),
    )

    def check(self) -> None:
        """Validate choices and ranges."""
        super().check()
        if not 0.0 <= self.gamma <= 1.0:
            raise InvalidInput(f"gamma must be in [0, 1], got {self.gamma}")


def discounted_history(
    past: Sequence[tuple[int, Sequence[TrainingPair]]], *, now: int, gamma: float
) -> tuple[list[TrainingPair], dict[str, Any]]:
    """Every kept step's pairs, weighted by ``gamma ** (now - step)``; pairs whose discount is 0 are left out.

    Args:
        past: ``(step, pairs)`` of every step so far, oldest first.
        now: The present step.
        gamma: The discount.

    Returns:
        The weighted pairs (oldest first) and numbers for the step's log.
    """
    import torch

    from progressgym.algorithms.losses import discounts

    ages = [now - when for when, _ in past]
    weights = discounts(torch.tensor(ages), gamma).tolist() if ages else []
    pairs: list[TrainingPair] = []
    kept_past = dropped = 0
    for (when, group), weight in zip(past, weights, strict=True):
        if weight <= 0.0:
            dropped += len(group)
            continue
        pairs.extend(dataclasses.replace(p, weight=weight) for p in group)
        kept_past += len(group) if when != now else 0
    notes = {
        "gamma": gamma,
        "history_steps": sum(1 for w in weights if w > 0.0),
        "past_pairs": kept_past,
        "dropped_pairs": dropped,
        "discounts": [round(w, 6) for w in weights],
    }
    return pairs, notes


@register_algorithm("ns-dpo")
class NSDPOExaminee(PreferenceExaminee):
    """NS-DPO: DPO on the preferences of every century so far, each pair's loss weighted by ``gamma ** age``.

    ## Description
    At every step the examinee elicits the judge's pairwise preferences as ``lifelong-dpo`` does and keeps
    them, as training pairs, with those of every earlier step. It then trains with DPO on all of them
    (continuing from the previous step's model, its reference; ``independent=true``: from the initial model,
    the paper's setting), the loss of a pair elicited ``k`` steps ago weighted by ``gamma ** k``, the
    paper's exponential discount: ``gamma = 1`` trains on the whole history unweighted, ``gamma = 0`` on
    the present alone (then exactly ``lifelong-dpo``'s training set). The SFT term of each chosen answer is
    discounted the same way.

    Normalisation: the weights are rescaled to mean 1 over the step's whole training set, so the step
    minimises the discounted *mean* ``sum_i w_i l_i / sum_i w_i`` (the paper's code divides by the sum of the
    discounts too, but per minibatch, where a batch holding only old pairs would train at full strength).
    Pairs whose discount is 0 are left out.

    The kept pairs are part of the examinee's state, so a resumed run trains on the same history.

    ## Configuration
    :class:`NSDPOConfig`: DPO's settings and presets (``full``: the reference's 8B DPO hyper-parameters;
    ``mini``: chosen on the mini timeline) plus ``gamma`` (default 0.6).
    """

    config_cls: ClassVar[type[Any] | None] = NSDPOConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.past: list[tuple[int, list[TrainingPair]]] = []

    def reset(self, *, initial_model: ModelRef, workdir: Path, seed: int) -> None:
        """Start from ``initial_model`` with no kept preferences."""
        super().reset(initial_model=initial_model, workdir=workdir, seed=seed)
        self.past = []

    def training_pairs(
        self, records: Sequence[PreferenceRecord], step: StepInfo
    ) -> tuple[list[TrainingPair], dict[str, Any]]:
        """Keep this step's pairs; return every kept pair weighted by its discount."""
        present, _ = super().training_pairs(records, step)
        self.past = [(when, pairs) for when, pairs in self.past if when < step.step]
        self.past.append((step.step, present))
        return discounted_history(self.past, now=step.step, gamma=self.settings.gamma)

    def train(
        self,
        start: ModelRef,
        pairs: Sequence[TrainingPair],
        scenarios: Mapping[str, Scenario],
        out: Path,
        *,
        seed: int,
    ) -> dict[str, Any]:
        """Weighted DPO from ``start`` on the pairs' examples (every configured format); saved to ``out``."""
        from progressgym.algorithms._weighted_dpo import train_weighted_dpo

        s = self.settings
        rows = preference_examples(
            pairs,
            scenarios,
            self.formats(),
            orders=s.orders,
            seed=purpose_seed(seed, "examples"),
            weights=True,
        )
        train_weighted_dpo(
            start.path,
            rows,
            out,
            optim=optim_settings(s),
            beta=s.beta,
            sft_weight=s.sft_weight,
            seed=seed,
            device=s.device,
            lora=self.lora(),
            threads=s.threads,
        )
        return {"examples": len(rows)}

    # -------------------------------------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        """The base state plus every kept step's training pairs."""
        state = super().state_dict()
        state["past"] = [
            {"step": when, "pairs": [[p.scenario_id, p.chosen, p.rejected, p.copies] for p in pairs]}
            for when, pairs in self.past
        ]
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        super().load_state_dict(state)
        self.past = [
            (
                int(entry["step"]),
                [TrainingPair(str(s), int(c), int(r), int(n)) for s, c, r, n in entry["pairs"]],
            )
            for entry in state.get("past", [])
        ]


__all__ = ["NSDPOConfig", "NSDPOExaminee", "discounted_history"]
