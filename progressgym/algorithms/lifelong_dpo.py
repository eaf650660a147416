"""Lifelong DPO: at every step, learn the present's preferences with DPO, continuing from the last model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from progressgym.algorithms._config import DPOAlgorithmConfig
from progressgym.algorithms._preference import PreferenceExaminee, optim_settings, purpose_seed
from progressgym.algorithms._training import TrainingPair, preference_examples, train_dpo
from progressgym.evaluation.items import Scenario
from progressgym.model_ref import ModelRef
from progressgym.registration import register_algorithm


class DPOTraining(PreferenceExaminee):
    """DPO training of a step's pairs (TRL ``DPOTrainer``; sigmoid loss plus an SFT term, the reference's ftx)."""

    def train(
        self,
        start: ModelRef,
        pairs: Sequence[TrainingPair],
        scenarios: Mapping[str, Scenario],
        out: Path,
        *,
        seed: int,
    ) -> dict[str, Any]:
        """DPO from ``start`` on the pairs' examples (every configured format); saved to ``out``."""
        s = self.settings
        rows = preference_examples(
            pairs, scenarios, self.formats(), orders=s.orders, seed=purpose_seed(seed, "examples")
        )
        train_dpo(
            start.path,
            rows,
            out,
            optim=optim_settings(s),
            beta=s.beta,
            sft_weight=s.sft_weight,
            seed=seed,
            device=s.device,
            lora=self.lora(),
            threads=s.threads,
        )
        return {"examples": len(rows)}


@register_algorithm("lifelong-dpo")
class LifelongDPOExaminee(DPOTraining):
    """Lifelong DPO: learn each century's elicited preferences with DPO, continuing from the last model.

    ## Description
    At every step the examinee asks the judge which of two actions it prefers, for every pair of actions of
    every elicitation scenario (:mod:`progressgym.elicitation`; exact label log-likelihoods in both orders),
    and trains on the answers with DPO (TRL ``DPOTrainer``, ``loss_type=["sigmoid", "sft"]``,
    ``loss_weights=[1, sft_weight]``: the reference's DPO plus ``dpo_ftx``), starting from the previous
    step's model (``independent=true``: from the initial model) with that model as the frozen reference.

    Each preference is written as training examples in the open-question format and in the evaluation's
    own question formats on elicitation scenarios (:mod:`progressgym.algorithms._training`); the ``mini``
    preset repeats a preference 1-3 times by the judge's confidence ``|2p - 1|``.

    ## Configuration
    :class:`~progressgym.algorithms._config.DPOAlgorithmConfig`; presets ``full`` (the reference's 8B
    hyper-parameters: lr 3e-7 constant, 2 epochs, batch 2 x 2, beta 0.1, ftx 0.04, cutoff 1024) and
    ``mini`` (chosen automatically on the mini timeline).
    """

    config_cls: ClassVar[type[Any] | None] = DPOAlgorithmConfig
