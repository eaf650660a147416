from __future__ import annotations

import random

import pytest

from progressgym.algorithms._training import (
    TrainingPair,
    confidence_copies,
    pair_examples,
    pairs_from_records,
    parse_formats,
    preference_examples,
    rl_prompts,
)
from progressgym.elicitation import PreferenceRecord
from progressgym.error import InvalidInput, UnknownName
from progressgym.evaluation.banks import load_core_bank
from progressgym.evaluation.items import Scenario
from progressgym.evaluation.prompts import scenario_prompts
from progressgym.preference import scenario_query

TWO = Scenario(
    "two",
    "foundations",
    "A friend asks for help.",
    ("Help them.", "Walk away."),
    theme="harm_care",
    honouring=0,
)
FOUR = Scenario(
    "four",
    "worldviews",
    "What gives a life meaning?",
    ("Faith and family.", "Success and reason.", "Community and feeling.", "Growth of the whole."),
    views=("traditional", "modern", "postmodern", "integrative"),
)
SCENARIOS = {"two": TWO, "four": FOUR}


def content(rows: list[dict]) -> list[tuple[str, str, str]]:
    return [(r["prompt"][0]["content"], r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows]


def test_two_action_pair_in_every_format_and_order() -> None:
    rows = pair_examples(
        TrainingPair("two", chosen=1, rejected=0), TWO, parse_formats("open,label,yesno,repeat")
    )
    assert all(r["prompt"][0]["role"] == "user" and r["chosen"][0]["role"] == "assistant" for r in rows)
    texts = content(rows)
    assert texts[0] == (scenario_query(TWO), "Walk away.", "Help them.")
    prompts = scenario_prompts(TWO)
    assert [t[0] for t in texts[1:]] == [p.text for p in prompts]
    answers = [(t[1], t[2]) for t in texts[1:]]
    # label: order (0,1) -> "Walk away." is B; order (1,0) -> it is A. yesno: No then Yes. repeat: the texts.
    assert answers == [
        ("B", "A"),
        ("A", "B"),
        ("No", "Yes"),
        ("Yes", "No"),
        ("Walk away.", "Help them."),
        ("Walk away.", "Help them."),
    ]


def test_four_action_pair_keeps_the_other_options_displayed() -> None:
    rows = pair_examples(TrainingPair("four", chosen=3, rejected=1), FOUR, ("label", "repeat"))
    assert len(rows) == 8  # 4 cyclic orders x 2 formats
    for (text, chosen, rejected), prompt in zip(content(rows), scenario_prompts(FOUR), strict=True):
        assert text == prompt.text and all(option in text for option in FOUR.actions)
        assert chosen == prompt.answer_for(3) and rejected == prompt.answer_for(1)


def test_one_order_per_copy_is_seeded() -> None:
    pairs = [TrainingPair("two", 0, 1, copies=3), TrainingPair("four", 2, 0, copies=2)]
    rows = preference_examples(pairs, SCENARIOS, ("label", "yesno"), orders="one", seed=5)
    assert len(rows) == 3 * 2 + 2 * 1  # yesno cannot ask a four-action scenario
    assert rows == preference_examples(pairs, SCENARIOS, ("label", "yesno"), orders="one", seed=5)
    every = {
        t for p in pairs for t in content(pair_examples(p, SCENARIOS[p.scenario_id], ("label", "yesno")))
    }
    assert set(content(rows)) <= every
    draws = {
        content(preference_examples(pairs, SCENARIOS, ("label",), orders="one", seed=s))[0] for s in range(20)
    }
    assert len(draws) == 2  # both orders of the two-action label prompt come up
    with pytest.raises(InvalidInput):
        pair_examples(pairs[0], TWO, ("label",), orders="one")


def test_copies_repeat_examples() -> None:
    rows = preference_examples([TrainingPair("two", 0, 1, copies=3)], SCENARIOS, ("open",))
    assert len(rows) == 3 and rows[0] == rows[2]
    with pytest.raises(InvalidInput):
        preference_examples([TrainingPair("evaluation-item", 0, 1)], SCENARIOS, ("open",))


def test_parse_formats() -> None:
    assert parse_formats("repeat, open") == ("open", "repeat")
    with pytest.raises(UnknownName):
        parse_formats("open,lable")
    with pytest.raises(InvalidInput):
        parse_formats(" , ")


def record(p: float | None, direction: int) -> PreferenceRecord:
    return PreferenceRecord("two#0-1", "two", "q", 0, 1, "Help them.", "Walk away.", p, direction)


def test_pairs_from_records_weighting() -> None:
    records = [record(0.9, 1), record(0.2, -1), record(0.51, 0), record(None, 0)]
    uniform = pairs_from_records(records, weighting="uniform", max_copies=3)
    assert [(p.chosen, p.rejected, p.copies) for p in uniform] == [(0, 1, 1), (1, 0, 1)]
    weighted = pairs_from_records(records, weighting="confidence", max_copies=3)
    assert [p.copies for p in weighted] == [confidence_copies(0.8, 3), confidence_copies(0.6, 3)] == [3, 2]
    assert confidence_copies(0.0, 5) == 1 and confidence_copies(1.0, 5) == 5
    with pytest.raises(UnknownName):
        pairs_from_records(records, weighting="loud")


def test_rl_prompts() -> None:
    prompts = rl_prompts([TWO, FOUR], ("open", "label", "yesno"))
    assert len(prompts) == (1 + 2 + 2) + (1 + 4)
    one = rl_prompts([TWO, FOUR], ("open", "label", "yesno"), orders="one", seed=1)
    assert len(one) == (1 + 1 + 1) + (1 + 1)
    assert {p["prompt"][0]["content"] for p in one} <= {p["prompt"][0]["content"] for p in prompts}


def test_examples_never_use_evaluation_scenarios() -> None:
    bank = load_core_bank()
    elicitation = {s.id: s for s in bank.get_split("elicitation")}
    evaluation = bank.get_split("evaluation")
    rng = random.Random(0)
    pairs = [TrainingPair(s.id, 0, 1) for s in rng.sample(list(elicitation.values()), 20)]
    rows = preference_examples(pairs, elicitation, ("open", "label", "yesno", "repeat"))
    texts = {r["prompt"][0]["content"] for r in rows}
    for scenario in evaluation:
        assert not any(scenario_query(scenario) in t for t in texts)
    with pytest.raises(InvalidInput):
        preference_examples([TrainingPair(evaluation.scenarios[0].id, 0, 1)], elicitation, ("open",))
