"""Shared plumbing of the baseline algorithms: preference pairs -> training examples -> TRL trainers.

How a preference becomes training data. A judge's preference between two actions of an elicitation scenario
becomes a :class:`TrainingPair` (chosen action, rejected action, copies). Each pair is then written in every
way the moral evaluation asks a question (:mod:`progressgym.evaluation.prompts`), always on *elicitation*
scenarios, never on evaluation ones:

* ``open``: the scenario's open question (:func:`progressgym.preference.scenario_query`), answered with the
  chosen action's text vs the rejected action's text;
* ``label``: the options listed as ``A.``/``B.`` (``A``-``D`` for four actions), in every cyclic order; the
  chosen answer is the letter the chosen action has in that order;
* ``yesno`` (two actions): "do you prefer the first option over the second?" in both orders, ``Yes``/``No``;
* ``repeat``: the options listed, in every cyclic order; the answer is the option's text.

A four-action scenario's pair keeps its two actions' letters/texts within the four-option prompt. Every
example of a pair is repeated ``copies`` times (the confidence weight of lifelong algorithms, the
extrapolated multiplicity of extrapolative ones). Teaching the preference in the evaluation's own formats is
what lets it show in the value vector: the evaluation reads these very answers' log-likelihoods, on other
scenarios that measure the same values.

Trainers (TRL, imported only when training): :func:`train_dpo` (``DPOTrainer``), :func:`train_reward_model`
(``RewardTrainer`` on ``AutoModelForSequenceClassification`` with one label, initialised from the policy) and
:func:`train_policy_rl` (``RLOOTrainer`` or ``GRPOTrainer`` with the reward model as reward function,
rollouts by transformers ``generate``). Each writes a complete model folder to a temporary sibling of its
output directory and renames it into place, so the output directory holds either nothing or a whole model.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from progressgym._paths import staged_output
from progressgym.error import DependencyNotInstalled, InvalidInput
from progressgym.prompt_format import apply_prompt_format

if TYPE_CHECKING:
    from progressgym.elicitation import PreferenceRecord
    from progressgym.evaluation.items import Scenario

EXAMPLE_FORMATS: tuple[str, ...] = ("open", "label", "yesno", "repeat")
"""The ways a preference is written as training examples (see the module docstring)."""

WEIGHTINGS: tuple[str, ...] = ("confidence", "uniform")
"""How lifelong algorithms weight a preference: by the judge's confidence, or one copy each."""


@dataclass(frozen=True)
class TrainingPair:
    """One preference to train on.

    Attributes:
        scenario_id: The elicitation scenario.
        chosen: Index of the preferred action.
        rejected: Index of the other action.
        copies: How many times its examples are repeated (>= 1).
    """

    scenario_id: str
    chosen: int
    rejected: int
    copies: int = 1


def parse_formats(text: str) -> tuple[str, ...]:
    """Parse a comma-separated list of example formats (kept in canonical order)."""
    from progressgym._registry import did_you_mean
    from progressgym.error import UnknownName

    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise InvalidInput("at least one example format is needed (open, label, yesno, repeat)")
    for name in names:
        if name not in EXAMPLE_FORMATS:
            raise UnknownName(did_you_mean("example format", name, list(EXAMPLE_FORMATS)))
    return tuple(f for f in EXAMPLE_FORMATS if f in names)


def confidence_copies(confidence: float, max_copies: int) -> int:
    """Copies of a preference held with ``confidence`` = ``|2p - 1|``: from 1 (barely) to ``max_copies`` (sure)."""
    return 1 + round((max_copies - 1) * min(max(confidence, 0.0), 1.0))


def pairs_from_records(
    records: Iterable[PreferenceRecord], *, weighting: str = "confidence", max_copies: int = 1
) -> list[TrainingPair]:
    """The training pairs of one step's preferences (missing records are skipped).

    Args:
        records: The elicited records.
        weighting: ``confidence`` (copies grow with ``|2p - 1|`` up to ``max_copies``) or ``uniform`` (one).
        max_copies: The most copies of one pair.
    """
    if weighting not in WEIGHTINGS:
        from progressgym._registry import did_you_mean
        from progressgym.error import UnknownName

        raise UnknownName(did_you_mean("weighting", weighting, list(WEIGHTINGS)))
    pairs = []
    for record in records:
        if record.missing:
            continue
        copies = confidence_copies(record.confidence, max_copies) if weighting == "confidence" else 1
        pairs.append(TrainingPair(record.scenario_id, record.chosen, record.rejected, copies))
    return pairs


def _message(role: str, content: str) -> list[dict[str, str]]:
    return [{"role": role, "content": content}]


ORDER_MODES: tuple[str, ...] = ("all", "one")
"""``all``: every cyclic order of a format; ``one``: one order per format and copy, drawn from the step seed."""


def format_prompts(
    scenario: Scenario, formats: Sequence[str], *, orders: str = "all", rng: random.Random | None = None
) -> list[Any]:
    """A scenario's evaluation-format prompts among ``formats`` (``open`` is not one), format by format.

    ``orders="all"`` gives every cyclic order of each format; ``orders="one"`` one per format, drawn from ``rng``.

    Raises:
        InvalidInput: for ``orders="one"`` without ``rng``.
    """
    from progressgym.evaluation.prompts import scenario_prompts

    evaluation_formats = [f for f in formats if f != "open"]
    if not evaluation_formats:
        return []
    prompts = scenario_prompts(scenario, formats=evaluation_formats)
    if orders != "one":
        return list(prompts)
    if rng is None:
        raise InvalidInput("orders='one' needs a random source")
    by_format: dict[str, list[Any]] = {}
    for prompt in prompts:
        by_format.setdefault(prompt.format, []).append(prompt)
    return [group[rng.randrange(len(group))] for group in by_format.values()]


def pair_examples(
    pair: TrainingPair,
    scenario: Scenario,
    formats: Sequence[str],
    *,
    orders: str = "all",
    rng: random.Random | None = None,
) -> list[dict[str, Any]]:
    """The preference examples (``prompt``/``chosen``/``rejected``, chat format) of one pair, once.

    Args:
        pair: The preference.
        scenario: Its scenario.
        formats: Example formats (see :data:`EXAMPLE_FORMATS`).
        orders: ``all`` (every cyclic order of each evaluation format) or ``one`` (one order per format, drawn
            from ``rng``).
        rng: The random source for ``orders="one"``.
    """
    from progressgym.evaluation.prompts import clean_option
    from progressgym.preference import scenario_query

    if orders not in ORDER_MODES:
        raise InvalidInput(f"orders must be all or one, got {orders!r}")
    rows: list[dict[str, Any]] = []
    if "open" in formats:
        rows.append(
            {
                "prompt": _message("user", scenario_query(scenario)),
                "chosen": _message("assistant", clean_option(scenario.actions[pair.chosen])),
                "rejected": _message("assistant", clean_option(scenario.actions[pair.rejected])),
            }
        )
    for prompt in format_prompts(scenario, formats, orders=orders, rng=rng):
        rows.append(
            {
                "prompt": _message("user", prompt.text),
                "chosen": _message("assistant", prompt.answer_for(pair.chosen)),
                "rejected": _message("assistant", prompt.answer_for(pair.rejected)),
            }
        )
    return rows


def preference_examples(
    pairs: Iterable[TrainingPair],
    scenarios: Mapping[str, Scenario],
    formats: Sequence[str],
    *,
    orders: str = "all",
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Every pair's examples, ``copies`` times each, in pair order.

    Args:
        pairs: The training pairs.
        scenarios: Elicitation scenarios by id (every pair's scenario must be there).
        formats: Example formats (see :data:`EXAMPLE_FORMATS`).
        orders: ``all`` or ``one`` (each copy draws its own order per format; see :func:`pair_examples`).
        seed: Seed of the order draws.
    """
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for pair in pairs:
        if pair.scenario_id not in scenarios:
            raise InvalidInput(
                f"preference pair names scenario {pair.scenario_id!r}, not an elicitation scenario"
            )
        scenario = scenarios[pair.scenario_id]
        if orders == "all":
            rows.extend(pair_examples(pair, scenario, formats) * pair.copies)
        else:
            for _ in range(pair.copies):
                rows.extend(pair_examples(pair, scenario, formats, orders=orders, rng=rng))
    return rows


def rl_prompts(
    scenarios: Iterable[Scenario], formats: Sequence[str], *, orders: str = "all", seed: int = 0
) -> list[dict[str, Any]]:
    """The prompts a policy answers during RL: each scenario's open question and its evaluation-format prompts.

    Each row holds the chat-format ``prompt`` and the ``candidates``: the answers the question admits (the
    actions' texts for the open question, the evaluation prompt's own answers otherwise), which
    ``rollouts="candidates"`` samples among.

    Args:
        scenarios: Elicitation scenarios.
        formats: Example formats (see :data:`EXAMPLE_FORMATS`).
        orders: ``all`` (every cyclic order of each format) or ``one`` (one order per format, drawn from ``seed``).
        seed: Seed of the order draws.
    """
    from progressgym.evaluation.prompts import clean_option
    from progressgym.preference import scenario_query

    if orders not in ORDER_MODES:
        raise InvalidInput(f"orders must be all or one, got {orders!r}")
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for scenario in scenarios:
        if "open" in formats:
            rows.append(
                {
                    "prompt": _message("user", scenario_query(scenario)),
                    "candidates": [clean_option(action) for action in scenario.actions],
                }
            )
        rows.extend(
            {"prompt": _message("user", prompt.text), "candidates": list(prompt.candidates)}
            for prompt in format_prompts(scenario, formats, orders=orders, rng=rng)
        )
    return rows


# ----------------------------------------------------------------------------------------------- trainers


@dataclass(frozen=True)
class LoraSettings:
    """LoRA through peft (merged into the weights before saving).

    Attributes:
        r: Rank.
        alpha: Scaling numerator.
        dropout: Dropout on the adapter input.
    """

    r: int = 8
    alpha: int = 16
    dropout: float = 0.0


@dataclass(frozen=True)
class OptimSettings:
    """One trainer's optimisation settings.

    Attributes:
        learning_rate: Peak learning rate.
        scheduler: ``transformers`` scheduler name (``constant``, ``linear``, ``cosine``, ``polynomial``...).
        warmup_ratio: Share of the steps spent warming up.
        epochs: Passes over the data (may be fractional).
        batch_size: Examples per device per step.
        grad_accum: Gradient accumulation steps.
        max_length: Longest tokenised example (prompt + answer).
        scheduler_kwargs: Extra scheduler arguments (``polynomial``: ``lr_end``, ``power``).
    """

    learning_rate: float
    scheduler: str
    warmup_ratio: float
    epochs: float
    batch_size: int
    grad_accum: int
    max_length: int
    scheduler_kwargs: tuple[tuple[str, float], ...] = ()


def _import_trl() -> Any:
    try:
        import datasets
        import trl
    except ImportError as exc:
        raise DependencyNotInstalled(
            f"training needs trl ({exc.name} is missing): pip install 'progressgym[train]'"
        ) from None
    datasets.disable_progress_bars()
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    return trl


def use_cpu(device: str) -> bool:
    """Whether training runs on the CPU for the ``device`` setting (``auto``: CPU unless CUDA is available)."""
    if device == "cpu":
        return True
    if device == "cuda":
        return False
    if device != "auto":
        raise InvalidInput(f"device must be auto, cpu or cuda, got {device!r}")
    import torch

    return not torch.cuda.is_available()


def _common_args(
    optim: OptimSettings,
    *,
    out: Path,
    seed: int,
    device: str,
    examples: int | None = None,
    steps: int | None = None,
) -> dict[str, Any]:
    """TrainingArguments fields shared by every trainer: ``optim.epochs`` over ``examples``, or ``steps`` steps.

    The warm-up is given as a step count (``warmup_ratio`` is deprecated in recent transformers).
    """
    if (examples is None) == (steps is None):
        raise ValueError("give the number of examples or of steps, not both")
    total = steps if steps is not None else _total_steps(examples or 0, optim)
    cpu = use_cpu(device)
    bf16 = False
    if not cpu:
        import torch

        bf16 = bool(torch.cuda.is_bf16_supported())
    args: dict[str, Any] = {
        "output_dir": str(out),
        "learning_rate": optim.learning_rate,
        "lr_scheduler_type": optim.scheduler,
        "warmup_steps": int(math.ceil(optim.warmup_ratio * total)) if optim.warmup_ratio else 0,
        "per_device_train_batch_size": optim.batch_size,
        "gradient_accumulation_steps": optim.grad_accum,
        "seed": seed,
        "data_seed": seed,
        "use_cpu": cpu,
        "bf16": bf16,
        "fp16": False,
        "report_to": [],
        "save_strategy": "no",
        "logging_strategy": "no",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "gradient_checkpointing": False,
    }
    if steps is None:
        args["num_train_epochs"] = optim.epochs
    else:
        args["max_steps"] = steps
    if optim.scheduler_kwargs:
        args["lr_scheduler_kwargs"] = dict(optim.scheduler_kwargs)
    return args


def _total_steps(n_examples: int, optim: OptimSettings) -> int:
    per_step = optim.batch_size * optim.grad_accum
    return max(1, int(math.ceil(optim.epochs * n_examples / per_step)))


def _lora_config(lora: LoraSettings | None, task_type: str) -> Any:
    if lora is None:
        return None
    try:
        from peft import LoraConfig
    except ImportError:
        raise DependencyNotInstalled("LoRA needs peft: pip install 'progressgym[train]'") from None
    extra: dict[str, Any] = {"modules_to_save": ["score"]} if task_type == "SEQ_CLS" else {}
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules="all-linear",
        task_type=task_type,
        **extra,
    )


def _model_kwargs(device: str) -> dict[str, Any]:
    return {"dtype": "float32" if use_cpu(device) else "auto"}


def _tokenizer(model_path: str | os.PathLike[str]) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    apply_prompt_format(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads (0: leave torch's setting), restoring it afterwards.

    A fixed thread count also fixes the order of floating-point reductions, so results repeat across machines
    with different core counts.
    """
    if threads <= 0:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _save(model: Any, tokenizer: Any, staged: Path) -> None:
    """Save a trained model (LoRA adapters merged) and its tokenizer to ``staged``: on the main process only."""
    from progressgym._distributed import is_main_process

    if not is_main_process():
        return
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(staged, safe_serialization=True)
    tokenizer.save_pretrained(staged)


def _quiet(trainer: Any) -> None:
    from transformers import PrinterCallback, ProgressCallback

    for callback in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(callback)


@dataclass(frozen=True)
class TrainingRun:
    """One training run's workspace (see :func:`training_run`).

    Attributes:
        tokenizer: The start model's tokenizer (padding on the right), saved with the trained model.
        scratch: A scratch directory for the trainer's own files.
        staged: Where the trained model is saved before it is renamed into place.
    """

    tokenizer: Any
    scratch: Path
    staged: Path

    def finish(self, trainer: Any) -> None:
        """Train without progress printing, then save the trained model (LoRA merged) and the tokenizer."""
        _quiet(trainer)
        trainer.train()
        _save(trainer.model, self.tokenizer, self.staged)


@contextlib.contextmanager
def training_run(
    model_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, seed: int, threads: int
) -> Iterator[TrainingRun]:
    """What every trainer does around its TRL/transformers trainer: seed, tokenizer, threads, staged output.

    The model reaches ``out_dir`` only if the block finishes (see :func:`staged_output`).

    Args:
        model_path: The model training starts from.
        out_dir: Where the trained model goes (replaced if it exists).
        seed: Seed of initialisation, data order and dropout (``transformers.set_seed``).
        threads: Torch threads while training (0: torch's default).

    Yields:
        The run's :class:`TrainingRun`.
    """
    from transformers import set_seed

    set_seed(seed)
    tokenizer = _tokenizer(model_path)
    with torch_threads(threads), staged_output(out_dir) as (scratch, staged):
        yield TrainingRun(tokenizer, scratch, staged)


def train_dpo(
    model_path: str | os.PathLike[str],
    rows: Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike[str],
    *,
    optim: OptimSettings,
    beta: float,
    sft_weight: float,
    seed: int,
    device: str = "auto",
    lora: LoraSettings | None = None,
    threads: int = 0,
) -> Path:
    """DPO (sigmoid loss) plus an SFT term on the chosen answers, from ``model_path``; saved to ``out_dir``.

    The reference model is ``model_path`` itself (frozen), as in the reference implementation.

    Args:
        model_path: The policy to start from (a saved model folder).
        rows: Chat-format ``prompt``/``chosen``/``rejected`` examples.
        out_dir: Where the trained model goes (replaced if it exists).
        optim: Optimisation settings.
        beta: DPO's beta.
        sft_weight: Weight of the SFT term (``loss_type=["sigmoid", "sft"]``, ``loss_weights=[1, sft_weight]``).
        seed: Seed of initialisation, data order and dropout.
        device: ``auto``, ``cpu`` or ``cuda``.
        lora: Train LoRA adapters (merged before saving) instead of every weight.
        threads: Torch threads while training (0: torch's default).

    Returns:
        ``out_dir``.
    """
    trl = _import_trl()
    import datasets

    if not rows:
        raise InvalidInput("DPO needs at least one preference example")
    losses, weights = (["sigmoid", "sft"], [1.0, sft_weight]) if sft_weight > 0 else (["sigmoid"], [1.0])
    with training_run(model_path, out_dir, seed=seed, threads=threads) as run:
        args = _common_args(optim, out=run.scratch / "trainer", seed=seed, device=device, examples=len(rows))
        config = trl.DPOConfig(
            **args,
            beta=beta,
            loss_type=losses,
            loss_weights=weights,
            max_length=optim.max_length,
            model_init_kwargs=_model_kwargs(device),
        )
        trainer = trl.DPOTrainer(
            model=str(model_path),
            args=config,
            train_dataset=datasets.Dataset.from_list([dict(r) for r in rows]),
            processing_class=run.tokenizer,
            peft_config=_lora_config(lora, "CAUSAL_LM"),
        )
        run.finish(trainer)
    return Path(out_dir)


def train_reward_model(
    model_path: str | os.PathLike[str],
    rows: Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike[str],
    *,
    optim: OptimSettings,
    seed: int,
    device: str = "auto",
    lora: LoraSettings | None = None,
    threads: int = 0,
) -> Path:
    """A Bradley-Terry reward model (one-label sequence classifier initialised from ``model_path``).

    Args:
        model_path: The policy whose body initialises the reward model (its score head is new, seeded).
        rows: Chat-format ``prompt``/``chosen``/``rejected`` examples.
        out_dir: Where the reward model goes (replaced if it exists).
        optim: Optimisation settings.
        seed: Seed of the head's initialisation, data order and dropout.
        device: ``auto``, ``cpu`` or ``cuda``.
        lora: Train LoRA adapters and the head (merged before saving) instead of every weight.
        threads: Torch threads while training (0: torch's default).

    Returns:
        ``out_dir``.
    """
    trl = _import_trl()
    import datasets

    if not rows:
        raise InvalidInput("a reward model needs at least one preference example")
    with training_run(model_path, out_dir, seed=seed, threads=threads) as run:
        args = _common_args(optim, out=run.scratch / "trainer", seed=seed, device=device, examples=len(rows))
        kwargs = _model_kwargs(device)
        if run.tokenizer.pad_token_id is not None:
            kwargs["pad_token_id"] = run.tokenizer.pad_token_id
        config = trl.RewardConfig(**args, max_length=optim.max_length, model_init_kwargs=kwargs)
        trainer = trl.RewardTrainer(
            model=str(model_path),
            args=config,
            train_dataset=datasets.Dataset.from_list([dict(r) for r in rows]),
            processing_class=run.tokenizer,
            peft_config=_lora_config(lora, "SEQ_CLS"),
        )
        run.finish(trainer)
    return Path(out_dir)


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


__all__ = [
    "EXAMPLE_FORMATS",
    "ORDER_MODES",
    "WEIGHTINGS",
    "LoraSettings",
    "OptimSettings",
    "ROLLOUT_SOURCES",
    "RolloutSettings",
    "TrainingPair",
    "candidate_rollout",
    "confidence_copies",
    "format_prompts",
    "pair_examples",
    "pairs_from_records",
    "parse_formats",
    "preference_examples",
    "rl_prompts",
    "TrainingRun",
    "staged_output",
    "torch_threads",
    "training_run",
    "train_dpo",
    "train_policy_rl",
    "train_reward_model",
    "use_cpu",
]
