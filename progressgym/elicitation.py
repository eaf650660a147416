"""Asking the judge what it prefers: pairwise preferences over the actions of elicitation scenarios.

Every preference item is a fixed pair of responses to a fixed question: the open question of an elicitation
scenario (:func:`progressgym.preference.scenario_query`) and two of its actions. Items come in a canonical
order and orientation (bank order; the lower action index is response A) that depends on nothing but the
scenarios, so the same item has the same key at every step: the extrapolative algorithms line up an item's
answers over time by its key.

Three ways to ask:

* ``compare`` (exact, the default): :meth:`JudgeInterface.compare` reads the probability that A is preferred
  from the log-likelihoods of the answer labels of the pairwise question
  (:func:`progressgym.preference.preference_conversation`), asked in both presentation orders so that a
  preference for a position or a label cancels out. One query per item.
* ``likelihood`` (exact): the judge's model is asked the open question alone, and p(A) is the softmax of the
  log-likelihoods (summed over tokens) of the two responses as its reply: which of the two it would rather
  say. No order is shown, so there is no position to prefer. One query per item (a scored request).
* ``generate``: for judges whose models can only generate, the pairwise question is asked in both orders
  and each reply is parsed by :func:`parse_preference_reply`; p(A) is the share of readable replies that
  chose A. Two queries per item.

``auto`` uses ``compare`` and falls back to ``generate`` when the judge's backend cannot score.

A record whose p(A) lies within ``margin`` of 1/2 (or that got no readable answer) is *missing*: the judge
abstained, and the item teaches nothing at this step.

>>> parse_preference_reply("Response 2", "Help.", "Walk away.")
2
>>> parse_preference_reply("walk away", "Help.", "Walk away.")
2
>>> parse_preference_reply("1 or 2", "Help.", "Walk away.") is None
True
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from progressgym.error import InvalidInput

if TYPE_CHECKING:
    from progressgym.core import JudgeInterface
    from progressgym.evaluation.items import Scenario

Method = Literal["compare", "likelihood", "generate", "auto"]
METHODS: tuple[Method, ...] = ("compare", "likelihood", "generate", "auto")

DEFAULT_MARGIN = 0.02
"""Records with ``|p(A) - 1/2|`` below this are missing (the judge abstained)."""

ELICITATION_VERSION = "e1"
"""Bumped whenever item keys, their order or the parsing rule change."""


@dataclass(frozen=True)
class PreferenceItem:
    """One question put to the judge: which of two actions of a scenario does it prefer?

    Attributes:
        key: ``"<scenario id>#<a>-<b>"``; identical at every step.
        scenario_id: The scenario asked about.
        query: The scenario's open question.
        action_a: Index of the action shown as response A (the lower index).
        action_b: Index of the action shown as response B.
        response_a: The text of action A.
        response_b: The text of action B.
    """

    key: str
    scenario_id: str
    query: str
    action_a: int
    action_b: int
    response_a: str
    response_b: str


@dataclass(frozen=True)
class PreferenceRecord:
    """The judge's answer to one :class:`PreferenceItem`.

    Attributes:
        key: The item key.
        scenario_id: The scenario.
        query: The open question.
        action_a: Index of action A.
        action_b: Index of action B.
        response_a: Text of action A.
        response_b: Text of action B.
        p_a: The probability that A is preferred (``None``: no readable answer, or not asked).
        direction: ``+1`` A preferred, ``-1`` B preferred, ``0`` missing (abstained or unanswered).
    """

    key: str
    scenario_id: str
    query: str
    action_a: int
    action_b: int
    response_a: str
    response_b: str
    p_a: float | None
    direction: int

    @property
    def missing(self) -> bool:
        """Whether the judge gave no usable preference."""
        return self.direction == 0

    @property
    def confidence(self) -> float:
        """``|2 p(A) - 1|`` in [0, 1]; 0 when missing."""
        return 0.0 if self.p_a is None or self.missing else abs(2.0 * self.p_a - 1.0)

    @property
    def chosen(self) -> int:
        """The preferred action's index (only for non-missing records)."""
        if self.missing:
            raise ValueError(f"record {self.key} is missing")
        return self.action_a if self.direction > 0 else self.action_b

    @property
    def rejected(self) -> int:
        """The other action's index (only for non-missing records)."""
        if self.missing:
            raise ValueError(f"record {self.key} is missing")
        return self.action_b if self.direction > 0 else self.action_a

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreferenceRecord:
        """The inverse of :meth:`to_dict`."""
        return cls(**dict(data))


@dataclass(frozen=True)
class ElicitationStats:
    """Counts of one elicitation.

    Attributes:
        items: Items asked about (or skipped for lack of budget).
        answered: Records with a direction.
        abstained: Records within the margin of indifference.
        unreadable: Records without any readable answer (``generate`` only).
        skipped: Items not asked because the step's query budget ran out.
        queries: Queries charged.
    """

    items: int
    answered: int
    abstained: int
    unreadable: int
    skipped: int
    queries: int


def item_key(scenario_id: str, action_a: int, action_b: int) -> str:
    """The key of the item asking about actions ``action_a`` and ``action_b`` of a scenario."""
    return f"{scenario_id}#{action_a}-{action_b}"


def _stable_rank(*parts: object) -> str:
    return hashlib.sha256(repr((ELICITATION_VERSION, *parts)).encode()).hexdigest()


def preference_items(
    scenarios: Iterable[Scenario],
    *,
    pairs_per_scenario: int | None = None,
    max_items: int | None = None,
) -> list[PreferenceItem]:
    """The canonical preference items of ``scenarios``: every pair of each scenario's actions, in bank order.

    Which pairs and items are kept depends only on the scenario ids (never on a step or seed), so every step
    asks the same items.

    Args:
        scenarios: Elicitation scenarios.
        pairs_per_scenario: For scenarios with more than two actions, how many of their pairs to keep (a fixed
            subset chosen by a hash of the scenario id); ``None`` keeps all of them (6 for four actions).
        max_items: Keep at most this many items (a fixed subset chosen by a hash of the keys); ``None``: all.

    Returns:
        The items, in bank order, lower action index first within each pair.
    """
    from progressgym.evaluation.prompts import clean_option
    from progressgym.preference import scenario_query

    if pairs_per_scenario is not None and pairs_per_scenario < 1:
        raise InvalidInput(f"pairs_per_scenario must be at least 1, got {pairs_per_scenario}")
    if max_items is not None and max_items < 1:
        raise InvalidInput(f"max_items must be at least 1, got {max_items}")
    items: list[PreferenceItem] = []
    for scenario in scenarios:
        pairs = list(itertools.combinations(range(len(scenario.actions)), 2))
        if pairs_per_scenario is not None and len(pairs) > pairs_per_scenario:
            ranked = sorted(pairs, key=lambda pair: _stable_rank(scenario.id, pair))
            keep = set(ranked[:pairs_per_scenario])
            pairs = [pair for pair in pairs if pair in keep]
        query = scenario_query(scenario)
        for a, b in pairs:
            items.append(
                PreferenceItem(
                    key=item_key(scenario.id, a, b),
                    scenario_id=scenario.id,
                    query=query,
                    action_a=a,
                    action_b=b,
                    response_a=clean_option(scenario.actions[a]),
                    response_b=clean_option(scenario.actions[b]),
                )
            )
    if max_items is not None and len(items) > max_items:
        keep_keys = {item.key for item in sorted(items, key=lambda item: _stable_rank(item.key))[:max_items]}
        items = [item for item in items if item.key in keep_keys]
    return items


_DIGITS = re.compile(r"[12]")


def _bare(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split())


def parse_preference_reply(reply: str, first: str, second: str) -> int | None:
    """Which response a generated reply to the preference question chose: 1, 2 or ``None`` (unreadable).

    Rules, in order (text is compared lower-cased, with punctuation removed):

    1. the reply is a copy of one response: that response;
    2. the reply contains the digit ``1`` and not ``2`` (``"1"``, ``"Response 1"``): 1; ``2`` and not ``1``: 2;
       both digits: unreadable;
    3. the reply starts with one response's text and not with the other's: that response;
    4. anything else is unreadable.

    Args:
        reply: The generated reply.
        first: The response shown as Response 1.
        second: The response shown as Response 2.
    """
    text, one, two = _bare(reply), _bare(first), _bare(second)
    if text and one != two and text in (one, two):
        return 1 if text == one else 2
    digits = set(_DIGITS.findall(reply))
    if digits:
        return (1 if digits == {"1"} else 2) if len(digits) == 1 else None
    if not text or one == two:
        return None
    starts_one = bool(one) and text.startswith(one)
    starts_two = bool(two) and text.startswith(two)
    if starts_one != starts_two:
        return 1 if starts_one else 2
    return None


def _direction(p_a: float | None, margin: float) -> int:
    if p_a is None or abs(p_a - 0.5) < margin:
        return 0
    return 1 if p_a > 0.5 else -1


def _record(item: PreferenceItem, p_a: float | None, margin: float) -> PreferenceRecord:
    return PreferenceRecord(
        key=item.key,
        scenario_id=item.scenario_id,
        query=item.query,
        action_a=item.action_a,
        action_b=item.action_b,
        response_a=item.response_a,
        response_b=item.response_b,
        p_a=p_a,
        direction=_direction(p_a, margin),
    )


def _compare(judge: JudgeInterface, items: Sequence[PreferenceItem]) -> list[float | None]:
    from progressgym.core import Comparison

    answers = judge.compare([Comparison(i.query, i.response_a, i.response_b) for i in items])
    return [float(p) for p in answers]


def _likelihood(judge: JudgeInterface, items: Sequence[PreferenceItem]) -> list[float | None]:
    import math

    from progressgym.backends.base import ScoreRequest, user

    scores = judge.score([ScoreRequest(user(i.query), (i.response_a, i.response_b)) for i in items])
    out: list[float | None] = []
    for a, b in scores:
        top = max(a, b)
        ea, eb = math.exp(a - top), math.exp(b - top)
        out.append(ea / (ea + eb))
    return out


def _generate(
    judge: JudgeInterface, items: Sequence[PreferenceItem], max_new_tokens: int
) -> list[float | None]:
    from progressgym.preference import preference_conversation

    prompts = []
    for item in items:
        prompts.append(preference_conversation(item.query, item.response_a, item.response_b))
        prompts.append(preference_conversation(item.query, item.response_b, item.response_a))
    replies = judge.generate(prompts, max_new_tokens=max_new_tokens, temperature=0.0)
    out: list[float | None] = []
    for k, item in enumerate(items):
        forward = parse_preference_reply(replies[2 * k], item.response_a, item.response_b)
        backward = parse_preference_reply(replies[2 * k + 1], item.response_b, item.response_a)
        readings = []
        if forward is not None:
            readings.append(1.0 if forward == 1 else 0.0)
        if backward is not None:
            readings.append(1.0 if backward == 2 else 0.0)
        out.append(sum(readings) / len(readings) if readings else None)
    return out


def elicit_preferences(
    judge: JudgeInterface,
    items: Sequence[PreferenceItem],
    *,
    method: Method = "compare",
    margin: float = DEFAULT_MARGIN,
    max_new_tokens: int = 8,
) -> tuple[list[PreferenceRecord], ElicitationStats]:
    """Ask the judge about every item; one record per item, in the items' order.

    Every query goes through ``judge`` and is counted in its usage. When the step's query budget cannot
    cover every item, the first items that fit are asked and the rest are recorded as missing.

    Args:
        judge: The step's judge interface.
        items: The items (see :func:`preference_items`).
        method: ``compare``, ``likelihood``, ``generate`` or ``auto`` (see the module docstring).
        margin: Records with ``|p(A) - 1/2| < margin`` are missing.
        max_new_tokens: Generation budget per reply (``generate`` only).

    Returns:
        The records and the counts of what happened.
    """
    if method not in METHODS:
        from progressgym._registry import did_you_mean
        from progressgym.error import UnknownName

        raise UnknownName(did_you_mean("elicitation method", str(method), list(METHODS)))
    if not 0.0 <= margin < 0.5:
        raise InvalidInput(f"margin must be in [0, 0.5), got {margin}")
    before = judge.usage.queries
    chosen: Method = "compare" if method == "auto" else method
    cost = 2 if chosen == "generate" else 1
    asked = list(items)
    budget = judge.budget_left
    if budget is not None and len(asked) * cost > budget:
        asked = asked[: budget // cost]
    answers: list[float | None] = []
    if asked:
        if chosen == "compare":
            try:
                answers = _compare(judge, asked)
            except NotImplementedError:
                if method != "auto":
                    raise
                chosen, cost = "generate", 2
                if budget is not None:
                    asked = asked[: (judge.budget_left or 0) // cost]
        elif chosen == "likelihood":
            answers = _likelihood(judge, asked)
        if chosen == "generate":
            answers = _generate(judge, asked, max_new_tokens)
    records = [_record(item, p, margin) for item, p in zip(asked, answers, strict=True)]
    records.extend(_record(item, None, margin) for item in items[len(asked) :])
    stats = ElicitationStats(
        items=len(items),
        answered=sum(1 for r in records if not r.missing),
        abstained=sum(1 for r in records[: len(asked)] if r.missing and r.p_a is not None),
        unreadable=sum(1 for r in records[: len(asked)] if r.p_a is None),
        skipped=len(items) - len(asked),
        queries=judge.usage.queries - before,
    )
    return records, stats


__all__ = [
    "DEFAULT_MARGIN",
    "ELICITATION_VERSION",
    "METHODS",
    "ElicitationStats",
    "Method",
    "PreferenceItem",
    "PreferenceRecord",
    "elicit_preferences",
    "item_key",
    "parse_preference_reply",
    "preference_items",
]
