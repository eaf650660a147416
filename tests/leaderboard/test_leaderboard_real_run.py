"""End to end on the real mini timeline: a run's submission validates, its references match the shipped ones,
its provenance names the shipped models, and the site shows both."""

import json

import pytest

from progressgym.evaluation.splits import SPLIT_VERSION
from progressgym.leaderboard import build_site, validate_file, write_submission
from progressgym.registration import make_examinee, make_judge
from progressgym.runner import run_episode
from progressgym.timeline import artifact_dir, get_timeline, load_manifest, manifest_hash


@pytest.mark.slow
def test_a_real_run_submission_validates_against_the_local_evaluations(tmp_path):
    judge = make_judge("Follow-v0", timeline="mini", backend="hf", device="cpu")
    result = run_episode(judge, make_examinee("static"), seed=0, run_dir=tmp_path / "run", algorithm="static")
    path = write_submission(tmp_path / "run", result=result)

    report = validate_file(path)
    assert report.valid, report.problems
    assert report.score == result.score
    assert report.warnings == ()
    assert report.references is not None and report.references.status == "match", report.references
    submission = json.loads(path.read_text())
    assert submission["version"] == 2
    provenance = submission["provenance"]
    manifest = load_manifest(artifact_dir(get_timeline("mini")))
    assert provenance["century_fingerprints"] == {
        c: e["fingerprint"] for c, e in manifest["centuries"].items()
    }
    assert provenance["timeline_manifest_sha256"] == manifest_hash(artifact_dir(get_timeline("mini")))
    assert provenance["prompt_format"] == "chat_template" and len(provenance["chat_template_sha256"]) == 64
    assert provenance["bank"].startswith("core@") and provenance["bank"].endswith(
        f"/evaluation@{SPLIT_VERSION}"
    )
    assert provenance["libraries"]["torch"] and provenance["dtype"] == "auto"

    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "follow_static_seed0.json").write_bytes(path.read_bytes())
    site = build_site(tmp_path / "subs", tmp_path / "site")
    assert [e.submission.algorithm for e in site.entries] == ["static"]
    page = (tmp_path / "site" / "s" / f"{site.entries[0].slug}.html").read_text()
    assert "checked: all 9 within 0.0001 of the shipped mini references" in page
    assert "Provenance" in page and provenance["century_fingerprints"]["C013"] in page
