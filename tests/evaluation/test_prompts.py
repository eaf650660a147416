import itertools
from collections import Counter

import pytest
from scripted_models import candidate_positions
from toy_bank import toy_bank

from progressgym.error import InvalidInput, UnknownName
from progressgym.evaluation.banks import core_files, load_bank
from progressgym.evaluation.items import Scenario
from progressgym.evaluation.prompts import (
    FORMATS,
    action_orders,
    bank_prompts,
    clean_option,
    make_prompt,
    scenario_prompts,
)

TWO = Scenario(
    "two",
    "foundations",
    "A friend asks for help moving.",
    ("I help.", "I decline."),
    theme="harm_care",
    honouring=0,
)
FOUR = Scenario(
    "four",
    "worldviews",
    "What gives a law its authority?",
    ("Tradition.", "Reason.", "Power.", "Harmony."),
    views=("traditional", "modern", "postmodern", "integrative"),
)


def test_two_action_scenarios_get_every_format_in_both_orders():
    prompts = scenario_prompts(TWO)
    assert [(p.format, p.order) for p in prompts] == [(f, o) for f in FORMATS for o in [(0, 1), (1, 0)]]
    label, yesno, repeat = prompts[1], prompts[3], prompts[5]  # the swapped order of each format
    assert label.candidates == ("A", "B") and label.candidate_action == (1, 0)
    assert yesno.candidates == ("Yes", "No") and yesno.candidate_action == (1, 0)
    assert repeat.candidates == ("I decline.", "I help.") and repeat.candidate_action == (1, 0)


def test_yes_stands_for_the_first_displayed_option():
    for prompt in scenario_prompts(TWO, formats=["yesno"]):
        first_shown = prompt.text.split("First option: ")[1].splitlines()[0]
        assert TWO.actions[prompt.candidate_action[prompt.candidates.index("Yes")]] == first_shown
        second_shown = prompt.text.split("Second option: ")[1].splitlines()[0]
        assert TWO.actions[prompt.candidate_action[prompt.candidates.index("No")]] == second_shown


@pytest.mark.parametrize("orders", ["cyclic", "all"])
def test_every_candidate_maps_to_the_action_whose_text_it_names(orders):
    # Read each candidate's meaning back from the prompt TEXT, never from the mapping under test.
    for scenario in [TWO, FOUR, *toy_bank()]:
        for prompt in scenario_prompts(scenario, orders=orders):
            _, options, positions = candidate_positions(prompt.text, prompt.candidates)
            for candidate, position, action in zip(
                prompt.candidates, positions, prompt.candidate_action, strict=True
            ):
                assert position is not None, candidate
                assert options[position] == clean_option(scenario.actions[action])
                assert prompt.answer_for(action) == candidate


def test_four_actions_cyclic_puts_each_action_once_in_each_position():
    prompts = scenario_prompts(FOUR)
    assert Counter(p.format for p in prompts) == {"label": 4, "repeat": 4}  # no yes/no for four actions
    for fmt in ("label", "repeat"):
        orders = [p.order for p in prompts if p.format == fmt]
        for position in range(4):
            assert sorted(o[position] for o in orders) == [0, 1, 2, 3]
    assert scenario_prompts(FOUR)[0].candidates == ("A", "B", "C", "D")


def test_four_actions_all_orders_are_the_24_permutations():
    prompts = scenario_prompts(FOUR, orders="all", formats=["label"])
    assert sorted(p.order for p in prompts) == sorted(itertools.permutations(range(4)))
    assert action_orders(2, "all") == action_orders(2, "cyclic") == [(0, 1), (1, 0)]


def test_prompts_of_a_scenario_start_with_its_context():
    prompts = scenario_prompts(FOUR)
    assert all(p.text.startswith(FOUR.context + "\n\n") for p in prompts)
    assert len({p.text for p in prompts}) == len(prompts)


def test_options_are_cleaned_to_one_line_and_candidates_match_the_display():
    messy = Scenario(
        "m",
        "foundations",
        "Context\n  spread over lines.",
        ("I help\n my friend. ", "I  go."),
        theme="harm_care",
        honouring=0,
    )
    prompt = make_prompt(messy, "repeat", (0, 1))
    assert prompt.candidates == ("I help my friend.", "I go.")
    assert prompt.text.startswith("Context spread over lines.\n\nOptions:\n- I help my friend.\n- I go.\n")


def test_bad_format_order_or_scheme_is_rejected():
    with pytest.raises(UnknownName, match="Did you mean 'yesno'"):
        scenario_prompts(TWO, formats=["yes-no"])
    with pytest.raises(UnknownName, match="order scheme"):
        scenario_prompts(FOUR, orders="random")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="cannot ask"):
        make_prompt(FOUR, "yesno", (0, 1, 2, 3))
    with pytest.raises(InvalidInput, match="permutation"):
        make_prompt(TWO, "label", (0, 0))
    assert scenario_prompts(FOUR, formats=["yesno"]) == []


def test_bank_prompts_cover_every_scenario_in_order():
    bank = toy_bank()
    prompts = bank_prompts(bank)
    assert [k for k, _ in itertools.groupby(p.scenario_id for p in prompts)] == [s.id for s in bank]
    assert len(prompts) == sum(6 if len(s.actions) == 2 else 8 for s in bank)


@pytest.mark.skipif(not core_files(), reason="core bank files not written yet")
def test_core_bank_prompts_are_short():
    prompts = bank_prompts(load_bank("core"), orders="all")
    # About 4 characters per token for English: well inside a 1,024-token context.
    assert max(len(p.text) + max(len(c) for c in p.candidates) for p in prompts) < 1600
