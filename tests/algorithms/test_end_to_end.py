"""Each baseline through a whole (short) episode on the tiny test timeline, with the run directory and resume."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from progressgym.registration import make_examinee, make_judge
from progressgym.runner import RESULT, completed_steps, resume_run, run_episode, step_path

pytestmark = pytest.mark.slow

FAST: dict[str, dict[str, Any]] = {
    "lifelong-dpo": {"preset": "mini", "max_items": 12, "max_copies": 2},
    "extrapolative-dpo": {"preset": "mini", "max_items": 12, "extrapolation_order": 2},
    "lifelong-rlhf": {
        "preset": "mini",
        "max_items": 8,
        "formats": "label,yesno",
        "rl_epochs": 0.5,
        "max_completion_length": 6,
    },
    "extrapolative-rlhf": {
        "preset": "mini",
        "max_items": 8,
        "formats": "label,yesno",
        "rl_epochs": 0.5,
        "max_completion_length": 6,
        "rl_trainer": "grpo",
    },
}


@pytest.mark.parametrize("name", sorted(FAST))
def test_episode(name: str, judge_kwargs: dict[str, Any], tmp_path: Path) -> None:
    challenge = "predict" if name.startswith("extrapolative") else "follow"
    run_dir = tmp_path / "run"
    result = run_episode(
        make_judge(challenge, **judge_kwargs),
        make_examinee(name, FAST[name]),
        seed=1,
        run_dir=run_dir,
        algorithm=name,
    )
    assert not result.privileged
    steps = completed_steps(run_dir)
    assert len(steps) == len(result.steps) >= 1
    state = steps[-1].examinee_state
    assert len(state["history"]) == len(result.steps) and state["settings"]["preset"] == "mini"
    for index, (record, entry) in enumerate(zip(result.steps, state["log"], strict=True)):
        assert entry["step"] == index and entry["answered"] > 0 and entry["pairs"] > 0
        assert record.queries.queries == entry["queries"] == entry["items"]
        assert record.examinee_model is not None
        assert Path(record.examinee_model.path) == run_dir / "examinee" / f"step-{index:03d}"
    leftovers = sorted(p.name for p in (run_dir / "examinee").iterdir())
    assert leftovers == [f"step-{i:03d}" for i in range(len(result.steps))]  # no reward models, no scratch
    if name.startswith("extrapolative"):
        assert state["log"][0]["timesteps_ahead"] == 1 and state["log"][0]["order"] == 0


def test_resumed_step_repeats_exactly(judge_kwargs: dict[str, Any], tmp_path: Path) -> None:
    config = FAST["extrapolative-dpo"]
    run_dir = tmp_path / "run"
    first = run_episode(
        make_judge("follow", **judge_kwargs),
        make_examinee("extrapolative-dpo", config),
        seed=4,
        run_dir=run_dir,
    )
    # Forget the last step (as if killed while it ran, leaving a half-written model), then resume.
    last = len(first.steps) - 1
    step_path(run_dir, last).unlink()
    (run_dir / RESULT).unlink()
    model_dir = run_dir / "examinee" / f"step-{last:03d}"
    shutil.rmtree(model_dir)
    model_dir.mkdir()
    (model_dir / "junk.bin").write_bytes(b"partial")
    resumed = resume_run(run_dir)
    assert resumed.outcome() == first.outcome()
    assert [s.examinee_model for s in resumed.steps] == [s.examinee_model for s in first.steps]
    assert not (model_dir / "junk.bin").exists()


def test_independent_restarts_from_the_initial_model(judge_kwargs: dict[str, Any], tmp_path: Path) -> None:
    config = {**FAST["lifelong-dpo"], "independent": True}
    judge = make_judge("follow", **judge_kwargs)
    examinee = make_examinee("lifelong-dpo", config)
    seen: list[str] = []
    from progressgym.algorithms import _training

    original = _training.train_dpo

    def spy(model_path: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(model_path))
        return original(model_path, *args, **kwargs)

    import progressgym.algorithms.lifelong_dpo as module

    module.train_dpo = spy  # type: ignore[assignment]
    try:
        run_episode(judge, examinee, seed=0, run_dir=tmp_path / "run")
    finally:
        module.train_dpo = original  # type: ignore[assignment]
    initial = judge.initial_model().path
    assert seen and all(path == initial for path in seen)
