"""A run directory copied or moved elsewhere resumes from its own models, not the original's."""

import json
import shutil

import pytest

from progressgym.core import Examinee, ExamineeFailed, JudgeInterface, StepInfo
from progressgym.model_ref import ModelRef
from progressgym.registration import ALGORITHMS, make_examinee, make_judge, register_algorithm
from progressgym.run import main
from progressgym.runner import RUN_DIR_MARK, completed_steps, run_episode


class CopyingExaminee(Examinee):
    """Each step, copies its current model into its work directory and hands the copy back."""

    fail_at: int | None = None

    def update(self, judge: JudgeInterface, step: StepInfo) -> ModelRef:
        if step.step == self.fail_at:
            raise ValueError(f"scripted failure at step {step.step}")
        target = self.workdir / f"step-{step.step:03d}"
        shutil.copytree(self.current_model.path, target)  # fails if the current model is gone
        self.model = ModelRef.from_path(target, name=f"copy/step-{step.step}")
        return self.model


@pytest.fixture
def copying(monkeypatch):
    if "test-copying" not in ALGORITHMS:
        register_algorithm("test-copying", CopyingExaminee)
    monkeypatch.setattr(CopyingExaminee, "fail_at", 1)


def test_a_copied_run_directory_resumes_from_its_own_models(
    copying, judge_kwargs, tmp_path, monkeypatch, capsys
):
    original = tmp_path / "original"
    with pytest.raises(ExamineeFailed):
        run_episode(
            make_judge("follow", **judge_kwargs),
            make_examinee("test-copying"),
            seed=2,
            run_dir=original,
            algorithm="test-copying",
        )
    stored = json.loads((original / "steps" / "step-000.json").read_text())
    assert stored["examinee_state"]["model"]["path"] == f"{RUN_DIR_MARK}/examinee/step-000"
    assert stored["record"]["examinee_model"]["path"] == f"{RUN_DIR_MARK}/examinee/step-000"
    assert str(tmp_path) not in json.dumps(stored)  # no absolute path into the run directory

    moved = tmp_path / "elsewhere" / "moved"
    shutil.copytree(original, moved)
    shutil.rmtree(original)
    done = completed_steps(moved)
    assert done[0].examinee_state["model"]["path"] == str((moved / "examinee" / "step-000").resolve())

    monkeypatch.setattr(CopyingExaminee, "fail_at", None)
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["--resume", "moved", "--no-progress"]) == 0
    assert "score" in capsys.readouterr().out
    resumed = completed_steps(moved)
    assert resumed[1].examinee_state["model"]["path"] == str((moved / "examinee" / "step-001").resolve())

    straight = run_episode(
        make_judge("follow", **judge_kwargs),
        make_examinee("test-copying"),
        seed=2,
        run_dir=tmp_path / "straight",
        algorithm="test-copying",
    )
    from progressgym.log import read_result

    assert read_result(moved / "result.json").outcome() == straight.outcome()
    assert not original.exists()
