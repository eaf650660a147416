"""On-policy RL of the baseline algorithms: TRL ``RLOOTrainer`` or ``GRPOTrainer`` against a reward model.

Completions are free text from transformers ``generate``, or drawn among each prompt's candidate answers with
the policy's own probabilities (:func:`candidate_rollout`, GRPO only).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from progressgym.algorithms._trainers import (
    LoraSettings,
    OptimSettings,
    _common_args,
    _import_trl,
    _lora_config,
    _model_kwargs,
    _tokenizer,
    _total_steps,
    training_run,
)
from progressgym.error import InvalidInput

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class RolloutSettings:
    """On-policy RL settings.

    Attributes:
        trainer: ``rloo`` or ``grpo``.
        num_generations: Completions sampled per prompt (the group RLOO/GRPO compares).
        max_completion_length: Longest completion, in tokens.
        temperature: Sampling temperature.
        top_p: Nucleus sampling mass.
        kl_coef: Weight of the KL penalty to the starting policy (TRL's ``beta``).
        source: ``generate`` (free text from transformers ``generate``) or ``candidates`` (each completion
            drawn among the prompt's candidate answers with the policy's own probabilities; GRPO only).
        draw_floor: With ``candidates``: the least probability of drawing any one answer (see
            :func:`candidate_rollout`).
    """

    trainer: str
    num_generations: int
    max_completion_length: int
    temperature: float
    top_p: float
    kl_coef: float
    source: str = "generate"
    draw_floor: float = 0.0


ROLLOUT_SOURCES: tuple[str, ...] = ("generate", "candidates")
"""Where RL completions come from (see :class:`RolloutSettings`)."""


def _completion_ids(
    tokenizer: Any, messages: list[dict[str, str]], answer: str, prompt_ids: list[int]
) -> list[int]:
    """The tokens the chat template puts after the generation prompt for ``answer``, up to its end-of-turn token."""
    full = tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": answer}], tokenize=True, return_dict=True
    )["input_ids"]
    if full[: len(prompt_ids)] != prompt_ids:
        raise InvalidInput("the chat template does not extend the generation prompt with the answer")
    completion = list(full[len(prompt_ids) :])
    eos = tokenizer.eos_token_id
    if eos in completion:
        completion = completion[: completion.index(eos) + 1]
    return completion


def candidate_rollout(
    candidates: Mapping[str, Sequence[str]], *, temperature: float, seed: int, floor: float = 0.0
) -> Any:
    """A TRL ``rollout_func`` that draws each completion among its prompt's candidate answers.

    Answer ``i`` is drawn with probability proportional to ``exp(log p_policy(answer_i | prompt) / temperature)``,
    computed by the current policy at every call: the policy's own choice among the answers, flattened at
    the level of whole answers (a decisive policy gives the same answer to every draw of a group, which
    leaves GRPO no difference to learn from). This is RL for models that score answers but cannot write
    them (the ``mini`` timeline's), where free sampling gives noise that no reward model can rank.

    ``floor`` mixes in uniform exploration: with K answers, each is drawn with probability
    ``floor + (1 - K * floor) * p_i``, so no answer falls below ``floor``. A policy that has grown decisive
    (after a few centuries of training, most answers' log-likelihoods differ by tens of nats) would otherwise
    draw the same answer for a whole group, and a group without two different answers teaches GRPO nothing.

    Args:
        candidates: The candidate answers of each prompt, by the text of the prompt's last message.
        temperature: Temperature of the draw over whole answers' log-likelihoods.
        floor: Least probability of each answer (at most 1 / K for K answers; 0: none).
        seed: Seed of the draws (each call draws from its own derived generator).
    """
    import torch

    calls = [0]

    def rollout(prompts: list[Any], trainer: Any) -> dict[str, list[Any]]:
        tokenizer = trainer.processing_class
        model = trainer.accelerator.unwrap_model(trainer.model)
        generator = torch.Generator().manual_seed(seed * 1_000_003 + calls[0])
        calls[0] += 1
        out: dict[str, list[Any]] = {"prompt_ids": [], "completion_ids": [], "logprobs": []}
        scored: dict[str, tuple[list[int], list[list[int]], list[list[float]], Any]] = {}
        was_training = model.training
        model.eval()
        try:
            for messages in prompts:
                key = messages[-1]["content"]
                if key not in scored:
                    scored[key] = _score_candidates(
                        model, tokenizer, messages, candidates[key], temperature, floor
                    )
                prompt_ids, completions, token_logps, probs = scored[key]
                index = int(torch.multinomial(probs, 1, generator=generator))
                out["prompt_ids"].append(prompt_ids)
                out["completion_ids"].append(completions[index])
                out["logprobs"].append(token_logps[index])
        finally:
            model.train(was_training)
        return out

    return rollout


def _score_candidates(
    model: Any,
    tokenizer: Any,
    messages: list[dict[str, str]],
    answers: Sequence[str],
    temperature: float,
    floor: float = 0.0,
) -> tuple[list[int], list[list[int]], list[list[float]], Any]:
    """Prompt ids, each answer's completion ids and per-token log-probabilities, and the draw probabilities."""
    import torch

    prompt_ids = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    completions = [_completion_ids(tokenizer, messages, a, prompt_ids) for a in answers]
    device = next(model.parameters()).device
    token_logps: list[list[float]] = []
    with torch.no_grad():
        for completion in completions:
            ids = torch.tensor([prompt_ids + completion], device=device)
            logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1].float()
            logps = torch.log_softmax(logits, dim=-1).gather(1, ids[0, len(prompt_ids) :, None])[:, 0]
            token_logps.append([float(v) for v in logps])
    totals = torch.tensor([sum(v) for v in token_logps])
    share = min(floor, 1.0 / len(answers))
    probs = share + (1.0 - share * len(answers)) * torch.softmax(totals / temperature, dim=0)
    return prompt_ids, completions, token_logps, probs


def train_policy_rl(
    model_path: str | os.PathLike[str],
    reward_model_path: str | os.PathLike[str],
    prompts: Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike[str],
    *,
    optim: OptimSettings,
    rollout: RolloutSettings,
    seed: int,
    device: str = "auto",
    lora: LoraSettings | None = None,
    threads: int = 0,
) -> Path:
    """Optimise the policy against a reward model, on-policy, with TRL's RLOO or GRPO trainer.

    ``optim.batch_size`` counts prompts per step; each step samples ``num_generations`` completions of each
    (so TRL's per-device batch is ``batch_size * num_generations`` completions). ``optim.epochs`` passes
    over ``prompts`` set the number of steps.

    Args:
        model_path: The policy to start from.
        reward_model_path: The reward model folder (see :func:`train_reward_model`).
        prompts: Chat-format ``prompt`` rows.
        out_dir: Where the optimised policy goes (replaced if it exists).
        optim: Optimisation settings.
        rollout: Sampling and RL settings.
        seed: Seed of sampling, data order and dropout.
        device: ``auto``, ``cpu`` or ``cuda``.
        lora: Train LoRA adapters (merged before saving) instead of every weight.
        threads: Torch threads while training (0: torch's default).

    Returns:
        ``out_dir``.
    """
    trl = _import_trl()
    import datasets

    if not prompts:
        raise InvalidInput("RL needs at least one prompt")
    if rollout.trainer not in ("rloo", "grpo"):
        raise InvalidInput(f"rl_trainer must be rloo or grpo, got {rollout.trainer!r}")
    if rollout.num_generations < 2:
        raise InvalidInput("RLOO and GRPO need at least 2 generations per prompt")
    if rollout.source not in ROLLOUT_SOURCES:
        raise InvalidInput(f"rollouts must be generate or candidates, got {rollout.source!r}")
    if rollout.source == "candidates" and rollout.trainer != "grpo":
        # TRL 1.16 lets only GRPOTrainer take a custom rollout function.
        raise InvalidInput("rollouts=candidates needs rl_trainer=grpo")
    # Rollouts pad prompts on the left; the saved tokenizer keeps the start model's right padding.
    rollout_tokenizer = _tokenizer(model_path)
    rollout_tokenizer.padding_side = "left"
    reward_tokenizer = _tokenizer(reward_model_path)
    steps = _total_steps(len(prompts), optim)
    with training_run(model_path, out_dir, seed=seed, threads=threads) as run:
        args = _common_args(optim, out=run.scratch / "trainer", seed=seed, device=device, steps=steps)
        args["per_device_train_batch_size"] = optim.batch_size * rollout.num_generations
        settings = dict(
            num_generations=rollout.num_generations,
            max_completion_length=rollout.max_completion_length,
            # Candidate draws apply the temperature to whole answers; the policy's token log-probabilities
            # in the loss stay untempered.
            temperature=1.0 if rollout.source == "candidates" else rollout.temperature,
            top_p=rollout.top_p,
            beta=rollout.kl_coef,
            model_init_kwargs=_model_kwargs(device),
        )
        config_cls, trainer_cls = (
            (trl.RLOOConfig, trl.RLOOTrainer)
            if rollout.trainer == "rloo"
            else (trl.GRPOConfig, trl.GRPOTrainer)
        )
        config = config_cls(**args, **settings)
        extra: dict[str, Any] = {}
        if rollout.source == "candidates":
            # TRL marks rollout_func experimental and warns at every trainer; the choice is deliberate here.
            os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
            table = {p["prompt"][-1]["content"]: list(p["candidates"]) for p in prompts}
            extra["rollout_func"] = candidate_rollout(
                table, temperature=rollout.temperature, seed=seed, floor=rollout.draw_floor
            )
        trainer = trainer_cls(
            model=str(model_path),
            reward_funcs=str(reward_model_path),
            args=config,
            train_dataset=datasets.Dataset.from_list([{"prompt": p["prompt"]} for p in prompts]),
            processing_class=rollout_tokenizer,
            reward_processing_classes=reward_tokenizer,
            peft_config=_lora_config(lora, "CAUSAL_LM"),
            **extra,
        )
        run.finish(trainer)
    return Path(out_dir)
