"""DPO with a weight per example, on TRL's ``DPOTrainer``: the trainer of ``ns-dpo``.

:func:`train_weighted_dpo` trains like :func:`~progressgym.algorithms._trainers.train_dpo` (sigmoid DPO plus
``sft_weight`` times SFT on the chosen answers, the step's starting model as the frozen reference) on rows that
carry a ``weight`` column. The weights are rescaled to mean 1 over the whole training set
(:func:`~progressgym.algorithms.losses.normalise_weights`), so that the step's objective is the weighted mean

    L = sum_i w_i l_i / sum_i w_i

of the examples' losses ``l_i`` whatever the batching: every weight equal gives ``train_dpo``'s loss, and
zero-weight examples do not move the model. A minibatch's loss is
:func:`~progressgym.algorithms.losses.weighted_dpo_loss` averaged over its pairs plus ``sft_weight`` times
:func:`~progressgym.algorithms.losses.weighted_sft_loss`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from progressgym.algorithms._selfplay import _WithColumns
from progressgym.algorithms._trainers import (
    LoraSettings,
    OptimSettings,
    _common_args,
    _import_trl,
    _lora_config,
    _model_kwargs,
    training_run,
)
from progressgym.error import InvalidInput

WEIGHT = "weight"
"""The column of a row's weight."""


def weighted_dpo_trainer_class() -> type[Any]:
    """TRL's ``DPOTrainer`` with each pair's sigmoid and SFT terms weighted by its row's ``weight``.

    The batch's loss is ``mean_i(w_i l_i) + sft_weight * sum_i w_i nll_i / tokens`` (``nll_i``: the summed token
    NLL of the chosen completion; ``tokens``: the batch's chosen completion tokens). Only the sigmoid and SFT
    losses, the reverse-KL divergence and full-length log-probabilities (TRL's defaults) are supported.
    """
    trl = _import_trl()
    from progressgym.algorithms.losses import weighted_dpo_loss, weighted_sft_loss

    class WeightedDPOTrainer(trl.DPOTrainer):  # type: ignore[misc, name-defined]
        def _set_signature_columns_if_needed(self) -> None:
            super()._set_signature_columns_if_needed()
            columns: list[str] = list(getattr(self, "_signature_columns", None) or [])
            if WEIGHT not in columns:
                self._signature_columns = [*columns, WEIGHT]

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            unsupported = set(self.loss_types) - {"sigmoid", "sft"}
            if unsupported or self.ld_alpha is not None or self.f_divergence_type != "reverse_kl":
                raise InvalidInput("weighted DPO supports the sigmoid and sft losses with reverse KL only")
            weights = inputs.pop(WEIGHT)
            reference = self.ref_model if self.ref_model is not None else self.model
            ref_w, ref_l = self.compute_ref_log_probs(reference, inputs)
            skip = {"completion_mask", "ref_chosen_logps", "ref_rejected_logps"}
            kwargs = {k: v for k, v in inputs.items() if k not in skip}
            kwargs["use_cache"] = False
            mask = inputs["completion_mask"]
            labels = inputs["input_ids"].masked_fill(mask == 0, -100)
            outputs = model(**kwargs, labels=labels, fused_lm_head=True)
            shift_mask = mask[..., 1:]
            token_logps = outputs.log_probs[:, -shift_mask.size(1) :]
            policy_w, policy_l = token_logps.sum(dim=1).chunk(2, dim=0)
            weights = weights.to(token_logps.device)
            loss = token_logps.new_zeros(())
            for loss_type, loss_weight in zip(self.loss_types, self.loss_weights, strict=True):
                if loss_type == "sigmoid":
                    term = weighted_dpo_loss(
                        policy_w - ref_w, policy_l - ref_l, weights, beta=self.beta
                    ).mean()
                else:
                    chosen_logps, _ = token_logps.chunk(2, dim=0)
                    chosen_mask, _ = shift_mask.chunk(2, dim=0)
                    term = weighted_sft_loss(chosen_logps, chosen_mask, weights)
                loss = loss + loss_weight * term
            return (loss, outputs) if return_outputs else loss

    return WeightedDPOTrainer


def train_weighted_dpo(
    model_path: str | Path,
    rows: Sequence[Mapping[str, Any]],
    out_dir: str | Path,
    *,
    optim: OptimSettings,
    beta: float,
    sft_weight: float,
    seed: int,
    device: str = "auto",
    lora: LoraSettings | None = None,
    threads: int = 0,
) -> Path:
    """Weighted DPO (sigmoid loss plus an SFT term) from ``model_path``; saved to ``out_dir``.

    Args:
        model_path: The policy to start from, also the frozen reference.
        rows: Chat-format ``prompt``/``chosen``/``rejected`` examples, each with a ``weight`` >= 0 (at least
            one positive); rescaled here to mean 1.
        out_dir: Where the trained model goes (replaced if it exists).
        optim: Optimisation settings.
        beta: DPO's beta.
        sft_weight: Weight of the SFT term.
        seed: Seed of data order and dropout.
        device: ``auto``, ``cpu`` or ``cuda``.
        lora: Train LoRA adapters (merged before saving) instead of every weight.
        threads: Torch threads while training (0: torch's default).

    Returns:
        ``out_dir``.
    """
    trl = _import_trl()
    import datasets
    import torch

    from progressgym.algorithms.losses import normalise_weights

    if not rows:
        raise InvalidInput("DPO needs at least one preference example")
    try:
        raw = torch.tensor([float(r[WEIGHT]) for r in rows], dtype=torch.float64)
        weights = normalise_weights(raw).tolist()
    except (KeyError, ValueError) as exc:
        raise InvalidInput(f"weighted DPO needs a non-negative weight on every row: {exc}") from None
    data = [{**r, WEIGHT: w} for r, w in zip(rows, weights, strict=True)]
    losses, loss_weights = (["sigmoid", "sft"], [1.0, sft_weight]) if sft_weight > 0 else (["sigmoid"], [1.0])
    with training_run(model_path, out_dir, seed=seed, threads=threads) as run:
        args = _common_args(optim, out=run.scratch / "trainer", seed=seed, device=device, examples=len(data))
        config = trl.DPOConfig(
            **args,
            beta=beta,
            loss_type=losses,
            loss_weights=loss_weights,
            max_length=optim.max_length,
            model_init_kwargs=_model_kwargs(device),
        )
        trainer = weighted_dpo_trainer_class()(
            model=str(model_path),
            args=config,
            train_dataset=datasets.Dataset.from_list(data),
            processing_class=run.tokenizer,
            peft_config=_lora_config(lora, "CAUSAL_LM"),
        )
        trainer.data_collator = _WithColumns(trainer.data_collator, (WEIGHT,))
        run.finish(trainer)
    return Path(out_dir)


__all__ = ["WEIGHT", "train_weighted_dpo", "weighted_dpo_trainer_class"]
