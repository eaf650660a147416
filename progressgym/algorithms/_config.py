"""Configurations of the baseline algorithms: frozen dataclasses, hyper-parameter presets, ``key=value`` overrides.

Every field carries its help text in ``metadata["help"]``. A field whose default is ``None`` takes its value
from the configuration's *preset*:

* ``full``: the reference's hyper-parameters for 8B models (DPO at lr 3e-7 for 2 epochs, ...);
* ``mini``: values under which the algorithm learns on the ``mini`` timeline in CPU minutes.

``preset="auto"`` (the default) picks ``mini`` on the ``mini`` timeline and ``full`` anywhere else.
:func:`resolve_config` turns a timeline name and ``key=value`` strings into a complete configuration; an
examinee whose configuration still holds ``auto``/``None`` resolves it from its initial model's timeline when
it is reset.

>>> from dataclasses import dataclass, field
>>> @dataclass(frozen=True)
... class Demo(PresetConfig):
...     PRESETS = {"full": {"lr": 3e-7}, "mini": {"lr": 1e-3}}
...     lr: float | None = field(default=None, metadata={"help": "learning rate"})
>>> resolve_config(Demo, "mini", ["lr=0.5"]).lr
0.5
>>> resolve_config(Demo, "histllama3-8b", []).lr
3e-07
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from progressgym._registry import did_you_mean
from progressgym.error import InvalidInput, UnknownName

PRESET_NAMES: tuple[str, ...] = ("full", "mini")
"""The presets every baseline configuration defines."""

AUTO = "auto"
"""The preset value that picks ``mini`` or ``full`` from the timeline."""

C = TypeVar("C", bound="PresetConfig")

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", ""}


def preset_for_timeline(timeline: str | None) -> str:
    """The preset ``auto`` stands for on ``timeline``: ``mini`` on the mini timeline, else ``full``."""
    return "mini" if timeline == "mini" else "full"


def timeline_of(model_name: str) -> str | None:
    """The timeline a century model belongs to, from its name (``"mini:C013"`` -> ``"mini"``)."""
    timeline, sep, _ = model_name.partition(":")
    return timeline if sep and timeline else None


@dataclasses.dataclass(frozen=True)
class PresetConfig:
    """Base of the algorithm configurations: a ``preset`` field and the preset tables.

    Subclasses set ``PRESETS`` (preset name -> field values) and ``CHOICES`` (field -> allowed strings), and
    may override :meth:`check` for further validation.
    """

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {"full": {}, "mini": {}}
    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    preset: str = dataclasses.field(
        default=AUTO,
        metadata={
            "help": "hyper-parameter preset: auto (mini on the mini timeline, else full), mini or full"
        },
    )

    @property
    def is_resolved(self) -> bool:
        """Whether the preset is chosen and every preset field has a value."""
        return self.preset != AUTO and not any(
            getattr(self, name) is None for name in self.PRESETS.get(self.preset, {})
        )

    def resolved(self: C, timeline: str | None) -> C:
        """This configuration with ``auto`` and the ``None`` fields filled from the preset for ``timeline``."""
        preset = preset_for_timeline(timeline) if self.preset == AUTO else self.preset
        if preset not in self.PRESETS:
            raise UnknownName(did_you_mean("preset", preset, [*self.PRESETS, AUTO]))
        values = {name: value for name, value in self.PRESETS[preset].items() if getattr(self, name) is None}
        config = dataclasses.replace(self, preset=preset, **values)
        config.check()
        return config

    def check(self) -> None:
        """Validate field values (choices and ranges); raises :class:`InvalidInput`."""
        for name, allowed in self.CHOICES.items():
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise UnknownName(did_you_mean(f"value of {name}", str(value), list(allowed)))


def config_fields(cls: type[Any]) -> dict[str, Any]:
    """Field name -> resolved type hint of a configuration dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def parse_value(name: str, text: str, hint: Any) -> Any:
    """Convert ``text`` to a field's type (``int``, ``float``, ``bool``, ``str`` or an optional of one).

    Raises:
        InvalidInput: naming the field and the expected type.
    """
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if text.strip().lower() in _NONE:
            return None
        if len(args) == 1:
            return parse_value(name, text, args[0])
        raise InvalidInput(f"{name}: unsupported type {hint}")
    value = text.strip()
    if hint is bool:
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise InvalidInput(f"{name} takes true or false, got {text!r}")
    if hint is int:
        try:
            return int(value)
        except ValueError:
            raise InvalidInput(f"{name} takes an integer, got {text!r}") from None
    if hint is float:
        try:
            return float(value)
        except ValueError:
            raise InvalidInput(f"{name} takes a number, got {text!r}") from None
    if hint is str:
        return value
    raise InvalidInput(f"{name}: unsupported type {hint}")


def parse_overrides(cls: type[Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings against the fields of ``cls`` (dashes in keys read as underscores).

    Raises:
        InvalidInput: for a string without ``=``, or a value of the wrong type.
        UnknownName: for a key that is not a field, with a "did you mean" suggestion.
    """
    fields = config_fields(cls)
    parsed: dict[str, Any] = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise InvalidInput(f"configuration override {item!r} must look like KEY=VALUE")
        if key not in fields:
            raise UnknownName(did_you_mean(f"option of {cls.__name__}", key, list(fields)))
        parsed[key] = parse_value(key, text, fields[key])
    return parsed


def resolve_config(
    cls: type[C],
    timeline: str | None,
    overrides: Sequence[str] = (),
    *,
    preset: str | None = None,
) -> C:
    """A complete configuration of ``cls`` for ``timeline``: preset values, then ``key=value`` overrides.

    Args:
        cls: The configuration dataclass (a :class:`PresetConfig` subclass).
        timeline: The timeline name (picks the preset when it is ``auto``).
        overrides: ``key=value`` strings; later ones win. ``preset=...`` may be among them.
        preset: The preset (``auto``, ``mini`` or ``full``); an override ``preset=...`` wins over it.

    Returns:
        The configuration, every field set.

    Raises:
        UnknownName: for an unknown key or preset (with a suggestion).
        InvalidInput: for a malformed override or a value out of range.
    """
    values = parse_overrides(cls, overrides)
    if preset is not None and "preset" not in values:
        values["preset"] = preset
    try:
        config = cls(**values)
    except TypeError as exc:
        raise InvalidInput(f"{cls.__name__}: {exc}") from None
    return config.resolved(timeline)


def describe(config: Any) -> str:
    """One line per field: ``name = value  # help`` (for logs and ``--help``-like listings)."""
    lines = []
    for f in dataclasses.fields(config):
        lines.append(f"{f.name} = {getattr(config, f.name)!r}  # {f.metadata.get('help', '')}")
    return "\n".join(lines)


def _help(text: str) -> dict[str, str]:
    return {"help": text}


def _preset_field(text: str) -> Any:
    return dataclasses.field(default=None, metadata=_help(f"{text} (default: from the preset)"))


_FULL_PREFERENCE: dict[str, Any] = {
    "elicitation": "compare",
    "max_items": 2500,
    "pairs_per_scenario": 0,
    "formats": "open,label,yesno,repeat",
    "weighting": "uniform",
    "max_copies": 1,
    "max_length": 1024,
    "orders": "all",
    "threads": 0,
    "use_lora": False,
}

_MINI_PREFERENCE: dict[str, Any] = {
    # The mini timeline's models hold their values in what they would answer (option texts), not in the
    # pairwise question's labels: "likelihood" elicitation and the open question carry the signal there.
    "elicitation": "likelihood",
    "max_items": 0,
    "pairs_per_scenario": 0,
    "formats": "open",
    "weighting": "uniform",
    "max_copies": 3,
    "max_length": 512,
    "orders": "one",
    "threads": 1,
    "use_lora": False,
}


@dataclasses.dataclass(frozen=True)
class PreferenceConfig(PresetConfig):
    """Settings every baseline shares: how preferences are elicited and written as training examples."""

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "elicitation": ("compare", "likelihood", "generate", "auto"),
        "weighting": ("confidence", "uniform"),
        "orders": ("all", "one"),
        "device": ("auto", "cpu", "cuda"),
    }

    independent: bool = dataclasses.field(
        default=False,
        metadata=_help("restart every step from the initial model instead of the previous step's model"),
    )
    elicitation: str | None = _preset_field(
        "how preferences are asked: compare (the pairwise question's label log-likelihoods, both orders), "
        "likelihood (log-likelihoods of the two responses as replies to the open question), generate "
        "(parse generated answers to the pairwise question) or auto (compare, else generate)"
    )
    margin: float = dataclasses.field(
        default=0.02, metadata=_help("a preference with |p - 0.5| below this counts as an abstention")
    )
    max_items: int | None = _preset_field("most preference pairs asked per step (0: every pair)")
    pairs_per_scenario: int | None = _preset_field(
        "pairs asked per four-action scenario, a fixed subset (0: all six)"
    )
    formats: str | None = _preset_field(
        "comma-separated formats a preference is trained in: open, label, yesno, repeat"
    )
    weighting: str | None = _preset_field(
        "lifelong weighting of a preference: confidence (copies grow with |2p - 1|) or uniform"
    )
    max_copies: int | None = _preset_field("most copies of one preference under confidence weighting")
    max_length: int | None = _preset_field("longest training example in tokens (the cutoff length)")
    orders: str | None = _preset_field(
        "option orders per evaluation format: all (every cyclic order) or one (one per copy, from the step seed)"
    )
    threads: int | None = _preset_field("torch threads while training (0: torch's default)")
    device: str = dataclasses.field(default="auto", metadata=_help("training device: auto, cpu or cuda"))
    use_lora: bool | None = _preset_field(
        "train LoRA adapters (merged after each step) instead of all weights"
    )
    lora_r: int = dataclasses.field(default=8, metadata=_help("LoRA rank"))
    lora_alpha: int = dataclasses.field(default=16, metadata=_help("LoRA alpha"))
    lora_dropout: float = dataclasses.field(default=0.0, metadata=_help("LoRA dropout"))
    answer_tokens: int = dataclasses.field(
        default=8, metadata=_help("generation budget of each judge answer (elicitation=generate)")
    )

    def check(self) -> None:
        """Validate choices and ranges."""
        super().check()
        if self.formats is not None:
            from progressgym.algorithms._training import parse_formats

            parse_formats(self.formats)
        if not 0.0 <= self.margin < 0.5:
            raise InvalidInput(f"margin must be in [0, 0.5), got {self.margin}")
        for name in ("max_items", "pairs_per_scenario", "threads"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise InvalidInput(f"{name} must be >= 0, got {value}")
        for name in ("max_copies", "max_length", "lora_r", "lora_alpha", "answer_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InvalidInput(f"{name} must be >= 1, got {value}")
        _check_positive(self)


def _check_positive(config: Any) -> None:
    """Learning rates, epochs and batch sizes must be positive."""
    for f in dataclasses.fields(config):
        if f.name.endswith(("learning_rate", "epochs", "batch_size", "grad_accum")):
            value = getattr(config, f.name)
            if value is not None and value <= 0:
                raise InvalidInput(f"{f.name} must be positive, got {value}")


@dataclasses.dataclass(frozen=True)
class DPOAlgorithmConfig(PreferenceConfig):
    """Settings of the DPO baselines (loss: sigmoid DPO + ``sft_weight`` x SFT on the chosen answer)."""

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "full": {
            **_FULL_PREFERENCE,
            "learning_rate": 3e-7,
            "lr_scheduler": "constant",
            "warmup_ratio": 0.0,
            "epochs": 2.0,
            "batch_size": 2,
            "grad_accum": 2,
            "beta": 0.1,
            "sft_weight": 0.04,
        },
        "mini": {
            **_MINI_PREFERENCE,
            "learning_rate": 1e-2,
            "lr_scheduler": "constant",
            "warmup_ratio": 0.0,
            "epochs": 1.0,
            "batch_size": 32,
            "grad_accum": 1,
            "beta": 0.1,
            "sft_weight": 0.04,
        },
    }

    learning_rate: float | None = _preset_field("DPO learning rate")
    lr_scheduler: str | None = _preset_field(
        "DPO learning-rate schedule (transformers name: constant, linear...)"
    )
    warmup_ratio: float | None = _preset_field("share of DPO steps spent warming up")
    epochs: float | None = _preset_field("DPO epochs per step")
    batch_size: int | None = _preset_field("DPO examples per device per optimiser step")
    grad_accum: int | None = _preset_field("DPO gradient accumulation steps")
    beta: float | None = _preset_field("DPO beta (strength of the tie to the step's starting model)")
    sft_weight: float | None = _preset_field(
        "weight of the SFT term on chosen answers (the reference's dpo_ftx)"
    )


@dataclasses.dataclass(frozen=True)
class RLHFAlgorithmConfig(PreferenceConfig):
    """Settings of the RLHF baselines: a reward model, then on-policy RL (RLOO or GRPO) against it."""

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        **PreferenceConfig.CHOICES,
        "rl_trainer": ("rloo", "grpo"),
        "rollouts": ("generate", "candidates"),
    }
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "full": {
            **_FULL_PREFERENCE,
            "rm_learning_rate": 4e-7,
            "rm_lr_scheduler": "polynomial",
            "rm_warmup_ratio": 0.075,
            "rm_epochs": 7.2,
            "rm_batch_size": 8,
            "rm_grad_accum": 1,
            "rl_trainer": "rloo",
            "rollouts": "generate",
            "draw_floor": 0.0,
            "rl_learning_rate": 1e-6,
            "rl_lr_scheduler": "polynomial",
            "rl_warmup_ratio": 0.075,
            "rl_epochs": 0.4,
            "rl_batch_size": 2,
            "rl_grad_accum": 1,
            "num_generations": 4,
            "max_completion_length": 1024,
            "temperature": 1.0,
            "top_p": 0.9,
            "kl_coef": 0.05,
        },
        "mini": {
            **_MINI_PREFERENCE,
            "formats": "open,repeat",
            "rm_learning_rate": 3e-3,
            "rm_lr_scheduler": "linear",
            "rm_warmup_ratio": 0.0,
            # Four reward-model epochs and two RL passes per step: on mini Follow (seed 0) two and one gave
            # 0.451, two RL passes alone 0.468, both changes 0.486; the late centuries gain most.
            "rm_epochs": 4.0,
            "rm_batch_size": 32,
            "rm_grad_accum": 1,
            # The mini models score answers but cannot write them: RL draws among each question's answers.
            "rl_trainer": "grpo",
            "rollouts": "candidates",
            # After a few centuries most answers' log-likelihoods differ by tens of nats: without a floor
            # most groups would hold one answer only.
            "draw_floor": 0.2,
            "rl_learning_rate": 1e-2,
            "rl_lr_scheduler": "constant",
            "rl_warmup_ratio": 0.0,
            "rl_epochs": 2.0,
            "rl_batch_size": 32,
            "rl_grad_accum": 1,
            "num_generations": 8,
            "max_completion_length": 48,
            "temperature": 5.0,
            "top_p": 1.0,
            "kl_coef": 0.1,
        },
    }

    rm_learning_rate: float | None = _preset_field("reward-model learning rate")
    rm_lr_scheduler: str | None = _preset_field("reward-model learning-rate schedule")
    rm_warmup_ratio: float | None = _preset_field("share of reward-model steps spent warming up")
    rm_epochs: float | None = _preset_field("reward-model epochs per step")
    rm_batch_size: int | None = _preset_field("reward-model pairs per device per optimiser step")
    rm_grad_accum: int | None = _preset_field("reward-model gradient accumulation steps")
    rl_trainer: str | None = _preset_field("on-policy RL trainer: rloo or grpo (TRL 1.16 has no PPO)")
    rollouts: str | None = _preset_field(
        "where RL completions come from: generate (free sampling) or candidates (drawn among each question's "
        "answers by the policy's own probabilities; for models that score but cannot write; grpo only)"
    )
    draw_floor: float | None = _preset_field(
        "rollouts=candidates: least probability of drawing each answer (uniform exploration mixed in, so a "
        "decisive policy's groups still hold different answers)"
    )
    rl_learning_rate: float | None = _preset_field("policy learning rate during RL")
    rl_lr_scheduler: str | None = _preset_field("policy learning-rate schedule during RL")
    rl_warmup_ratio: float | None = _preset_field("share of RL steps spent warming up")
    rl_epochs: float | None = _preset_field("passes over the RL prompts per step")
    rl_batch_size: int | None = _preset_field("prompts per device per RL step")
    rl_grad_accum: int | None = _preset_field("RL gradient accumulation steps")
    num_generations: int | None = _preset_field("completions sampled per prompt (the RLOO/GRPO group)")
    max_completion_length: int | None = _preset_field("longest sampled completion, in tokens")
    temperature: float | None = _preset_field("sampling temperature of rollouts")
    top_p: float | None = _preset_field("nucleus sampling mass of rollouts")
    kl_coef: float | None = _preset_field("KL penalty to the step's starting policy (TRL beta)")

    def check(self) -> None:
        """Validate choices and ranges."""
        super().check()
        if self.num_generations is not None and self.num_generations < 2:
            raise InvalidInput(
                f"num_generations must be >= 2 (RLOO/GRPO compare samples), got {self.num_generations}"
            )
        if self.max_completion_length is not None and self.max_completion_length < 1:
            raise InvalidInput("max_completion_length must be >= 1")
        if self.draw_floor is not None and not 0.0 <= self.draw_floor <= 0.5:
            raise InvalidInput(f"draw_floor must be in [0, 0.5], got {self.draw_floor}")


@dataclasses.dataclass(frozen=True)
class ExtrapolationFields:
    """The settings extrapolative algorithms add."""

    timesteps_ahead: int | None = dataclasses.field(
        default=None,
        metadata=_help(
            "steps ahead to extrapolate preferences (default: the challenge's k on Predict, else 1)"
        ),
    )
    extrapolation_order: int = dataclasses.field(
        default=1, metadata=_help("largest order of the polynomial extrapolating each preference over time")
    )
    max_multiplicity: int = dataclasses.field(
        default=5, metadata=_help("most copies of one extrapolated preference")
    )


def _check_extrapolation(config: Any) -> None:
    if config.timesteps_ahead is not None and config.timesteps_ahead < 1:
        raise InvalidInput(f"timesteps_ahead must be >= 1, got {config.timesteps_ahead}")
    if config.extrapolation_order < 0:
        raise InvalidInput(f"extrapolation_order must be >= 0, got {config.extrapolation_order}")
    if config.max_multiplicity < 1:
        raise InvalidInput(f"max_multiplicity must be >= 1, got {config.max_multiplicity}")


@dataclasses.dataclass(frozen=True)
class ExtrapolativeDPOConfig(ExtrapolationFields, DPOAlgorithmConfig):
    """Settings of extrapolative DPO: DPO's, plus the extrapolation's."""

    def check(self) -> None:
        """Validate choices and ranges."""
        super().check()
        _check_extrapolation(self)


@dataclasses.dataclass(frozen=True)
class ExtrapolativeRLHFConfig(ExtrapolationFields, RLHFAlgorithmConfig):
    """Settings of extrapolative RLHF: RLHF's, plus the extrapolation's."""

    def check(self) -> None:
        """Validate choices and ranges."""
        super().check()
        _check_extrapolation(self)


__all__ = [
    "AUTO",
    "DPOAlgorithmConfig",
    "ExtrapolationFields",
    "ExtrapolativeDPOConfig",
    "ExtrapolativeRLHFConfig",
    "PreferenceConfig",
    "RLHFAlgorithmConfig",
    "PRESET_NAMES",
    "PresetConfig",
    "config_fields",
    "describe",
    "parse_overrides",
    "parse_value",
    "preset_for_timeline",
    "resolve_config",
    "timeline_of",
]
