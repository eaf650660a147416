"""Extrapolative DPO: DPO on preferences extrapolated ``timesteps_ahead`` steps into the future."""

from __future__ import annotations

from typing import Any, ClassVar

from progressgym.algorithms._config import ExtrapolativeDPOConfig
from progressgym.algorithms._preference import ExtrapolatingMixin
from progressgym.algorithms.lifelong_dpo import DPOTraining
from progressgym.registration import register_algorithm


@register_algorithm("extrapolative-dpo")
class ExtrapolativeDPOExaminee(ExtrapolatingMixin, DPOTraining):
    """Extrapolative DPO: predict where each preference is heading, then learn it with DPO.

    ## Description
    Like ``lifelong-dpo``, but the examinee keeps every step's preferences (aligned by item key) and trains
    on their extrapolation ``timesteps_ahead`` steps ahead (:mod:`progressgym.extrapolation`): each item's
    direction over the last ``extrapolation_order + 1`` steps is extended by a polynomial; the sign of the
    result orients the pair and its size (at most ``max_multiplicity``) sets how many copies are trained.
    An item the present judge abstains on, or whose extrapolation is 0, is dropped.

    ``timesteps_ahead`` defaults to the challenge's k on Predict and to 1 elsewhere. The preference history
    is part of the examinee's state, so a resumed run extrapolates from the same history.

    ## Configuration
    :class:`~progressgym.algorithms._config.ExtrapolativeDPOConfig` (DPO's settings plus
    ``timesteps_ahead``, ``extrapolation_order`` and ``max_multiplicity``).
    """

    config_cls: ClassVar[type[Any] | None] = ExtrapolativeDPOConfig
