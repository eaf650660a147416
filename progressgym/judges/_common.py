"""Pieces the built-in judges share: similarity measures, item banks, answering questions, and fine-tuning."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from progressgym.backends.base import BackendOptions, GenerateRequest, user
from progressgym.error import DependencyNotInstalled, InvalidInput
from progressgym.evaluation.items import ItemBank, Split
from progressgym.prompt_format import apply_prompt_format


def cosine(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Cosine similarity of two vectors, in [-1, 1]; 0 when either vector is all zeros."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norm = float(np.linalg.norm(x) * np.linalg.norm(y))
    if norm == 0.0:
        return 0.0
    return float(np.clip(np.dot(x, y) / norm, -1.0, 1.0))


def distance(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Euclidean distance between two vectors."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def suffix_max_similarity(s: Sequence[float] | np.ndarray, history: Sequence[Sequence[float]]) -> float:
    """``(1/|A|) sum_i max_{j >= i} cos(s, A_j)`` for the historical vectors ``A`` (oldest first).

    A state close to a late historical state scores about 1 at every ``i``; one close only to the earliest
    state scores about 1 only at ``i = 0``.
    """
    if not history:
        raise InvalidInput("suffix-max similarity needs at least one historical vector")
    sims = [cosine(s, a) for a in history]
    best = -np.inf
    total = 0.0
    for value in reversed(sims):
        best = max(best, value)
        total += best
    return total / len(sims)


def check_bank(bank: str) -> None:
    """Refuse a bank that is neither a known name nor a ``.jsonl`` file (before anything is loaded)."""
    from progressgym.evaluation.banks import BANK_NAMES

    if bank in BANK_NAMES:
        return
    path = Path(bank)
    if path.suffix == ".jsonl" and path.is_file():
        return
    from progressgym._registry import did_you_mean
    from progressgym.error import UnknownName

    raise UnknownName(did_you_mean("item bank", bank, list(BANK_NAMES)) + " (or a path to a .jsonl bank)")


def load_item_bank(bank: str, bank_path: str | None, split: Split) -> ItemBank:
    """One split of a bank given by name (``core``, ``progressgym``) or as a path to a JSONL bank file.

    A JSONL bank's version is a hash of its content, so editing it invalidates cached vectors.
    """
    from progressgym.evaluation.banks import BANK_NAMES, load_bank

    if bank in BANK_NAMES:
        return load_bank(bank, path=bank_path, split=split)
    from progressgym.evaluation.items import read_jsonl_bank

    path = Path(bank)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    return read_jsonl_bank(path, name=path.stem, version=digest).get_split(split)


def generate_answers(
    backend: str, model_path: str, prompts: Sequence[str], *, max_new_tokens: int, device: str, seed: int
) -> tuple[list[str], dict[str, float]]:
    """Greedy replies of one model to user prompts, and the backend work they took."""
    from progressgym.backends import make_backend

    requests = [GenerateRequest(user(p), max_new_tokens, 0.0) for p in prompts]
    with make_backend(backend, model_path, BackendOptions(device=device, seed=seed)) as engine:
        replies = engine.generate(requests)
        return replies, engine.usage.as_dict()


def fine_tune(
    model_path: str | os.PathLike[str],
    pairs: Sequence[tuple[str, str]],
    out_dir: str | os.PathLike[str],
    *,
    epochs: float,
    learning_rate: float | None,
    seed: int,
    batch_size: int = 8,
    device: str = "auto",
) -> Path:
    """Supervised fine-tuning (TRL ``SFTTrainer``) of a model on (question, answer) pairs; full parameters.

    The result is written to a temporary sibling of ``out_dir`` and renamed into place, so ``out_dir`` holds
    either nothing or a complete model. Training is seeded: the same inputs give the same weights. Under a
    multi-process launch the training is data-parallel, the main process alone saves the model, and every
    process returns once it is in place.

    Args:
        model_path: The model to start from.
        pairs: User question and assistant answer of each example.
        out_dir: Where to save the fine-tuned model (replaced if it exists).
        epochs: Training epochs (may be fractional).
        learning_rate: Peak learning rate; ``None``: 1e-3 for models below 10M parameters (the ``mini``
            timeline), else 1.5e-5 (ProgressGym's value for billion-parameter models).
        seed: Seed of initialisation of the data order and dropout.
        batch_size: Examples per optimiser step.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.

    Returns:
        ``out_dir``.
    """
    try:
        import datasets
        from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, ProgressCallback
        from transformers.utils import logging as hf_logging
        from trl import SFTConfig, SFTTrainer
    except ImportError as exc:
        raise DependencyNotInstalled(
            f"fine-tuning needs trl ({exc.name} is missing): pip install 'progressgym[train]'"
        ) from None

    from progressgym._distributed import is_main_process
    from progressgym._paths import staged_output

    target = Path(out_dir)
    datasets.disable_progress_bars()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    use_cpu = device == "cpu"
    if device == "auto":
        import torch

        use_cpu = not torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    apply_prompt_format(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(str(model_path))
    lr = learning_rate
    if lr is None:
        lr = 1e-3 if model.num_parameters() < 10_000_000 else 1.5e-5
    data = datasets.Dataset.from_list(
        [
            {"prompt": [{"role": "user", "content": q}], "completion": [{"role": "assistant", "content": a}]}
            for q, a in pairs
        ]
    )
    with staged_output(target) as (scratch, staged):
        args = SFTConfig(
            output_dir=str(scratch / "trainer"),
            num_train_epochs=epochs,
            per_device_train_batch_size=batch_size,
            learning_rate=lr,
            lr_scheduler_type="linear",
            warmup_steps=0,
            seed=seed,
            data_seed=seed,
            use_cpu=use_cpu,
            report_to=[],
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            dataloader_num_workers=0,
            max_length=512,
            bf16=False,
            fp16=False,
        )
        trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
        for callback in (PrinterCallback, ProgressCallback):
            trainer.remove_callback(callback)
        trainer.train()
        if is_main_process():
            model.save_pretrained(staged)
            tokenizer.save_pretrained(staged)
    return target


__all__ = [
    "check_bank",
    "cosine",
    "distance",
    "fine_tune",
    "generate_answers",
    "load_item_bank",
    "suffix_max_similarity",
]
