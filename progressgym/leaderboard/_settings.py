"""What a challenge's settings mean for a submission: their defaults, and where each step's target lies."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from progressgym.core import Judge
from progressgym.registration import ChallengeSpec

UNSCORED = frozenset(
    {"timeline", "backend", "device", "backend_options", "model_dir", "bank_path", "progress"}
)
"""Judge arguments that do not change what is scored (the timeline and backend are shown on their own)."""


def default_settings(spec: ChallengeSpec) -> dict[str, Any]:
    """The judge's keyword arguments when a run gives none: signature defaults, then the registered ones."""
    defaults: dict[str, Any] = {}
    for cls in reversed(spec.judge_class().__mro__):
        init = cls.__dict__.get("__init__")
        if init is None or not issubclass(cls, Judge):
            continue
        for name, parameter in inspect.signature(init).parameters.items():
            if parameter.kind is parameter.KEYWORD_ONLY and parameter.default is not parameter.empty:
                defaults[name] = parameter.default
    defaults.update(spec.kwargs)
    return defaults


def changed_settings(spec: ChallengeSpec, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The scored settings of a run that differ from the challenge's defaults (they make results incomparable)."""
    defaults = default_settings(spec)
    return {
        key: value
        for key, value in sorted(kwargs.items())
        if key not in UNSCORED and (key not in defaults or defaults[key] != value)
    }


def target_offset(spec: ChallengeSpec, kwargs: Mapping[str, Any]) -> int | None:
    """How many timesteps after the present each step's target lies, or ``None`` when the judge decides otherwise.

    0 for judges that keep :meth:`Judge.target_timestep`; ``timesteps_ahead`` for judges that take it.
    """
    cls = spec.judge_class()
    if "timesteps_ahead" in default_settings(spec):
        ahead = kwargs.get("timesteps_ahead", default_settings(spec)["timesteps_ahead"])
        return ahead if isinstance(ahead, int) and not isinstance(ahead, bool) else None
    if cls.target_timestep is Judge.target_timestep:
        return 0
    return None


__all__ = ["UNSCORED", "changed_settings", "default_settings", "target_offset"]
