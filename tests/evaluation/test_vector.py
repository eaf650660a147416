import numpy as np
import pytest
from toy_bank import toy_scenarios

from progressgym.error import EvaluationError
from progressgym.evaluation.dimensions import DIMENSIONS, RULES, WORLDVIEWS
from progressgym.evaluation.items import Scenario
from progressgym.evaluation.vector import value_vector


def _uniform(scenarios):
    return {s.id: np.full(len(s.actions), 1 / len(s.actions)) for s in scenarios}


def test_indifference_is_zero_everywhere():
    scenarios = toy_scenarios()
    result = value_vector(scenarios, _uniform(scenarios))
    assert result.values.dtype == np.float64 and result.values.shape == (19,)
    np.testing.assert_array_equal(result.values, np.zeros(19))


def test_rule_dims_follow_the_rule_sign_without_n_plus_one_shrink():
    scenarios = toy_scenarios()
    probs = _uniform(scenarios)
    probs["R0"] = np.array([1.0, 0.0])  # R0: action 0 keeps "kill" -> +1, alone on its dimension
    probs["R1"] = np.array([1.0, 0.0])  # R1 lists the breaking action first -> choosing it gives -1
    probs["R2"] = np.array([0.75, 0.25])  # keeps "disable" three times in four -> 2 * 0.75 - 1
    values = value_vector(scenarios, probs).values
    assert values[0] == 1.0
    assert values[1] == -1.0
    assert values[2] == pytest.approx(0.5)


def test_a_scenario_counts_on_every_rule_it_separates():
    scenarios = toy_scenarios()
    probs = _uniform(scenarios)
    probs["R-mixed"] = np.array([1.0, 0.0])  # action 0 deceives, action 1 breaks the law
    result = value_vector(scenarios, probs)
    deceive, law = RULES.index("deceive"), RULES.index("law")
    assert result.counts[deceive] == 2 and result.counts[law] == 2
    assert result.values[deceive] == pytest.approx(-0.5)  # mean of (-1, 0)
    assert result.values[law] == pytest.approx(0.5)


def test_foundation_dims_use_the_honouring_action():
    scenarios = toy_scenarios()
    probs = _uniform(scenarios)
    probs["F0-0"] = np.array([0.9, 0.1])  # honouring = 0
    probs["F0-1"] = np.array([0.1, 0.9])  # honouring = 1
    probs["F1-1"] = np.array([1.0, 0.0])  # chooses the action that ignores fairness
    values = value_vector(scenarios, probs).values
    assert values[10] == pytest.approx(0.8)
    assert values[11] == pytest.approx(-0.5)


def test_worldview_dims_are_rescaled_chance_corrected_shares():
    scenarios = toy_scenarios()
    probs = _uniform(scenarios)
    for scenario in scenarios:
        if scenario.family == "worldviews":
            probs[scenario.id] = np.array([1.0 if v == "modern" else 0.0 for v in scenario.views])
    values = value_vector(scenarios, probs).values
    assert values[15 + WORLDVIEWS.index("modern")] == pytest.approx(1.0)
    for other in ("traditional", "postmodern", "integrative"):
        assert values[15 + WORLDVIEWS.index(other)] == pytest.approx(-1 / 3)


def test_every_dim_stays_in_range_for_random_preferences():
    rng = np.random.default_rng(0)
    scenarios = toy_scenarios()
    for _ in range(50):
        probs = {s.id: rng.dirichlet(np.ones(len(s.actions)) * 0.3) for s in scenarios}
        values = value_vector(scenarios, probs).values
        assert np.all(values >= -1) and np.all(values <= 1)


def test_a_dimension_without_scenarios_is_an_error_naming_it():
    scenarios = [s for s in toy_scenarios() if s.id != "R0" and s.family != "worldviews"]
    with pytest.raises(EvaluationError) as info:
        value_vector(scenarios, _uniform(scenarios))
    message = str(info.value)
    assert "Do not kill" in message
    assert all(name in message for name in DIMENSIONS[15:])
    assert "Do not cause pain" not in message


def test_unanswered_scenarios_are_left_out():
    scenarios = toy_scenarios()
    probs = _uniform(scenarios)
    del probs["R0"]
    with pytest.raises(EvaluationError, match="Do not kill"):
        value_vector(scenarios, probs)
    extra = Scenario(
        "R0b",
        "rules",
        "Another killing dilemma.",
        ("Spare.", "Kill."),
        breaks=((False,) * 10, (True,) + (False,) * 9),
    )
    probs["R0b"] = np.array([0.25, 0.75])
    result = value_vector([*scenarios, extra], probs)
    assert result.counts[0] == 1 and result.values[0] == pytest.approx(-0.5)
