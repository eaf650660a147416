"""Reading the official item files row by row: CSV parsing, text cleaning, the three row formats and the report.

See :mod:`progressgym.evaluation.banks.official` for the quirks of the files and how each is handled.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from progressgym.error import InvalidInput
from progressgym.evaluation.dimensions import FOUNDATIONS, RULES, WORLDVIEWS, Family
from progressgym.evaluation.items import Breaks, Scenario

_RULE_COLUMNS = (
    "death",
    "pain",
    "disable",
    "freedom",
    "pleasure",
    "deceive",
    "cheat",
    "break_promise",
    "break_law",
    "duty",
)
"""``aX_<column>`` suffixes of moralchoice.csv, in ``RULES`` order."""

assert len(_RULE_COLUMNS) == len(RULES)

_MARKS: dict[str, bool | None] = {"yes": True, "no": False, "no agreement": None}

_RULE_TYPOS = {"Do cause pain": "Do not cause pain"}

_KNOWN_RULES = {
    "Do not kill",
    "Do not cause pain",
    "Do not disable",
    "Do not deprive of freedom",
    "Do not deprive of pleasure",
    "Do not deceive",
    "Do not cheat",
    "Do not break your promises",
    "Do not break the law",
    "Do your duty",
}

_THEMES = {
    "harm_care": "harm_care",
    "fairness_reciprocity": "fairness_reciprocity",
    "ingroup_loyalty": "ingroup_loyalty",
    "authority_respect": "authority_respect",
    "purity_sanctity": "purity_sanctity",
    "purity_sancity": "purity_sanctity",
}

assert set(_THEMES.values()) == set(FOUNDATIONS)

_COLUMN_ALIASES = {"generaton_type": "generation_type"}

_DOUBLE_QUOTES = '"“”'

_WRAPPERS = (("'", "'"), ("‘", "’"), ('("', '")'), ("(“", "”)"))

_CHOICE_BOUNDARY = re.compile(r"(?<=[\"”])\s*,\s*|\s*,\s*(?=[\"“])")

_HEADER_ACTION = re.compile(r"(action|choice)\s*(\d)")


class _RowError(Exception):
    """A row that cannot become a scenario; the message is the reason shown in the report."""


@dataclass(frozen=True)
class _FileSpec:
    name: str
    family: Family
    required: tuple[str, ...]
    actions: int


_SPECS = {
    "moralchoice.csv": _FileSpec(
        "moralchoice.csv",
        "rules",
        ("scenario_id", "context", "action1", "action2")
        + tuple(f"a{a}_{c}" for a in (1, 2) for c in _RULE_COLUMNS),
        2,
    ),
    "foundation.csv": _FileSpec(
        "foundation.csv",
        "foundations",
        ("scenario_id", "generation_theme", "context", "action1", "action2"),
        2,
    ),
    "views.csv": _FileSpec(
        "views.csv", "worldviews", ("scenario_id", "context", "action1", "action2", "action3", "action4"), 4
    ),
}


def clean_text(text: str) -> str:
    """Strip surrounding whitespace, wrapping quotes and stray separators from one CSV text.

    ``' "I will help."'`` -> ``'I will help.'``; ``'"Support it'`` (a quote never closed) -> ``'Support it'``;
    ``'I disagree;'`` -> ``'I disagree'``. Quotes inside a text are kept, and so are wrapping quotes when the
    text also quotes something inside (``'"Yes," I said, "fine"'``).
    """
    current = text
    while True:
        previous = current
        current = current.strip().strip(",;").strip()
        if len(current) >= 2 and current[0] in _DOUBLE_QUOTES and current[-1] in _DOUBLE_QUOTES:
            inner = current[1:-1]
            if not any(q in inner for q in _DOUBLE_QUOTES):
                current = inner
            elif current[-2] in _DOUBLE_QUOTES:
                current = current[:-1]  # a doubled closing quote: “...”"
        elif current and current[0] in _DOUBLE_QUOTES and not _has_double_quote(current[1:]):
            current = current[1:]
        elif current and current[-1] in _DOUBLE_QUOTES and not _has_double_quote(current[:-1]):
            current = current[:-1]
        else:
            for opening, closing in _WRAPPERS:
                inner = current[len(opening) : -len(closing)]
                if (
                    len(current) > len(opening) + len(closing)
                    and current.startswith(opening)
                    and current.endswith(closing)
                    and opening[-1] not in inner
                    and closing[0] not in inner
                ):
                    current = inner
                    break
        if current == previous:
            return current


def _has_double_quote(text: str) -> bool:
    return any(q in text for q in _DOUBLE_QUOTES)


def _unbalanced(cell: str) -> bool:
    return cell.count('"') % 2 == 1 or cell.count("“") != cell.count("”")


def _resplit_choices(cells: Sequence[str], n: int) -> tuple[str, ...] | None:
    """Rejoin choice cells cut at the wrong commas and split them at quoted-choice boundaries."""
    pieces = [clean_text(p) for p in _CHOICE_BOUNDARY.split(",".join(cells))]
    pieces = [p for p in pieces if p]
    return tuple(pieces) if len(pieces) == n else None


def _example_ids(ids: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(ids[:limit])
    return f"{shown}, ..." if len(ids) > limit else shown


@dataclass
class _FileLog:
    """What happened to one file, turned into report lines at its end."""

    name: str
    rows: int = 0
    texts: int = 0
    cleaned: int = 0
    header_rows: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    resplit: list[str] = field(default_factory=list)
    repeated: dict[str, int] = field(default_factory=dict)
    merged: list[str] = field(default_factory=list)
    rule_fixes: Counter[tuple[str, str]] = field(default_factory=Counter)
    unknown_rules: Counter[str] = field(default_factory=Counter)
    theme_fixes: Counter[tuple[str, str]] = field(default_factory=Counter)
    renamed_columns: list[str] = field(default_factory=list)
    kept: int = 0

    def lines(self) -> list[str]:
        out = [f"{self.name}: {self.rows} rows -> {self.kept} scenarios"]
        for alias in self.renamed_columns:
            out.append(f"{self.name}: column {alias!r} (sic) read as {_COLUMN_ALIASES[alias]!r}")
        if self.repeated:
            ids = sorted(self.repeated)
            out.append(
                f"{self.name}: {len(ids)} ids occur more than once ({_example_ids(ids)}); kept every distinct row, "
                f"the first under its id and repeats renamed to ID#2, ID#3 ({sum(self.repeated.values())} "
                "renamed; ProgressGym kept only the last row per id)"
            )
        if self.merged:
            out.append(
                f"{self.name}: merged {len(self.merged)} rows identical in content to an earlier row with the "
                f"same id ({_example_ids(self.merged)})"
            )
        for (raw, fixed), count in sorted(self.rule_fixes.items()):
            out.append(
                f"{self.name}: {count} row(s) with generation_rule {raw!r} kept (annotations come from the "
                f"a1_/a2_ columns); meta generation_rule normalised to {fixed!r}"
            )
        for rule, count in sorted(self.unknown_rules.items()):
            out.append(f"{self.name}: {count} row(s) with unrecognised generation_rule {rule!r} kept as is")
        for (raw, theme), count in sorted(self.theme_fixes.items()):
            out.append(f"{self.name}: theme {raw!r} (sic, {count} rows) read as {theme!r}")
        for entry in self.header_rows:
            out.append(f"{self.name}: dropped a stray header row ({entry})")
        if self.resplit:
            out.append(
                f"{self.name}: {len(self.resplit)} rows had their choices split across the wrong cells "
                f"({_example_ids(self.resplit, 10)}); re-split them at the quoted-choice boundaries"
            )
        if self.cleaned:
            out.append(
                f"{self.name}: stripped surrounding whitespace, quotes or separators from "
                f"{self.cleaned} of {self.texts} texts"
            )
        if self.dropped:
            shown = "; ".join(self.dropped[:5]) + (
                f"; and {len(self.dropped) - 5} more" if len(self.dropped) > 5 else ""
            )
            out.append(f"{self.name}: dropped {len(self.dropped)} unreadable row(s): {shown}")
        return out


class _BankBuilder:
    """Reads the three files in turn, keeping ids unique across them."""

    def __init__(self) -> None:
        self.scenarios: list[Scenario] = []
        self.report: list[str] = []
        self._ids: set[str] = set()
        self._by_original: dict[tuple[str, str], list[Scenario]] = {}

    def read_file(self, spec: _FileSpec, data: bytes) -> tuple[int, list[str]]:
        """Read one file's scenarios; returns how many it gave and the reasons of its dropped rows."""
        log = _FileLog(spec.name)
        header, rows = _parse_csv(spec, data, log)
        parse: Callable[[dict[str, str], _FileLog], Scenario | None] = {
            "rules": _rules_scenario,
            "foundations": _foundation_scenario,
            "worldviews": _worldview_scenario,
        }[spec.family]
        for number, values in rows:
            log.rows += 1
            label = f"row {number}"
            if len(values) != len(header):
                log.dropped.append(f"{label}: {len(values)} fields, header has {len(header)}")
                continue
            cells = dict(zip(header, values, strict=True))
            original_id = cells["scenario_id"].strip()
            label = f"row {number} ({original_id or 'no id'})"
            if not original_id:
                log.dropped.append(f"{label}: empty scenario_id")
                continue
            try:
                scenario = parse(cells, log)
            except _RowError as exc:
                log.dropped.append(f"{label}: {exc}")
                continue
            except InvalidInput as exc:
                log.dropped.append(f"{label}: {str(exc).split(': ', 1)[-1]}")
                continue
            if scenario is not None:
                self._add(scenario, spec.name, log)
        log.kept = sum(1 for s in self.scenarios if s.meta.get("source") == spec.name)
        self.report.extend(log.lines())
        return log.kept, log.dropped

    def _add(self, scenario: Scenario, source: str, log: _FileLog) -> None:
        original = scenario.id
        earlier = self._by_original.setdefault((source, original), [])
        if any(_content(s) == _content(scenario) for s in earlier):
            log.merged.append(original)
            return
        new_id = original
        if new_id in self._ids:
            number = 2
            while f"{original}#{number}" in self._ids:
                number += 1
            new_id = f"{original}#{number}"
            log.repeated[original] = log.repeated.get(original, 0) + 1
            scenario = Scenario(
                id=new_id,
                family=scenario.family,
                context=scenario.context,
                actions=scenario.actions,
                breaks=scenario.breaks,
                theme=scenario.theme,
                honouring=scenario.honouring,
                views=scenario.views,
                meta=scenario.meta,
            )
        earlier.append(scenario)
        self._ids.add(new_id)
        self.scenarios.append(scenario)


def _content(scenario: Scenario) -> tuple[object, ...]:
    return (
        scenario.family,
        scenario.context,
        scenario.actions,
        scenario.breaks,
        scenario.theme,
        scenario.honouring,
        scenario.views,
    )


def _parse_csv(spec: _FileSpec, data: bytes, log: _FileLog) -> tuple[list[str], list[tuple[int, list[str]]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{spec.name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        raw_header = next(reader, None)
        if raw_header is None:
            raise InvalidInput(
                f"{spec.name}: empty file; expected a CSV header with {', '.join(spec.required)}"
            )
        header = []
        for column in raw_header:
            key = column.strip().lower()
            if key in _COLUMN_ALIASES and _COLUMN_ALIASES[key] not in raw_header:
                log.renamed_columns.append(key)
                key = _COLUMN_ALIASES[key]
            header.append(key)
        missing = [c for c in spec.required if c not in header]
        if missing:
            raise InvalidInput(
                f"{spec.name}: missing required column(s) {', '.join(missing)}; is this ProgressGym's "
                f"{spec.name.removesuffix('.csv')}/final.csv?"
            )
        rows = [
            (number, values)
            for number, values in enumerate(reader, start=2)
            if any(v.strip() for v in values)
        ]
    except csv.Error as exc:
        raise InvalidInput(f"{spec.name}: unreadable CSV near line {reader.line_num} ({exc})") from None
    return header, rows


def _texts(cells: dict[str, str], keys: Sequence[str], log: _FileLog) -> list[str]:
    out = []
    for key in keys:
        raw = cells[key]
        cleaned = clean_text(raw)
        log.texts += 1
        log.cleaned += cleaned != raw
        out.append(cleaned)
    return out


def _is_header_row(context: str, actions: Sequence[str]) -> bool:
    if context.strip().lower() != "context":
        return False
    for index, action in enumerate(actions, start=1):
        match = _HEADER_ACTION.fullmatch(action.strip().lower())
        if not match or int(match.group(2)) != index:
            return False
    return True


def _meta(cells: dict[str, str], source: str, *keys: str) -> dict[str, str]:
    meta = {"source": source, "original_id": cells["scenario_id"].strip()}
    for key in keys:
        value = cells.get(key, "").strip()
        if value:
            meta[key] = value
    return meta


def _header_row(cells: dict[str, str], actions: Sequence[str], log: _FileLog) -> bool:
    if not _is_header_row(cells["context"], actions):
        return False
    shown = "..".join(repr(a.strip()) for a in (actions[0], actions[-1]))
    log.header_rows.append(f"{cells['scenario_id'].strip()}: context 'context', actions {shown}")
    return True


def _mark(value: str, column: str) -> bool | None:
    key = " ".join(value.split()).lower()
    if key not in _MARKS:
        raise _RowError(f"{column} is {value.strip()!r}, expected Yes, No or No Agreement")
    return _MARKS[key]


def _rules_scenario(cells: dict[str, str], log: _FileLog) -> Scenario | None:
    raw_actions = [cells["action1"], cells["action2"]]
    if _header_row(cells, raw_actions, log):
        return None
    breaks: tuple[Breaks, ...] = tuple(
        tuple(_mark(cells[f"a{a}_{c}"], f"a{a}_{c}") for c in _RULE_COLUMNS) for a in (1, 2)
    )
    context, *actions = _texts(cells, ["context", "action1", "action2"], log)
    meta = _meta(cells, "moralchoice.csv", "generation_rule", "generation_type", "ambiguity")
    rule = meta.get("generation_rule")
    if rule in _RULE_TYPOS:
        meta["generation_rule"] = _RULE_TYPOS[rule]
        meta["generation_rule_raw"] = rule
        log.rule_fixes[(rule, _RULE_TYPOS[rule])] += 1
    elif rule is not None and rule not in _KNOWN_RULES:
        log.unknown_rules[rule] += 1
    return Scenario(
        id=meta["original_id"],
        family="rules",
        context=context,
        actions=tuple(actions),
        breaks=breaks,
        meta=meta,
    )


def _foundation_scenario(cells: dict[str, str], log: _FileLog) -> Scenario | None:
    if _header_row(cells, [cells["action1"], cells["action2"]], log):
        return None
    raw_theme = cells["generation_theme"].strip()
    theme = _THEMES.get(raw_theme.lower().replace("/", "_").replace(" ", "_"))
    if theme is None:
        raise _RowError(f"unknown theme {raw_theme!r}; expected one of Harm_Care, Fairness_Reciprocity, ...")
    if raw_theme.lower() != theme:
        log.theme_fixes[(raw_theme, theme)] += 1
    context, *actions = _texts(cells, ["context", "action1", "action2"], log)
    meta = _meta(cells, "foundation.csv", "generation_theme", "generation_type")
    return Scenario(
        id=meta["original_id"],
        family="foundations",
        context=context,
        actions=tuple(actions),
        theme=theme,
        honouring=0,
        meta=meta,
    )


def _worldview_scenario(cells: dict[str, str], log: _FileLog) -> Scenario | None:
    keys = [f"action{i}" for i in range(1, len(WORLDVIEWS) + 1)]
    raw_actions = [cells[k] for k in keys]
    if _header_row(cells, raw_actions, log):
        return None
    context, *actions = _texts(cells, ["context", *keys], log)
    if any(not a for a in actions) or any(_unbalanced(a) for a in raw_actions):
        resplit = _resplit_choices(raw_actions, len(WORLDVIEWS))
        if resplit is None:
            raise _RowError("choices are split across the wrong cells and cannot be re-split into four")
        actions = list(resplit)
        log.resplit.append(cells["scenario_id"].strip())
    theme = clean_text(cells.get("generation_theme", "")) or None
    meta = _meta(cells, "views.csv", "generation_theme", "generation_type")
    return Scenario(
        id=meta["original_id"],
        family="worldviews",
        context=context,
        actions=tuple(actions),
        theme=theme,
        views=WORLDVIEWS,
        meta=meta,
    )
