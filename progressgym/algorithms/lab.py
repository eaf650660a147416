"""LAB: taxonomy-driven synthetic data with the judge as teacher, then two-phase training.

Knowledge tuning first, then skills tuning with a replay buffer of the knowledge data (:class:`LABExaminee`).
"""

from __future__ import annotations

import dataclasses
import hashlib
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
    expected_label,
    lora_config,
    open_question,
    optim_of,
    option_examples,
    option_texts,
    sft_row,
    softmax,
    train_sft,
)
from progressgym.core import JudgeInterface, StepInfo, derive_seed
from progressgym.error import InvalidInput
from progressgym.model_ref import ModelRef
from progressgym.registration import register_algorithm

KNOWLEDGE, SKILLS = "knowledge", "compositional_skills"
"""The taxonomy's two branches: what a society holds (foundations, worldviews) and applying rules to cases."""


def leaf_of(scenario: Any) -> str:
    """The taxonomy leaf of a scenario, from the dimension it measures.

    ``knowledge/foundations/<theme>``, ``knowledge/worldviews`` or ``compositional_skills/rules/<rule>``.
    """
    family, _, name = scenario.stratum.partition(":")
    branch = SKILLS if family == "rules" else KNOWLEDGE
    return "/".join(p for p in (branch, family, name) if p)


def taxonomy(scenarios: Sequence[Any]) -> dict[str, list[Any]]:
    """The elicitation scenarios grouped by taxonomy leaf (leaves sorted, scenarios in bank order)."""
    tree: dict[str, list[Any]] = {}
    for scenario in scenarios:
        tree.setdefault(leaf_of(scenario), []).append(scenario)
    return {leaf: tree[leaf] for leaf in sorted(tree)}


def seed_examples(leaf: str, scenarios: Sequence[Any], n: int) -> list[Any]:
    """A leaf's ``n`` seed questions: a fixed choice (by a hash of the ids), the same at every step."""
    ranked = sorted(scenarios, key=lambda s: hashlib.sha256(f"lab-seed:{leaf}:{s.id}".encode()).hexdigest())
    keep = {s.id for s in ranked[:n]}
    return [s for s in scenarios if s.id in keep]


def rubric_conversation(question: str, answer: str) -> Any:
    """The teacher's evaluation of a generated question-answer pair on a three-point rubric."""
    from progressgym.backends.base import user

    return user(
        f"Question: {' '.join(question.split())}\nAnswer: {' '.join(answer.split())}\n"
        "Rate the answer: 1 if it is wrong or goes against your values, 2 if it is right but could be better, "
        "3 if it is exactly what you would say. Reply with the number only."
    )


@dataclasses.dataclass(frozen=True)
class LABConfig(JudgedConfig):
    """Settings of ``lab``: the taxonomy's seeds, the generation scale, the filter and the two phases."""

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "full": {
            # InstructLab's H100x8 profile: lr 2e-5, effective batch 128, 10 epochs per phase, warm-up, 4096
            # tokens; 5 seed examples per leaf; scale factor 30.
            **JUDGED_FULL,
            "max_length": 4096,
            "learning_rate": 2e-5,
            "lr_scheduler": "cosine",
            "warmup_ratio": 0.1,
            "epochs": 10.0,
            "batch_size": 16,
            "grad_accum": 8,
            "skills_learning_rate": 2e-5,
            "skills_epochs": 10.0,
            "skills_batch_size": 16,
            "seeds_per_leaf": 5,
            "scale_factor": 30,
            "replay_ratio": 1.0,
        },
        "mini": {
            **JUDGED_MINI,
            "learning_rate": 1e-2,
            "lr_scheduler": "constant",
            "warmup_ratio": 0.0,
            "epochs": 1.0,
            "batch_size": 16,
            "grad_accum": 1,
            "skills_learning_rate": 1e-2,
            "skills_epochs": 1.0,
            "skills_batch_size": 16,
            "seeds_per_leaf": 3,
            "scale_factor": 8,
            "replay_ratio": 0.5,
        },
    }

    seeds_per_leaf: int | None = _preset_field("seed questions per taxonomy leaf, answered by the judge")
    scale_factor: int | None = _preset_field("synthetic question-answer pairs the teacher makes per leaf")
    min_rubric: float = dataclasses.field(
        default=2.0, metadata=_help("keep a synthetic pair whose rubric score (1-3) is at least this")
    )
    confident: float = dataclasses.field(
        default=0.75,
        metadata=_help(
            "options: the teacher's answer probability that earns the top rubric score when both readings agree"
        ),
    )
    replay_ratio: float | None = _preset_field(
        "share of the knowledge data replayed during skills training (the replay buffer)"
    )
    skills_learning_rate: float | None = _preset_field("learning rate of phase 2 (skills)")
    skills_epochs: float | None = _preset_field("epochs of phase 2 (skills)")
    skills_batch_size: int | None = _preset_field("examples per device per optimiser step in phase 2")

    def check(self) -> None:
        """Validate ranges."""
        super().check()
        if self.seeds_per_leaf is not None and self.seeds_per_leaf < 1:
            raise InvalidInput(f"seeds_per_leaf must be >= 1, got {self.seeds_per_leaf}")
        if self.scale_factor is not None and self.scale_factor < 0:
            raise InvalidInput(f"scale_factor must be >= 0, got {self.scale_factor}")
        if not 1.0 <= self.min_rubric <= 3.0:
            raise InvalidInput(f"min_rubric must be in [1, 3], got {self.min_rubric}")
        if not 0.0 <= self.confident <= 1.0:
            raise InvalidInput(f"confident must be in [0, 1], got {self.confident}")
        if self.replay_ratio is not None and not 0.0 <= self.replay_ratio <= 1.0:
            raise InvalidInput(f"replay_ratio must be in [0, 1], got {self.replay_ratio}")


@dataclasses.dataclass(frozen=True)
class _Pair:
    """One taught question-answer pair."""

    leaf: str
    question: str
    answer: str
    scenario: Any = None
    action: int | None = None
    seed: bool = False
    rubric: float = 3.0


@register_algorithm("lab")
class LABExaminee(JudgedExaminee):
    """LAB: the judge teaches through taxonomy-driven synthetic data; knowledge, then skills with replay.

    ## Description
    A fixed taxonomy of value topics (:func:`taxonomy`): a ``knowledge`` branch (what a society holds: one
    leaf per moral foundation, one for worldviews) and a ``compositional_skills`` branch (applying rules to
    dilemmas: one leaf per rule), each leaf holding the elicitation scenarios that measure its dimension.
    Each step, with the present's model as the teacher:

    1. *Seeds.* Each leaf's ``seeds_per_leaf`` seed questions (fixed across steps) are answered by the teacher.
    2. *Synthetic data.* For each leaf, ``scale_factor`` new question-answer pairs, sampled locally within
       the leaf (never across leaves, as LAB does), answered by the teacher, then scored by the teacher on a
       three-point rubric; pairs scoring below ``min_rubric`` are dropped.
    3. *Phase 1, knowledge tuning:* SFT (TRL ``SFTTrainer``, loss on the answer) on the knowledge leaves' pairs.
    4. *Phase 2, skills tuning:* SFT, from the phase-1 model, on the skill leaves' pairs plus a replay buffer
       of ``replay_ratio`` of the knowledge data, so that the knowledge is not forgotten.

    What was adapted, and why:

    * *Options.* With ``answers=options`` (the ``mini`` preset) the teacher cannot write questions, so a
      leaf's "generated" questions are other scenarios of the same leaf (a fresh local sample each step), and
      the teacher's answer is the action it finds most likely as its reply to the open question (one scored
      request). The rubric is a second reading by the teacher: the same question with the options listed,
      answered by copying one (one scored request); 1 when the two readings disagree, 2 when they agree, 3
      when they agree and the first gave the answer at least ``confident`` probability. Pairs are trained in
      the open-question format and the evaluation's other formats (``formats``), on elicitation scenarios
      only. With ``answers=generate`` the teacher writes each new question from its leaf's seed pairs,
      answers it, and its rubric score is the expected value over the likelihoods of ``"1"``-``"3"``.
    * *Knowledge.* LAB's knowledge leaves come with documents that the teacher turns into grounded Q&A; value
      topics have no documents here, so the knowledge leaves are taught like the skills, from seed questions.
    * *Checkpoints.* LAB picks the best phase-2 checkpoint with MT-Bench; each phase here runs its epochs and
      keeps the last model.

    ## Configuration
    :class:`LABConfig`; presets ``full`` (InstructLab's H100 profile: lr 2e-5, batch 128, 10 epochs per
    phase; 5 seeds per leaf, scale factor 30) and ``mini``. Judge queries per step: one per seed plus two
    (options) or three (generate) per synthetic pair; the largest of the algorithms.
    """

    config_cls: ClassVar[type[Any] | None] = LABConfig

    def learn(
        self, judge: JudgeInterface, step: StepInfo, start: ModelRef, out: Path, entry: dict[str, Any]
    ) -> bool:
        """Teach the taxonomy through the judge, then train the two phases."""
        s = self.settings
        tree = taxonomy(self.scenarios(judge, step))
        rng = random.Random(derive_seed(step.seed, "sdg"))
        seeds = {leaf: seed_examples(leaf, members, s.seeds_per_leaf) for leaf, members in tree.items()}
        pairs = self._teach_seeds(judge, seeds)
        generated = self._synthesise(judge, tree, seeds, pairs, rng)
        kept = [p for p in generated if p.rubric >= s.min_rubric]
        taught = pairs + kept
        examples_rng = random.Random(derive_seed(step.seed, "examples"))
        knowledge = [r for p in taught if p.leaf.startswith(KNOWLEDGE) for r in self._rows(p, examples_rng)]
        skills = [r for p in taught if not p.leaf.startswith(KNOWLEDGE) for r in self._rows(p, examples_rng)]
        replay = rng.sample(knowledge, round(s.replay_ratio * len(knowledge))) if knowledge else []
        entry.update(
            leaves=len(tree),
            seeds=len(pairs),
            generated=len(generated),
            kept=len(kept),
            knowledge_examples=len(knowledge),
            skills_examples=len(skills),
            replayed=len(replay),
        )
        model = start
        phase1 = out.with_name(f"{out.name}-knowledge")
        peft = lora_config(self.lora())
        if knowledge:
            train_sft(
                model.path,
                knowledge,
                phase1,
                optim=optim_of(s),
                seed=derive_seed(step.seed, "knowledge"),
                device=s.device,
                peft_config=peft,
                threads=s.threads,
            )
            model = ModelRef.from_path(phase1, name="lab/knowledge")
        try:
            if skills or replay:
                train_sft(
                    model.path,
                    skills + replay,
                    out,
                    optim=optim_of(s, "skills_"),
                    seed=derive_seed(step.seed, "skills"),
                    device=s.device,
                    peft_config=lora_config(self.lora()),
                    threads=s.threads,
                )
                return True
            if model is not start:
                move_into_place(phase1, out)
                return True
            return False
        finally:
            import shutil

            if is_main_process():
                shutil.rmtree(phase1, ignore_errors=True)

    # --------------------------------------------------------------------------------------- teaching

    def _teacher_answers(self, judge: JudgeInterface, scenarios: Sequence[Any]) -> list[tuple[int, float]]:
        """Options: the teacher's likeliest action for each scenario and its probability."""
        from progressgym.backends.base import ScoreRequest

        scores = judge.score([ScoreRequest(open_question(sc), option_texts(sc)) for sc in scenarios])
        out = []
        for logps in scores:
            probs = softmax(logps)
            best = max(range(len(probs)), key=lambda i: probs[i])
            out.append((best, probs[best]))
        return out

    def _teach_seeds(self, judge: JudgeInterface, seeds: Mapping[str, Sequence[Any]]) -> list[_Pair]:
        from progressgym.preference import scenario_query

        s = self.settings
        flat = [(leaf, sc) for leaf, members in seeds.items() for sc in members]
        flat = flat[: affordable(judge, len(flat))]
        if not flat:
            return []
        if s.answers == "options":
            answers = self._teacher_answers(judge, [sc for _, sc in flat])
            return [
                _Pair(leaf, scenario_query(sc), option_texts(sc)[a], sc, a, seed=True)
                for (leaf, sc), (a, _) in zip(flat, answers, strict=True)
            ]
        replies = judge.generate([scenario_query(sc) for _, sc in flat], max_new_tokens=s.max_new_tokens)
        return [
            _Pair(leaf, scenario_query(sc), r, seed=True)
            for (leaf, sc), r in zip(flat, replies, strict=True)
            if r.strip()
        ]

    def _synthesise(
        self,
        judge: JudgeInterface,
        tree: Mapping[str, Sequence[Any]],
        seeds: Mapping[str, Sequence[Any]],
        seed_pairs: Sequence[_Pair],
        rng: random.Random,
    ) -> list[_Pair]:
        """The teacher's synthetic pairs per leaf, with their rubric scores."""
        s = self.settings
        if s.answers == "options":
            chosen: list[tuple[str, Any]] = []
            for leaf, members in tree.items():
                seed_ids = {sc.id for sc in seeds[leaf]}
                pool = [sc for sc in members if sc.id not in seed_ids]
                chosen += [(leaf, sc) for sc in rng.sample(pool, min(s.scale_factor, len(pool)))]
            chosen = chosen[: affordable(judge, len(chosen), cost=2)]
            return self._option_pairs(judge, chosen)
        return self._generated_pairs(judge, tree, seed_pairs, rng)

    def _option_pairs(self, judge: JudgeInterface, chosen: Sequence[tuple[str, Any]]) -> list[_Pair]:
        from progressgym.backends.base import ScoreRequest
        from progressgym.evaluation.prompts import scenario_prompts
        from progressgym.preference import scenario_query

        if not chosen:
            return []
        answers = self._teacher_answers(judge, [sc for _, sc in chosen])
        checks = [scenario_prompts(sc, formats=["repeat"])[0] for _, sc in chosen]
        second = judge.score([ScoreRequest(p.conversation, p.candidates) for p in checks])
        pairs = []
        for (leaf, sc), (action, prob), check, logps in zip(chosen, answers, checks, second, strict=True):
            again = check.candidate_action[max(range(len(logps)), key=lambda i: logps[i])]
            rubric = 1.0 if again != action else (3.0 if prob >= self.settings.confident else 2.0)
            pairs.append(_Pair(leaf, scenario_query(sc), option_texts(sc)[action], sc, action, rubric=rubric))
        return pairs

    def _generated_pairs(
        self,
        judge: JudgeInterface,
        tree: Mapping[str, Sequence[Any]],
        seed_pairs: Sequence[_Pair],
        rng: random.Random,
    ) -> list[_Pair]:
        """The teacher writes a question from its leaf's seed pairs, answers it, and rates the pair (3 queries)."""
        from progressgym.backends.base import ScoreRequest

        s = self.settings
        by_leaf: dict[str, list[_Pair]] = {}
        for pair in seed_pairs:
            by_leaf.setdefault(pair.leaf, []).append(pair)
        prompts, leaves = [], []
        for leaf in tree:
            examples = by_leaf.get(leaf, [])
            if not examples:
                continue
            for _ in range(s.scale_factor):
                shown = rng.sample(examples, min(3, len(examples)))
                text = "\n\n".join(f"Question: {p.question}\nAnswer: {p.answer}" for p in shown)
                prompts.append(
                    f"Here are questions and answers about {leaf.rsplit('/', 1)[-1].replace('_', ' ')}:\n\n{text}\n\n"
                    "Write one new question on the same topic, different from these. Reply with the question only."
                )
                leaves.append(leaf)
        count = affordable(judge, len(prompts), cost=3)
        prompts, leaves = prompts[:count], leaves[:count]
        if not prompts:
            return []
        questions = [
            q.strip()
            for q in judge.generate(prompts, max_new_tokens=s.max_new_tokens, temperature=s.temperature)
        ]
        answers = judge.generate(questions, max_new_tokens=s.max_new_tokens)
        scores = judge.score(
            [
                ScoreRequest(rubric_conversation(q, a), ("1", "2", "3"))
                for q, a in zip(questions, answers, strict=True)
            ]
        )
        return [
            _Pair(leaf, q, a, rubric=expected_label(lp, (1.0, 2.0, 3.0)))
            for leaf, q, a, lp in zip(leaves, questions, answers, scores, strict=True)
            if q and a.strip()
        ]

    def _rows(self, pair: _Pair, rng: random.Random) -> list[dict[str, Any]]:
        if pair.scenario is None or pair.action is None:
            return [sft_row([{"role": "user", "content": pair.question}], pair.answer)]
        return [
            sft_row(prompt, answers[0])
            for prompt, answers in option_examples(
                pair.scenario, [pair.action], self.formats(), orders=self.settings.orders, rng=rng
            )
        ]


__all__ = [
    "KNOWLEDGE",
    "SKILLS",
    "LABConfig",
    "LABExaminee",
    "leaf_of",
    "rubric_conversation",
    "seed_examples",
    "taxonomy",
]
