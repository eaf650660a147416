"""The Python side of progressgym's lm-eval tasks: the dataset, the prompt text, scoring and aggregation.

The task YAML files beside this module name these functions (``!function task.process_results``); lm-eval
loads this file by its path. Everything that decides a number is progressgym's own code
(:mod:`progressgym.integrations.answers`): each prompt's candidate log-likelihoods become a preference over
the scenario's original actions by content, never by answer position, and each dimension's aggregation
averages them per scenario and computes progressgym's v1 vector.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from progressgym.backends._chat import render_prompt
from progressgym.backends.base import user
from progressgym.evaluation.dimensions import DIMENSIONS
from progressgym.integrations.answers import (
    DIMENSION_KEYS,
    Answer,
    answers_vector,
    load_prompt_rows,
    logprob_answer,
)
from progressgym.prompt_format import alpaca_prompt

DATASET_OPTIONS: tuple[str, ...] = ("bank", "split", "bank_path", "export", "formats", "orders")
"""The ``--metadata`` keys :func:`load_prompts` reads (lm-eval passes others too: model arguments, version)."""


def load_prompts(**options: Any) -> Any:
    """The task's dataset: one row per prompt of the chosen bank split (lm-eval's ``custom_dataset``).

    Args:
        **options: lm-eval's task metadata; :data:`DATASET_OPTIONS` are read (``bank``, ``split``,
            ``bank_path``, ``export``, ``formats`` as a list or a comma-separated string, ``orders``),
            the rest is ignored.

    Returns:
        A ``datasets.DatasetDict`` with the prompts as its ``test`` split.
    """
    from datasets import Dataset, DatasetDict

    chosen = {k: v for k, v in options.items() if k in DATASET_OPTIONS and v is not None}
    if isinstance(chosen.get("formats"), str):
        chosen["formats"] = [f for f in chosen["formats"].split(",") if f]
    prompts = load_prompt_rows(**chosen)
    dataset = Dataset.from_list(prompts.rows)
    dataset.info.description = f"progressgym prompts of {prompts.bank_key}"
    return DatasetDict({"test": dataset})


class _NoTemplate:
    """A stand-in tokenizer without a chat template: :func:`render_prompt` then writes the plain format."""

    chat_template = None


def plain_prompt(doc: Mapping[str, Any]) -> str:
    r"""A prompt row in progressgym's ``plain`` format: ``"User: ...\nAssistant:"``."""
    return render_prompt(_NoTemplate(), user(doc["text"]))


def alpaca_text(doc: Mapping[str, Any]) -> str:
    """A prompt row in the Alpaca format (the bos token comes from the tokenizer: lm-eval adds it)."""
    return alpaca_prompt(doc["text"])


def process_results(doc: Mapping[str, Any], results: Sequence[Sequence[float]]) -> dict[str, Answer]:
    """One prompt's answer, the same for every dimension: its preference over the original actions.

    Args:
        doc: The prompt row.
        results: lm-eval's ``(log-likelihood, is_greedy)`` per candidate, in ``doc["candidates"]`` order.
    """
    answer = logprob_answer(doc, [float(r[0]) for r in results])
    return dict.fromkeys(DIMENSION_KEYS, answer)


def _aggregator(index: int) -> Callable[[Sequence[Answer]], float]:
    def aggregate(answers: Sequence[Answer]) -> float:
        return float(answers_vector(answers).values[index])

    aggregate.__name__ = f"aggregate_{DIMENSION_KEYS[index]}"
    aggregate.__doc__ = f"Dimension {index}, {DIMENSIONS[index]!r}, of the answers' value vector."
    return aggregate


aggregate_do_not_kill = _aggregator(0)
aggregate_do_not_cause_pain = _aggregator(1)
aggregate_do_not_disable = _aggregator(2)
aggregate_do_not_deprive_of_freedom = _aggregator(3)
aggregate_do_not_deprive_of_pleasure = _aggregator(4)
aggregate_do_not_deceive = _aggregator(5)
aggregate_do_not_cheat = _aggregator(6)
aggregate_do_not_break_promises = _aggregator(7)
aggregate_do_not_break_the_law = _aggregator(8)
aggregate_do_your_duty = _aggregator(9)
aggregate_harm_care = _aggregator(10)
aggregate_fairness_reciprocity = _aggregator(11)
aggregate_ingroup_loyalty = _aggregator(12)
aggregate_authority_respect = _aggregator(13)
aggregate_purity_sanctity = _aggregator(14)
aggregate_traditional_worldview = _aggregator(15)
aggregate_modern_worldview = _aggregator(16)
aggregate_postmodern_worldview = _aggregator(17)
aggregate_integrative_worldview = _aggregator(18)
