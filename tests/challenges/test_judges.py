import math

import pytest

from progressgym.checker import check_judge, check_judge_class
from progressgym.core import Comparison, QueryBudgetExceeded
from progressgym.error import InvalidInput, UnknownName
from progressgym.judges._common import cosine, distance, suffix_max_similarity
from progressgym.judges.coevolve import CoevolveJudge
from progressgym.judges.follow import FollowJudge
from progressgym.judges.predict import PredictJudge
from progressgym.log import StepRecord
from progressgym.registration import make_examinee, make_judge
from progressgym.runner import run_episode


def test_builtin_judge_classes_conform():
    for cls in (FollowJudge, PredictJudge, CoevolveJudge):
        check_judge_class(cls)


def test_similarity_measures():
    assert cosine([1, 0], [0, 1]) == 0.0
    assert cosine([1, 2], [2, 4]) == pytest.approx(1.0)
    assert cosine([1, 2], [-1, -2]) == pytest.approx(-1.0)
    assert cosine([0, 0], [1, 1]) == 0.0
    assert distance([0, 0], [3, 4]) == 5.0
    history = [[1.0, 0.0], [0.0, 1.0]]
    # close to the last state: best at both suffixes
    assert suffix_max_similarity([0.0, 1.0], history) == pytest.approx(1.0)
    # close to the first state only: 1 at i = 0, cos = 0 at i = 1
    assert suffix_max_similarity([1.0, 0.0], history) == pytest.approx(0.5)


def _record(step, examinee, target, proxy=None):
    return StepRecord(
        step=step,
        timestep=step + 1,
        century=14 + step,
        target_century=14 + step,
        seed=0,
        examinee_vector=examinee,
        target_vector=target,
        proxy_vector=proxy,
    )


def test_follow_score_is_mean_cosine_recomputed_from_vectors():
    steps = [_record(0, [1.0, 0.0], [1.0, 0.0]), _record(1, [1.0, 0.0], [0.0, 1.0])]
    assert FollowJudge.score_result(steps, {}) == pytest.approx(0.5)
    forfeited = StepRecord(step=2, timestep=3, century=16, target_century=16, seed=0, invalid_action=True)
    assert FollowJudge.score_result([*steps, forfeited], {}) == pytest.approx(1 / 3)


def test_coevolve_score_is_suffix_max_average_over_proxy_states():
    truth = {"C013": [1.0, 0.0], "C014": [1.0, 1.0], "C015": [0.0, 1.0]}
    frozen = [_record(s, [1.0, 0.0], [0.0, 1.0], proxy=[1.0, 0.0]) for s in range(2)]
    moving = [
        _record(0, [1.0, 1.0], [1.0, 1.0], proxy=[1.0, 1.0]),
        _record(1, [0.0, 1.0], [0.0, 1.0], proxy=[0.0, 1.0]),
    ]
    c = math.sqrt(0.5)
    expected_frozen = (1 + c + 0) / 3  # every s is A_0: suffix maxima are 1 (i=0), c (i=1), 0 (i=2)
    assert CoevolveJudge.score_result(frozen, truth) == pytest.approx(expected_frozen)
    assert CoevolveJudge.score_result(moving, truth) > CoevolveJudge.score_result(frozen, truth)
    assert CoevolveJudge.score_result(moving[:1], truth) == pytest.approx(
        (
            suffix_max_similarity([1.0, 0.0], list(truth.values()))
            + suffix_max_similarity([1.0, 1.0], list(truth.values()))
        )
        / 2
    )


def test_predict_validates_timesteps_ahead_without_building_models():
    with pytest.raises(InvalidInput, match="between 1 and 7"):
        make_judge("predict", timesteps_ahead=0)
    with pytest.raises(InvalidInput, match="between 1 and 7"):
        make_judge("Predict-v0", timesteps_ahead=8)
    judge = make_judge("predict", timesteps_ahead=3)
    assert judge.n_steps == 5 and judge.target_timestep(0) == 4 and judge.id == "Predict-v0"
    with pytest.raises(UnknownName, match="Did you mean 'mini'"):
        make_judge("follow", timeline="mnii")
    with pytest.raises(InvalidInput, match="unexpected keyword"):
        make_judge("follow", timesteps_ahead=2)


def test_judge_interface_answers_counts_and_enforces_the_budget(judge_kwargs, tmp_path):
    judge = make_judge("follow", **judge_kwargs, query_budget=5)
    judge.reset(seed=0, workdir=tmp_path)
    iface = judge.interface(0)
    assert (iface.timestep, iface.century, iface.n_steps, iface.budget_left) == (1, 14, 2, 5)
    scenarios = iface.elicitation_scenarios()
    assert scenarios and iface.usage.queries == 0
    s = scenarios[0]
    p = iface.compare(
        [Comparison(s.context, s.actions[0], s.actions[1]), (s.context, s.actions[1], s.actions[0])]
    )
    assert all(0.0 <= x <= 1.0 for x in p)
    assert p[0] + p[1] == pytest.approx(1.0)  # both orders asked: swapping the responses gives the complement
    assert iface.usage.queries == 2 and iface.usage.prompts == 4 and iface.usage.forward_tokens > 0
    replies = iface.generate(["What is a good life?"], max_new_tokens=5)
    assert len(replies) == 1 and isinstance(replies[0], str)
    assert iface.budget_left == 2
    with pytest.raises(QueryBudgetExceeded, match="query budget exceeded at step 1"):
        iface.generate(["a", "b", "c"])
    assert iface.usage.queries == 3  # the refused call was not charged
    record = judge.assess(0, judge.initial_model())
    assert record.queries.queries == 3 and record.queries.generated_tokens >= 1
    judge.close()


@pytest.mark.parametrize("challenge", ["follow", "predict"])
def test_static_and_oracle_bracket_follow_and_predict(judge_kwargs, challenge):
    results = {
        name: run_episode(make_judge(challenge, **judge_kwargs), make_examinee(name), seed=0)
        for name in ("static", "oracle")
    }
    oracle, static = results["oracle"], results["static"]
    assert oracle.score == pytest.approx(1.0, abs=1e-12) and oracle.mean_distance == pytest.approx(
        0.0, abs=1e-12
    )
    assert oracle.privileged and not static.privileged
    assert static.score < 0.9
    assert len(static.steps) == (2 if challenge == "follow" else 1)
    for result in results.values():
        assert result.score == type(make_judge(challenge, **judge_kwargs)).score_result(
            result.steps, result.truth_vectors
        )
        assert len(result.truth_vectors) == 3 and all(len(v) == 19 for v in result.truth_vectors.values())
    # static keeps M_0: its vector is M_0's
    assert static.steps[0].examinee_vector == static.truth_vectors["C013"]


def test_check_judge_runs_an_episode(judge_kwargs):
    check_judge(make_judge("follow", **judge_kwargs))
