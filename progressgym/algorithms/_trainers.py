"""TRL trainers of the baseline algorithms: shared settings and plumbing, DPO and the reward model.

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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from progressgym._paths import staged_output
from progressgym.error import DependencyNotInstalled, InvalidInput
from progressgym.prompt_format import apply_prompt_format

if TYPE_CHECKING:
    pass


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
        "warmup_steps": warmup_steps(optim.warmup_ratio, total),
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


def warmup_steps(ratio: float, total: int) -> int:
    """The warm-up of a ``total``-step run: ``ratio`` of its steps, rounded up, and never all of them.

    At least one step follows the warm-up: a warm-up over every step never reaches the peak learning rate (a
    one-step run would train at a learning rate of 0), and transformers' ``polynomial`` schedule divides by the
    steps after the warm-up (a one-step run with the ``full`` presets' warm-up raised ``ZeroDivisionError``).
    """
    if ratio <= 0:
        return 0
    return min(int(math.ceil(ratio * total)), total - 1)


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
