"""The evaluation / elicitation split keeps near-duplicate contexts on one side (split version s2)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from progressgym.evaluation.banks import load_bank, load_core_bank
from progressgym.evaluation.dimensions import RULES
from progressgym.evaluation.items import ItemBank, Scenario
from progressgym.evaluation.split_report import main as split_report
from progressgym.evaluation.splits import (
    NEAR_DUPLICATE_THRESHOLD,
    SPLIT_VERSION,
    assign_halves,
    cross_split_pairs,
    near_duplicate_groups,
    rank_key,
)

OFFICIAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "progressgym-moralevals"


def _rule_scenario(sid: str, context: str, rule: str = "kill") -> Scenario:
    breaks_second = tuple(r == rule for r in RULES)
    return Scenario(
        id=sid,
        family="rules",
        context=context,
        actions=("I hold back.", "I go ahead."),
        breaks=((False,) * len(RULES), breaks_second),
    )


def _halves(bank: ItemBank) -> tuple[list[Scenario], list[Scenario]]:
    return list(bank.get_split("evaluation")), list(bank.get_split("elicitation"))


@pytest.fixture(scope="module")
def official() -> ItemBank:
    if not OFFICIAL.is_dir():
        pytest.skip(f"the official item files are not at {OFFICIAL}")
    return load_bank("progressgym", path=OFFICIAL)


@pytest.mark.parametrize("bank_name", ["core", "progressgym"])
def test_no_pair_of_contexts_across_the_splits_reaches_the_threshold(bank_name, request):
    bank = load_core_bank() if bank_name == "core" else request.getfixturevalue("official")
    evaluation, elicitation = _halves(bank)
    assert not cross_split_pairs(evaluation, elicitation), f"{bank_name}: near-duplicates across the splits"


def test_the_known_official_duplicates_share_a_half(official):
    # Identical contexts under two ids, a negated paraphrase, a reworded worldview question.
    evaluation = {s.id for s in official.get_split("evaluation")}
    for first, second in [("V_211", "V_445"), ("F_235", "F_1235"), ("F_608", "F_1608"), ("V_492", "V_499")]:
        assert (first in evaluation) == (second in evaluation), (first, second)
    groups = near_duplicate_groups(official.scenarios)
    assert ("V_211", "V_445") in groups


def test_the_official_split_stays_balanced(official):
    evaluation = Counter(s.stratum for s in official.get_split("evaluation"))
    largest_group = max(len(g) for g in near_duplicate_groups(official.scenarios))
    for stratum, n in Counter(s.stratum for s in official).items():
        assert abs(2 * evaluation[stratum] - n) <= largest_group, stratum


def test_core_has_no_near_duplicates_so_its_halves_are_the_alternating_deal():
    bank = load_core_bank()
    assert near_duplicate_groups(bank.scenarios) == []
    by_stratum: dict[str, list[Scenario]] = {}
    for scenario in bank:
        by_stratum.setdefault(scenario.stratum, []).append(scenario)
    expected = set()
    for members in by_stratum.values():
        expected.update(s.id for s in sorted(members, key=lambda s: rank_key(bank.name, s.id))[0::2])
    assert {s.id for s in bank.get_split("evaluation")} == expected


def test_a_group_goes_to_one_half_whole_even_across_strata():
    base = "A storm has cut the village off and the well is running dry, so you must decide what to do"
    scenarios = [
        _rule_scenario("A-1", base + "."),
        _rule_scenario("A-2", base + " now.", rule="pain"),  # a paraphrase measuring another rule
        _rule_scenario("A-3", base.replace("storm", "flood") + "."),
        *(
            _rule_scenario(f"B-{i}", f"Unrelated case {i}: {'x' * i} a merchant offers you {i} coins.")
            for i in range(9)
        ),
    ]
    bank = ItemBank("synthetic", "1", tuple(scenarios))
    groups = near_duplicate_groups(bank.scenarios)
    assert ("A-1", "A-2", "A-3") in groups
    halves = assign_halves(bank.name, bank.version, bank.scenarios).halves
    assert len({halves["A-1"], halves["A-2"], halves["A-3"]}) == 1
    evaluation, elicitation = _halves(bank)
    assert not cross_split_pairs(evaluation, elicitation)
    assert {s.id for s in evaluation} | {s.id for s in elicitation} == {s.id for s in scenarios}


def test_contexts_below_the_threshold_are_not_grouped():
    first = "You find a wallet with money in it on the bus."
    second = "You find a phone with photos in it on the train."
    bank = ItemBank("synthetic", "1", (_rule_scenario("P-1", first), _rule_scenario("P-2", second)))
    from rapidfuzz import fuzz, utils

    assert fuzz.ratio(utils.default_process(first), utils.default_process(second)) < NEAR_DUPLICATE_THRESHOLD
    assert near_duplicate_groups(bank.scenarios) == []


def test_the_split_version_is_in_every_bank_key():
    assert load_core_bank().get_split("evaluation").key.endswith(f"/evaluation@{SPLIT_VERSION}")
    assert SPLIT_VERSION == "s2"


def test_the_report_lists_the_groups(official, capsys):
    assert split_report(["--bank", "progressgym", "--bank-path", str(OFFICIAL)]) == 0
    out = capsys.readouterr().out
    assert "V_211 V_445" in out
    assert f"split version {SPLIT_VERSION}" in out
    assert split_report(["--bank", "nonexistent"]) == 2
