"""ns-dpo: the discounted, weighted DPO loss against values worked out by hand; the trainer; the examinee."""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from progressgym.algorithms._config import preset_for_timeline, resolve_config
from progressgym.algorithms._training import TrainingPair, preference_examples
from progressgym.algorithms.losses import (
    discounts,
    normalise_weights,
    weighted_dpo_loss,
    weighted_sft_loss,
)
from progressgym.algorithms.ns_dpo import NSDPOConfig, discounted_history
from progressgym.error import InvalidInput
from progressgym.evaluation.items import Scenario
from progressgym.registration import algorithm_class, make_examinee, make_judge
from progressgym.runner import RESULT, completed_steps, resume_run, run_episode, step_path


def _neg_log_sigmoid(x: float) -> float:
    return math.log(1.0 + math.exp(-x))


def _objective(losses: torch.Tensor, ages: list[int], gamma: float) -> float:
    """The step's objective: the mean of the pairs' losses times their normalised discounts."""
    weights = normalise_weights(discounts(torch.tensor(ages), gamma))
    return float((weights * losses.double()).mean())


# ------------------------------------------------------------------------------------- the weighted loss


def test_discounts_by_hand() -> None:
    ages = torch.tensor([0, 1, 2, 3])
    assert discounts(ages, 0.5).tolist() == [1.0, 0.5, 0.25, 0.125]
    assert discounts(ages, 0.6).tolist() == pytest.approx([1.0, 0.6, 0.36, 0.216])
    assert discounts(ages, 1.0).tolist() == [1.0, 1.0, 1.0, 1.0]
    assert discounts(ages, 0.0).tolist() == [1.0, 0.0, 0.0, 0.0]  # the present always counts
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="gamma"):
            discounts(ages, bad)
    with pytest.raises(ValueError, match="ages"):
        discounts(torch.tensor([-1]), 0.5)


def test_weights_are_normalised_to_mean_one() -> None:
    # sum 2 over 4 examples: each weight times 4 / 2
    assert normalise_weights(torch.tensor([1.0, 0.5, 0.25, 0.25])).tolist() == [2.0, 1.0, 0.5, 0.5]
    assert normalise_weights(torch.full((5,), 0.3, dtype=torch.float64)).tolist() == pytest.approx([1.0] * 5)
    assert normalise_weights(torch.tensor([1.0, 0.0, 0.0])).tolist() == [3.0, 0.0, 0.0]
    for bad in ([], [0.0, 0.0], [1.0, -0.5]):
        with pytest.raises(ValueError):
            normalise_weights(torch.tensor(bad))


def test_weighted_dpo_loss_by_hand() -> None:
    # beta 0.1: pair 0 margin 2 - 0 = 2 -> -log sigmoid(0.2) = log(1 + e^-0.2) = 0.598139
    #           pair 1 margin -1 - 3 = -4 -> 0.5 * log(1 + e^0.4) = 0.5 * 0.913015 = 0.456508
    loss = weighted_dpo_loss(
        torch.tensor([2.0, -1.0]), torch.tensor([0.0, 3.0]), torch.tensor([1.0, 0.5]), beta=0.1
    )
    assert loss.tolist() == pytest.approx([0.598139, 0.456508], abs=1e-6)
    assert loss.tolist() == pytest.approx([_neg_log_sigmoid(0.2), 0.5 * _neg_log_sigmoid(-0.4)])
    # a zero weight gives no loss and no gradient
    r = torch.tensor([1.0, 1.0], requires_grad=True)
    weighted_dpo_loss(r, torch.zeros(2), torch.tensor([1.0, 0.0]), beta=0.5).sum().backward()
    assert r.grad is not None and r.grad[0] < 0 and r.grad[1] == 0


def test_weighted_sft_loss_by_hand() -> None:
    logps = torch.tensor([[-1.0, -2.0, 0.0], [-3.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    # weights 2 and 0.5: (2 * 3 + 0.5 * 3) / 3 tokens = 2.5
    assert float(weighted_sft_loss(logps, mask, torch.tensor([2.0, 0.5]))) == pytest.approx(2.5)
    # every weight 1: TRL's sft term, the mean token NLL of the chosen completions
    unit = weighted_sft_loss(logps, mask, torch.ones(2))
    assert float(unit) == pytest.approx(float(-logps[mask.bool()].mean())) == pytest.approx(2.0)


def test_a_discounted_objective_by_hand() -> None:
    # three pairs of ages 2, 1, 0 with losses 3, 2, 1 at gamma 0.5: discounts 0.25, 0.5, 1 (sum 1.75), so
    # (0.25 * 3 + 0.5 * 2 + 1 * 1) / 1.75 = 2.75 / 1.75
    losses = torch.tensor([3.0, 2.0, 1.0])
    assert _objective(losses, [2, 1, 0], 0.5) == pytest.approx(2.75 / 1.75)


def test_gamma_one_is_the_whole_history_unweighted() -> None:
    beta = 0.1
    chosen = torch.tensor([1.5, -0.5, 2.0, 0.3, -1.2])
    rejected = torch.tensor([0.5, 0.7, -1.0, 0.3, 0.4])
    ages = [4, 3, 1, 0, 0]
    weights = normalise_weights(discounts(torch.tensor(ages), 1.0))
    assert weights.tolist() == [1.0] * 5
    ours = weighted_dpo_loss(chosen, rejected, weights, beta=beta).mean()
    trl_sigmoid = -F.logsigmoid(beta * (chosen - rejected)).mean()  # TRL's sigmoid loss, every pair alike
    by_hand = (
        sum(_neg_log_sigmoid(beta * (c - r)) for c, r in zip(chosen.tolist(), rejected.tolist(), strict=True))
        / 5
    )
    assert float(ours) == pytest.approx(float(trl_sigmoid)) == pytest.approx(by_hand)


def test_gamma_to_zero_is_the_present_only() -> None:
    losses = torch.tensor([5.0, 4.0, 3.0, 1.0, 2.0])  # the last two are the present's
    ages = [3, 2, 1, 0, 0]
    present_mean = (1.0 + 2.0) / 2
    assert _objective(losses, ages, 0.0) == pytest.approx(present_mean)
    assert _objective(losses, ages, 1e-9) == pytest.approx(present_mean, abs=1e-7)
    assert _objective(losses, ages, 1e-3) == pytest.approx(present_mean, abs=1e-2)
    # and the limit is approached from above as old pairs with larger losses fade
    values = [_objective(losses, ages, g) for g in (0.9, 0.5, 0.1, 0.01)]
    assert values == sorted(values, reverse=True)


# ------------------------------------------------------------------------------------------ the history


def _pairs(n: int, scenario: str = "s") -> list[TrainingPair]:
    return [TrainingPair(scenario, 0, 1) for _ in range(n)]


def test_discounted_history_weighs_each_step_by_its_age() -> None:
    past = [(0, _pairs(2)), (1, _pairs(3)), (2, _pairs(1))]
    pairs, notes = discounted_history(past, now=2, gamma=0.5)
    assert [p.weight for p in pairs] == [0.25, 0.25, 0.5, 0.5, 0.5, 1.0]
    assert notes["discounts"] == [0.25, 0.5, 1.0] and notes["past_pairs"] == 5 and notes["dropped_pairs"] == 0
    ones, _ = discounted_history(past, now=2, gamma=1.0)
    assert [p.weight for p in ones] == [1.0] * 6
    present, notes = discounted_history(past, now=2, gamma=0.0)
    assert present == [TrainingPair("s", 0, 1, weight=1.0)]
    assert notes["dropped_pairs"] == 5 and notes["past_pairs"] == 0 and notes["history_steps"] == 1


def test_examples_carry_their_pairs_weights() -> None:
    scenario = Scenario(
        "s",
        "foundations",
        "A friend asks for help.",
        ("Help them.", "Walk away."),
        theme="harm_care",
        honouring=0,
    )
    pairs = [TrainingPair("s", 0, 1, copies=2, weight=0.25), TrainingPair("s", 1, 0, weight=1.0)]
    rows = preference_examples(pairs, {"s": scenario}, ("open",), weights=True)
    assert [r["weight"] for r in rows] == [0.25, 0.25, 1.0]
    assert "weight" not in preference_examples(pairs, {"s": scenario}, ("open",))[0]


def test_config_has_help_presets_and_checks_gamma() -> None:
    assert algorithm_class("ns-dpo").config_cls is NSDPOConfig
    fields = dataclasses.fields(NSDPOConfig)
    assert all(f.metadata.get("help") for f in fields)
    assert set(NSDPOConfig.PRESETS) == {"full", "mini"}
    open_fields = {f.name for f in fields if f.default is None}
    for values in NSDPOConfig.PRESETS.values():
        assert set(values) == open_fields
    for timeline in ("mini", "histllama3-8b"):
        config = resolve_config(NSDPOConfig, timeline, ["gamma=0.3"])
        assert config.is_resolved and config.preset == preset_for_timeline(timeline) and config.gamma == 0.3
    with pytest.raises(InvalidInput, match="gamma"):
        resolve_config(NSDPOConfig, "mini", ["gamma=1.5"])


# ------------------------------------------------------------------------------------------ the trainer


def _trainers(model_dir: Path, rows: list[dict[str, Any]], tmp: Path, losses: list[str]) -> tuple[Any, Any]:
    import datasets
    import trl

    from progressgym.algorithms._selfplay import _WithColumns
    from progressgym.algorithms._trainers import _tokenizer
    from progressgym.algorithms._weighted_dpo import WEIGHT, weighted_dpo_trainer_class

    def config(name: str) -> Any:
        return trl.DPOConfig(
            output_dir=str(tmp / name),
            use_cpu=True,
            report_to=[],
            per_device_train_batch_size=len(rows),
            beta=0.1,
            loss_type=losses,
            loss_weights=[1.0, 0.04][: len(losses)],
            max_length=128,
            seed=0,
        )

    tokenizer = _tokenizer(model_dir)
    plain = [{k: v for k, v in r.items() if k != WEIGHT} for r in rows]
    reference = trl.DPOTrainer(
        model=str(model_dir),
        args=config("trl"),
        train_dataset=datasets.Dataset.from_list(plain),
        processing_class=tokenizer,
    )
    weighted = weighted_dpo_trainer_class()(
        model=str(model_dir),
        args=config("weighted"),
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    weighted.data_collator = _WithColumns(weighted.data_collator, (WEIGHT,))
    return reference, weighted


def _loss(trainer: Any, rows: list[dict[str, Any]]) -> float:
    """The trainer's loss on ``rows`` in one batch, its policy moved off the reference the same way each time."""
    from progressgym.algorithms._weighted_dpo import WEIGHT

    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in trainer.model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    columns = ["prompt_ids", "chosen_ids", "rejected_ids"]
    dataset = trainer.train_dataset.select_columns(
        [*columns, WEIGHT] if WEIGHT in trainer.train_dataset.column_names else columns
    )
    batch = trainer.data_collator([dataset[i] for i in range(len(rows))])
    trainer.model.eval()
    with torch.no_grad():
        return float(trainer.compute_loss(trainer.model, batch))


def _rows(weights: list[float]) -> list[dict[str, Any]]:
    texts = [("Is it right to lie?", "No.", "Yes."), ("Should one help?", "Always help.", "Never.")]
    return [
        {
            "prompt": [{"role": "user", "content": q}],
            "chosen": [{"role": "assistant", "content": c}],
            "rejected": [{"role": "assistant", "content": r}],
            "weight": w,
        }
        for (q, c, r), w in zip(texts, weights, strict=True)
    ]


def test_the_weighted_trainer_is_trls_dpo_with_unit_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    for losses in (["sigmoid"], ["sigmoid", "sft"]):
        rows = _rows([1.0, 1.0])
        reference, weighted = _trainers(tiny_model_dir, rows, tmp_path, losses)
        expected = _loss(reference, rows)
        assert abs(expected - math.log(2)) > 1e-3  # the policy is not its reference: the DPO term is live
        assert _loss(weighted, rows) == pytest.approx(expected, rel=1e-6)


def test_the_weighted_trainer_weighs_each_pair(tiny_model_dir: Path, tmp_path: Path) -> None:
    # weights 2 and 0 over a batch of two: (2 l_0 + 0 l_1) / 2 = l_0, TRL's loss on the first pair alone
    rows = _rows([2.0, 0.0])
    reference, weighted = _trainers(tiny_model_dir, rows[:1], tmp_path, ["sigmoid"])
    _, weighted = _trainers(tiny_model_dir, rows, tmp_path, ["sigmoid"])
    first = _loss(reference, rows[:1])
    assert abs(first - math.log(2)) > 1e-3
    assert _loss(weighted, rows) == pytest.approx(first, rel=1e-6)


# ----------------------------------------------------------------------------------------- the examinee

FAST = {"preset": "mini", "max_items": 12}


@pytest.mark.slow
def test_episode_keeps_the_history_counts_queries_and_resumes(
    judge_kwargs: dict[str, Any], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    config = {**FAST, "gamma": 0.5}
    first = run_episode(
        make_judge("follow", **judge_kwargs), make_examinee("ns-dpo", config), seed=2, run_dir=run_dir
    )
    steps = completed_steps(run_dir)
    assert len(steps) == len(first.steps) >= 2
    state = steps[-1].examinee_state
    assert [entry["step"] for entry in state["past"]] == list(range(len(first.steps)))
    for index, (record, entry) in enumerate(zip(first.steps, state["log"], strict=True)):
        present = len(state["past"][index]["pairs"])
        assert record.queries.queries == entry["queries"] == entry["items"] > 0
        assert entry["discounts"] == [0.5**age for age in range(index, -1, -1)]
        assert entry["pairs"] == present + entry["past_pairs"]
        assert entry["past_pairs"] == sum(len(state["past"][i]["pairs"]) for i in range(index))
    # Forget the last step (as if killed while it ran), then resume: the same models, the same score.
    last = len(first.steps) - 1
    step_path(run_dir, last).unlink()
    (run_dir / RESULT).unlink()
    shutil.rmtree(run_dir / "examinee" / f"step-{last:03d}")
    resumed = resume_run(run_dir)
    assert resumed.outcome() == first.outcome()
    assert [s.examinee_model for s in resumed.steps] == [s.examinee_model for s in first.steps]
