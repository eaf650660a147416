from __future__ import annotations

import pytest

from progressgym.error import InvalidInput
from progressgym.extrapolation import (
    extrapolate_directions,
    extrapolate_votes,
    extrapolation_coefficients,
)

# The reference's table (section 3.5): older votes, oldest first -> r; the latest vote is +1.
TABLE: dict[tuple[int, int], dict[tuple[int, ...], int]] = {
    (1, 1): {(-1,): 3, (0,): 2, (1,): 1},
    (1, 2): {(-1,): 5, (0,): 3, (1,): 1},
    (2, 1): {
        (-1, -1): 5,
        (-1, 0): 2,
        (-1, 1): -1,
        (0, -1): 6,
        (0, 0): 3,
        (0, 1): 0,
        (1, -1): 7,
        (1, 0): 4,
        (1, 1): 1,
    },
    (2, 2): {
        (-1, -1): 11,
        (-1, 0): 3,
        (-1, 1): -5,
        (0, -1): 14,
        (0, 0): 6,
        (0, 1): -2,
        (1, -1): 17,
        (1, 0): 9,
        (1, 1): 1,
    },
}
ROWS = [(n, k, older, r) for (n, k), rows in TABLE.items() for older, r in rows.items()]


def test_coefficients() -> None:
    assert extrapolation_coefficients(0) == [1]
    assert extrapolation_coefficients(1) == [-1, 2]
    assert extrapolation_coefficients(2) == [1, -3, 3]
    assert extrapolation_coefficients(3) == [-1, 4, -6, 4]


@pytest.mark.parametrize(
    ("order", "ahead", "older", "expected"), ROWS, ids=[f"n{n}-k{k}-{o}" for n, k, o, _ in ROWS]
)
def test_reference_table(order: int, ahead: int, older: tuple[int, ...], expected: int) -> None:
    assert len(ROWS) == 24
    assert extrapolate_votes([*older, 1], order=order, timesteps_ahead=ahead) == expected


@pytest.mark.parametrize(
    ("order", "ahead", "older", "expected"), ROWS, ids=[f"n{n}-k{k}-{o}" for n, k, o, _ in ROWS]
)
def test_reference_table_through_directions(
    order: int, ahead: int, older: tuple[int, ...], expected: int
) -> None:
    # The same rows expressed as a history of directions whose latest entry points to the second response:
    # every vote flips sign with the latest direction, so r is unchanged and the direction is -sign(r).
    history = [{"item": -v} for v in older] + [{"item": -1}]
    report = extrapolate_directions(history, order=order, timesteps_ahead=ahead)
    assert report.order == order
    if expected == 0:
        assert report.directions == () and report.zero == 1
        return
    (item,) = report.directions
    assert item.value == expected
    assert item.direction == (-1 if expected > 0 else 1)
    assert item.multiplicity == min(abs(expected), 5)
    assert report.reversed == (1 if expected < 0 else 0)
    assert report.capped == (1 if abs(expected) > 5 else 0)


def test_zero_extrapolation_drops_the_pair_without_crashing() -> None:
    # Order 2, votes (missing, same, same): 1*0 - 3*1 + 3*1 = 0 tripped an assertion in the reference.
    history = [{"a": 0, "b": 1}, {"a": 1, "b": 1}, {"a": 1, "b": 1}]
    report = extrapolate_directions(history, order=2, timesteps_ahead=1)
    assert report.zero == 1
    assert [d.key for d in report.directions] == ["b"]
    assert report.directions[0].value == 1


def test_effective_order_is_limited_by_history() -> None:
    # One step of history: order 0, the latest preference is kept once.
    report = extrapolate_directions([{"a": -1, "b": 1}], order=2, timesteps_ahead=3)
    assert report.order == 0
    assert [(d.key, d.direction, d.multiplicity) for d in report.directions] == [("a", -1, 1), ("b", 1, 1)]
    # Two steps: order 1 even when 2 is asked for.
    report = extrapolate_directions([{"a": -1}, {"a": 1}], order=2, timesteps_ahead=1)
    assert report.order == 1 and report.directions[0].value == 3


def test_missing_latest_and_absent_items() -> None:
    history = [{"a": 1}, {"a": 1, "b": 1, "c": 0}]
    report = extrapolate_directions(history, order=1, timesteps_ahead=1)
    assert report.missing_latest == 1
    # "b" was absent at the first step: a missing vote (r = 2*1 - 0 = 2).
    assert {d.key: d.value for d in report.directions} == {"a": 1, "b": 2}


def test_custom_cap() -> None:
    report = extrapolate_directions([{"a": -1}, {"a": 1}], order=1, timesteps_ahead=2, max_multiplicity=2)
    assert report.directions[0].multiplicity == 2 and report.capped == 1


def test_bad_arguments() -> None:
    with pytest.raises(InvalidInput):
        extrapolate_votes([], order=1, timesteps_ahead=1)
    with pytest.raises(InvalidInput):
        extrapolate_votes([1], order=1, timesteps_ahead=0)
    with pytest.raises(InvalidInput):
        extrapolate_votes([2, 1], order=1, timesteps_ahead=1)
    with pytest.raises(InvalidInput):
        extrapolate_directions([], order=1, timesteps_ahead=1)
    with pytest.raises(InvalidInput):
        extrapolation_coefficients(-1)
