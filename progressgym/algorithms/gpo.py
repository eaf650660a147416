"""GPO: a general preference model of the judge and self-play preference optimisation.

A GPM learns the judge's pairwise preferences, fills the preference table of the examinee's sampled responses,
and the examinee is updated with the self-play (SPPO/GPO) objective (:class:`GPOExaminee`).
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from progressgym._distributed import is_main_process
from progressgym._paths import move_into_place
from progressgym.algorithms._config import _help, _preset_field
from progressgym.algorithms._judged import (
    JUDGED_FULL,
    JUDGED_MINI,
    JudgedConfig,
    JudgedExaminee,
    affordable,
    model_backend,
    open_question,
    optim_of,
    option_examples,
    option_texts,
    sample_without_replacement,
)
from progressgym.algorithms._selfplay import GeneralPreferenceModel, train_gpm, train_sppo
from progressgym.core import Comparison, JudgeInterface, StepInfo, derive_seed
from progressgym.error import InvalidInput
from progressgym.model_ref import ModelRef
from progressgym.registration import register_algorithm


@dataclasses.dataclass(frozen=True)
class GPOConfig(JudgedConfig):
    """Settings of ``gpo``: the responses per prompt, the GPM, and the self-play objective."""

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        **JudgedConfig.CHOICES,
        "objective": ("gpo", "sppo"),
    }
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "full": {
            # GPO-Llama-3-8B-Instruct-GPM-2B: beta 1e-3, lr 5e-7 RMSprop, batch 8, linear warm-up 0.1, 3
            # iterations; GPM-Gemma-2B: value-head dimension 6, tau 0.1, lr 1e-5, batch 32, 2 epochs.
            **JUDGED_FULL,
            "learning_rate": 5e-7,
            "lr_scheduler": "linear",
            "warmup_ratio": 0.1,
            "epochs": 1.0,
            "batch_size": 8,
            "grad_accum": 1,
            "optimizer": "rmsprop",
            "num_responses": 5,
            "iterations": 3,
            "beta": 1e-3,
            "embedding_dim": 6,
            "gpm_learning_rate": 1e-5,
            "gpm_epochs": 2.0,
            "gpm_batch_size": 32,
        },
        "mini": {
            **JUDGED_MINI,
            "learning_rate": 3e-3,
            "lr_scheduler": "constant",
            "warmup_ratio": 0.0,
            "epochs": 1.0,
            "batch_size": 16,
            "grad_accum": 1,
            "optimizer": "adamw_torch",
            "num_responses": 4,
            "iterations": 1,
            "beta": 0.5,
            "embedding_dim": 4,
            "gpm_learning_rate": 3e-3,
            "gpm_epochs": 4.0,
            "gpm_batch_size": 32,
        },
    }

    optimizer: str | None = _preset_field("policy optimiser (transformers name: rmsprop, adamw_torch...)")
    num_responses: int | None = _preset_field(
        "responses sampled per prompt, K (options: at most the scenario's actions)"
    )
    iterations: int | None = _preset_field(
        "self-play iterations per step, each on its share of the prompts, from the previous iteration's policy"
    )
    objective: str = dataclasses.field(
        default="gpo",
        metadata=_help(
            "gpo (targets eta x mean skew-symmetric score) or sppo (targets eta x (mean win probability - 1/2))"
        ),
    )
    beta: float | None = _preset_field(
        "strength of the tie to the iteration's starting policy (eta = 1/beta)"
    )
    tau: float = dataclasses.field(
        default=0.1, metadata=_help("GPM temperature: P(y > y') = sigmoid(s / tau)")
    )
    embedding_dim: int | None = _preset_field("GPM preference-embedding size 2k (even)")
    label_share: float = dataclasses.field(
        default=1.0,
        metadata=_help("share of the step's prompts whose responses the judge compares (the rest: GPM only)"),
    )
    label_margin: float = dataclasses.field(
        default=0.02,
        metadata=_help("judge preferences with |p - 1/2| below this are not used to train the GPM"),
    )
    gpm_learning_rate: float | None = _preset_field("GPM learning rate")
    gpm_epochs: float | None = _preset_field("GPM epochs per step")
    gpm_batch_size: int | None = _preset_field("GPM pairs per device per optimiser step")

    def check(self) -> None:
        """Validate choices and ranges."""
        super().check()
        if self.num_responses is not None and self.num_responses < 2:
            raise InvalidInput(f"num_responses must be >= 2, got {self.num_responses}")
        if self.iterations is not None and self.iterations < 1:
            raise InvalidInput(f"iterations must be >= 1, got {self.iterations}")
        if self.embedding_dim is not None and (self.embedding_dim < 2 or self.embedding_dim % 2):
            raise InvalidInput(f"embedding_dim must be even and >= 2, got {self.embedding_dim}")
        if self.beta is not None and self.beta <= 0:
            raise InvalidInput(f"beta must be positive, got {self.beta}")
        if self.tau <= 0:
            raise InvalidInput(f"tau must be positive, got {self.tau}")
        if not 0.0 < self.label_share <= 1.0:
            raise InvalidInput(f"label_share must be in (0, 1], got {self.label_share}")
        if not 0.0 <= self.label_margin < 0.5:
            raise InvalidInput(f"label_margin must be in [0, 0.5), got {self.label_margin}")


@dataclasses.dataclass(frozen=True)
class _Prompt:
    """One prompt of a step and the examinee's responses to it."""

    scenario: Any
    query: list[dict[str, str]]
    texts: tuple[str, ...]
    actions: tuple[int, ...] = ()
    """Options mode: the actions the texts are."""


@register_algorithm("gpo")
class GPOExaminee(JudgedExaminee):
    """GPO: a general preference model of the judge fills the preference table; self-play policy updates.

    ## Description
    Each step: the examinee samples ``num_responses`` (K) responses per prompt; the judge compares them in
    pairs; a General Preference Model (GPM) is trained on those labels; the GPM fills every prompt's K x K
    preference table; and the policy is updated by self-play preference optimisation, ``iterations`` times,
    each iteration on its share of the prompts with the policy at its start as the reference.

    * *GPM.* The policy at the step's start with a new linear head giving a preference embedding ``v`` of size
      ``embedding_dim`` (2k) at the last token of prompt + response; ``s(y > y') = <R v, v'>`` with ``R``
      block-diagonal ``[[0, -1], [1, 0]]``, so preferences need not be transitive (a Bradley-Terry reward is
      the special case). Trained with TRL's ``RewardTrainer`` (its tokenisation, batching and loop; the head
      widened from one score to 2k outputs, the loss replaced) on
      :func:`~progressgym.algorithms.losses.gpm_loss` with the judge's probability as a soft label
      (``p = 1`` is the original's hard-label loss).
    * *Policy update.* For each prompt the best (``w``) and worst (``l``) response by their targets
      (:func:`~progressgym.algorithms.losses.sppo_targets`): ``objective=gpo``, ``eta`` x the response's mean
      score ``s/tau`` against the other responses (its expected advantage under GPO's objective
      ``E[s(y > y')] - beta KL``); ``objective=sppo``, ``eta`` x (mean win probability ``sigmoid(s/tau)`` - 1/2),
      SPPO's own target. The loss (:func:`~progressgym.algorithms.losses.sppo_loss`) regresses
      ``log pi(y) / pi_t(y)`` on the targets, with ``eta = 1 / beta``; it runs in TRL's ``DPOTrainer``
      (tokenisation, reference model, log-probabilities) with the loss replaced.

    What was adapted, and why:

    * *Responses and labels.* With ``answers=options`` (the ``mini`` preset) the responses are the scenario's
      action texts, K of them drawn in proportion to the examinee's own likelihoods when there are more, and
      the judge's preference between two of them is ``sigmoid(l_i - l_j)`` of its log-likelihoods of each as its
      reply to the open question: one scored request labels every pair of a prompt. The mini models' values live
      there, not in the labels of the pairwise question. With ``answers=generate`` responses are sampled and
      each pair costs one :meth:`~progressgym.core.JudgeInterface.compare` query (the pairwise question's label
      likelihoods, both orders).
    * *Budget.* ``label_share`` < 1 has the judge label only that share of the prompts; the GPM fills in the
      rest, which is what a preference model is for.
    * *The GPO loss.* The reference implementation's ``sppo_score`` loss is not public; the target used here
      follows from GPO's objective as described above.
    * *Training data.* With option answers every (``w``, ``l``) pair is also written in the evaluation's other
      question formats (``formats``), on elicitation scenarios only, as the baselines do. The GPM itself only
      sees the open question.

    ## Configuration
    :class:`GPOConfig`; presets ``full`` (GPO-Llama-3-8B-Instruct-GPM-2B: beta 1e-3, lr 5e-7 RMSprop, batch 8,
    3 iterations, K 5; GPM: 2k 6, tau 0.1, lr 1e-5, batch 32, 2 epochs) and ``mini``. Judge queries per step:
    one per labelled prompt (options) or K(K-1)/2 per labelled prompt (generate).
    """

    config_cls: ClassVar[type[Any] | None] = GPOConfig

    def learn(
        self, judge: JudgeInterface, step: StepInfo, start: ModelRef, out: Path, entry: dict[str, Any]
    ) -> bool:
        """Sample, label, fit the GPM, fill the tables, run the self-play iterations."""
        s = self.settings
        scenarios = self.scenarios(judge, step)
        prompts = self._responses(scenarios, start, derive_seed(step.seed, "responses", 0))
        prompts = [p for p in prompts if len(p.texts) >= 2]
        order = list(range(len(prompts)))
        random.Random(derive_seed(step.seed, "labelled")).shuffle(order)
        wanted = max(1, round(s.label_share * len(prompts)))
        k = s.num_responses
        cost = 1 if s.answers == "options" else k * (k - 1) // 2
        labelled = [prompts[i] for i in sorted(order[: affordable(judge, wanted, cost)])]
        pairs = self._labels(judge, labelled)
        entry.update(prompts=len(prompts), labelled=len(labelled), gpm_pairs=len(pairs))
        if not pairs:
            return False
        gpm = train_gpm(
            start.path,
            pairs,
            optim=optim_of(s, "gpm_"),
            dim=s.embedding_dim,
            tau=s.tau,
            seed=derive_seed(step.seed, "gpm"),
            device=s.device,
            threads=s.threads,
        )
        entry["gpm_accuracy"] = round(gpm.accuracy(pairs), 4)
        policy = start
        rng = random.Random(derive_seed(step.seed, "examples"))
        gaps: list[float] = []
        rows_total = 0
        for it in range(s.iterations):
            share = prompts[it :: s.iterations]
            if it > 0:
                share = self._responses(
                    [p.scenario for p in share], policy, derive_seed(step.seed, "responses", it)
                )
                share = [p for p in share if len(p.texts) >= 2]
            rows = self._rows(gpm, share, rng, gaps)
            if not rows:
                continue
            target = out if it == s.iterations - 1 else out.with_name(f"{out.name}-iter{it}")
            train_sppo(
                policy.path,
                rows,
                target,
                optim=optim_of(s),
                optimizer=s.optimizer,
                beta=s.beta,
                seed=derive_seed(step.seed, "policy", it),
                device=s.device,
                lora=self.lora(),
                threads=s.threads,
            )
            rows_total += len(rows)
            if policy is not start and policy.path != str(out) and is_main_process():
                import shutil

                shutil.rmtree(policy.path, ignore_errors=True)
            policy = ModelRef.from_path(target, name=f"gpo/iteration-{it}")
        gpm.close()
        entry["examples"] = rows_total
        if gaps:
            entry["mean_target_gap"] = round(sum(gaps) / len(gaps), 4)
        if policy is start:
            return False
        if Path(policy.path) != out:
            move_into_place(policy.path, out)
        return True

    # -------------------------------------------------------------------------------------------- steps

    def _responses(self, scenarios: Sequence[Any], policy: ModelRef, seed: int) -> list[_Prompt]:
        """K responses per scenario's open question: actions drawn by the policy's likelihoods, or samples."""
        from progressgym.backends.base import GenerateRequest, ScoreRequest
        from progressgym.preference import scenario_query

        s = self.settings
        k = s.num_responses
        query = [[{"role": "user", "content": scenario_query(sc)}] for sc in scenarios]
        if s.answers == "options":
            out: list[_Prompt | None] = [
                _Prompt(sc, q, option_texts(sc), tuple(range(len(sc.actions))))
                if len(sc.actions) <= k
                else None
                for sc, q in zip(scenarios, query, strict=True)
            ]
            todo = [i for i, p in enumerate(out) if p is None]
            if todo:
                rng = random.Random(seed)
                with model_backend(policy, s, seed) as backend:
                    scores = backend.score(
                        [ScoreRequest(open_question(scenarios[i]), option_texts(scenarios[i])) for i in todo]
                    )
                for i, logps in zip(todo, scores, strict=True):
                    chosen = sample_without_replacement(logps, k, rng)
                    texts = option_texts(scenarios[i])
                    out[i] = _Prompt(scenarios[i], query[i], tuple(texts[a] for a in chosen), tuple(chosen))
            return [p for p in out if p is not None]
        requests = [
            GenerateRequest(
                open_question(sc), s.max_new_tokens, s.temperature, s.top_p, derive_seed(seed, sc.id, j)
            )
            for sc in scenarios
            for j in range(k)
        ]
        with model_backend(policy, s, seed) as backend:
            replies = backend.generate(requests)
        prompts = []
        for i, (sc, q) in enumerate(zip(scenarios, query, strict=True)):
            unique = tuple(dict.fromkeys(replies[i * k : (i + 1) * k]))
            prompts.append(_Prompt(sc, q, unique))
        return prompts

    def _labels(self, judge: JudgeInterface, prompts: Sequence[_Prompt]) -> list[dict[str, Any]]:
        """The judge's pairwise preferences, oriented chosen-first, with the probability as a soft label."""
        from progressgym.backends.base import ScoreRequest

        s = self.settings
        probabilities: list[list[tuple[int, int, float]]] = []
        if s.answers == "options":
            import math

            scores = judge.score([ScoreRequest(open_question(p.scenario), p.texts) for p in prompts])
            for logps in scores:
                probabilities.append(
                    [
                        (i, j, 1.0 / (1.0 + math.exp(max(-700.0, min(700.0, logps[j] - logps[i])))))
                        for i, j in itertools.combinations(range(len(logps)), 2)
                    ]
                )
        else:
            combos = [list(itertools.combinations(range(len(p.texts)), 2)) for p in prompts]
            answers = judge.compare(
                [
                    Comparison(p.query[0]["content"], p.texts[i], p.texts[j])
                    for p, pairs in zip(prompts, combos, strict=True)
                    for i, j in pairs
                ]
            )
            cursor = 0
            for pairs in combos:
                probabilities.append([(i, j, answers[cursor + n]) for n, (i, j) in enumerate(pairs)])
                cursor += len(pairs)
        rows = []
        for prompt, found in zip(prompts, probabilities, strict=True):
            for i, j, p in found:
                if abs(p - 0.5) < s.label_margin:
                    continue
                chosen, rejected, q = (i, j, p) if p >= 0.5 else (j, i, 1.0 - p)
                rows.append(
                    {
                        "prompt": prompt.query,
                        "chosen": [{"role": "assistant", "content": prompt.texts[chosen]}],
                        "rejected": [{"role": "assistant", "content": prompt.texts[rejected]}],
                        "preference": float(q),
                    }
                )
        return rows

    def _rows(
        self, gpm: GeneralPreferenceModel, prompts: Sequence[_Prompt], rng: random.Random, gaps: list[float]
    ) -> list[dict[str, Any]]:
        """Targets from the GPM's tables; the best and worst response of each prompt, in every format.

        Each prompt's target gap ``t_w - t_l`` is appended to ``gaps`` (for the step's log).
        """
        from progressgym.algorithms.losses import sppo_targets

        s = self.settings
        rows = []
        tables = gpm.tables([(prompt.query, prompt.texts) for prompt in prompts])
        for prompt, table in zip(prompts, tables, strict=True):
            targets = sppo_targets(table, eta=1.0 / s.beta, objective=s.objective).tolist()
            w = max(range(len(targets)), key=lambda i: targets[i])
            l = min(range(len(targets)), key=lambda i: targets[i])  # noqa: E741
            if w == l:
                continue
            extra = {"target_chosen": float(targets[w]), "target_rejected": float(targets[l])}
            gaps.append(float(targets[w] - targets[l]))
            if s.answers == "options":
                examples = option_examples(
                    prompt.scenario,
                    [prompt.actions[w], prompt.actions[l]],
                    self.formats(),
                    orders=s.orders,
                    rng=rng,
                )
            else:
                examples = [(prompt.query, [prompt.texts[w], prompt.texts[l]])]
            for messages, (chosen, rejected) in examples:
                rows.append(
                    {
                        "prompt": messages,
                        "chosen": [{"role": "assistant", "content": chosen}],
                        "rejected": [{"role": "assistant", "content": rejected}],
                        **extra,
                    }
                )
        return rows


__all__ = ["GPOConfig", "GPOExaminee", "GeneralPreferenceModel", "train_gpm", "train_sppo"]
