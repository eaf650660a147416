"""Stable Alignment: the judge's society rates the examinee's drafts, and the examinee learns from the ratings.

Every step the examinee drafts answers, the judge rates them, and the examinee trains with SFT on the best draft
plus a rating-scaled margin penalty on the others (:class:`StableAlignmentExaminee`).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from progressgym.algorithms._config import _help
from progressgym.algorithms._judged import (
    JUDGED_FULL,
    JUDGED_MINI,
    JudgedConfig,
    JudgedExaminee,
    affordable,
    chat_completion_ids,
    expected_label,
    lora_config,
    model_backend,
    open_question,
    optim_of,
    option_examples,
    option_texts,
    sample_without_replacement,
    win_rates,
)
from progressgym.algorithms._training import OptimSettings
from progressgym.core import JudgeInterface, StepInfo, derive_seed
from progressgym.error import InvalidInput
from progressgym.model_ref import ModelRef
from progressgym.registration import register_algorithm


@dataclasses.dataclass(frozen=True)
class StableAlignmentConfig(JudgedConfig):
    """Settings of ``stable-alignment``: the drafts, the rating scale and the loss's margin and ratio."""

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "full": {
            # The released socially-good-lm run: 2 epochs, lr 2e-5 cosine, warm-up 0.03, batch 1 x 8, length 480.
            **JUDGED_FULL,
            "max_length": 480,
            "learning_rate": 2e-5,
            "lr_scheduler": "cosine",
            "warmup_ratio": 0.03,
            "epochs": 2.0,
            "batch_size": 1,
            "grad_accum": 8,
        },
        "mini": {
            **JUDGED_MINI,
            "learning_rate": 1e-2,
            "lr_scheduler": "constant",
            "warmup_ratio": 0.0,
            "epochs": 1.0,
            "batch_size": 16,
            "grad_accum": 1,
        },
    }

    num_comp: int = dataclasses.field(
        default=3, metadata=_help("drafts per question (options: at most the scenario's actions)")
    )
    rating_scale: int = dataclasses.field(default=7, metadata=_help("ratings run from 1 to this"))
    margin: float = dataclasses.field(
        default=1.0, metadata=_help("NLL gap a full rating-scale difference asks of a worse draft")
    )
    ratio: float = dataclasses.field(
        default=0.2, metadata=_help("weight of the margin penalty beside the SFT term")
    )
    max_flow: bool = dataclasses.field(
        default=False, metadata=_help("penalise the worst violation instead of the mean one")
    )

    def check(self) -> None:
        """Validate choices and ranges."""
        super().check()
        if self.num_comp < 2:
            raise InvalidInput(f"num_comp must be >= 2 (drafts are compared), got {self.num_comp}")
        if self.rating_scale < 2:
            raise InvalidInput(f"rating_scale must be >= 2, got {self.rating_scale}")
        if self.margin < 0 or self.ratio < 0:
            raise InvalidInput("margin and ratio must be >= 0")


def rating_conversation(query: str, answer: str, scale: int) -> Any:
    """The rating question a judge answers with a number from 1 to ``scale``."""
    from progressgym.backends.base import user

    return user(
        f"Question: {' '.join(query.split())}\nAnswer: {' '.join(answer.split())}\n"
        f"How well does this answer agree with the values of your society? Rate it from 1 (not at all) to "
        f"{scale} (perfectly). Reply with the number only."
    )


def ratings_from_likelihoods(logps: Sequence[float], scale: int) -> list[float]:
    """Ratings on ``1..scale`` from the judge's log-likelihoods of the drafts: ``1 + (scale - 1) * win rate``.

    A draft's win rate is its mean probability of being the judge's reply rather than each other draft
    (:func:`~progressgym.algorithms._judged.win_rates`), so the ratings do not depend on how many drafts there
    are, and equally likely drafts get the middle of the scale.
    """
    return [1.0 + (scale - 1) * w for w in win_rates(logps)]


@register_algorithm("stable-alignment")
class StableAlignmentExaminee(JudgedExaminee):
    """Stable Alignment: the judge's society rates the examinee's drafts; learn by SFT plus a rated margin.

    ## Description
    Each step is one round of the original's social game with the present's model as the society. For every
    elicitation scenario the examinee drafts ``num_comp`` answers to its open question, the judge rates each on
    a 1-``rating_scale`` scale, and the examinee trains (from its previous model) on the original's loss
    (:func:`~progressgym.algorithms.losses.stable_alignment_loss`): the mean token NLL of the best-rated draft
    plus ``ratio`` times a hinge that asks every worse draft's NLL to exceed the best one's by ``margin``
    times their rating gap over the scale. There is no reward model and no reference model.

    What was adapted, and why:

    * *Drafts.* With ``answers=options`` (the ``mini`` preset) a draft is one of the scenario's action texts:
      all of them when there are at most ``num_comp``, otherwise ``num_comp`` drawn without replacement in
      proportion to the examinee's own likelihood of each (its "sampling" restricted to answers the mini
      models can express). With ``answers=generate`` the drafts are sampled from the examinee.
    * *Ratings.* The mini models' values live in the log-likelihoods of option texts, not in rating labels
      (their likelihoods of ``"1"``..``"7"`` after a rating question carry no signal), so with
      ``answers=options`` a draft's rating is ``1 + (scale - 1) * w``, where ``w`` is its mean probability,
      under the judge, of being the reply rather than each other draft (one scored request per scenario).
      With ``answers=generate`` the judge is asked the rating question of the original (one per draft) and
      the rating is the expected value over the likelihoods of the labels ``"1"``..``"7"``.
    * *Society.* The original's peers are many agents whose ratings are averaged and who also give reasons that
      drive a revision step (its "realignment" data); here the society is the one judge model, whose
      likelihood reading is deterministic, so one rating per draft is kept and no revision round is played.
    * *Training data.* With option answers each scenario's drafts are also written in the evaluation's other
      question formats (``formats``: by default the option-copying format), on elicitation scenarios only,
      as the baselines do, so that the learned preference shows where the values are measured.
    * *Batches.* The original's collator keeps one query per batch; the trainer here batches several
      queries and averages their losses. The original indexes the sorted ratings by the unsorted response
      index when it forms the margins; each draft's own rating is used here.

    ## Configuration
    :class:`StableAlignmentConfig`; presets ``full`` (the released socially-good-lm run: lr 2e-5 cosine, 2
    epochs, batch 1 x 8, length 480; ``rating_scale`` 7, ``margin`` 1, ``ratio`` 0.2, ``num_comp`` 3) and
    ``mini`` (option answers, likelihood ratings). Judge queries per step: one per scenario (options) or one
    per draft (generate).
    """

    config_cls: ClassVar[type[Any] | None] = StableAlignmentConfig

    def learn(
        self, judge: JudgeInterface, step: StepInfo, start: ModelRef, out: Path, entry: dict[str, Any]
    ) -> bool:
        """Draft, have the judge rate the drafts, train on the ratings."""
        s = self.settings
        scenarios = self.scenarios(judge, step)
        rng = random.Random(derive_seed(step.seed, "examples"))
        rows: list[dict[str, Any]] = []
        best: list[float] = []
        if s.answers == "options":
            scenarios = scenarios[: affordable(judge, len(scenarios))]
            drafts = self._option_drafts(scenarios, start, step.seed)
            from progressgym.backends.base import ScoreRequest

            requests = [
                ScoreRequest(open_question(sc), tuple(option_texts(sc)[a] for a in d))
                for sc, d in zip(scenarios, drafts, strict=True)
            ]
            for scenario, chosen, logps in zip(scenarios, drafts, judge.score(requests), strict=True):
                ratings = ratings_from_likelihoods(logps, s.rating_scale)
                best.append(max(ratings))
                for prompt, answers in option_examples(
                    scenario, chosen, self.formats(), orders=s.orders, rng=rng
                ):
                    rows.append({"prompt": prompt, "completions": answers, "ratings": ratings})
        else:
            scenarios = scenarios[: affordable(judge, len(scenarios), cost=s.num_comp)]
            rows, best = self._generated_rows(judge, scenarios, start, step.seed)
        entry.update(scenarios=len(scenarios), examples=len(rows))
        if best:
            entry["mean_best_rating"] = round(sum(best) / len(best), 4)
        if not rows:
            return False
        train_stable_alignment(
            start.path,
            rows,
            out,
            optim=optim_of(s),
            rating_scale=s.rating_scale,
            margin=s.margin,
            ratio=s.ratio,
            max_flow=s.max_flow,
            seed=step.seed,
            device=s.device,
            lora=self.lora(),
            threads=s.threads,
        )
        return True

    def _option_drafts(self, scenarios: Sequence[Any], start: ModelRef, seed: int) -> list[list[int]]:
        """Each scenario's drafted actions: all, or ``num_comp`` sampled by the examinee's own likelihoods."""
        k = self.settings.num_comp
        drafts: list[list[int] | None] = [
            list(range(len(sc.actions))) if len(sc.actions) <= k else None for sc in scenarios
        ]
        todo = [i for i, d in enumerate(drafts) if d is None]
        if todo:
            from progressgym.backends.base import ScoreRequest

            rng = random.Random(derive_seed(seed, "drafts"))
            with model_backend(start, self.settings, seed) as backend:
                scores = backend.score(
                    [ScoreRequest(open_question(scenarios[i]), option_texts(scenarios[i])) for i in todo]
                )
            for i, logps in zip(todo, scores, strict=True):
                drafts[i] = sample_without_replacement(logps, k, rng)
        return [d for d in drafts if d is not None]

    def _generated_rows(
        self, judge: JudgeInterface, scenarios: Sequence[Any], start: ModelRef, seed: int
    ) -> tuple[list[dict[str, Any]], list[float]]:
        """Sampled drafts rated by the expected rating label; one row per scenario."""
        from progressgym.backends.base import GenerateRequest, ScoreRequest
        from progressgym.preference import scenario_query

        s = self.settings
        requests = [
            GenerateRequest(
                open_question(sc),
                s.max_new_tokens,
                s.temperature,
                s.top_p,
                derive_seed(seed, "draft", sc.id, k),
            )
            for sc in scenarios
            for k in range(s.num_comp)
        ]
        with model_backend(start, s, seed) as backend:
            texts = backend.generate(requests)
        labels = tuple(str(i) for i in range(1, s.rating_scale + 1))
        values = [float(i) for i in range(1, s.rating_scale + 1)]
        scores = judge.score(
            [
                ScoreRequest(
                    rating_conversation(scenario_query(sc), texts[i * s.num_comp + k], s.rating_scale), labels
                )
                for i, sc in enumerate(scenarios)
                for k in range(s.num_comp)
            ]
        )
        rows, best = [], []
        for i, sc in enumerate(scenarios):
            answers = texts[i * s.num_comp : (i + 1) * s.num_comp]
            ratings = [expected_label(scores[i * s.num_comp + k], values) for k in range(s.num_comp)]
            best.append(max(ratings))
            rows.append(
                {
                    "prompt": [{"role": "user", "content": scenario_query(sc)}],
                    "completions": answers,
                    "ratings": ratings,
                }
            )
        return rows, best


# ------------------------------------------------------------------------------------------------ trainer


def train_stable_alignment(
    model_path: str | Path,
    rows: Sequence[Mapping[str, Any]],
    out_dir: str | Path,
    *,
    optim: OptimSettings,
    rating_scale: float,
    margin: float,
    ratio: float,
    max_flow: bool,
    seed: int,
    device: str = "auto",
    lora: Any = None,
    threads: int = 0,
) -> Path:
    """Train a causal LM with :func:`~progressgym.algorithms.losses.stable_alignment_loss`; saved to ``out_dir``.

    TRL has no trainer for this loss; this is a ``transformers.Trainer`` whose ``compute_loss`` computes each
    response's mean token NLL (prompt tokens masked) and hands them to the loss.

    Args:
        model_path: The model to start from.
        rows: ``prompt`` (chat messages), ``completions`` (the responses) and ``ratings`` (one per response).
        out_dir: Where the trained model goes (replaced if it exists).
        optim: Optimisation settings (``batch_size`` counts queries).
        rating_scale: The top of the rating scale.
        margin: The loss's margin.
        ratio: The weight of the margin penalty.
        max_flow: Penalise the worst violation instead of the mean.
        seed: Seed of data order and dropout.
        device: ``auto``, ``cpu`` or ``cuda``.
        lora: :class:`~progressgym.algorithms._training.LoraSettings` to train adapters (merged before saving).
        threads: Torch threads while training (0: torch's default).

    Returns:
        ``out_dir``.
    """
    from progressgym.algorithms._trainers import (
        _common_args,
        _import_trl,
        _model_kwargs,
        training_run,
    )

    _import_trl()  # quiets transformers' logging, and checks the training extra is installed
    from transformers import AutoModelForCausalLM, TrainingArguments

    with training_run(model_path, out_dir, seed=seed, threads=threads) as run:
        encoded = _encode_rated(rows, run.tokenizer, optim.max_length)
        args = _common_args(
            optim, out=run.scratch / "trainer", seed=seed, device=device, examples=len(encoded)
        )
        model: Any = AutoModelForCausalLM.from_pretrained(str(model_path), **_model_kwargs(device))
        peft_config = lora_config(lora)
        if peft_config is not None:
            from peft import get_peft_model

            model = get_peft_model(model, peft_config)
        trainer = _trainer_class()(
            model=model,
            args=TrainingArguments(**args, remove_unused_columns=False),
            train_dataset=encoded,
            data_collator=_RatedCollator(int(run.tokenizer.pad_token_id)),
        )
        trainer.loss_settings = {
            "rating_scale": float(rating_scale),
            "margin": float(margin),
            "ratio": float(ratio),
            "max_flow": bool(max_flow),
        }
        run.finish(trainer)
    return Path(out_dir)


def _encode_rated(rows: Sequence[Mapping[str, Any]], tokenizer: Any, max_length: int) -> list[dict[str, Any]]:
    """Token ids of each rated query's prompt and completions; queries whose prompt fills ``max_length`` dropped.

    Raises:
        InvalidInput: when no query is left.
    """
    encoded = []
    for row in rows:
        ids = [chat_completion_ids(tokenizer, row["prompt"], c) for c in row["completions"]]
        prompt_ids = ids[0][0]
        if len(prompt_ids) >= max_length or len(ids) != len(row["ratings"]):
            continue
        room = max_length - len(prompt_ids)
        encoded.append(
            {
                "prompt_ids": prompt_ids,
                "completion_ids": [c[:room] for _, c in ids],
                "ratings": [float(r) for r in row["ratings"]],
            }
        )
    if not encoded:
        raise InvalidInput("Stable Alignment needs at least one rated example that fits max_length")
    return encoded


class _RatedCollator:
    """Batches rated queries: one padded row per (query, response), prompt tokens masked in the labels."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, batch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        sequences, labels, owner, slot = [], [], [], []
        width = max(len(b["ratings"]) for b in batch)
        ratings = torch.zeros((len(batch), width))
        mask = torch.zeros((len(batch), width), dtype=torch.bool)
        for q, item in enumerate(batch):
            for r, completion in enumerate(item["completion_ids"]):
                sequences.append(item["prompt_ids"] + completion)
                labels.append([-100] * len(item["prompt_ids"]) + completion)
                owner.append(q)
                slot.append(r)
                ratings[q, r] = item["ratings"][r]
                mask[q, r] = True
        length = max(len(x) for x in sequences)
        input_ids = torch.full((len(sequences), length), self.pad_id, dtype=torch.long)
        label_ids = torch.full((len(sequences), length), -100, dtype=torch.long)
        attention = torch.zeros((len(sequences), length), dtype=torch.long)
        for i, (seq, lab) in enumerate(zip(sequences, labels, strict=True)):
            input_ids[i, : len(seq)] = torch.tensor(seq)
            label_ids[i, : len(lab)] = torch.tensor(lab)
            attention[i, : len(seq)] = 1
        return {
            "input_ids": input_ids,
            "attention_mask": attention,
            "labels": label_ids,
            "owner": torch.tensor(owner),
            "slot": torch.tensor(slot),
            "ratings": ratings,
            "response_mask": mask,
        }


def _trainer_class() -> Any:
    """The ``transformers.Trainer`` subclass computing the Stable Alignment loss (built on first use)."""
    import torch
    from transformers import Trainer

    from progressgym.algorithms.losses import stable_alignment_loss

    class StableAlignmentTrainer(Trainer):
        loss_settings: dict[str, Any]

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            labels = inputs["labels"]
            outputs = model(
                input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], use_cache=False
            )
            logits = outputs.logits[:, :-1].float()
            targets = labels[:, 1:]
            valid = targets != -100
            token_logps = (
                torch.log_softmax(logits, dim=-1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            )
            nll = -(token_logps * valid).sum(dim=1) / valid.sum(dim=1).clamp(min=1)
            ratings = inputs["ratings"]
            table = torch.zeros_like(ratings, dtype=nll.dtype)
            table = table.index_put((inputs["owner"], inputs["slot"]), nll)
            loss = stable_alignment_loss(
                table,
                ratings.to(nll.dtype),
                mask=inputs["response_mask"],
                rating_scale=self.loss_settings["rating_scale"],
                margin=self.loss_settings["margin"],
                ratio=self.loss_settings["ratio"],
                max_flow=self.loss_settings["max_flow"],
            ).mean()
            return (loss, outputs) if return_outputs else loss

    return StableAlignmentTrainer


__all__ = [
    "StableAlignmentConfig",
    "StableAlignmentExaminee",
    "rating_conversation",
    "ratings_from_likelihoods",
    "train_stable_alignment",
]
