import runpy
from pathlib import Path

import pg_testkit
import pytest

from progressgym import registration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _args(judge_kwargs):
    return pg_testkit.cli_flags(judge_kwargs, progress=True)


def test_custom_judge_example_runs(judge_kwargs, capsys):
    try:
        example = runpy.run_path(str(EXAMPLES / "custom_judge.py"), run_name="example")
        scores = example["main"](_args(judge_kwargs))
    finally:
        registration.CHALLENGES._entries.pop("Lag-v0", None)
    assert scores["oracle"] == pytest.approx(1.0)
    assert -1.0 <= scores["static"] < 1.0
    assert "Lag-v0 oracle: score 1.0000" in capsys.readouterr().out


@pytest.mark.slow
def test_custom_examinee_example_learns_through_the_judge(judge_kwargs, tmp_path, capsys):
    try:
        example = runpy.run_path(str(EXAMPLES / "custom_examinee.py"), run_name="example")
        score = example["main"]([*_args(judge_kwargs), "--out", str(tmp_path / "run")])
    finally:
        registration.ALGORITHMS._entries.pop("imitate", None)
    assert -1.0 <= score <= 1.0
    out = capsys.readouterr().out
    assert "queries 16" in out and "Follow-v0 imitate: score" in out
    assert (tmp_path / "run" / "examinee" / "step-001" / "config.json").is_file()
