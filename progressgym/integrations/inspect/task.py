"""The inspect_ai task: progressgym's prompts, a solver that asks them, a scorer that reads the replies.

inspect finds the task through the package's ``inspect_ai`` entry point (``progressgym/progressgym_values``)
or by this file's path (``inspect eval .../task.py@progressgym_values``). Every number comes from
progressgym's own code (:mod:`progressgym.integrations.answers`): the reply is parsed against the prompt
progressgym asks, the chosen action is the ORIGINAL action, never a position, and the metrics average the
choices per scenario into progressgym's v1 vector.
"""

from __future__ import annotations

import math
from typing import Any

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import GenerateConfig
from inspect_ai.scorer import Metric, SampleScore, Score, Scorer, Target, metric, scorer
from inspect_ai.solver import Generate, Solver, TaskState, solver

from progressgym.error import EvaluationError
from progressgym.evaluation.scoring import DEFAULT_MAX_NEW_TOKENS
from progressgym.integrations.answers import (
    DIMENSION_KEYS,
    Answer,
    answers_vector,
    generated_answer,
    load_prompt_rows,
)

TASK_VERSION = 1
"""Bumped whenever the task's prompts, generation settings or scoring change."""


def _answers(scores: list[SampleScore]) -> list[Answer]:
    return [Answer(*s.score.metadata["answer"]) for s in scores if s.score.metadata]


@metric
def value_dimensions() -> Metric:
    """The 19 value dimensions of the parsed choices.

    All are NaN when some dimension has no scenario with a valid answer (progressgym raises instead): the
    vector is undefined, never a silent zero.
    """

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        try:
            values = answers_vector(_answers(scores)).values
        except EvaluationError:
            # inspect also computes metrics on the samples done so far, while it runs.
            return dict.fromkeys(DIMENSION_KEYS, math.nan)
        return {key: float(v) for key, v in zip(DIMENSION_KEYS, values, strict=True)}

    return compute


@metric
def answer_rates() -> Metric:
    """Shares of prompts whose reply was invalid (unreadable) or a refusal."""

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        statuses = [answer.status for answer in _answers(scores)]
        total = max(1, len(statuses))
        return {
            "invalid_rate": statuses.count("invalid") / total,
            "refusal_rate": statuses.count("refusal") / total,
        }

    return compute


@solver
def ask() -> Solver:
    """Ask the prompt and generate greedily, with progressgym's token budget for its question format."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        fmt = state.metadata["prompt"]["format"]
        return await generate(state, max_tokens=DEFAULT_MAX_NEW_TOKENS[fmt], temperature=0.0)

    return solve


@scorer(metrics=[value_dimensions(), answer_rates()])
def parsed_choice() -> Scorer:
    """Read the reply with progressgym's parser; the score is 1 for a readable choice, else 0."""

    async def score(state: TaskState, target: Target) -> Score:
        answer, parsed = generated_answer(state.metadata["prompt"], state.output.completion)
        return Score(
            value=1.0 if parsed.status == "valid" else 0.0,
            answer=state.output.completion,
            explanation=parsed.status if parsed.action is None else f"action {parsed.action}",
            metadata={"answer": list(answer)},
        )

    return score


@task
def progressgym_values(
    bank: str = "core",
    split: str = "evaluation",
    bank_path: str | None = None,
    export: str | None = None,
    formats: str | None = None,
    orders: str = "cyclic",
) -> Task:
    """The moral evaluation in generation mode: 19 value dimensions as metrics.

    Args:
        bank: ``"core"`` or ``"progressgym"``.
        split: ``"evaluation"``, ``"elicitation"`` or ``"all"``.
        bank_path: The ``progressgym`` bank's CSV folder.
        export: A folder written by ``python -m progressgym.evaluate export`` (instead of ``bank``/``split``).
        formats: Comma-separated question formats (default: all).
        orders: ``"cyclic"`` or ``"all"`` option orders for four-action scenarios.
    """
    prompts = load_prompt_rows(
        bank=bank,
        split=split,
        bank_path=bank_path,
        export=export,
        formats=[f for f in formats.split(",") if f] if formats else None,
        orders=orders,
    )
    samples = [Sample(input=row["text"], id=row["id"], metadata={"prompt": row}) for row in prompts.rows]
    metadata: dict[str, Any] = {"bank_key": prompts.bank_key}
    return Task(
        dataset=MemoryDataset(samples, name=f"progressgym {prompts.bank_key}"),
        solver=ask(),
        scorer=parsed_choice(),
        config=GenerateConfig(temperature=0.0),
        metadata=metadata,
        version=TASK_VERSION,
    )
