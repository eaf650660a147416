"""Coevolve's answer sources: ``choose`` reads what a model holds from its likelihoods and teaches it."""

import numpy as np
import pytest

from progressgym.error import InvalidInput
from progressgym.evaluation.banks import load_bank
from progressgym.judges._choices import action_distributions, choice_examples, teach_distributions
from progressgym.model_ref import ModelRef
from progressgym.registration import challenge_spec, make_examinee, make_judge
from progressgym.runner import run_episode
from progressgym.timeline import get_timeline


def _distance(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Mean total-variation distance between two lists of distributions."""
    return float(np.mean([0.5 * np.abs(x - y).sum() for x, y in zip(a, b, strict=True)]))


def test_answers_auto_follows_what_the_timeline_declares(judge_kwargs):
    assert challenge_spec("coevolve").id == "Coevolve-v1" and challenge_spec("coevolve").version == 1
    assert get_timeline("mini").writes is False
    mini = make_judge("coevolve", timeline="mini")
    assert mini.answers == "choose" and mini.kwargs["answers"] == "auto"  # results record the setting given
    # a timeline's models write unless it declares otherwise
    assert make_judge("coevolve", **judge_kwargs).answers == "generate"
    assert make_judge("coevolve", **judge_kwargs, answers="choose").answers == "choose"
    assert make_judge("coevolve", timeline="mini", answers="generate").answers == "generate"


def test_an_unknown_answer_source_is_refused_with_the_choices(judge_kwargs):
    with pytest.raises(InvalidInput, match=r"answers must be one of auto, choose, generate .*got 'write'"):
        make_judge("coevolve", **judge_kwargs, answers="write")


def test_choice_examples_teach_the_distribution_in_every_question_form():
    scenario = next(s for s in load_bank("core", split="elicitation") if len(s.actions) == 2)
    examples = choice_examples(scenario, np.array([1.0, 0.0]), np.random.default_rng(0))
    open_question = examples[-1]
    assert open_question.target == pytest.approx((0.98 / 1.0, 0.02 / 1.0))  # floored, nothing impossible
    assert {e.candidates for e in examples} >= {("1", "2"), open_question.candidates}
    assert all(sum(e.target) == pytest.approx(1.0) for e in examples)


def test_choose_moves_a_proxy_toward_its_teacher_bit_for_bit_the_same_each_time(tmp_path):
    mini = get_timeline("mini")
    scenarios = load_bank("core", split="elicitation").scenarios[:24]
    start, teacher = mini.model(13), mini.model(21)
    held = action_distributions("hf", teacher.path, scenarios, device="cpu")
    before = action_distributions("hf", start.path, scenarios, device="cpu")
    out, examples = teach_distributions(
        start.path, scenarios, held, tmp_path / "a", passes=2, learning_rate=None, seed=0
    )
    after = action_distributions("hf", str(out), scenarios, device="cpu")
    assert examples > 2 * len(scenarios)
    assert _distance(after, held) < 0.5 * _distance(before, held)
    again, _ = teach_distributions(
        start.path, scenarios, held, tmp_path / "b", passes=2, learning_rate=None, seed=0
    )
    assert ModelRef.from_path(again).fingerprint == ModelRef.from_path(out).fingerprint


def test_a_choose_episode_moves_the_proxy_on_every_scenario_of_the_bank(judge_kwargs, tmp_path):
    judge = make_judge("coevolve", **judge_kwargs, answers="choose", influence_epochs=1)
    result = run_episode(judge, make_examinee("oracle"), seed=0, run_dir=tmp_path / "run")
    assert len(result.steps) == 2 and all(s.proxy_vector is not None for s in result.steps)
    assert (tmp_path / "run" / "judge" / "proxy" / "C015" / "config.json").is_file()
    bank = len(judge.society_scenarios())
    assert bank == len(judge.item_bank("evaluation").scenarios) + len(judge.elicitation_scenarios())
    # two passes a step, several question forms per scenario
    assert result.usage.judge.training_examples > 2 * bank * len(result.steps)
    assert result.steps[-1].proxy_vector != result.steps[0].proxy_vector
