import json
import os

import pytest
from pg_testkit import FailingExaminee

from progressgym.core import ExamineeFailed
from progressgym.error import InvalidInput
from progressgym.log import RunConfig, StepCheckpoint, read_model, read_result
from progressgym.registration import make_examinee, make_judge
from progressgym.runner import completed_steps, resume_run, run_episode


def test_run_directory_layout_and_result(judge_kwargs, tmp_path):
    run_dir = tmp_path / "run"
    result = run_episode(
        make_judge("follow", **judge_kwargs),
        make_examinee("oracle"),
        seed=3,
        run_dir=run_dir,
        algorithm="oracle",
    )
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == [
        "config.json",
        "examinee",
        "judge",
        "result.json",
        "steps",
        "submission.json",
        "trajectory.png",
    ]
    assert sorted(p.name for p in (run_dir / "steps").iterdir()) == ["step-000.json", "step-001.json"]
    config = read_model(run_dir / "config.json", RunConfig)
    assert (config.challenge, config.algorithm, config.seed) == ("Follow-v0", "oracle", 3)
    assert config.challenge_kwargs["timeline"] == "test-tiny3"
    stored = read_result(run_dir / "result.json")
    assert stored == result
    assert stored.version == 1 and stored.challenge_version == 0 and stored.privileged
    assert stored.usage.queries.privileged_calls == 2
    assert stored.step_seeds == [s.seed for s in stored.steps] and len(set(stored.step_seeds)) == 2
    assert (run_dir / "trajectory.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((run_dir / "result.json").read_text())["version"] == 1


def test_same_seed_same_result_and_other_seed_other_step_seeds(judge_kwargs, tmp_path):
    runs = [
        run_episode(
            make_judge("predict", **judge_kwargs),
            make_examinee("static"),
            seed=seed,
            run_dir=tmp_path / f"r{i}",
        )
        for i, seed in enumerate((7, 7, 8))
    ]
    assert runs[0].outcome() == runs[1].outcome()
    assert runs[0].step_seeds != runs[2].step_seeds
    assert runs[0].score == runs[2].score  # the static examinee ignores seeds


def test_failing_examinee_keeps_completed_steps_and_resume_matches_an_uninterrupted_run(
    judge_kwargs, tmp_path, monkeypatch
):
    run_dir = tmp_path / "run"
    with pytest.raises(ExamineeFailed) as failure:
        run_episode(
            make_judge("follow", **judge_kwargs),
            FailingExaminee(),
            seed=1,
            run_dir=run_dir,
            algorithm="test-failing",
        )
    message = str(failure.value)
    assert "\n" not in message
    assert (
        message
        == "algorithm 'test-failing' failed at step 2/2 (C015): ValueError: scripted failure at step 1"
    )
    assert "ValueError" in (run_dir / "error.log").read_text()
    done = completed_steps(run_dir)
    assert len(done) == 1 and not (run_dir / "result.json").exists()
    before = (run_dir / "steps" / "step-000.json").stat()

    monkeypatch.setenv("PG_TEST_NO_FAIL", "1")
    resumed = resume_run(run_dir)
    after = (run_dir / "steps" / "step-000.json").stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)  # not recomputed
    straight = run_episode(
        make_judge("follow", **judge_kwargs),
        FailingExaminee(),
        seed=1,
        run_dir=tmp_path / "straight",
        algorithm="test-failing",
    )
    assert resumed.outcome() == straight.outcome()
    assert resume_run(run_dir) == resumed  # a finished run is returned as it is


def test_damaged_run_directories_are_refused(judge_kwargs, tmp_path):
    with pytest.raises(InvalidInput, match="does not exist"):
        resume_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="not a run directory"):
        resume_run(tmp_path / "empty")
    run_dir = tmp_path / "run"
    run_episode(make_judge("follow", **judge_kwargs), make_examinee("static"), seed=0, run_dir=run_dir)
    os.remove(run_dir / "result.json")
    (run_dir / "steps" / "step-001.json").write_text("{not json")
    with pytest.raises(InvalidInput, match="step-001.json is not a valid StepCheckpoint"):
        resume_run(run_dir)
    os.remove(run_dir / "steps" / "step-000.json")
    with pytest.raises(InvalidInput, match="not contiguous"):
        completed_steps(run_dir)
    (run_dir / "config.json").write_text('{"version": 1}')
    with pytest.raises(InvalidInput, match="config.json is not a valid RunConfig"):
        resume_run(run_dir)


def test_a_run_directory_of_another_run_is_refused(judge_kwargs, tmp_path):
    run_dir = tmp_path / "run"
    run_episode(make_judge("follow", **judge_kwargs), make_examinee("static"), seed=0, run_dir=run_dir)
    with pytest.raises(InvalidInput, match="holds a different run"):
        run_episode(make_judge("follow", **judge_kwargs), make_examinee("static"), seed=5, run_dir=run_dir)


def test_step_checkpoints_hold_the_states_to_resume(judge_kwargs, tmp_path):
    run_dir = tmp_path / "run"
    run_episode(make_judge("follow", **judge_kwargs), make_examinee("oracle"), seed=0, run_dir=run_dir)
    checkpoint = read_model(run_dir / "steps" / "step-001.json", StepCheckpoint)
    assert checkpoint.examinee_state["model"]["name"] == "test-tiny3:C015"
    assert checkpoint.judge_state == {}
