from dataclasses import dataclass, field

import pytest

from progressgym.algorithms.reference import OracleExaminee, StaticExaminee
from progressgym.checker import (
    ConformanceError,
    check_examinee,
    check_examinee_class,
    check_judge,
    check_judge_class,
)
from progressgym.core import Examinee, Judge
from progressgym.judges.follow import FollowJudge
from progressgym.model_ref import ModelRef
from progressgym.registration import make_judge


def test_reference_examinees_pass_on_real_models(judge_kwargs):
    for examinee in (StaticExaminee(), OracleExaminee()):
        check_examinee(examinee, make_judge("follow", **judge_kwargs), steps=2)


def test_examinee_contract_violations_are_named(judge_kwargs):
    @dataclass
    class Loose:
        lr: float = 0.1

    class LooseConfig(StaticExaminee):
        config_cls = Loose

    with pytest.raises(ConformanceError, match="must be frozen"):
        check_examinee_class(LooseConfig)

    @dataclass(frozen=True)
    class NoHelp:
        lr: float = 0.1
        steps: int = field(default=1, metadata={"help": "steps"})

    class Quiet(StaticExaminee):
        config_cls = NoHelp

    with pytest.warns(UserWarning, match=r"NoHelp\.lr has no metadata\['help'\]"):
        check_examinee_class(Quiet)

    class Abstract(Examinee):
        pass

    with pytest.raises(ConformanceError, match="does not implement update"):
        check_examinee_class(Abstract)

    class ReturnsPath(Examinee):
        def update(self, judge, step):
            return self.current_model.path

    with pytest.raises(ConformanceError, match="not a ModelRef"):
        check_examinee(ReturnsPath(), make_judge("follow", **judge_kwargs))

    class ReturnsEmptyDir(Examinee):
        def update(self, judge, step):
            empty = self.workdir / "empty"
            empty.mkdir(exist_ok=True)
            return ModelRef.from_path(empty)

    with pytest.raises(ConformanceError, match="holds no config.json"):
        check_examinee(ReturnsEmptyDir(), make_judge("follow", **judge_kwargs))


def test_judge_contract_violations_are_named():
    class Undocumented(Judge):
        """No headings."""

    with pytest.raises(ConformanceError, match="lacks the heading '## Description'"):
        check_judge_class(Undocumented)

    class StaticScore(FollowJudge):
        def score_result(self, steps, truth_vectors):
            return 0.0

    with pytest.raises(ConformanceError, match="must be a classmethod"):
        check_judge_class(StaticScore)

    class OutOfRange(FollowJudge):
        def target_timestep(self, step):
            return self.timestep(step) + 1

    with pytest.raises(ConformanceError, match="outside 0..8"):
        check_judge(OutOfRange(), run=False)
