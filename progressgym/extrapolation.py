"""Extrapolating preferences into the future: where is each pairwise preference heading?

The extrapolative algorithms keep, for every preference item (a fixed pair of responses to a fixed query), the
direction the judge preferred at each step. Each past direction becomes a *vote* relative to the latest one:
``+1`` the same ordering as the latest step, ``-1`` the reversed ordering, ``0`` no answer (abstained or
missing). The last ``n + 1`` votes are extended ``k`` steps ahead by the polynomial of order ``n`` through
them, i.e. the recurrence that sets the ``(n + 1)``-th forward difference to zero:

``x_next = sum_{i=0..n} C(n + 1, i) * (-1)^(n - i) * x_i``  (oldest vote first),

applied ``k`` times, each result appended and the oldest vote dropped. The sign of the result ``r`` says which
way the pair points ``k`` steps ahead; ``min(|r|, max_multiplicity)`` says how many copies of the pair to train
on. An item whose latest direction is missing is dropped; so is one with ``r = 0`` (no direction predicted).

The effective order is ``min(order, len(history) - 1)``: at the first step it is 0, which keeps the latest
preference as it is (the lifelong algorithm).

>>> extrapolation_coefficients(1)
[-1, 2]
>>> extrapolate_votes([-1, 1], order=1, timesteps_ahead=1)
3
>>> extrapolate_votes([0, 1, 1], order=2, timesteps_ahead=1)
0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from progressgym.error import InvalidInput

DEFAULT_MAX_MULTIPLICITY = 5
"""The most copies of one extrapolated pair (the reference's cap)."""


def extrapolation_coefficients(order: int) -> list[int]:
    """The coefficients ``C(n + 1, i) * (-1)^(n - i)``, ``i = 0..n``, of the order-``n`` extrapolation.

    Applied to the last ``n + 1`` values (oldest first) they give the next value of the polynomial of degree
    ``n`` through them: ``[1]``, ``[-1, 2]``, ``[1, -3, 3]``, ``[-1, 4, -6, 4]``...
    """
    if order < 0:
        raise InvalidInput(f"extrapolation order must be >= 0, got {order}")
    return [math.comb(order + 1, i) * (-1) ** (order - i) for i in range(order + 1)]


def extrapolate_votes(votes: Sequence[int], *, order: int, timesteps_ahead: int) -> int:
    """Extend a vote sequence ``timesteps_ahead`` steps with the polynomial of order ``min(order, len - 1)``.

    Args:
        votes: Votes in ``{-1, 0, +1}``, oldest first; the last one is the latest step's.
        order: The largest polynomial order to use.
        timesteps_ahead: How many steps to extend (``k >= 1``).

    Returns:
        The extrapolated value ``r`` (an integer; its sign is the predicted direction).
    """
    if not votes:
        raise InvalidInput("cannot extrapolate an empty vote sequence")
    if timesteps_ahead < 1:
        raise InvalidInput(f"timesteps_ahead must be >= 1, got {timesteps_ahead}")
    if any(v not in (-1, 0, 1) for v in votes):
        raise InvalidInput(f"votes must be -1, 0 or +1, got {list(votes)}")
    n = min(order, len(votes) - 1)
    coefficients = extrapolation_coefficients(n)
    window = [int(v) for v in votes[len(votes) - (n + 1) :]]
    for _ in range(timesteps_ahead):
        window = [*window[1:], sum(c * x for c, x in zip(coefficients, window, strict=True))]
    return window[-1]


@dataclass(frozen=True)
class ExtrapolatedDirection:
    """The predicted direction of one item.

    Attributes:
        key: The item key.
        direction: ``+1``: the item's first response will be preferred; ``-1``: its second.
        value: The extrapolated value ``r`` (relative to the latest direction).
        multiplicity: Copies to train on, ``min(|r|, max_multiplicity)``.
    """

    key: str
    direction: int
    value: int
    multiplicity: int


@dataclass(frozen=True)
class ExtrapolationReport:
    """What :func:`extrapolate_directions` did.

    Attributes:
        directions: One entry per kept item, in the latest step's key order.
        order: The effective polynomial order used.
        missing_latest: Items dropped because the latest step has no direction for them.
        zero: Items dropped because the extrapolated value was 0.
        reversed: Kept items whose predicted direction is opposite to the latest one.
        capped: Kept items whose ``|r|`` exceeded the multiplicity cap.
    """

    directions: tuple[ExtrapolatedDirection, ...]
    order: int
    missing_latest: int
    zero: int
    reversed: int
    capped: int


def extrapolate_directions(
    history: Sequence[Mapping[str, int]],
    *,
    order: int,
    timesteps_ahead: int,
    max_multiplicity: int = DEFAULT_MAX_MULTIPLICITY,
) -> ExtrapolationReport:
    """Extrapolate every item's preference direction ``timesteps_ahead`` steps past the latest step.

    Args:
        history: One mapping per step, oldest first: item key -> direction (``+1`` first response preferred,
            ``-1`` second, ``0`` no answer). An item absent from a step counts as ``0`` there.
        order: The largest polynomial order (the effective order is ``min(order, len(history) - 1)``).
        timesteps_ahead: Steps ahead, ``k >= 1``.
        max_multiplicity: Cap on the copies of one item.

    Returns:
        The kept items with their predicted direction and multiplicity, and counts of what was dropped.
    """
    if not history:
        raise InvalidInput("cannot extrapolate without any preference history")
    if max_multiplicity < 1:
        raise InvalidInput(f"max_multiplicity must be >= 1, got {max_multiplicity}")
    n = min(order, len(history) - 1)
    window = history[len(history) - (n + 1) :]
    latest = window[-1]
    kept: list[ExtrapolatedDirection] = []
    missing = zero = flipped = capped = 0
    for key, now in latest.items():
        if now not in (-1, 1):
            missing += 1
            continue
        # A vote is +1 when the step agrees with the latest direction, -1 when it is reversed, 0 when missing.
        votes = [int(step.get(key, 0)) * now for step in window]
        r = extrapolate_votes(votes, order=n, timesteps_ahead=timesteps_ahead)
        if r == 0:
            zero += 1
            continue
        if abs(r) > max_multiplicity:
            capped += 1
        if r < 0:
            flipped += 1
        kept.append(ExtrapolatedDirection(key, now if r > 0 else -now, r, min(abs(r), max_multiplicity)))
    return ExtrapolationReport(tuple(kept), n, missing, zero, flipped, capped)


__all__ = [
    "DEFAULT_MAX_MULTIPLICITY",
    "ExtrapolatedDirection",
    "ExtrapolationReport",
    "extrapolate_directions",
    "extrapolate_votes",
    "extrapolation_coefficients",
]
