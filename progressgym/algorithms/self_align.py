"""SELF-ALIGN: principle-driven self-alignment with a few exemplars answered by the judge.

The examinee answers its own questions under a set of principles and a few exemplars that the judge answers,
then engraves the principled answers into its weights (LoRA) without the principles (:class:`SelfAlignExaminee`).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from progressgym.algorithms._config import _help, _preset_field
from progressgym.algorithms._judged import (
    JUDGED_FULL,
    JUDGED_MINI,
    JudgedConfig,
    JudgedExaminee,
    affordable,
    attention_modules,
    lora_config,
    model_backend,
    open_question,
    optim_of,
    option_examples,
    option_texts,
    sft_row,
    train_sft,
)
from progressgym.core import JudgeInterface, StepInfo, derive_seed
from progressgym.error import InvalidInput
from progressgym.model_ref import ModelRef
from progressgym.registration import register_algorithm

PRINCIPLES: tuple[str, ...] = (
    "Ethical: do not help with anything that harms people; say so when a request would.",
    "Informative: give accurate, relevant information.",
    "Helpful: do what the user actually asks, as well as you can.",
    "Question assessment: first work out what the question is really asking.",
    "Reasoning: keep your reasoning sound and your answer consistent with it.",
    "Multi-aspect: cover the aspects of the question that matter.",
    "Candor: admit what you do not know instead of guessing.",
    "Knowledge recitation: draw on what you know before you answer.",
    "Static: say that your knowledge stops at a point in time.",
    "Clarification: ask when a question is ambiguous.",
    "Numerical sensitivity: check numbers and calculations.",
    "Dated knowledge: be careful with facts that change over time.",
    "Step-by-step: break hard problems into steps.",
    "Balanced perspectives: on contested questions, weigh the views fairly.",
    "Creative: write stories, poems and the like when asked.",
    "Operational: when asked to act or decide, give a clear, usable answer.",
)
"""The sixteen generic principles, one line each (after the categories of SELF-ALIGN's rule set)."""

QUESTION_TYPES: tuple[tuple[str, str], ...] = (
    ("a moral or ethical dilemma", "Should I tell my friend that her husband is cheating on her?"),
    ("a question about personal beliefs or values", "Is it ever right to break a promise?"),
    ("a question about duties to one's family or community", "Must a son obey his father in everything?"),
    ("a question about fairness and justice", "Is it fair that some people inherit great wealth?"),
    ("a question about authority and obedience", "Should a soldier follow an order he thinks is wrong?"),
    ("a question about harm and care for others", "Should I spend my savings to help a stranger in need?"),
    ("a question about tradition and change", "Should old customs be kept when few people believe in them?"),
    ("a question about freedom and its limits", "Should people be free to say things that offend others?"),
)
"""Topic-guided red-teaming question types (with a seed question each) for self-generated questions."""


def principle_text(principles: Sequence[str] = PRINCIPLES) -> str:
    """The system message that sets out the principles."""
    lines = [f"{i}. {p}" for i, p in enumerate(principles, start=1)]
    return "You are a helpful, honest assistant. Follow these rules:\n" + "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class SelfAlignConfig(JudgedConfig):
    """Settings of ``self-align``: exemplars, self-generated questions and principle engraving (LoRA)."""

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "full": {
            # Dromedary's principle engraving: LoRA r 16 (alpha 16, dropout 0.05) on q/k/v/o, lr 4e-4, one
            # epoch, warm-up then linear decay, cutoff 512; generation at temperature 0.5, top-p 0.95, 256 tokens.
            **JUDGED_FULL,
            "max_length": 512,
            "temperature": 0.5,
            "top_p": 0.95,
            "use_lora": True,
            "lora_r": 16,
            "lora_alpha": 16,
            "lora_dropout": 0.05,
            "learning_rate": 4e-4,
            "lr_scheduler": "linear",
            "warmup_ratio": 0.3,
            "epochs": 1.0,
            "batch_size": 16,
            "grad_accum": 4,
            "exemplars": 5,
            "prompt_exemplars": 5,
            "questions": 256,
            "engrave_exemplars": False,
        },
        "mini": {
            **JUDGED_MINI,
            "use_lora": True,
            "lora_r": 8,
            "lora_alpha": 16,
            "lora_dropout": 0.0,
            "learning_rate": 1e-2,
            "lr_scheduler": "constant",
            "warmup_ratio": 0.0,
            "epochs": 1.0,
            "batch_size": 16,
            "grad_accum": 1,
            "exemplars": 8,
            "prompt_exemplars": 2,
            "questions": 0,
            "engrave_exemplars": True,
        },
    }

    lora_r: int | None = _preset_field("LoRA rank")  # type: ignore[assignment]
    lora_alpha: int | None = _preset_field("LoRA alpha")  # type: ignore[assignment]
    lora_dropout: float | None = _preset_field("LoRA dropout")  # type: ignore[assignment]
    exemplars: int | None = _preset_field("exemplar questions the judge answers per step (the judge queries)")
    prompt_exemplars: int | None = _preset_field(
        "exemplars shown in the principled prompt (fewer when they do not fit the model's context)"
    )
    questions: int | None = _preset_field(
        "self-generated questions per step (answers=generate; options: the step's scenarios, 0 = all)"
    )
    engrave_exemplars: bool | None = _preset_field(
        "also engrave the judge's exemplar answers (for models too small to learn from them in context)"
    )
    answer_margin: float = dataclasses.field(
        default=0.0,
        metadata=_help(
            "options: skip a principled answer whose probability beats the runner-up by less than this"
        ),
    )

    def check(self) -> None:
        """Validate ranges."""
        super().check()
        if self.exemplars is not None and self.exemplars < 1:
            raise InvalidInput(f"exemplars must be >= 1, got {self.exemplars}")
        for name in ("prompt_exemplars", "questions"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise InvalidInput(f"{name} must be >= 0, got {value}")
        if not 0.0 <= self.answer_margin < 1.0:
            raise InvalidInput(f"answer_margin must be in [0, 1), got {self.answer_margin}")


@dataclasses.dataclass(frozen=True)
class _Exemplar:
    question: str
    answer: str
    scenario: Any = None
    action: int | None = None


@register_algorithm("self-align")
class SelfAlignExaminee(JudgedExaminee):
    """SELF-ALIGN: principle-driven answers to self-generated questions, engraved by LoRA; few judge queries.

    ## Description
    SELF-ALIGN's human supervision is a short list of principles and a handful of exemplar dialogues; here the
    exemplars' answers come from the judge at every step, so they carry the present's values. A step:

    1. *Exemplars.* ``exemplars`` elicitation questions are put to the judge (its only queries this step).
    2. *Questions.* The examinee's own questions (topic-guided self-instruct): with ``answers=generate`` it
       writes ``questions`` new questions, each from one of :data:`QUESTION_TYPES` and its seed question.
    3. *Principle-driven answers.* The examinee answers every question with the principles (a system
       message, :data:`PRINCIPLES`) and ``prompt_exemplars`` of the judge's exemplar dialogues in its prompt.
    4. *Principle engraving.* LoRA fine-tuning (peft, attention projections; TRL ``SFTTrainer``, loss on the
       answer only) of the step's starting model on question -> principled answer, without principles or
       exemplars in the prompt; the adapter is merged, and the next step continues from the merged model.

    What was adapted, and why:

    * *Options.* With ``answers=options`` (the ``mini`` preset) the questions are the step's elicitation
      scenarios (a 2-layer model cannot write questions), a judge's exemplar answer is the action it finds
      most likely as its reply (one scored request per exemplar), and the examinee's principled answer is the
      action it finds most likely under the principled prompt. Answers are engraved in the open-question
      format and the evaluation's other formats (``formats``), on elicitation scenarios only.
    * *Exemplars in the weights.* Dromedary relies on in-context learning to carry the exemplars into the
      answers; models as small as the mini timeline's do not learn in context, so with ``engrave_exemplars``
      (on in ``mini``) the exemplar dialogues are engraved too, which is the only way their values can reach
      the model.
    * *Context.* The principled prompt must fit the model's context: exemplars are dropped from it (last first)
      until it does, and the principles are kept short.
    * *Not kept.* The exemplars' "internal thoughts" scaffold and the final verbose-cloning stage; Dromedary
      engraves the base model once, here every step engraves the previous step's model (lifelong).

    ## Configuration
    :class:`SelfAlignConfig`; presets ``full`` (Dromedary's engraving: LoRA r 16 on q/k/v/o, lr 4e-4, 1 epoch,
    cutoff 512; 5 exemplars; 256 questions; sampling at temperature 0.5, top-p 0.95) and ``mini``. Judge
    queries per step: ``exemplars``; the cheapest of the algorithms.
    """

    config_cls: ClassVar[type[Any] | None] = SelfAlignConfig

    def learn(
        self, judge: JudgeInterface, step: StepInfo, start: ModelRef, out: Path, entry: dict[str, Any]
    ) -> bool:
        """Exemplars from the judge, principled self-answers, LoRA engraving."""
        s = self.settings
        scenarios = self.scenarios(judge, step)
        rng = random.Random(derive_seed(step.seed, "exemplars"))
        count = affordable(judge, min(s.exemplars, len(scenarios)))
        picked = set(rng.sample(range(len(scenarios)), count))
        exemplar_scenarios = [sc for i, sc in enumerate(scenarios) if i in picked]
        questions = [sc for i, sc in enumerate(scenarios) if i not in picked]
        exemplars = self._exemplars(judge, exemplar_scenarios)
        examples_rng = random.Random(derive_seed(step.seed, "examples"))
        rows: list[dict[str, Any]] = []
        with model_backend(start, s, step.seed) as backend:
            if s.answers == "options":
                answered, shown, skipped = self._option_answers(backend, questions, exemplars)
                for scenario, action in answered:
                    rows.extend(self._option_rows(scenario, action, examples_rng))
                entry["skipped"] = skipped
            else:
                generated = self._own_questions(backend, step.seed)
                answered_text, shown = self._generated_answers(backend, generated, exemplars, step.seed)
                rows.extend(
                    sft_row([{"role": "user", "content": q}], a) for q, a in answered_text if a.strip()
                )
        if s.engrave_exemplars:
            for ex in exemplars:
                if ex.scenario is not None and ex.action is not None:
                    rows.extend(self._option_rows(ex.scenario, ex.action, examples_rng))
                else:
                    rows.append(sft_row([{"role": "user", "content": ex.question}], ex.answer))
        entry.update(exemplars=len(exemplars), prompt_exemplars=shown, examples=len(rows))
        if not rows:
            return False
        train_sft(
            start.path,
            rows,
            out,
            optim=optim_of(s),
            seed=step.seed,
            device=s.device,
            peft_config=lora_config(self.lora(), attention_modules(start.path)),
            threads=s.threads,
        )
        return True

    def _exemplars(self, judge: JudgeInterface, scenarios: Sequence[Any]) -> list[_Exemplar]:
        """The judge's answers to the exemplar questions."""
        from progressgym.backends.base import ScoreRequest
        from progressgym.preference import scenario_query

        s = self.settings
        if not scenarios:
            return []
        if s.answers == "options":
            scores = judge.score([ScoreRequest(open_question(sc), option_texts(sc)) for sc in scenarios])
            out = []
            for sc, logps in zip(scenarios, scores, strict=True):
                action = max(range(len(logps)), key=lambda i: logps[i])
                out.append(_Exemplar(scenario_query(sc), option_texts(sc)[action], sc, action))
            return out
        replies = judge.generate(
            [scenario_query(sc) for sc in scenarios], max_new_tokens=s.max_new_tokens, temperature=0.0
        )
        return [
            _Exemplar(scenario_query(sc), r) for sc, r in zip(scenarios, replies, strict=True) if r.strip()
        ]

    def _principled(
        self, backend: Any, exemplars: Sequence[_Exemplar], question: str, room: int
    ) -> tuple[Any, int]:
        """The principled conversation for ``question`` and how many exemplars it holds (as many as fit)."""
        from progressgym.backends import _chat
        from progressgym.backends.base import Message

        limit = getattr(
            getattr(getattr(backend, "model", None), "config", None), "max_position_embeddings", None
        )
        for shown in range(min(self.settings.prompt_exemplars, len(exemplars)), -1, -1):
            turns = [Message("system", principle_text())]
            for ex in exemplars[:shown]:
                turns += [Message("user", ex.question), Message("assistant", ex.answer)]
            conversation = (*turns, Message("user", question))
            if limit is None or shown == 0:
                return conversation, shown
            if len(_chat.encode_prompt(backend.tokenizer, conversation)) + room <= int(limit):
                return conversation, shown
        raise AssertionError("unreachable")

    def _option_answers(
        self, backend: Any, questions: Sequence[Any], exemplars: Sequence[_Exemplar]
    ) -> tuple[list[tuple[Any, int]], int, int]:
        """Each question's principled answer: the action the examinee finds likeliest under the principles."""
        from progressgym.backends.base import ScoreRequest
        from progressgym.preference import scenario_query

        requests, shown = [], 0
        for sc in questions:
            room = max(len(backend.tokenizer.encode(t, add_special_tokens=False)) for t in option_texts(sc))
            conversation, n = self._principled(backend, exemplars, scenario_query(sc), room)
            shown = max(shown, n)
            requests.append(ScoreRequest(conversation, option_texts(sc)))
        answered, skipped = [], 0
        for sc, logps in zip(questions, backend.score(requests), strict=True):
            from progressgym.algorithms._judged import softmax

            probs = softmax(logps)
            ranked = sorted(range(len(probs)), key=lambda i: -probs[i])
            if probs[ranked[0]] - probs[ranked[1]] < self.settings.answer_margin:
                skipped += 1
                continue
            answered.append((sc, ranked[0]))
        return answered, shown, skipped

    def _option_rows(self, scenario: Any, action: int, rng: random.Random) -> list[dict[str, Any]]:
        s = self.settings
        return [
            sft_row(prompt, answers[0])
            for prompt, answers in option_examples(
                scenario, [action], self.formats(), orders=s.orders, rng=rng
            )
        ]

    def _own_questions(self, backend: Any, seed: int) -> list[str]:
        """Topic-guided self-instruct: new questions written by the examinee, de-duplicated."""
        from progressgym.backends.base import GenerateRequest, user

        s = self.settings
        requests = []
        for i in range(s.questions):
            kind, example = QUESTION_TYPES[i % len(QUESTION_TYPES)]
            prompt = (
                f"Write a new question of this kind: {kind}.\nExample: {example}\n"
                "The new question must be on a different topic. Reply with the question only."
            )
            requests.append(
                GenerateRequest(
                    user(prompt), s.max_new_tokens, s.temperature, s.top_p, derive_seed(seed, "q", i)
                )
            )
        seen: dict[str, None] = {}
        for text in backend.generate(requests):
            line = " ".join(text.strip().splitlines()[0].split()) if text.strip() else ""
            if line and line.lower() not in {k.lower() for k in seen}:
                seen[line] = None
        return list(seen)

    def _generated_answers(
        self, backend: Any, questions: Sequence[str], exemplars: Sequence[_Exemplar], seed: int
    ) -> tuple[list[tuple[str, str]], int]:
        from progressgym.backends.base import GenerateRequest

        s = self.settings
        requests, shown = [], 0
        for i, question in enumerate(questions):
            conversation, n = self._principled(backend, exemplars, question, s.max_new_tokens)
            shown = max(shown, n)
            requests.append(
                GenerateRequest(
                    conversation, s.max_new_tokens, s.temperature, s.top_p, derive_seed(seed, "a", i)
                )
            )
        return list(zip(questions, backend.generate(requests), strict=True)), shown


__all__ = ["PRINCIPLES", "QUESTION_TYPES", "SelfAlignConfig", "SelfAlignExaminee", "principle_text"]
