"""Lifelong RLHF: at every step, fit a reward model to the present's preferences, then optimise against it."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from progressgym.algorithms._config import RLHFAlgorithmConfig
from progressgym.algorithms._preference import PreferenceExaminee, optim_settings, purpose_seed
from progressgym.algorithms._training import (
    RolloutSettings,
    TrainingPair,
    preference_examples,
    rl_prompts,
    train_policy_rl,
    train_reward_model,
)
from progressgym.evaluation.items import Scenario
from progressgym.model_ref import ModelRef
from progressgym.registration import register_algorithm


class RLHFTraining(PreferenceExaminee):
    """Reward model (TRL ``RewardTrainer``), then on-policy RL against it (TRL ``RLOOTrainer``/``GRPOTrainer``)."""

    def train(
        self,
        start: ModelRef,
        pairs: Sequence[TrainingPair],
        scenarios: Mapping[str, Scenario],
        out: Path,
        *,
        seed: int,
    ) -> dict[str, Any]:
        """Reward model from ``start`` on the pairs, then RL of ``start`` on the pairs' scenarios; saved to ``out``."""
        s = self.settings
        formats = self.formats()
        rows = preference_examples(
            pairs, scenarios, formats, orders=s.orders, seed=purpose_seed(seed, "examples")
        )
        reward_dir = out.with_name(f"{out.name}-reward")
        train_reward_model(
            start.path,
            rows,
            reward_dir,
            optim=optim_settings(s, "rm_"),
            seed=purpose_seed(seed, "reward-model"),
            device=s.device,
            lora=self.lora(),
            threads=s.threads,
        )
        asked = sorted({p.scenario_id for p in pairs})
        prompts = rl_prompts(
            [scenarios[i] for i in asked], formats, orders=s.orders, seed=purpose_seed(seed, "prompts")
        )
        try:
            train_policy_rl(
                start.path,
                reward_dir,
                prompts,
                out,
                optim=optim_settings(s, "rl_"),
                rollout=RolloutSettings(
                    trainer=s.rl_trainer,
                    num_generations=s.num_generations,
                    max_completion_length=s.max_completion_length,
                    temperature=s.temperature,
                    top_p=s.top_p,
                    kl_coef=s.kl_coef,
                    source=s.rollouts,
                    draw_floor=s.draw_floor,
                ),
                seed=purpose_seed(seed, "policy"),
                device=s.device,
                lora=self.lora(),
                threads=s.threads,
            )
        finally:
            shutil.rmtree(reward_dir, ignore_errors=True)
        return {"examples": len(rows), "rl_prompts": len(prompts)}


@register_algorithm("lifelong-rlhf")
class LifelongRLHFExaminee(RLHFTraining):
    """Lifelong RLHF: fit a reward model to each century's preferences, then optimise the policy with RLOO.

    ## Description
    At every step the examinee elicits the judge's pairwise preferences (as ``lifelong-dpo`` does), trains a
    Bradley-Terry reward model on them (TRL ``RewardTrainer``; a one-label sequence classifier initialised
    from the current policy, saved beside the step's model and removed after it), then optimises the policy
    against it on-policy (TRL ``RLOOTrainer`` by default, ``GRPOTrainer`` with ``rl_trainer=grpo``),
    sampling completions to the elicitation scenarios' questions with transformers ``generate``, with a KL
    penalty to the step's starting policy.

    The reference optimises with PPO (LLaMA-Factory's, adaptive KL, a learned value head). TRL 1.16 has no
    PPO trainer; RLOO replaces the value head by a leave-one-out baseline over ``num_generations`` samples
    of the same prompt and scores whole sequences, with the KL penalty in the reward. It is a different,
    critic-free policy-gradient algorithm with the same reward model and the same goal.

    ## Configuration
    :class:`~progressgym.algorithms._config.RLHFAlgorithmConfig`; presets ``full`` (the reference's: RM lr
    4e-7 for 7.2 epochs, policy lr 1e-6 for 0.4 epochs, 1024-token completions) and ``mini``.
    """

    config_cls: ClassVar[type[Any] | None] = RLHFAlgorithmConfig
