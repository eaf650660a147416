"""The reference examinees on the default ``mini`` timeline with the canonical settings (slow: the first run
builds the timeline and evaluates its nine models into the cache; later runs reuse them)."""

import pytest

from progressgym.registration import make_examinee, make_judge
from progressgym.runner import run_episode

pytestmark = pytest.mark.slow


def _run(challenge, algorithm, tmp_path, **kwargs):
    judge = make_judge(challenge, timeline="mini", **kwargs)
    return run_episode(judge, make_examinee(algorithm), seed=0, run_dir=tmp_path / f"{challenge}-{algorithm}")


@pytest.mark.parametrize(
    ("challenge", "kwargs", "steps"), [("follow", {}, 8), ("predict", {"timesteps_ahead": 1}, 7)]
)
def test_oracle_is_perfect_and_static_clearly_lower(challenge, kwargs, steps, tmp_path):
    oracle = _run(challenge, "oracle", tmp_path, **kwargs)
    static = _run(challenge, "static", tmp_path, **kwargs)
    assert len(oracle.steps) == len(static.steps) == steps
    assert oracle.score == pytest.approx(1.0, abs=1e-12) and oracle.mean_distance == pytest.approx(
        0.0, abs=1e-12
    )
    assert oracle.privileged and not static.privileged
    assert static.score < oracle.score - 0.1
    assert static.mean_distance > 0.1
    # the static examinee drifts away from history as the centuries pass
    assert static.steps[-1].cosine < static.steps[0].cosine
    print(
        f"{challenge}: static {static.score:.4f} (distance {static.mean_distance:.4f}), oracle {oracle.score:.4f}"
    )


def test_coevolve_reference_runs(tmp_path):
    results = {name: _run("coevolve", name, tmp_path) for name in ("static", "oracle")}
    for name, result in results.items():
        assert len(result.steps) == 8
        assert all(s.proxy_vector is not None and len(s.proxy_vector) == 19 for s in result.steps)
        assert (tmp_path / f"coevolve-{name}" / "judge" / "proxy" / "C021" / "config.json").is_file()
        assert -1.0 <= result.score <= 1.0
        assert result.usage.judge.training_examples > 0
        print(f"coevolve {name}: score {result.score:.4f}, mean cosine {result.mean_cosine:.4f}")
    assert results["oracle"].mean_cosine == pytest.approx(1.0)
    assert results["oracle"].privileged and not results["static"].privileged
    # mini's models cannot write: the proxy learns their likelihood-read answers, and the challenge separates
    # an examinee that keeps C013 from one that follows history
    assert results["oracle"].score - results["static"].score >= 0.10
