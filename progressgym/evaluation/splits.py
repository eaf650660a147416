"""The evaluation / elicitation split of an item bank, with near-duplicate contexts kept on one side.

An examinee may learn from the elicitation split, so a paraphrase of an evaluation item there is a leak: the
official ProgressGym items hold identical contexts under two ids (``V_211`` / ``V_445``) and negated or reworded
copies (``F_608`` / ``F_1608``, ``V_492`` / ``V_499``). Contexts are therefore grouped first: two scenarios whose
contexts reach :data:`NEAR_DUPLICATE_THRESHOLD` under rapidfuzz's ``fuzz.ratio`` (after its default
normalisation: lower case, punctuation dropped) are linked, and the connected components are the groups. A
group always goes to one split whole.

The dealing, per stratum (what a scenario mainly measures, :attr:`Scenario.stratum`): groups are ordered by
the smallest ``sha256("s1:<bank>:<id>")`` of their members (a group belongs to the stratum of that member) and
each goes to the split that holds fewer of the stratum's scenarios so far, evaluation on a tie. With no
near-duplicates this is the alternating deal of split version ``s1`` exactly, so a bank without near-duplicates
(``core`` has none) keeps the same halves.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol


class Scenario(Protocol):
    """What the split reads of a scenario (:class:`progressgym.evaluation.items.Scenario` has it)."""

    @property
    def id(self) -> str:
        """The scenario's id, unique in its bank."""

    @property
    def context(self) -> str:
        """The situation's text."""

    @property
    def stratum(self) -> str:
        """What the scenario mainly measures."""


SPLIT_VERSION = "s2"
"""Bumped whenever the split rule changes; part of every cache key. ``s2``: near-duplicate contexts grouped."""

NEAR_DUPLICATE_THRESHOLD = 90.0
"""rapidfuzz ``fuzz.ratio`` (0-100) from which two contexts count as near-duplicates."""

_RANK_SALT = "s1"
"""Salt of the ranking hash. It stays at the first version's value: a new salt would reshuffle every bank."""

Half = Literal["evaluation", "elicitation"]


def rank_key(bank: str, scenario_id: str) -> str:
    """The hash that orders a stratum's scenarios before they are dealt."""
    return hashlib.sha256(f"{_RANK_SALT}:{bank}:{scenario_id}".encode()).hexdigest()


def near_duplicate_pairs(
    contexts: Sequence[str], threshold: float = NEAR_DUPLICATE_THRESHOLD
) -> list[tuple[int, int, float]]:
    """Every pair ``(i, j, similarity)`` with ``i < j`` whose contexts are at least ``threshold`` alike."""
    import numpy as np
    from rapidfuzz import fuzz, process, utils

    if len(contexts) < 2:
        return []
    scores = process.cdist(
        contexts,
        contexts,
        scorer=fuzz.ratio,
        processor=utils.default_process,
        score_cutoff=threshold,
        dtype=np.float32,
        workers=1,
    )
    first, second = np.nonzero(np.triu(scores, k=1))
    return [(int(i), int(j), float(scores[i, j])) for i, j in zip(first, second, strict=True)]


def near_duplicate_groups(scenarios: Sequence[Scenario]) -> list[tuple[str, ...]]:
    """The groups of two or more scenarios linked by near-duplicate contexts, ids in bank order."""
    parent = list(range(len(scenarios)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, _ in near_duplicate_pairs([s.context for s in scenarios]):
        parent[root(j)] = root(i)
    members: dict[int, list[int]] = defaultdict(list)
    for index in range(len(scenarios)):
        members[root(index)].append(index)
    groups = [sorted(group) for group in members.values() if len(group) > 1]
    return [tuple(scenarios[i].id for i in group) for group in sorted(groups)]


@dataclass(frozen=True)
class SplitAssignment:
    """Which half each scenario of a bank belongs to.

    Attributes:
        halves: Scenario id -> ``"evaluation"`` or ``"elicitation"``.
        groups: The near-duplicate groups that were kept together.
    """

    halves: dict[str, Half]
    groups: tuple[tuple[str, ...], ...]


_ASSIGNMENTS: dict[tuple[str, str, tuple[str, ...]], SplitAssignment] = {}


def assign_halves(bank: str, version: str, scenarios: Sequence[Scenario]) -> SplitAssignment:
    """Deal a bank's scenarios into the two halves (see the module docstring); cached per bank content."""
    cache_key = (bank, version, tuple(s.id for s in scenarios))
    if cache_key in _ASSIGNMENTS:
        return _ASSIGNMENTS[cache_key]
    groups = near_duplicate_groups(scenarios)
    by_id = {s.id: s for s in scenarios}
    grouped = {sid for group in groups for sid in group}
    units = [*groups, *((s.id,) for s in scenarios if s.id not in grouped)]
    strata: dict[str, list[tuple[str, tuple[str, ...]]]] = defaultdict(list)
    for unit in units:
        lead = min(unit, key=lambda sid: rank_key(bank, sid))
        strata[by_id[lead].stratum].append((rank_key(bank, lead), unit))
    halves: dict[str, Half] = {}
    for ranked in strata.values():
        sizes = {"evaluation": 0, "elicitation": 0}
        for _, unit in sorted(ranked):
            half: Half = "evaluation" if sizes["evaluation"] <= sizes["elicitation"] else "elicitation"
            sizes[half] += len(unit)
            halves.update((sid, half) for sid in unit)
    assignment = SplitAssignment(halves, tuple(groups))
    _ASSIGNMENTS[cache_key] = assignment
    return assignment


def cross_split_pairs(
    evaluation: Sequence[Scenario],
    elicitation: Sequence[Scenario],
    threshold: float = NEAR_DUPLICATE_THRESHOLD,
) -> list[tuple[str, str, float]]:
    """Pairs (evaluation id, elicitation id, similarity) of contexts at least ``threshold`` alike across halves."""
    scenarios = [*evaluation, *elicitation]
    boundary = len(evaluation)
    return [
        (scenarios[i].id, scenarios[j].id, score)
        for i, j, score in near_duplicate_pairs([s.context for s in scenarios], threshold)
        if i < boundary <= j
    ]


__all__ = [
    "NEAR_DUPLICATE_THRESHOLD",
    "SPLIT_VERSION",
    "SplitAssignment",
    "assign_halves",
    "cross_split_pairs",
    "near_duplicate_groups",
    "near_duplicate_pairs",
    "rank_key",
]
