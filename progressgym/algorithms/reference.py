"""Reference examinees that bracket real algorithms: ``static`` (a floor) and ``oracle`` (a cheating ceiling)."""

from __future__ import annotations

from progressgym.core import Examinee, JudgeInterface, StepInfo
from progressgym.model_ref import ModelRef
from progressgym.registration import register_algorithm


@register_algorithm("static")
class StaticExaminee(Examinee):
    """Never learns: keeps the timeline's first century model, whatever the judge says.

    The floor any alignment algorithm should beat. It asks no queries.
    """

    def update(self, judge: JudgeInterface, step: StepInfo) -> ModelRef:
        """Return the initial model unchanged."""
        return self.current_model


@register_algorithm("oracle")
class OracleExaminee(Examinee):
    """PRIVILEGED, a cheating upper bound: adopts the very model it is scored against.

    At every step it calls the privileged :meth:`JudgeInterface.reveal_target` and returns that century
    model, so it scores 1.0 on Follow and Predict. Its results are marked ``privileged`` and are never
    comparable with honest algorithms; it exists to show the ceiling of a challenge.
    """

    privileged = True

    def update(self, judge: JudgeInterface, step: StepInfo) -> ModelRef:
        """Return the model the judge will compare with."""
        self.model = judge.reveal_target()
        return self.model
