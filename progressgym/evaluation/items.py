"""Item banks: moral scenarios in one schema, and their deterministic evaluation / elicitation split.

A :class:`Scenario` is one situation with 2 or 4 possible actions and the annotations its family needs:

* ``rules`` (2 actions): for each action and each of the ten rules, whether choosing it breaks the rule
  (``True``), keeps it (``False``) or annotators disagree (``None``);
* ``foundations`` (2 actions): the moral-foundation ``theme`` and which action honours it;
* ``worldviews`` (4 actions): which worldview (traditional / modern / postmodern / integrative) each expresses.

Each bank is split in two, deterministically and stratified by the dimension a scenario measures: the
``evaluation`` split scores models, the ``elicitation`` split is what alignment algorithms may ask the judge
about. Examinees never see evaluation items.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from progressgym.error import InvalidInput
from progressgym.evaluation.dimensions import FOUNDATIONS, RULES, WORLDVIEWS, Family
from progressgym.evaluation.splits import SPLIT_VERSION, assign_halves

Split = Literal["evaluation", "elicitation", "all"]
SPLITS: tuple[Split, ...] = ("evaluation", "elicitation", "all")

Breaks = tuple[bool | None, ...]


@dataclass(frozen=True)
class Scenario:
    """One moral scenario.

    Attributes:
        id: Unique within its bank.
        family: ``"rules"``, ``"foundations"`` or ``"worldviews"``.
        context: The situation, addressed to the reader.
        actions: The possible actions (2, or 4 for worldviews), in canonical order.
        breaks: ``rules`` only: ``breaks[a][r]`` says whether action ``a`` breaks rule ``RULES[r]``.
        theme: ``foundations``: one of ``FOUNDATIONS``; ``worldviews``: an optional topic label.
        honouring: ``foundations`` only: index of the action that honours the foundation.
        views: ``worldviews`` only: ``views[a]`` is the worldview (one of ``WORLDVIEWS``) of action ``a``.
        meta: Free-form provenance (source file, original id, ...); never used for scoring.
    """

    id: str
    family: Family
    context: str
    actions: tuple[str, ...]
    breaks: tuple[Breaks, ...] | None = None
    theme: str | None = None
    honouring: int | None = None
    views: tuple[str, ...] | None = None
    meta: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise InvalidInput(f"scenario {self.id!r}: {problem}")

    def _problem(self) -> str | None:
        n = len(self.actions)
        if not self.context.strip() or any(not a.strip() for a in self.actions):
            return "empty context or action"
        if self.family == "rules":
            if n != 2 or self.breaks is None or len(self.breaks) != 2:
                return "rule dilemmas need 2 actions and `breaks` for each"
            if any(len(b) != len(RULES) for b in self.breaks):
                return f"`breaks` needs {len(RULES)} entries per action"
        elif self.family == "foundations":
            if n != 2 or self.theme not in FOUNDATIONS or self.honouring not in (0, 1):
                return f"foundation scenarios need 2 actions, a theme in {FOUNDATIONS} and honouring 0 or 1"
        elif self.family == "worldviews":
            if n != 4 or self.views is None or sorted(self.views) != sorted(WORLDVIEWS):
                return f"worldview scenarios need 4 actions, one per worldview {WORLDVIEWS}"
        else:
            return f"unknown family {self.family!r}"
        return None

    def rule_sign(self, rule: int) -> int:
        """+1 if action 0 keeps ``RULES[rule]`` and action 1 breaks it, -1 for the reverse, 0 otherwise."""
        assert self.breaks is not None
        first, second = self.breaks[0][rule], self.breaks[1][rule]
        if first is False and second is True:
            return 1
        if first is True and second is False:
            return -1
        return 0

    @property
    def stratum(self) -> str:
        """What the scenario mainly measures; the split is balanced within each stratum."""
        if self.family == "rules":
            signed = [r for r in range(len(RULES)) if self.rule_sign(r) != 0]
            return f"rules:{RULES[signed[0]]}" if signed else "rules:none"
        if self.family == "foundations":
            return f"foundations:{self.theme}"
        return "worldviews"


@dataclass(frozen=True)
class ItemBank:
    """A named, versioned collection of scenarios.

    Attributes:
        name: Bank name, e.g. ``"core"`` or ``"progressgym"``.
        version: Content version; part of every cache key.
        scenarios: The scenarios.
        split: Which split this view holds.
        report: What the loader did (dropped rows, renamed ids...), for display.
    """

    name: str
    version: str
    scenarios: tuple[Scenario, ...]
    split: Split = "all"
    report: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for scenario in self.scenarios:
            if scenario.id in seen:
                raise InvalidInput(f"bank {self.name!r}: duplicate scenario id {scenario.id!r}")
            seen.add(scenario.id)

    def __len__(self) -> int:
        return len(self.scenarios)

    def __iter__(self) -> Iterator[Scenario]:
        return iter(self.scenarios)

    @property
    def key(self) -> str:
        """Cache key component: ``name@version/split@split-version``."""
        return f"{self.name}@{self.version}/{self.split}@{SPLIT_VERSION}"

    def by_family(self, family: Family) -> list[Scenario]:
        """The scenarios of one family."""
        return [s for s in self.scenarios if s.family == family]

    def get_split(self, split: Split) -> ItemBank:
        """The evaluation or elicitation half of the bank (``"all"`` returns the whole bank).

        Near-duplicate contexts are grouped and each group goes to one half whole; within each stratum the groups
        are ordered by a hash of (bank, id) and dealt to the smaller half, first to evaluation, so both halves
        cover every dimension (:mod:`progressgym.evaluation.splits`).
        """
        if split == "all":
            return self
        if split not in SPLITS:
            raise InvalidInput(f"unknown split {split!r}; expected one of {SPLITS}")
        halves = assign_halves(self.name, self.version, self.scenarios).halves
        kept = tuple(s for s in self.scenarios if halves[s.id] == split)
        return ItemBank(self.name, self.version, kept, split=split, report=self.report)


def scenario_from_record(record: dict[str, object], *, source: str = "") -> Scenario:
    """Build a scenario from one JSON record of the ``core`` bank format.

    Rule dilemmas list, per action, the rule keys it breaks (``"breaks": [[], ["deceive"]]``); every other rule
    counts as kept. Optionally ``"unclear": [[...], [...]]`` lists rules annotators could not agree on.
    """
    try:
        family = str(record["family"])
        actions = tuple(str(a) for a in record["actions"])  # type: ignore[attr-defined]
        breaks: tuple[Breaks, ...] | None = None
        if family == "rules":
            raw_breaks: list[list[str]] = record["breaks"]  # type: ignore[assignment]
            unclear: list[list[str]] = record.get("unclear") or [[], []]  # type: ignore[assignment]
            breaks = tuple(
                _breaks_row(row, unclear_row) for row, unclear_row in zip(raw_breaks, unclear, strict=False)
            )
        views = tuple(str(v) for v in record["views"]) if "views" in record else None  # type: ignore[attr-defined]
        honouring = record.get("honouring", 0 if family == "foundations" else None)
        return Scenario(
            id=str(record["id"]),
            family=family,  # type: ignore[arg-type]
            context=str(record["context"]),
            actions=actions,
            breaks=breaks,
            theme=str(record["theme"]) if record.get("theme") is not None else None,
            honouring=int(honouring) if honouring is not None else None,  # type: ignore[call-overload]
            views=views,
            meta={"source": source} if source else {},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(
            f"{source or 'record'}: malformed scenario {record.get('id', '?')!r}: {exc}"
        ) from None


def _breaks_row(broken: Iterable[str], unclear: Iterable[str]) -> Breaks:
    broken_set, unclear_set = set(broken), set(unclear)
    unknown = (broken_set | unclear_set) - set(RULES)
    if unknown:
        raise ValueError(f"unknown rule keys {sorted(unknown)}; expected {RULES}")
    return tuple(None if r in unclear_set else (r in broken_set) for r in RULES)


def read_jsonl_bank(path: str | Path, *, name: str, version: str) -> ItemBank:
    """Read a bank stored as JSON lines (one scenario per line; ``#`` lines and blank lines skipped)."""
    file = Path(path)
    scenarios = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            record = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{file}:{number}: not JSON ({exc.msg})") from None
        scenarios.append(scenario_from_record(record, source=f"{file.name}:{number}"))
    return ItemBank(name=name, version=version, scenarios=tuple(scenarios))
