"""Plumbing shared by the algorithms that learn from the judge's ratings and answers at every step.

``stable-alignment``, ``self-align``, ``gpo`` and ``lab`` differ in what they ask the judge and in how they
train, but share:

* :class:`JudgedConfig`: the fields every one of them has (training device, optimiser, example formats,
  LoRA, how answers are produced), with ``mini`` and ``full`` presets;
* :class:`JudgedExaminee`: the step skeleton (start from the previous or the initial model, learn, save to
  ``<workdir>/step-NNN``, log what happened, JSON state for resume);
* how answers are produced and read (the ``answers`` setting):

  - ``options``: the answers to a scenario's question are its action texts, and a model's view of them is
    read from log-likelihoods: the judge's (or the examinee's) log-likelihood of each action as its reply to
    the scenario's open question. The ``mini`` timeline's models hold their values there, in what they would
    answer, and not in text they generate or in rating labels; every count of a judge query is still one
    :meth:`~progressgym.core.JudgeInterface.score` request;
  - ``generate``: answers are generated text, as in the original methods, and ratings are read from the
    likelihoods of rating labels (e.g. the expected value over ``"1"``..``"7"``);

* turning a scenario's answers into training examples in the evaluation's question formats
  (:func:`option_examples`, the listwise counterpart of :func:`~progressgym.algorithms._training.pair_examples`)
  and a TRL ``SFTTrainer`` run with optional LoRA (:func:`train_sft`).
"""

from __future__ import annotations

import abc
import dataclasses
import math
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from progressgym.algorithms._config import PresetConfig, _check_positive, _help, _preset_field
from progressgym.algorithms._examinee import TrainedExaminee
from progressgym.algorithms._training import OptimSettings, format_prompts
from progressgym.core import JudgeInterface, StepInfo, derive_seed
from progressgym.error import InvalidInput
from progressgym.model_ref import ModelRef

if TYPE_CHECKING:
    from progressgym.backends.base import Backend, Conversation
    from progressgym.evaluation.items import Scenario

ANSWER_MODES: tuple[str, ...] = ("options", "generate")
"""How answers are produced and read (see the module docstring)."""

JUDGED_FULL: dict[str, Any] = {
    "answers": "generate",
    "max_scenarios": 0,
    "formats": "open",
    "orders": "all",
    "max_length": 1024,
    "threads": 0,
    "use_lora": False,
    "max_new_tokens": 256,
    "temperature": 0.7,
    "top_p": 0.9,
}
"""Preset values of :class:`JudgedConfig`'s fields for the ``full`` preset (8B models, generated answers)."""

JUDGED_MINI: dict[str, Any] = {
    # The mini timeline's models hold their values in the log-likelihoods of option texts, and learn them in
    # the open-question and option-copying formats.
    "answers": "options",
    "max_scenarios": 0,
    "formats": "open,repeat",
    "orders": "one",
    "max_length": 512,
    "threads": 1,
    "use_lora": False,
    "max_new_tokens": 32,
    "temperature": 1.0,
    "top_p": 1.0,
}
"""Preset values of :class:`JudgedConfig`'s fields for the ``mini`` preset (CPU minutes)."""


@dataclasses.dataclass(frozen=True)
class JudgedConfig(PresetConfig):
    """Settings every judge-taught algorithm shares; subclasses add their own and the optimiser's presets."""

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "answers": ANSWER_MODES,
        "orders": ("all", "one"),
        "device": ("auto", "cpu", "cuda"),
    }

    independent: bool = dataclasses.field(
        default=False,
        metadata=_help("restart every step from the initial model instead of the previous step's model"),
    )
    answers: str | None = _preset_field(
        "how answers are produced and read: options (a scenario's action texts, read by log-likelihood) or "
        "generate (generated text, ratings read from rating-label likelihoods)"
    )
    max_scenarios: int | None = _preset_field(
        "elicitation scenarios used per step, a fresh sample each step (0: all of them)"
    )
    formats: str | None = _preset_field(
        "comma-separated formats an option answer is trained in: open, label, yesno, repeat"
    )
    orders: str | None = _preset_field(
        "option orders per evaluation format: all (every cyclic order) or one (one, drawn from the step seed)"
    )
    max_length: int | None = _preset_field("longest training example in tokens")
    threads: int | None = _preset_field("torch threads while training (0: torch's default)")
    device: str = dataclasses.field(default="auto", metadata=_help("training device: auto, cpu or cuda"))
    use_lora: bool | None = _preset_field(
        "train LoRA adapters (merged after each step) instead of all weights"
    )
    lora_r: int = dataclasses.field(default=8, metadata=_help("LoRA rank"))
    lora_alpha: int = dataclasses.field(default=16, metadata=_help("LoRA alpha"))
    lora_dropout: float = dataclasses.field(default=0.0, metadata=_help("LoRA dropout"))
    max_new_tokens: int | None = _preset_field(
        "generation budget of each generated answer (answers=generate)"
    )
    temperature: float | None = _preset_field("sampling temperature of the examinee's answers")
    top_p: float | None = _preset_field("nucleus sampling mass of the examinee's answers")
    learning_rate: float | None = _preset_field("learning rate")
    lr_scheduler: str | None = _preset_field(
        "learning-rate schedule (transformers name: constant, linear...)"
    )
    warmup_ratio: float | None = _preset_field("share of the training steps spent warming up")
    epochs: float | None = _preset_field("training epochs per step")
    batch_size: int | None = _preset_field("examples per device per optimiser step")
    grad_accum: int | None = _preset_field("gradient accumulation steps")

    def check(self) -> None:
        """Validate choices and ranges."""
        super().check()
        if self.formats is not None:
            from progressgym.algorithms._training import parse_formats

            parse_formats(self.formats)
        for name in ("max_scenarios", "threads"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise InvalidInput(f"{name} must be >= 0, got {value}")
        for name in ("max_length", "lora_r", "lora_alpha", "max_new_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InvalidInput(f"{name} must be >= 1, got {value}")
        if self.temperature is not None and self.temperature <= 0:
            raise InvalidInput(f"temperature must be positive, got {self.temperature}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise InvalidInput(f"top_p must be in (0, 1], got {self.top_p}")
        _check_positive(self)


def optim_of(settings: Any, prefix: str = "") -> OptimSettings:
    """The :class:`OptimSettings` of a configuration's ``<prefix>learning_rate``... fields."""
    return OptimSettings(
        learning_rate=getattr(settings, f"{prefix}learning_rate"),
        scheduler=getattr(settings, f"{prefix}lr_scheduler", settings.lr_scheduler),
        warmup_ratio=getattr(settings, f"{prefix}warmup_ratio", settings.warmup_ratio),
        epochs=getattr(settings, f"{prefix}epochs"),
        batch_size=getattr(settings, f"{prefix}batch_size"),
        grad_accum=getattr(settings, f"{prefix}grad_accum", settings.grad_accum),
        max_length=settings.max_length,
    )


class JudgedExaminee(TrainedExaminee):
    """Base of the judge-taught algorithms: the step skeleton; subclasses implement :meth:`learn`."""

    config_cls: ClassVar[type[Any] | None] = JudgedConfig

    def update(self, judge: JudgeInterface, step: StepInfo) -> ModelRef:
        """Learn from the judge, starting from the current (or initial) model; save to ``step-NNN``."""
        started = time.perf_counter()
        before = judge.usage.queries
        start = self.step_start()
        entry: dict[str, Any] = {"step": step.step, "century": step.century}
        trained = self.learn(judge, step, start, self.step_dir(step), entry)
        self.adopt(step, start, trained=trained)
        entry["queries"] = judge.usage.queries - before
        entry["seconds"] = round(time.perf_counter() - started, 3)
        self.log.append(entry)
        return self.current_model

    @abc.abstractmethod
    def learn(
        self, judge: JudgeInterface, step: StepInfo, start: ModelRef, out: Path, entry: dict[str, Any]
    ) -> bool:
        """One step of learning from ``start``; write the new model to ``out``.

        Args:
            judge: The step's judge interface (every query goes through it and is counted).
            step: The step; ``step.seed`` seeds all randomness.
            start: The model to start from.
            out: Where the trained model goes.
            entry: The step's log entry, to fill with counts.

        Returns:
            Whether a model was written to ``out`` (``False``: nothing to learn, keep ``start``).
        """

    # ------------------------------------------------------------------------------------------ helpers

    def scenarios(self, judge: JudgeInterface, step: StepInfo) -> list[Scenario]:
        """The step's elicitation scenarios: all of them, or a seeded sample of ``max_scenarios``."""
        return sample_scenarios(judge.elicitation_scenarios(), self.settings.max_scenarios, step.seed)


def sample_scenarios(scenarios: Sequence[Scenario], limit: int, seed: int) -> list[Scenario]:
    """``limit`` scenarios drawn with ``seed`` and kept in bank order (``limit`` 0 or too large: all)."""
    if not limit or limit >= len(scenarios):
        return list(scenarios)
    keep = set(random.Random(derive_seed(seed, "scenarios")).sample(range(len(scenarios)), limit))
    return [s for i, s in enumerate(scenarios) if i in keep]


def affordable(judge: JudgeInterface, wanted: int, cost: int = 1) -> int:
    """How many of ``wanted`` requests costing ``cost`` queries each fit in the step's remaining budget."""
    budget = judge.budget_left
    return wanted if budget is None else min(wanted, budget // max(1, cost))


def softmax(logps: Sequence[float]) -> list[float]:
    """Probabilities from log-likelihoods (numerically stable)."""
    top = max(logps)
    weights = [math.exp(x - top) for x in logps]
    total = sum(weights)
    return [w / total for w in weights]


def win_rates(logps: Sequence[float]) -> list[float]:
    """Each answer's mean probability of beating each other answer, ``mean_j sigmoid(l_i - l_j)`` (one answer: 1/2)."""
    n = len(logps)
    if n < 2:
        return [0.5] * n
    return [sum(_sigmoid(logps[i] - logps[j]) for j in range(n) if j != i) / (n - 1) for i in range(n)]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def expected_label(logps: Sequence[float], values: Sequence[float]) -> float:
    """The expected value of ``values`` under the softmax of the labels' log-likelihoods."""
    return sum(p * v for p, v in zip(softmax(logps), values, strict=True))


def sample_without_replacement(logps: Sequence[float], k: int, rng: random.Random) -> list[int]:
    """``k`` distinct indices drawn in proportion to ``softmax(logps)`` (Gumbel top-k), in index order."""
    if k >= len(logps):
        return list(range(len(logps)))
    keys = [x - math.log(-math.log(rng.random() or 1e-300)) for x in logps]
    return sorted(sorted(range(len(logps)), key=lambda i: -keys[i])[:k])


@contextmanager
def model_backend(model: ModelRef, settings: Any, seed: int) -> Iterator[Backend]:
    """The examinee's own model behind the ``hf`` backend (for drafting and self-generated answers)."""
    from progressgym._distributed import rank_device
    from progressgym.algorithms._training import torch_threads, use_cpu
    from progressgym.backends import BackendOptions, make_backend

    device = "cpu" if use_cpu(settings.device) else rank_device("cuda")
    with torch_threads(settings.threads):
        backend = make_backend("hf", model.path, BackendOptions(device=device, seed=seed))
        try:
            yield backend
        finally:
            backend.close()


def open_question(scenario: Scenario) -> Conversation:
    """A scenario's open question as a one-turn conversation."""
    from progressgym.backends.base import user
    from progressgym.preference import scenario_query

    return user(scenario_query(scenario))


def option_texts(scenario: Scenario) -> tuple[str, ...]:
    """A scenario's actions as replies (whitespace collapsed, as displayed)."""
    from progressgym.evaluation.prompts import clean_option

    return tuple(clean_option(a) for a in scenario.actions)


def option_examples(
    scenario: Scenario,
    actions: Sequence[int],
    formats: Sequence[str],
    *,
    orders: str = "all",
    rng: random.Random | None = None,
) -> list[tuple[list[dict[str, str]], list[str]]]:
    """A scenario's prompts in ``formats``, each with the answers that choose ``actions`` (in that order).

    ``open`` asks the open question and answers with the action texts; the evaluation formats list the options
    (all of the scenario's, in every cyclic order or in one drawn from ``rng``) and answer with the letter,
    ``Yes``/``No`` or copied text that picks each action.

    Returns:
        ``(chat prompt, [answer per action])`` pairs.
    """
    from progressgym.preference import scenario_query

    if orders not in ("all", "one"):
        raise InvalidInput(f"orders must be all or one, got {orders!r}")
    texts = option_texts(scenario)
    rows: list[tuple[list[dict[str, str]], list[str]]] = []
    if "open" in formats:
        rows.append(([{"role": "user", "content": scenario_query(scenario)}], [texts[a] for a in actions]))
    for prompt in format_prompts(scenario, formats, orders=orders, rng=rng):
        rows.append(([{"role": "user", "content": prompt.text}], [prompt.answer_for(a) for a in actions]))
    return rows


def chat_completion_ids(
    tokenizer: Any, prompt: Sequence[Mapping[str, str]], completion: str
) -> tuple[list[int], list[int]]:
    """Token ids of a chat prompt and of the assistant reply that completes it, as TRL's trainers cut them.

    The prompt is rendered with the generation prompt; the reply's ids are what the full conversation (with the
    reply as an assistant turn, end-of-turn marker included) adds after the prompt.
    """
    from progressgym.backends import _chat

    messages = [dict(m) for m in prompt]
    if _chat.has_chat_template(tokenizer):
        prompt_text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        full_text = tokenizer.apply_chat_template(
            [*messages, {"role": "assistant", "content": completion}], tokenize=False
        )
        prompt_ids = list(tokenizer.encode(prompt_text, add_special_tokens=False))
        full_ids = list(tokenizer.encode(full_text, add_special_tokens=False))
    else:
        from progressgym.backends.base import Message

        conversation = tuple(Message(m["role"], m["content"]) for m in messages)  # type: ignore[arg-type]
        prompt_ids = _chat.encode_prompt(tokenizer, conversation)
        full_ids = prompt_ids + list(tokenizer.encode(" " + completion, add_special_tokens=False))
        if tokenizer.eos_token_id is not None:
            full_ids.append(int(tokenizer.eos_token_id))
    common = 0
    for a, b in zip(prompt_ids, full_ids, strict=False):
        if a != b:
            break
        common += 1
    return full_ids[:common], full_ids[common:]


# ------------------------------------------------------------------------------------------------ training


def lora_config(lora: Any, target_modules: str | Sequence[str] = "all-linear") -> Any:
    """A peft ``LoraConfig`` for a causal LM (``None`` when ``lora`` is ``None``)."""
    if lora is None:
        return None
    try:
        from peft import LoraConfig
    except ImportError:
        from progressgym.error import DependencyNotInstalled

        raise DependencyNotInstalled("LoRA needs peft: pip install 'progressgym[train]'") from None
    targets = target_modules if isinstance(target_modules, str) else list(target_modules)
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )


def attention_modules(model_path: str | Path) -> list[str] | str:
    """The attention projections' module names (``q_proj``... when the model has them, else all linear layers)."""
    import json

    config = json.loads((Path(model_path) / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") in ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3"):
        return ["q_proj", "k_proj", "v_proj", "o_proj"]
    return "all-linear"


def train_sft(
    model_path: str | Path,
    rows: Sequence[Mapping[str, Any]],
    out_dir: str | Path,
    *,
    optim: OptimSettings,
    seed: int,
    device: str = "auto",
    peft_config: Any = None,
    threads: int = 0,
) -> Path:
    """Supervised fine-tuning on chat ``prompt``/``completion`` rows (loss on the completion only), TRL ``SFTTrainer``.

    Args:
        model_path: The model to start from.
        rows: Chat-format ``prompt`` (messages) and ``completion`` (one assistant message) rows.
        out_dir: Where the trained model goes (replaced if it exists).
        optim: Optimisation settings.
        seed: Seed of data order and dropout (and of LoRA's initialisation).
        device: ``auto``, ``cpu`` or ``cuda``.
        peft_config: A peft config (e.g. from :func:`lora_config`): train adapters, merged before saving.
        threads: Torch threads while training (0: torch's default).

    Returns:
        ``out_dir``.
    """
    from progressgym.algorithms._trainers import _common_args, _import_trl, _model_kwargs, training_run

    trl = _import_trl()
    import datasets

    if not rows:
        raise InvalidInput("SFT needs at least one example")
    with training_run(model_path, out_dir, seed=seed, threads=threads) as run:
        args = _common_args(optim, out=run.scratch / "trainer", seed=seed, device=device, examples=len(rows))
        config = trl.SFTConfig(
            **args,
            max_length=optim.max_length,
            completion_only_loss=True,
            model_init_kwargs=_model_kwargs(device),
        )
        trainer = trl.SFTTrainer(
            model=str(model_path),
            args=config,
            train_dataset=datasets.Dataset.from_list([dict(r) for r in rows]),
            processing_class=run.tokenizer,
            peft_config=peft_config,
        )
        run.finish(trainer)
    return Path(out_dir)


def sft_row(prompt: Sequence[Mapping[str, str]], completion: str) -> dict[str, Any]:
    """One SFT row: a chat prompt and the assistant's completion."""
    return {"prompt": [dict(m) for m in prompt], "completion": [{"role": "assistant", "content": completion}]}


__all__ = [
    "ANSWER_MODES",
    "JUDGED_FULL",
    "JUDGED_MINI",
    "JudgedConfig",
    "JudgedExaminee",
    "affordable",
    "attention_modules",
    "chat_completion_ids",
    "expected_label",
    "lora_config",
    "model_backend",
    "open_question",
    "optim_of",
    "option_examples",
    "option_texts",
    "sample_scenarios",
    "sample_without_replacement",
    "sft_row",
    "softmax",
    "train_sft",
    "win_rates",
]
