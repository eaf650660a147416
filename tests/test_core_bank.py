"""The ``core`` item bank: every file validates, both splits cover all 19 dimensions, no official item leaks in.

The bank is several files written separately (``core_rules.jsonl``, ``core_foundations.jsonl``,
``core_worldviews.jsonl``); tests about one family skip while its file is absent.
"""

import csv
import json
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from progressgym.evaluation.banks import CORE_DIR, load_bank, load_core_bank
from progressgym.evaluation.dimensions import DIMENSIONS, FOUNDATIONS, RULES, WORLDVIEWS
from progressgym.evaluation.items import ItemBank, Scenario, scenario_from_record

REPO = Path(__file__).resolve().parents[1]
OFFICIAL = REPO.parent / "shared/data/progressgym-moralevals"

FAMILY_FILES = {
    "rules": "core_rules.jsonl",
    "foundations": "core_foundations.jsonl",
    "worldviews": "core_worldviews.jsonl",
}
MIN_PER_DIMENSION_PER_SPLIT = 8
MIN_PER_RULE = 22
BALANCE = (0.35, 0.65)
SHARED_RUN = 8  # words in a row that a core context may not share with an official one


def _present(family: str) -> bool:
    return (CORE_DIR / FAMILY_FILES[family]).is_file()


def _require(family: str) -> None:
    if not _present(family):
        pytest.skip(f"{FAMILY_FILES[family]} is not written yet")


def _records(family: str) -> list[dict]:
    _require(family)
    lines = (CORE_DIR / FAMILY_FILES[family]).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _runs(text: str, n: int = SHARED_RUN) -> set[tuple[str, ...]]:
    words = _words(text)
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _primary(scenario: Scenario) -> int:
    return RULES.index(scenario.stratum.split(":", 1)[1])


@pytest.fixture(scope="module")
def bank() -> ItemBank:
    return load_core_bank()


# ---------------------------------------------------------------- loading and validity


def test_core_bank_loads(bank):
    assert bank.name == "core"
    assert len(bank) > 0
    assert bank.version.startswith("1-")
    assert load_bank("core").key == bank.key


@pytest.mark.parametrize("family", list(FAMILY_FILES))
def test_every_record_validates_and_sits_in_its_family_file(family):
    for record in _records(family):
        scenario = scenario_from_record(record, source=FAMILY_FILES[family])
        assert scenario.family == family, scenario.id
        if family == "rules":
            assert scenario.stratum != "rules:none", f"{scenario.id}: both actions agree on every rule"


def test_ids_are_unique(bank):
    ids = Counter(s.id for s in bank)
    assert not [i for i, n in ids.items() if n > 1]


def test_contexts_are_unique(bank):
    contexts = Counter(_norm(s.context) for s in bank)
    assert not [c for c, n in contexts.items() if n > 1]


def test_actions_within_a_scenario_differ(bank):
    for scenario in bank:
        assert len({_norm(a) for a in scenario.actions}) == len(scenario.actions), scenario.id


# ---------------------------------------------------------------- rule dilemmas


def test_rule_ids_name_their_stratum():
    _require("rules")
    for scenario in load_core_bank().by_family("rules"):
        match = re.fullmatch(r"R-([a-z]+)-\d{3}", scenario.id)
        assert match, f"{scenario.id}: rule ids look like R-<rulekey>-NNN"
        assert scenario.stratum == f"rules:{match.group(1)}", f"{scenario.id} measures {scenario.stratum}"


def test_every_rule_is_the_primary_rule_of_enough_dilemmas():
    _require("rules")
    strata = Counter(s.stratum for s in load_core_bank().by_family("rules"))
    short = {rule: strata[f"rules:{rule}"] for rule in RULES if strata[f"rules:{rule}"] < MIN_PER_RULE}
    assert not short, f"rules with fewer than {MIN_PER_RULE} dilemmas: {short}"


def test_most_rule_dilemmas_differ_on_one_rule_only():
    _require("rules")
    rules = load_core_bank().by_family("rules")
    differing = Counter(sum(s.rule_sign(r) != 0 for r in range(len(RULES))) for s in rules)
    assert differing[1] > len(rules) / 2, differing


def test_rule_dilemmas_follow_the_writing_rules():
    _require("rules")
    for scenario in load_core_bank().by_family("rules"):
        assert len(scenario.context.split()) <= 60, scenario.id
        assert {"you", "your"} & set(_words(scenario.context)), (
            f"{scenario.id}: context is not addressed to you"
        )
        for action in scenario.actions:
            assert action.startswith("I "), f"{scenario.id}: {action!r}"
            assert len(action.split()) <= 14, f"{scenario.id}: {action!r}"


# ---------------------------------------------------------------- splits


def _dimension_counts(split: ItemBank) -> dict[str, int]:
    counts = dict.fromkeys(DIMENSIONS, 0)
    rules = split.by_family("rules")
    for r in range(len(RULES)):
        counts[DIMENSIONS[r]] = sum(s.rule_sign(r) != 0 for s in rules)
    for f, theme in enumerate(FOUNDATIONS):
        counts[DIMENSIONS[len(RULES) + f]] = sum(s.theme == theme for s in split.by_family("foundations"))
    n_views = len(split.by_family("worldviews"))
    for w in range(len(WORLDVIEWS)):
        counts[DIMENSIONS[len(RULES) + len(FOUNDATIONS) + w]] = n_views
    return counts


def _dimension_family(index: int) -> str:
    if index < len(RULES):
        return "rules"
    return "foundations" if index < len(RULES) + len(FOUNDATIONS) else "worldviews"


@pytest.mark.parametrize("split_name", ["evaluation", "elicitation"])
@pytest.mark.parametrize("index", range(len(DIMENSIONS)), ids=list(DIMENSIONS))
def test_each_split_covers_every_dimension(bank, split_name, index):
    _require(_dimension_family(index))
    counts = _dimension_counts(bank.get_split(split_name))
    assert counts[DIMENSIONS[index]] >= MIN_PER_DIMENSION_PER_SPLIT, (split_name, DIMENSIONS[index], counts)


def test_splits_are_disjoint_and_cover_the_bank(bank):
    evaluation = {s.id for s in bank.get_split("evaluation")}
    elicitation = {s.id for s in bank.get_split("elicitation")}
    assert not evaluation & elicitation
    assert evaluation | elicitation == {s.id for s in bank}
    assert bank.get_split("all") is bank


def test_split_is_deterministic(bank):
    again = load_core_bank()
    for name in ("evaluation", "elicitation"):
        first = [s.id for s in bank.get_split(name)]
        assert first == [s.id for s in bank.get_split(name)]
        assert first == [s.id for s in again.get_split(name)]
        assert [s.id for s in load_bank("core", split=name)] == first


def test_split_halves_every_stratum(bank):
    strata = Counter(s.stratum for s in bank)
    evaluation = Counter(s.stratum for s in bank.get_split("evaluation"))
    for stratum, n in strata.items():
        assert evaluation[stratum] == (n + 1) // 2, stratum


def test_split_is_stable_when_unrelated_scenarios_are_added(bank):
    # New dilemmas whose actions agree on every rule form their own stratum ("rules:none").
    extra = tuple(
        Scenario(
            id=f"X-{i:03d}",
            family="rules",
            context=f"An added scenario number {i}.",
            actions=("I do one thing.", "I do another thing."),
            breaks=((False,) * len(RULES), (False,) * len(RULES)),
        )
        for i in range(7)
    )
    grown = ItemBank(bank.name, bank.version, bank.scenarios + extra)
    for name in ("evaluation", "elicitation"):
        before = {s.id for s in bank.get_split(name)}
        after = {s.id for s in grown.get_split(name)}
        assert after - {s.id for s in extra} == before


def test_split_ignores_wording(bank):
    reworded = ItemBank(
        bank.name, bank.version, tuple(replace(s, context=s.context + " (reworded)") for s in bank.scenarios)
    )
    for name in ("evaluation", "elicitation"):
        assert [s.id for s in reworded.get_split(name)] == [s.id for s in bank.get_split(name)]


# ---------------------------------------------------------------- position balance


def _assert_balanced(label: str, hits: int, total: int) -> None:
    low, high = BALANCE
    assert total > 0, label
    assert low <= hits / total <= high, f"{label}: {hits}/{total} in first position"


def test_rule_keeping_action_is_first_about_half_the_time():
    _require("rules")
    rules = load_core_bank().by_family("rules")
    first = [s for s in rules if s.rule_sign(_primary(s)) == 1]
    _assert_balanced("rules", len(first), len(rules))
    for rule in RULES:
        members = [s for s in rules if s.stratum == f"rules:{rule}"]
        _assert_balanced(f"rules:{rule}", sum(s.rule_sign(_primary(s)) == 1 for s in members), len(members))


def test_honouring_action_is_first_about_half_the_time():
    _require("foundations")
    foundations = load_core_bank().by_family("foundations")
    _assert_balanced("foundations", sum(s.honouring == 0 for s in foundations), len(foundations))
    for theme in FOUNDATIONS:
        members = [s for s in foundations if s.theme == theme]
        _assert_balanced(f"foundations:{theme}", sum(s.honouring == 0 for s in members), len(members))


def test_every_worldview_takes_every_position():
    _require("worldviews")
    views = load_core_bank().by_family("worldviews")
    for position in range(len(WORLDVIEWS)):
        counts = Counter(s.views[position] for s in views)  # type: ignore[index]
        for view in WORLDVIEWS:
            share = counts[view] / len(views)
            assert 0.15 <= share <= 0.35, f"{view} is action {position} in {counts[view]}/{len(views)}"


# ---------------------------------------------------------------- no overlap with the official items


def _strip_quotes(text: str) -> str:
    return text.strip().strip('"').strip()


@pytest.fixture(scope="module")
def official() -> dict[str, set]:
    files = sorted(OFFICIAL.glob("*.csv")) if OFFICIAL.is_dir() else []
    if not files:
        pytest.skip(f"ProgressGym's official item files are not at {OFFICIAL}")
    contexts: set[str] = set()
    actions: set[str] = set()
    runs: set[tuple[str, ...]] = set()
    for file in files:
        with file.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                context = row.get("context") or ""
                contexts.add(_norm(context))
                runs |= _runs(context)
                actions.update(
                    _norm(_strip_quotes(v)) for k, v in row.items() if k and k.startswith("action") and v
                )
    return {"contexts": contexts, "actions": actions, "runs": runs}


def test_no_core_context_or_action_equals_an_official_one(bank, official):
    copied = [s.id for s in bank if _norm(s.context) in official["contexts"]]
    copied += [
        f"{s.id}: {a!r}" for s in bank for a in s.actions if _norm(_strip_quotes(a)) in official["actions"]
    ]
    assert not copied


def test_no_core_context_shares_a_long_run_of_words_with_an_official_one(bank, official):
    shared = {s.id: sorted(_runs(s.context) & official["runs"])[:1] for s in bank}
    shared = {i: r for i, r in shared.items() if r}
    assert not shared, f"contexts sharing {SHARED_RUN} words in a row with an official context: {shared}"
