"""The GPM and the self-play policy update of ``gpo``, on TRL's ``RewardTrainer`` and ``DPOTrainer``.

* :func:`train_gpm` fits a General Preference Model (preference embeddings, skew-symmetric score) to pairwise
  preferences; :class:`GeneralPreferenceModel` fills preference tables with it.
* :func:`train_sppo` runs one self-play iteration of :func:`~progressgym.algorithms.losses.sppo_loss`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from progressgym.algorithms._judged import chat_completion_ids, lora_config
from progressgym.algorithms._training import OptimSettings
from progressgym.error import InvalidInput

# ------------------------------------------------------------------------------------------------ the GPM


class GeneralPreferenceModel:
    """A trained GPM in memory: preference embeddings of responses, and their skew-symmetric score tables."""

    def __init__(self, model: Any, tokenizer: Any, *, tau: float, max_length: int) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.tau = tau
        self.max_length = max_length

    def embed(self, items: Sequence[tuple[Sequence[Mapping[str, str]], str]], *, batch: int = 64) -> Any:
        """``[len(items), 2k]`` preference embeddings of ``(chat prompt, response)`` items, in batches."""
        import torch

        sequences = []
        for prompt, response in items:
            prompt_ids, completion_ids = chat_completion_ids(self.tokenizer, prompt, response)
            sequences.append((prompt_ids + completion_ids)[: self.max_length])
        pad = int(self.model.config.get_text_config().pad_token_id or 0)
        device = next(self.model.parameters()).device
        out = []
        for start in range(0, len(sequences), batch):
            chunk = sequences[start : start + batch]
            width = max(len(x) for x in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, seq in enumerate(chunk):
                ids[i, : len(seq)] = torch.tensor(seq)
                mask[i, : len(seq)] = 1
            with torch.no_grad():
                logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            out.append(logits.float().cpu())
        return torch.cat(out) if out else torch.zeros((0, 0))

    def tables(self, prompts: Sequence[tuple[Sequence[Mapping[str, str]], Sequence[str]]]) -> list[Any]:
        """For each ``(chat prompt, K responses)``, the ``[K, K]`` table ``s(y_i > y_j) / tau``."""
        from progressgym.algorithms.losses import preference_table

        vectors = self.embed([(prompt, r) for prompt, responses in prompts for r in responses])
        tables, cursor = [], 0
        for _, responses in prompts:
            tables.append(preference_table(vectors[cursor : cursor + len(responses)], tau=self.tau))
            cursor += len(responses)
        return tables

    def accuracy(self, rows: Sequence[Mapping[str, Any]]) -> float:
        """Share of ``rows`` (chosen-first pairs) whose order the GPM agrees with."""
        from progressgym.algorithms.losses import skew_symmetric_score

        if not rows:
            return 0.0
        vectors = self.embed(
            [(row["prompt"], row[side][0]["content"]) for row in rows for side in ("chosen", "rejected")]
        )
        scores = skew_symmetric_score(vectors[0::2], vectors[1::2])
        return float((scores > 0).float().mean())

    def close(self) -> None:
        """Drop the model."""
        self.model = None


def train_gpm(
    model_path: str | Path,
    rows: Sequence[Mapping[str, Any]],
    *,
    optim: OptimSettings,
    dim: int,
    tau: float,
    seed: int,
    device: str = "auto",
    threads: int = 0,
) -> GeneralPreferenceModel:
    """Train a GPM initialised from ``model_path`` on chosen-first pairs with a ``preference`` probability.

    The model is ``AutoModelForSequenceClassification`` on the policy's body with its score head replaced by a
    bias-free linear map to ``dim`` outputs (initialised as the original, normal with std 1/(hidden + 1)),
    trained by TRL's ``RewardTrainer`` with :func:`~progressgym.algorithms.losses.gpm_loss` as the loss.

    Returns:
        The trained model, in memory.
    """
    from progressgym.algorithms._trainers import (
        _common_args,
        _import_trl,
        _model_kwargs,
        _quiet,
        _tokenizer,
        torch_threads,
    )

    trl = _import_trl()
    import tempfile

    import datasets
    import torch
    from transformers import AutoModelForSequenceClassification, set_seed

    from progressgym.algorithms.losses import gpm_loss

    if not rows:
        raise InvalidInput("a GPM needs at least one preference pair")

    class GPMTrainer(trl.RewardTrainer):  # type: ignore[misc, name-defined]
        def _set_signature_columns_if_needed(self) -> None:
            self._signature_columns = ["chosen_ids", "rejected_ids", "preference"]

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            outputs = model(
                input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], use_cache=False
            )
            chosen, rejected = outputs.logits.float().chunk(2)
            loss = gpm_loss(chosen, rejected, tau=tau, target=inputs["preference"])
            return (loss, outputs) if return_outputs else loss

    set_seed(seed)
    tokenizer = _tokenizer(model_path)
    with torch_threads(threads), tempfile.TemporaryDirectory(prefix="gpm-") as scratch:
        kwargs = _model_kwargs(device)
        model: Any = AutoModelForSequenceClassification.from_pretrained(
            str(model_path), num_labels=1, pad_token_id=tokenizer.pad_token_id, **kwargs
        )
        hidden = int(model.config.get_text_config().hidden_size)
        head = torch.nn.Linear(hidden, dim, bias=False)
        torch.nn.init.normal_(head.weight, mean=0.0, std=1.0 / (hidden + 1))
        model.score = head.to(dtype=next(model.parameters()).dtype)
        args = _common_args(
            optim, out=Path(scratch) / "trainer", seed=seed, device=device, examples=len(rows)
        )
        trainer = GPMTrainer(
            model=model,
            args=trl.RewardConfig(**args, max_length=optim.max_length),
            train_dataset=datasets.Dataset.from_list([dict(r) for r in rows]),
            processing_class=tokenizer,
        )
        trainer.data_collator = _WithColumns(trainer.data_collator, ("preference",))
        _quiet(trainer)
        trainer.train()
        trained = trainer.model
    return GeneralPreferenceModel(trained, tokenizer, tau=tau, max_length=optim.max_length)


class _WithColumns:
    """A collator that also passes the examples' float columns ``names`` through as tensors."""

    def __init__(self, inner: Any, names: Sequence[str]) -> None:
        self.inner = inner
        self.names = tuple(names)

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        out = dict(self.inner([{k: v for k, v in e.items() if k not in self.names} for e in examples]))
        for name in self.names:
            out[name] = torch.tensor([float(e[name]) for e in examples], dtype=torch.float32)
        return out


# --------------------------------------------------------------------------------------- the policy update


def train_sppo(
    model_path: str | Path,
    rows: Sequence[Mapping[str, Any]],
    out_dir: str | Path,
    *,
    optim: OptimSettings,
    optimizer: str,
    beta: float,
    seed: int,
    device: str = "auto",
    lora: Any = None,
    threads: int = 0,
) -> Path:
    """One self-play iteration of :func:`~progressgym.algorithms.losses.sppo_loss`; saved to ``out_dir``.

    ``model_path`` is both the starting policy and the frozen reference ``pi_t``.

    Args:
        model_path: The policy at the iteration's start.
        rows: Chat ``prompt``/``chosen``/``rejected`` rows with ``target_chosen`` and ``target_rejected``.
        out_dir: Where the updated policy goes (replaced if it exists).
        optim: Optimisation settings.
        optimizer: The transformers optimiser name.
        beta: Recorded in TRL's config (the targets already hold ``eta = 1 / beta``).
        seed: Seed of data order and dropout.
        device: ``auto``, ``cpu`` or ``cuda``.
        lora: :class:`~progressgym.algorithms._training.LoraSettings` to train adapters (merged before saving).
        threads: Torch threads while training (0: torch's default).
    """
    from progressgym.algorithms._trainers import _common_args, _import_trl, _model_kwargs, training_run

    trl = _import_trl()
    import datasets

    from progressgym.algorithms.losses import sppo_loss

    if not rows:
        raise InvalidInput("a self-play update needs at least one pair")
    targets = ("target_chosen", "target_rejected")

    class SPPOTrainer(trl.DPOTrainer):  # type: ignore[misc, name-defined]
        def _set_signature_columns_if_needed(self) -> None:
            super()._set_signature_columns_if_needed()
            columns: list[str] = list(getattr(self, "_signature_columns", None) or [])
            self._signature_columns = [*columns, *targets]

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            target_w, target_l = inputs.pop("target_chosen"), inputs.pop("target_rejected")
            reference = self.ref_model if self.ref_model is not None else self.model
            ref_w, ref_l = self.compute_ref_log_probs(reference, inputs)
            skip = {"completion_mask", "ref_chosen_logps", "ref_rejected_logps"}
            kwargs = {k: v for k, v in inputs.items() if k not in skip}
            kwargs["use_cache"] = False
            mask = inputs["completion_mask"]
            labels = inputs["input_ids"].masked_fill(mask == 0, -100)
            outputs = model(**kwargs, labels=labels, fused_lm_head=True)
            logps = outputs.log_probs[:, -(mask.size(1) - 1) :].sum(dim=1)
            policy_w, policy_l = logps.chunk(2, dim=0)
            loss = sppo_loss(policy_w - ref_w, policy_l - ref_l, target_w, target_l).mean()
            return (loss, outputs) if return_outputs else loss

    with training_run(model_path, out_dir, seed=seed, threads=threads) as run:
        args = _common_args(optim, out=run.scratch / "trainer", seed=seed, device=device, examples=len(rows))
        config = trl.DPOConfig(
            **args,
            optim=optimizer,
            beta=beta,
            max_length=optim.max_length,
            model_init_kwargs=_model_kwargs(device),
        )
        trainer = SPPOTrainer(
            model=str(model_path),
            args=config,
            train_dataset=datasets.Dataset.from_list([dict(r) for r in rows]),
            processing_class=run.tokenizer,
            peft_config=lora_config(lora),
        )
        trainer.data_collator = _WithColumns(trainer.data_collator, targets)
        run.finish(trainer)
    return Path(out_dir)


__all__ = ["GeneralPreferenceModel", "train_gpm", "train_sppo"]
