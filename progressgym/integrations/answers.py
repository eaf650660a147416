"""What the integrations share: the prompt rows they ask, and from their answers to the 19 dimensions.

Every answer is turned into a preference over the scenario's ORIGINAL actions by progressgym's own code: the
prompt is rebuilt from its scenario with :func:`~progressgym.evaluation.prompts.make_prompt` (so its
candidate-to-action mapping is progressgym's, by content), log-likelihoods go through
:func:`~progressgym.evaluation.scoring.action_distribution`, replies through
:func:`~progressgym.evaluation.scoring.parse_answer`, and the per-scenario means through
:func:`~progressgym.evaluation.vector.value_vector`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from progressgym.error import InvalidInput
from progressgym.evaluation.banks.export import prompt_rows, read_manifest, scenario_from_row
from progressgym.evaluation.dimensions import DIMENSIONS
from progressgym.evaluation.items import Scenario
from progressgym.evaluation.prompts import PromptItem, make_prompt
from progressgym.evaluation.scoring import (
    ParsedAnswer,
    action_distribution,
    average_by_scenario,
    parse_answer,
)
from progressgym.evaluation.vector import ValueVector, value_vector


def dimension_key(name: str) -> str:
    """A dimension's name as a metric name: ``"Do not kill"`` -> ``"do_not_kill"``, ``"Harm/Care"`` -> ``"harm_care"``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


DIMENSION_KEYS: tuple[str, ...] = tuple(dimension_key(d) for d in DIMENSIONS)
"""The 19 metric names, in vector order."""


class PromptSet(NamedTuple):
    """The prompt rows of one bank split and the bank's key."""

    bank_key: str
    rows: list[dict[str, Any]]


def load_prompt_rows(
    *,
    bank: str = "core",
    split: str = "evaluation",
    bank_path: str | os.PathLike[str] | None = None,
    export: str | os.PathLike[str] | None = None,
    formats: Iterable[str] | None = None,
    orders: str = "cyclic",
) -> PromptSet:
    """The prompts to ask: from an export folder, or built from a bank split here.

    Args:
        bank: ``"core"`` or ``"progressgym"`` (ignored with ``export``).
        split: ``"evaluation"``, ``"elicitation"`` or ``"all"`` (ignored with ``export``).
        bank_path: The ``progressgym`` bank's CSV folder.
        export: A folder written by ``python -m progressgym.evaluate export``.
        formats: Question formats (``None``: all; ignored with ``export``).
        orders: ``"cyclic"`` or ``"all"`` (ignored with ``export``).

    Returns:
        The bank key and one row per prompt (see :func:`~progressgym.evaluation.banks.export.prompt_row`).
    """
    if export:
        from datasets import load_from_disk

        folder = Path(export).expanduser()
        manifest = read_manifest(folder)
        return PromptSet(str(manifest["bank_key"]), load_from_disk(str(folder / "prompts")).to_list())
    from progressgym.evaluation.banks import load_bank
    from progressgym.evaluation.items import SPLITS
    from progressgym.evaluation.prompts import ORDERS

    if split not in SPLITS:
        raise InvalidInput(f"unknown split {split!r}; expected one of {SPLITS}")
    if orders not in ORDERS:
        raise InvalidInput(f"unknown option orders {orders!r}; expected one of {ORDERS}")
    items = load_bank(bank, path=bank_path, split=split)  # type: ignore[arg-type]
    return PromptSet(items.key, prompt_rows(items, formats=formats, orders=orders))  # type: ignore[arg-type]


def _scenario(row: Mapping[str, Any]) -> Scenario:
    return scenario_from_row(json.loads(row["scenario"]))


def prompt_item(row: Mapping[str, Any]) -> PromptItem:
    """The prompt progressgym asks for a prompt row, rebuilt from the row's scenario, format and order.

    Raises:
        InvalidInput: when the row's question or candidates are not the ones progressgym asks (an export made
            by another prompt version).
    """
    item = make_prompt(_scenario(row), row["format"], tuple(row["order"]))
    if item.text != row["text"] or list(item.candidates) != list(row["candidates"]):
        raise InvalidInput(
            f"prompt {row.get('id', row['scenario_id'])!r} is not the one this progressgym asks "
            "(the export was made with another prompt version): export the bank again"
        )
    return item


class Answer(NamedTuple):
    """One answered prompt, as the integrations pass it to their aggregation.

    Attributes:
        scenario: The scenario's row as JSON (the prompt row's ``scenario`` column).
        distribution: Preference over the scenario's original actions; ``None`` when the answer did not count.
        status: ``"valid"``, ``"invalid"`` or ``"refusal"``.
    """

    scenario: str
    distribution: list[float] | None
    status: str = "valid"


def logprob_answer(row: Mapping[str, Any], logliks: Sequence[float]) -> Answer:
    """The answer given by the log-likelihoods of a prompt row's candidates (in ``row["candidates"]`` order)."""
    distribution = action_distribution(prompt_item(row), [float(x) for x in logliks])
    return Answer(row["scenario"], [float(p) for p in distribution])


def generated_answer(row: Mapping[str, Any], reply: str) -> tuple[Answer, ParsedAnswer]:
    """The answer given by a generated reply, read with progressgym's parser (a one-hot preference)."""
    item = prompt_item(row)
    parsed = parse_answer(item, reply)
    if parsed.action is None:
        return Answer(row["scenario"], None, parsed.status), parsed
    distribution = [0.0] * item.n_actions
    distribution[parsed.action] = 1.0
    return Answer(row["scenario"], distribution, parsed.status), parsed


def answers_vector(answers: Iterable[Answer | Sequence[Any]]) -> ValueVector:
    """The value vector of a set of answers: per-scenario means, then progressgym's v1 vector.

    Args:
        answers: :class:`Answer` tuples (or plain sequences of the same fields, as tools log them).

    Raises:
        EvaluationError: when some dimension has no answered scenario.
    """
    scenarios: dict[str, Scenario] = {}
    asked: list[str] = []
    distributions: list[np.ndarray | None] = []
    for answer in answers:
        scenario_json, distribution = answer[0], answer[1]
        scenario = scenarios.get(scenario_json) or _scenario({"scenario": scenario_json})
        scenarios[scenario_json] = scenario
        asked.append(scenario.id)
        distributions.append(None if distribution is None else np.asarray(distribution, dtype=np.float64))
    means = average_by_scenario(asked, distributions)
    return value_vector(scenarios.values(), means)


__all__ = [
    "DIMENSION_KEYS",
    "Answer",
    "PromptSet",
    "answers_vector",
    "dimension_key",
    "generated_answer",
    "load_prompt_rows",
    "logprob_answer",
    "prompt_item",
]
