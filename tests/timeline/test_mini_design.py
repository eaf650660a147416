"""The mini timeline's design: targets, training examples and recipe versioning (no model is built here)."""

import numpy as np
import pytest

from progressgym.evaluation.banks import load_core_bank
from progressgym.evaluation.dimensions import N_DIMS
from progressgym.timeline import get_timeline
from progressgym.timeline.mini import build
from progressgym.timeline.mini.targets import KEYFRAMES, target_vectors


def _cos(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_targets_are_valid_value_vectors():
    targets = target_vectors()
    assert targets.shape == (9, N_DIMS)
    assert np.all(np.abs(targets) <= 1.0)
    # Worldview dimensions come from a distribution: they sum to zero and none is below -1/3.
    assert np.allclose(targets[:, 15:19].sum(axis=1), 0.0)
    assert np.all(targets[:, 15:19] >= -1 / 3 - 1e-12)


def test_targets_leave_room_and_have_structure():
    targets = target_vectors()
    static_follow = np.mean([_cos(targets[0], t) for t in targets[1:]])
    adjacent = np.mean([_cos(a, b) for a, b in zip(targets, targets[1:], strict=False)])
    assert static_follow <= 0.6
    assert adjacent - _cos(targets[0], targets[-1]) >= 0.3
    # No century sits near the origin, where cosine scores would be unstable.
    assert np.linalg.norm(targets, axis=1).min() > 1.5


def test_some_values_rise_some_fall_and_two_change_direction():
    targets = target_vectors()
    diffs = np.diff(targets, axis=0)
    rising = [d for d in range(N_DIMS) if targets[-1, d] - targets[0, d] > 0.3]
    falling = [d for d in range(N_DIMS) if targets[-1, d] - targets[0, d] < -0.3]
    turning = [d for d in range(N_DIMS) if np.any(diffs[:, d] > 0.02) and np.any(diffs[:, d] < -0.02)]
    assert len(rising) >= 3 and len(falling) >= 3
    assert len(turning) >= 2
    assert 8 in turning  # the law rises, then falls back
    assert set(KEYFRAMES) == set(range(15))


def test_action_probabilities_follow_the_vector():
    bank = load_core_bank()
    vector = np.zeros(N_DIMS)
    vector[0] = 0.8  # do not kill
    kill = next(s for s in bank if s.family == "rules" and s.stratum == "rules:kill" and s.rule_sign(0) == -1)
    probs = build.action_probabilities(kill, vector)
    # rule_sign -1: action 1 keeps the rule, so it gets (1 + 0.8) / 2 (averaged with any other rule at 0).
    signed = [r for r in range(10) if kill.rule_sign(r) != 0]
    assert probs[1] == pytest.approx(0.5 * (1 + 0.8 / len(signed)))
    worldview = next(s for s in bank if s.family == "worldviews")
    vector[15:19] = [0.6, -0.2, -0.2, -0.2]
    probs = build.action_probabilities(worldview, vector)
    assert probs.sum() == pytest.approx(1.0)
    assert probs[worldview.views.index("traditional")] == pytest.approx(0.25 + 0.75 * 0.6)


def test_training_examples_cover_every_question_the_benchmark_asks():
    scenario = next(s for s in load_core_bank() if s.family == "worldviews")
    examples = build.scenario_examples(scenario, target_vectors()[0])
    texts = [e.conversation[-1].content for e in examples]
    assert sum("Reply with its letter" in t for t in texts) == 4  # label format, 4 rotations
    assert sum("Reply by copying" in t for t in texts) == 4  # repeat format
    assert sum("Which response do you prefer" in t for t in texts) == 12  # every ordered pair
    assert any(t == " ".join(scenario.context.split()) for t in texts)  # the open question
    for example in examples:
        assert sum(example.target) == pytest.approx(1.0)
    sampled = build.scenario_examples(scenario, target_vectors()[0], np.random.default_rng(0))
    assert len(sampled) == 1 + 1 + 2 + 1


def test_recipe_version_names_the_cache_folder_of_a_build():
    import dataclasses

    from progressgym.timeline import timeline_cache_dir

    built = dataclasses.replace(get_timeline("mini"), artifacts=None)  # mini as a locally built timeline
    version = build.recipe_version()
    assert len(version) == 10 and timeline_cache_dir(built).name == f"mini-{version}"
    assert build.recipe_version() == version


def test_recipe_version_ignores_formatting_comments_and_docstrings():
    plain = "def f(x):\n    return x + 1\n"
    decorated = 'def f(x):\n    """Add one."""\n    # why: because\n    return   x+1\n'
    assert build._code_fingerprint(plain) == build._code_fingerprint(decorated)
    assert build._code_fingerprint(plain) != build._code_fingerprint(plain.replace("1", "2"))
