import json
import subprocess
import sys
from pathlib import Path

import leaderboard_synthetic as syn
import pytest

from progressgym.leaderboard.__main__ import checkout_leaderboard_dir, main
from progressgym.leaderboard.submission import (
    SUBMISSION_VERSION,
    Submission,
    schema_text,
    submission_from_result,
    submission_json,
    write_submission,
)
from progressgym.leaderboard.validate import validate_file
from progressgym.log import write_result

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "leaderboard" / "submission.schema.json"


def test_submission_carries_the_run():
    result = syn.run_result(challenge="Coevolve-v1", algorithm="lifelong-dpo")
    sub = submission_from_result(result, notes="hello")
    assert sub.version == 1 and sub.provenance is None  # a result without provenance gives a version 1 file
    assert (sub.challenge, sub.challenge_version, sub.timeline) == ("Coevolve-v1", 1, "mini")
    assert sub.reference_vectors == result.truth_vectors
    assert [s.examinee_vector for s in sub.steps] == [s.examinee_vector for s in result.steps]
    assert [s.proxy_vector for s in sub.steps] == [s.proxy_vector for s in result.steps]
    assert sub.steps[3].examinee_fingerprint == result.steps[3].examinee_model.fingerprint
    assert sub.usage.queries.queries == result.usage.queries.queries == 96
    assert sub.git_revision == result.git_revision
    assert sub.score == result.score
    assert sub.notes == "hello"
    assert len(sub.dimensions) == 19


def test_a_result_with_provenance_gives_a_version_2_submission():
    from progressgym.provenance import Provenance, library_versions

    provenance = Provenance(
        century_fingerprints={"C013": "0f3454273380b313"},
        timeline_manifest_sha256=None,
        dtype="auto",
        prompt_format="alpaca",
        chat_template_sha256="a" * 64,
        bank="core@1/evaluation@s1",
        prompt_version="p1",
        vector_version="v1",
        libraries=library_versions(),
    )
    result = syn.run_result(challenge="Follow-v0", algorithm="static").model_copy(
        update={"provenance": provenance}
    )
    sub = submission_from_result(result)
    assert sub.version == SUBMISSION_VERSION == 2
    assert sub.provenance == provenance
    assert Submission.model_validate_json(submission_json(sub)) == sub


def test_json_round_trip_is_exact():
    sub = syn.submission(challenge="Predict-v0")
    again = Submission.model_validate_json(submission_json(sub), strict=True)
    assert again == sub
    assert submission_json(again) == submission_json(sub)


def test_write_submission_reads_result_json(tmp_path):
    result = syn.run_result()
    write_result(tmp_path / "result.json", result)
    path = write_submission(tmp_path)
    assert path == tmp_path / "submission.json"
    report = validate_file(path, check_refs=False)
    assert report.valid, report.problems
    assert report.score == result.score


def test_export_cli_writes_submission(tmp_path, capsys):
    write_result(tmp_path / "run" / "result.json", syn.run_result())
    assert main(["export", str(tmp_path / "run"), "--notes", "seed sweep"]) == 0
    data = json.loads((tmp_path / "run" / "submission.json").read_text())
    assert data["notes"] == "seed sweep"
    assert "submission.json" in capsys.readouterr().out


def test_schema_file_matches_the_model():
    """leaderboard/submission.schema.json is generated; regenerate it with `python -m progressgym.leaderboard schema`."""
    assert SCHEMA_FILE.is_file(), "run `python -m progressgym.leaderboard schema`"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        "submission.schema.json is out of date: run `python -m progressgym.leaderboard schema`"
    )


def test_schema_states_the_limits():
    schema = json.loads(schema_text())
    step = schema["$defs"]["SubmissionStep"]["properties"]
    vector = step["target_vector"]
    assert (vector["minItems"], vector["maxItems"]) == (19, 19)
    assert schema["properties"]["steps"]["maxItems"] == 64
    assert schema["properties"]["version"]["enum"] == [1, 2]
    assert "century_fingerprints" in schema["$defs"]["Provenance"]["required"]
    assert schema["additionalProperties"] is False
    assert "recomputes" in schema["properties"]["score"]["description"]


def test_schema_cli_writes_and_checks(tmp_path, capsys):
    out = tmp_path / "schema.json"
    assert main(["schema", "--out", str(out)]) == 0
    assert out.read_text() == schema_text()
    assert main(["schema", "--out", str(out), "--check"]) == 0
    out.write_text("{}\n")
    assert main(["schema", "--out", str(out), "--check"]) == 2
    assert "out of date" in capsys.readouterr().err


def test_default_schema_path_is_the_checkout():
    assert checkout_leaderboard_dir() == SCHEMA_FILE.parent


def test_import_stays_light():
    code = (
        "import sys, progressgym.leaderboard, progressgym.leaderboard.site, progressgym.leaderboard.validate;"
        "print([m for m in ('torch', 'transformers', 'vllm', 'trl') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_regenerate_names_a_challenge_by_its_id_whatever_it_was_called():
    from progressgym.error import UnknownName
    from progressgym.leaderboard._regenerate import challenge_ids, submission_name

    assert challenge_ids(["follow", "Follow-v0", "PREDICT"]) == ["Follow-v0", "Follow-v0", "Predict-v0"]
    assert submission_name(*challenge_ids(["follow"]), "static", 0) == "follow-v0_static_seed0.json"
    with pytest.raises(UnknownName, match="did you mean|Available"):
        challenge_ids(["folow"])
