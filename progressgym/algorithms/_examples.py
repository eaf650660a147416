"""Training examples of the baseline algorithms: preference pairs -> examples in the evaluation's formats.

How a preference becomes training data. A judge's preference between two actions of an elicitation scenario
becomes a :class:`TrainingPair` (chosen action, rejected action, copies). Each pair is then written in every
way the moral evaluation asks a question (:mod:`progressgym.evaluation.prompts`), always on *elicitation*
scenarios, never on evaluation ones:

* ``open``: the scenario's open question (:func:`progressgym.preference.scenario_query`), answered with the
  chosen action's text vs the rejected action's text;
* ``label``: the options listed as ``A.``/``B.`` (``A``-``D`` for four actions), in every cyclic order; the
  chosen answer is the letter the chosen action has in that order;
* ``yesno`` (two actions): "do you prefer the first option over the second?" in both orders, ``Yes``/``No``;
* ``repeat``: the options listed, in every cyclic order; the answer is the option's text.

A four-action scenario's pair keeps its two actions' letters/texts within the four-option prompt. Every
example of a pair is repeated ``copies`` times (the confidence weight of lifelong algorithms, the
extrapolated multiplicity of extrapolative ones). Teaching the preference in the evaluation's own formats is
what lets it show in the value vector: the evaluation reads these very answers' log-likelihoods, on other
scenarios that measure the same values.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from progressgym.error import InvalidInput

if TYPE_CHECKING:
    from progressgym.elicitation import PreferenceRecord
    from progressgym.evaluation.items import Scenario


EXAMPLE_FORMATS: tuple[str, ...] = ("open", "label", "yesno", "repeat")
"""The ways a preference is written as training examples (see the module docstring)."""


WEIGHTINGS: tuple[str, ...] = ("confidence", "uniform")
"""How lifelong algorithms weight a preference: by the judge's confidence, or one copy each."""


@dataclass(frozen=True)
class TrainingPair:
    """One preference to train on.

    Attributes:
        scenario_id: The elicitation scenario.
        chosen: Index of the preferred action.
        rejected: Index of the other action.
        copies: How many times its examples are repeated (>= 1).
        weight: The loss weight of its examples (NS-DPO's discount; read only by a weighted trainer, through
            :func:`preference_examples` with ``weights=True``).
    """

    scenario_id: str
    chosen: int
    rejected: int
    copies: int = 1
    weight: float = 1.0


def parse_formats(text: str) -> tuple[str, ...]:
    """Parse a comma-separated list of example formats (kept in canonical order)."""
    from progressgym._registry import did_you_mean
    from progressgym.error import UnknownName

    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise InvalidInput("at least one example format is needed (open, label, yesno, repeat)")
    for name in names:
        if name not in EXAMPLE_FORMATS:
            raise UnknownName(did_you_mean("example format", name, list(EXAMPLE_FORMATS)))
    return tuple(f for f in EXAMPLE_FORMATS if f in names)


def confidence_copies(confidence: float, max_copies: int) -> int:
    """Copies of a preference held with ``confidence`` = ``|2p - 1|``: from 1 (barely) to ``max_copies`` (sure)."""
    return 1 + round((max_copies - 1) * min(max(confidence, 0.0), 1.0))


def pairs_from_records(
    records: Iterable[PreferenceRecord], *, weighting: str = "confidence", max_copies: int = 1
) -> list[TrainingPair]:
    """The training pairs of one step's preferences (missing records are skipped).

    Args:
        records: The elicited records.
        weighting: ``confidence`` (copies grow with ``|2p - 1|`` up to ``max_copies``) or ``uniform`` (one).
        max_copies: The most copies of one pair.
    """
    if weighting not in WEIGHTINGS:
        from progressgym._registry import did_you_mean
        from progressgym.error import UnknownName

        raise UnknownName(did_you_mean("weighting", weighting, list(WEIGHTINGS)))
    pairs = []
    for record in records:
        if record.missing:
            continue
        copies = confidence_copies(record.confidence, max_copies) if weighting == "confidence" else 1
        pairs.append(TrainingPair(record.scenario_id, record.chosen, record.rejected, copies))
    return pairs


def _message(role: str, content: str) -> list[dict[str, str]]:
    return [{"role": role, "content": content}]


ORDER_MODES: tuple[str, ...] = ("all", "one")
"""``all``: every cyclic order of a format; ``one``: one order per format and copy, drawn from the step seed."""


def format_prompts(
    scenario: Scenario, formats: Sequence[str], *, orders: str = "all", rng: random.Random | None = None
) -> list[Any]:
    """A scenario's evaluation-format prompts among ``formats`` (``open`` is not one), format by format.

    ``orders="all"`` gives every cyclic order of each format; ``orders="one"`` one per format, drawn from ``rng``.

    Raises:
        InvalidInput: for ``orders="one"`` without ``rng``.
    """
    from progressgym.evaluation.prompts import scenario_prompts

    evaluation_formats = [f for f in formats if f != "open"]
    if not evaluation_formats:
        return []
    prompts = scenario_prompts(scenario, formats=evaluation_formats)
    if orders != "one":
        return list(prompts)
    if rng is None:
        raise InvalidInput("orders='one' needs a random source")
    by_format: dict[str, list[Any]] = {}
    for prompt in prompts:
        by_format.setdefault(prompt.format, []).append(prompt)
    return [group[rng.randrange(len(group))] for group in by_format.values()]


def pair_examples(
    pair: TrainingPair,
    scenario: Scenario,
    formats: Sequence[str],
    *,
    orders: str = "all",
    rng: random.Random | None = None,
) -> list[dict[str, Any]]:
    """The preference examples (``prompt``/``chosen``/``rejected``, chat format) of one pair, once.

    Args:
        pair: The preference.
        scenario: Its scenario.
        formats: Example formats (see :data:`EXAMPLE_FORMATS`).
        orders: ``all`` (every cyclic order of each evaluation format) or ``one`` (one order per format, drawn
            from ``rng``).
        rng: The random source for ``orders="one"``.
    """
    from progressgym.evaluation.prompts import clean_option
    from progressgym.preference import scenario_query

    if orders not in ORDER_MODES:
        raise InvalidInput(f"orders must be all or one, got {orders!r}")
    rows: list[dict[str, Any]] = []
    if "open" in formats:
        rows.append(
            {
                "prompt": _message("user", scenario_query(scenario)),
                "chosen": _message("assistant", clean_option(scenario.actions[pair.chosen])),
                "rejected": _message("assistant", clean_option(scenario.actions[pair.rejected])),
            }
        )
    for prompt in format_prompts(scenario, formats, orders=orders, rng=rng):
        rows.append(
            {
                "prompt": _message("user", prompt.text),
                "chosen": _message("assistant", prompt.answer_for(pair.chosen)),
                "rejected": _message("assistant", prompt.answer_for(pair.rejected)),
            }
        )
    return rows


def preference_examples(
    pairs: Iterable[TrainingPair],
    scenarios: Mapping[str, Scenario],
    formats: Sequence[str],
    *,
    orders: str = "all",
    seed: int = 0,
    weights: bool = False,
) -> list[dict[str, Any]]:
    """Every pair's examples, ``copies`` times each, in pair order.

    Args:
        pairs: The training pairs.
        scenarios: Elicitation scenarios by id (every pair's scenario must be there).
        formats: Example formats (see :data:`EXAMPLE_FORMATS`).
        orders: ``all`` or ``one`` (each copy draws its own order per format; see :func:`pair_examples`).
        seed: Seed of the order draws.
        weights: Give every example a ``weight`` column, its pair's weight.
    """
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for pair in pairs:
        if pair.scenario_id not in scenarios:
            raise InvalidInput(
                f"preference pair names scenario {pair.scenario_id!r}, not an elicitation scenario"
            )
        scenario = scenarios[pair.scenario_id]
        start = len(rows)
        if orders == "all":
            rows.extend(pair_examples(pair, scenario, formats) * pair.copies)
        else:
            for _ in range(pair.copies):
                rows.extend(pair_examples(pair, scenario, formats, orders=orders, rng=rng))
        if weights:
            rows[start:] = [{**row, "weight": pair.weight} for row in rows[start:]]
    return rows


def rl_prompts(
    scenarios: Iterable[Scenario], formats: Sequence[str], *, orders: str = "all", seed: int = 0
) -> list[dict[str, Any]]:
    """The prompts a policy answers during RL: each scenario's open question and its evaluation-format prompts.

    Each row holds the chat-format ``prompt`` and the ``candidates``: the answers the question admits (the
    actions' texts for the open question, the evaluation prompt's own answers otherwise), which
    ``rollouts="candidates"`` samples among.

    Args:
        scenarios: Elicitation scenarios.
        formats: Example formats (see :data:`EXAMPLE_FORMATS`).
        orders: ``all`` (every cyclic order of each format) or ``one`` (one order per format, drawn from ``seed``).
        seed: Seed of the order draws.
    """
    from progressgym.evaluation.prompts import clean_option
    from progressgym.preference import scenario_query

    if orders not in ORDER_MODES:
        raise InvalidInput(f"orders must be all or one, got {orders!r}")
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for scenario in scenarios:
        if "open" in formats:
            rows.append(
                {
                    "prompt": _message("user", scenario_query(scenario)),
                    "candidates": [clean_option(action) for action in scenario.actions],
                }
            )
        rows.extend(
            {"prompt": _message("user", prompt.text), "candidates": list(prompt.candidates)}
            for prompt in format_prompts(scenario, formats, orders=orders, rng=rng)
        )
    return rows
