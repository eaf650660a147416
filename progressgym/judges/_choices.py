"""Coevolve's ``choose`` answers: what a model that cannot write holds, and teaching it to the proxy.

A model's answer to a scenario is read from its likelihoods, not from its samples: its distribution over the
scenario's actions as the reply to the scenario's open question (the softmax of each action's log-likelihood,
the expectation of an action drawn by the model's own likelihoods). The proxy learns such answers in every form
the benchmark asks about a scenario, by the soft-choice training that made the ``mini`` models hold their
values (:mod:`progressgym.timeline.mini.choice_training`): each evaluation format in one random option order
per pass, the pairwise "which response do you prefer" question for a random ordered pair of actions, and the
open question.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from progressgym.backends.base import BackendOptions, ScoreRequest, user
from progressgym.evaluation.items import Scenario

FLOOR = 0.02
"""Least probability taught on any action (the ``mini`` build's floor): no answer is made impossible."""
CHOICE_LEARNING_RATE = 1e-2
"""Default peak learning rate of choice training (measured on ``mini``; see :class:`CoevolveJudge`)."""
CHOICE_BATCH_SIZE = 32
"""Examples per optimiser step (the ``mini`` build's batch size)."""


def action_distributions(
    backend: str,
    model_path: str,
    scenarios: Sequence[Scenario],
    *,
    device: str,
    settings: dict[str, Any] | None = None,
) -> list[np.ndarray]:
    """Each scenario's distribution over its actions as a model's reply to its open question.

    The candidates are the scenario's actions, written as replies after its open question
    (:func:`progressgym.preference.scenario_query`); the distribution is the softmax of their log-likelihoods.
    Deterministic: nothing is sampled.

    Args:
        backend: Inference backend (``hf`` or ``vllm``).
        model_path: The model.
        scenarios: The scenarios.
        device: Backend device.
        settings: Further backend options by name.
    """
    from progressgym.backends import make_backend
    from progressgym.evaluation.prompts import clean_option
    from progressgym.preference import scenario_query

    requests = [
        ScoreRequest(user(scenario_query(s)), tuple(clean_option(a) for a in s.actions)) for s in scenarios
    ]
    with make_backend(backend, model_path, BackendOptions(device=device, **(settings or {}))) as engine:
        scores = engine.score(requests)
    out = []
    for row in scores:
        logits = np.asarray(row, dtype=np.float64)
        probs = np.exp(logits - logits.max())
        out.append(probs / probs.sum())
    return out


def choice_examples(scenario: Scenario, probs: np.ndarray, rng: np.random.Generator) -> list[Any]:
    """One pass's training examples teaching the distribution ``probs`` over ``scenario``'s actions.

    Each evaluation format in one random option order, the pairwise preference question for one random ordered
    pair of actions (two for four actions), and the open question; probabilities are floored at
    :data:`FLOOR`. The same forms as the ``mini`` build (``scenario_examples`` in
    :mod:`progressgym.timeline.mini.build`), with a given distribution instead of a target vector's.
    """
    from progressgym.evaluation.prompts import clean_option, scenario_prompts
    from progressgym.preference import PREFERENCE_LABELS, preference_conversation, scenario_query
    from progressgym.timeline.mini.choice_training import ChoiceExample

    target = np.clip(np.asarray(probs, dtype=np.float64), FLOOR, 1.0 - FLOOR)
    target /= target.sum()
    by_format: dict[str, list[Any]] = {}
    for prompt in scenario_prompts(scenario):
        by_format.setdefault(prompt.format, []).append(prompt)
    examples = [
        ChoiceExample(p.conversation, p.candidates, tuple(float(target[a]) for a in p.candidate_action))
        for p in (options[rng.integers(len(options))] for options in by_format.values())
    ]
    query = scenario_query(scenario)
    pairs = list(itertools.permutations(range(len(scenario.actions)), 2))
    picks = rng.choice(len(pairs), size=1 if len(scenario.actions) == 2 else 2, replace=False)
    for first, second in (pairs[i] for i in sorted(picks)):
        pair = target[[first, second]] / target[[first, second]].sum()
        conversation = preference_conversation(query, scenario.actions[first], scenario.actions[second])
        examples.append(ChoiceExample(conversation, PREFERENCE_LABELS, (float(pair[0]), float(pair[1]))))
    options = tuple(clean_option(a) for a in scenario.actions)
    examples.append(ChoiceExample(user(query), options, tuple(float(p) for p in target)))
    return examples


def tokenizer_key(model_path: str | os.PathLike[str]) -> str:
    """A hash of a model's tokenizer files: models with the same key tokenise every example alike."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(Path(model_path).glob("*")):
        if path.is_file() and ("token" in path.name or path.name == "chat_template.jinja"):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def teach_distributions(
    model_path: str | os.PathLike[str],
    scenarios: Sequence[Scenario],
    distributions: Sequence[np.ndarray],
    out_dir: str | os.PathLike[str],
    *,
    passes: int,
    learning_rate: float | None,
    seed: int,
    encoding_cache: dict[Any, Any] | None = None,
) -> tuple[Path, int]:
    """Soft-choice train a model toward ``distributions[i]`` over ``scenarios[i]``'s actions; save to ``out_dir``.

    Training runs on one thread, which fixes the order of every sum: the same inputs give bit-identical
    weights on one machine.

    Args:
        model_path: The model to start from.
        scenarios: The scenarios taught.
        distributions: The distribution over each scenario's actions.
        out_dir: Where the trained model goes (written whole or not at all).
        passes: Passes over the scenarios (at least one); each shows other option orders.
        learning_rate: Peak learning rate (``None``: :data:`CHOICE_LEARNING_RATE`).
        seed: Seed of the option orders and the data order.
        encoding_cache: Optional memo of tokenised examples, reused across calls; only for models that share
            one tokenizer (see :func:`tokenizer_key`).

    Returns:
        ``out_dir`` and the number of examples trained on (over all passes).
    """
    import torch
    from transformers import AutoModelForCausalLM

    from progressgym._distributed import is_main_process
    from progressgym._paths import staged_output
    from progressgym.prompt_format import load_tokenizer
    from progressgym.timeline.mini.choice_training import train_choices

    rng = np.random.default_rng(seed)
    plan = [
        [e for s, p in zip(scenarios, distributions, strict=True) for e in choice_examples(s, p, rng)]
        for _ in range(max(1, passes))
    ]
    tokenizer = load_tokenizer(str(model_path))
    model = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=torch.float32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        train_choices(
            model,
            tokenizer,
            plan,
            learning_rate=CHOICE_LEARNING_RATE if learning_rate is None else learning_rate,
            batch_size=CHOICE_BATCH_SIZE,
            seed=seed,
            encoding_cache=encoding_cache,
        )
    finally:
        torch.set_num_threads(threads)
    with staged_output(out_dir) as (_, staged):
        if is_main_process():
            model.save_pretrained(staged, safe_serialization=True)
            tokenizer.save_pretrained(staged)
    return Path(out_dir), sum(len(p) for p in plan)


__all__ = [
    "CHOICE_LEARNING_RATE",
    "FLOOR",
    "action_distributions",
    "choice_examples",
    "teach_distributions",
    "tokenizer_key",
]
