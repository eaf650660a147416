"""A new challenge in a few lines: subclass Judge, register it, run it.

``Lag-v0``: the examinee learns from the present century's model M_t but is scored against the previous
century's M_{t-1}. An algorithm that overshoots the present scores worse here than on Follow.

    python examples/custom_judge.py                       # on the mini timeline (CPU, no network)
    python examples/custom_judge.py --timeline histllama3-8b --backend vllm

A package would register the challenge from a module named in its ``pyproject.toml``::

    [project.entry-points."progressgym.challenges"]
    lag = "my_package.lag"
"""

from __future__ import annotations

import argparse

from progressgym.checker import check_judge_class
from progressgym.core import Judge
from progressgym.registration import make_examinee, make_judge, register_challenge
from progressgym.runner import run_episode


class LagJudge(Judge):
    """Lag one century behind: learn from M_t, be scored against M_{t-1}.

    ## Description
    The examinee starts from M_0. At step t = 1 .. N-1 it learns from M_t and is scored against M_{t-1}.

    ## Examinee queries
    Answered by M_t, counted and limited by ``query_budget`` per step.

    ## Observation
    The timestep t, the century of M_t and the remaining query budget.

    ## Reward
    cos(v(examinee), v(M_{t-1})); the score is the mean over steps.

    ## Episode end
    After the last century (N - 1 steps).

    ## Arguments
    The common judge arguments (see :class:`progressgym.core.Judge`).

    ## Version history
    * v0: first version.
    """

    version = 0

    def target_timestep(self, step: int) -> int:
        """The previous century: t - 1."""
        return self.timestep(step) - 1


register_challenge("Lag-v0", LagJudge, description="learn from M_t, be scored against M_{t-1}")


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description="Run the static and oracle examinees through Lag-v0.")
    parser.add_argument("--timeline", default="mini")
    parser.add_argument("--backend", default="hf")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--bank", default="core")
    parser.add_argument("--eval-format", action="append")
    args = parser.parse_args(argv)

    check_judge_class(LagJudge)
    scores = {}
    for algorithm in ("static", "oracle"):
        judge = make_judge(
            "Lag-v0",
            timeline=args.timeline,
            backend=args.backend,
            device=args.device,
            bank=args.bank,
            eval_formats=args.eval_format,
        )
        result = run_episode(judge, make_examinee(algorithm), seed=0)
        scores[algorithm] = result.score
        print(f"Lag-v0 {algorithm:>6}: score {result.score:.4f}, mean distance {result.mean_distance:.4f}")
    return scores


if __name__ == "__main__":
    main()
