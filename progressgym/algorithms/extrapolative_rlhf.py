"""Extrapolative RLHF: RLHF on preferences extrapolated ``timesteps_ahead`` steps into the future."""

from __future__ import annotations

from typing import Any, ClassVar

from progressgym.algorithms._config import ExtrapolativeRLHFConfig
from progressgym.algorithms._preference import ExtrapolatingMixin
from progressgym.algorithms.lifelong_rlhf import RLHFTraining
from progressgym.registration import register_algorithm


@register_algorithm("extrapolative-rlhf")
class ExtrapolativeRLHFExaminee(ExtrapolatingMixin, RLHFTraining):
    """Extrapolative RLHF: predict where each preference is heading, then learn it with a reward model and RL.

    ## Description
    Like ``lifelong-rlhf``, but the reward model is trained on the preferences extrapolated
    ``timesteps_ahead`` steps ahead, exactly as ``extrapolative-dpo`` extrapolates them
    (:mod:`progressgym.extrapolation`).

    ## Configuration
    :class:`~progressgym.algorithms._config.ExtrapolativeRLHFConfig` (RLHF's settings plus
    ``timesteps_ahead``, ``extrapolation_order`` and ``max_multiplicity``).
    """

    config_cls: ClassVar[type[Any] | None] = ExtrapolativeRLHFConfig
