from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from progressgym.algorithms._config import (
    DPOAlgorithmConfig,
    ExtrapolativeDPOConfig,
    ExtrapolativeRLHFConfig,
    RLHFAlgorithmConfig,
    parse_overrides,
    preset_for_timeline,
    resolve_config,
    timeline_of,
)
from progressgym.error import InvalidInput, UnknownName
from progressgym.registration import algorithm_class, make_examinee

CONFIGS = [DPOAlgorithmConfig, RLHFAlgorithmConfig, ExtrapolativeDPOConfig, ExtrapolativeRLHFConfig]
ALGORITHMS = {
    "lifelong-dpo": DPOAlgorithmConfig,
    "lifelong-rlhf": RLHFAlgorithmConfig,
    "extrapolative-dpo": ExtrapolativeDPOConfig,
    "extrapolative-rlhf": ExtrapolativeRLHFConfig,
}


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_field_has_help_and_presets_cover_every_open_field(cls: type) -> None:
    fields = dataclasses.fields(cls)
    assert all(f.metadata.get("help") for f in fields)
    assert set(cls.PRESETS) == {"full", "mini"}
    open_fields = {f.name for f in fields if f.default is None and f.name != "timesteps_ahead"}
    for preset, values in cls.PRESETS.items():
        assert set(values) == open_fields, preset
    for timeline in ("mini", "histllama3-8b"):
        config = resolve_config(cls, timeline)
        assert config.is_resolved and config.preset == preset_for_timeline(timeline)


def test_presets_follow_the_timeline_and_full_is_the_reference() -> None:
    full = resolve_config(DPOAlgorithmConfig, "histllama3-8b")
    assert (full.learning_rate, full.lr_scheduler, full.epochs, full.batch_size, full.grad_accum) == (
        3e-7,
        "constant",
        2.0,
        2,
        2,
    )
    assert (full.beta, full.sft_weight, full.max_length, full.max_items) == (0.1, 0.04, 1024, 2500)
    rm = resolve_config(RLHFAlgorithmConfig, None)
    assert (rm.rm_learning_rate, rm.rm_epochs, rm.rm_batch_size, rm.rl_learning_rate, rm.rl_epochs) == (
        4e-7,
        7.2,
        8,
        1e-6,
        0.4,
    )
    mini = resolve_config(DPOAlgorithmConfig, "mini")
    assert mini.preset == "mini" and mini.learning_rate == DPOAlgorithmConfig.PRESETS["mini"]["learning_rate"]
    assert resolve_config(DPOAlgorithmConfig, "mini", preset="full").learning_rate == 3e-7
    assert resolve_config(DPOAlgorithmConfig, "histllama3-8b", ["preset=mini"]).preset == "mini"


def test_overrides_are_typed() -> None:
    config = resolve_config(
        ExtrapolativeDPOConfig,
        "mini",
        [
            "learning-rate=0.5",
            "epochs=3",
            "independent=yes",
            "use_lora=false",
            "timesteps_ahead=2",
            "formats=label",
        ],
    )
    assert config.learning_rate == 0.5 and config.epochs == 3.0 and config.independent is True
    assert config.use_lora is False and config.timesteps_ahead == 2 and config.formats == "label"
    assert resolve_config(ExtrapolativeDPOConfig, "mini", ["timesteps_ahead=none"]).timesteps_ahead is None
    # None means "from the preset" for preset fields.
    assert (
        resolve_config(DPOAlgorithmConfig, "mini", ["beta=none"]).beta
        == DPOAlgorithmConfig.PRESETS["mini"]["beta"]
    )


@pytest.mark.parametrize(
    ("override", "error", "text"),
    [
        ("learning_rat=1", UnknownName, "Did you mean 'learning_rate'"),
        ("epochs", InvalidInput, "KEY=VALUE"),
        ("epochs=many", InvalidInput, "takes a number"),
        ("batch_size=2.5", InvalidInput, "takes an integer"),
        ("independent=maybe", InvalidInput, "true or false"),
        ("weighting=confident", UnknownName, "Did you mean 'confidence'"),
        ("preset=huge", UnknownName, "preset"),
        ("formats=open,vote", UnknownName, "example format"),
        ("margin=0.7", InvalidInput, "margin"),
        ("learning_rate=-1", InvalidInput, "positive"),
        ("extrapolation_order=-1", InvalidInput, "extrapolation_order"),
    ],
)
def test_bad_overrides_give_one_line_errors(override: str, error: type[Exception], text: str) -> None:
    with pytest.raises(error) as caught:
        resolve_config(ExtrapolativeDPOConfig, "mini", [override])
    assert text in str(caught.value) and "\n" not in str(caught.value)


def test_rlhf_checks() -> None:
    with pytest.raises(InvalidInput):
        resolve_config(RLHFAlgorithmConfig, "mini", ["num_generations=1"])
    with pytest.raises(UnknownName):
        resolve_config(RLHFAlgorithmConfig, "mini", ["rl_trainer=ppo"])
    assert resolve_config(RLHFAlgorithmConfig, "mini", ["rl_trainer=grpo"]).rl_trainer == "grpo"


def test_parse_overrides_later_wins() -> None:
    assert parse_overrides(DPOAlgorithmConfig, ["beta=1", "beta=2"]) == {"beta": 2.0}


def test_timeline_of() -> None:
    assert timeline_of("mini:C013") == "mini"
    assert timeline_of("lifelong-dpo/step-1") is None


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_algorithms_are_registered_with_their_configs(name: str, tmp_path: Path) -> None:
    cls = algorithm_class(name)
    assert cls.config_cls is ALGORITHMS[name]
    assert cls.__doc__ and cls.name == name
    examinee = make_examinee(name, {"epochs": 3.0} if "dpo" in name else {"rm_epochs": 3.0})
    assert examinee.config.preset == "auto"
    # The examinee resolves its preset from the initial model's timeline.
    from progressgym.model_ref import ModelRef
    from progressgym.tiny import DEFAULT_TINY_CORPUS, build_tiny_model

    path = build_tiny_model(tmp_path / "m", corpus=DEFAULT_TINY_CORPUS[:20], seed=0)
    examinee.reset(initial_model=ModelRef.from_path(path, name="mini:C013"), workdir=tmp_path, seed=0)
    settings = examinee.settings  # type: ignore[attr-defined]
    assert settings.preset == "mini" and settings.is_resolved
    assert (settings.epochs if "dpo" in name else settings.rm_epochs) == 3.0
    examinee.reset(
        initial_model=ModelRef.from_path(path, name="histllama3-8b:C013"), workdir=tmp_path, seed=0
    )
    assert examinee.settings.preset == "full"  # type: ignore[attr-defined]
    state = examinee.state_dict()
    assert state["settings"]["preset"] == "full" and state["history"] == []


def test_builtin_algorithms_are_listed() -> None:
    from progressgym.algorithms import ALGORITHMS as BUILTIN

    assert {"lifelong-dpo", "lifelong-rlhf", "extrapolative-dpo", "extrapolative-rlhf"} <= set(BUILTIN)


def _full_optim(name: str, prefix: str) -> Any:
    """The ``full`` preset's optimiser settings of one training phase of an algorithm."""
    from progressgym.algorithms._judged import optim_of
    from progressgym.algorithms._preference import optim_settings
    from progressgym.algorithms.lab import LABConfig

    if name == "lab":
        return optim_of(resolve_config(LABConfig, "histllama3-8b"), prefix)
    return optim_settings(resolve_config(RLHFAlgorithmConfig, "histllama3-8b"), prefix)


@pytest.mark.parametrize(
    ("name", "prefix"), [("lifelong-rlhf", "rm_"), ("lifelong-rlhf", "rl_"), ("lab", "")]
)
@pytest.mark.parametrize("steps", [1, 2, 3, 40])
def test_a_short_run_with_a_warm_up_reaches_its_peak_rate_and_decays(
    name: str, prefix: str, steps: int, tmp_path: Path
) -> None:
    """Regression: a warm-up over a run's only step trained it at learning rate 0, or (polynomial) crashed."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from progressgym.algorithms._trainers import _common_args

    optim = _full_optim(name, prefix)
    assert optim.warmup_ratio > 0
    args = _common_args(optim, out=tmp_path, seed=0, device="cpu", steps=steps)
    assert 0 <= args["warmup_steps"] < steps
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=optim.learning_rate)
    schedule = transformers.get_scheduler(
        optim.scheduler,
        optimizer,
        num_warmup_steps=args["warmup_steps"],
        num_training_steps=steps,
        scheduler_specific_kwargs=args.get("lr_scheduler_kwargs"),
    )
    rates = []
    for _ in range(steps):
        rates.append(schedule.get_last_lr()[0])
        optimizer.step()
        schedule.step()  # the polynomial schedule divided by zero here after a one-step warm-up
    assert max(rates) == pytest.approx(optim.learning_rate)
    assert rates[-1] > 0
