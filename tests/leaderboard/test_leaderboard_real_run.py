"""End to end on the real mini timeline: a run's submission validates, its references match this machine's
evaluations, and the site shows it."""

import pytest

from progressgym.leaderboard import build_site, validate_file, write_submission
from progressgym.registration import make_examinee, make_judge
from progressgym.runner import run_episode


@pytest.mark.slow
def test_a_real_run_submission_validates_against_the_local_evaluations(tmp_path):
    judge = make_judge("Follow-v0", timeline="mini", backend="hf", device="cpu")
    result = run_episode(judge, make_examinee("static"), seed=0, run_dir=tmp_path / "run", algorithm="static")
    path = write_submission(tmp_path / "run", result=result)

    report = validate_file(path)
    assert report.valid, report.problems
    assert report.score == result.score
    assert report.warnings == ()
    # The judge evaluated every century model of the timeline, so their vectors are in the local cache.
    assert report.references is not None and report.references.status == "match", report.references

    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "follow_static_seed0.json").write_bytes(path.read_bytes())
    site = build_site(tmp_path / "subs", tmp_path / "site")
    assert [e.submission.algorithm for e in site.entries] == ["static"]
    assert "checked: all 9 match" in (tmp_path / "site" / "s" / f"{site.entries[0].slug}.html").read_text()
