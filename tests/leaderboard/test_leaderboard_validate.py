import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import leaderboard_synthetic as syn
import numpy as np
import pytest

from progressgym.error import InvalidInput
from progressgym.evaluation import cache
from progressgym.evaluation.banks import load_bank
from progressgym.evaluation.prompts import FORMATS
from progressgym.leaderboard.__main__ import main
from progressgym.leaderboard.submission import MAX_FILE_BYTES, submission_json
from progressgym.leaderboard.validate import recompute_score, validate_bytes, validate_file
from progressgym.model_ref import fingerprint
from progressgym.timeline import (
    artifact_dir,
    get_timeline,
    load_manifest,
    manifest_hash,
    register_timeline,
    timeline_cache_dir,
)
from progressgym.timeline._artifacts import REFERENCE_TOLERANCE


def check(data, **kwargs):
    text = data if isinstance(data, str) else json.dumps(data)
    return validate_bytes(text.encode(), check_refs=False, **kwargs)


def test_a_valid_submission_scores_like_the_run():
    result = syn.run_result(challenge="Predict-v0", kind="noisy")
    report = check(submission_json(syn.submission_from_result(result)))
    assert report.valid, report.problems
    assert report.problems == () and report.warnings == ()
    assert report.score == result.score
    assert report.queries == 84
    assert report.mean_distance == pytest.approx(result.mean_distance)


@pytest.mark.parametrize("challenge", ["Follow-v0", "Predict-v0", "Coevolve-v1"])
def test_recompute_uses_the_challenges_own_scoring(challenge):
    result = syn.run_result(challenge=challenge, kind="lag")
    assert recompute_score(syn.submission_from_result(result)) == result.score


def test_wrong_vector_lengths():
    data = syn.raw(syn.submission())
    data["steps"][2]["examinee_vector"] = data["steps"][2]["examinee_vector"][:18]
    data["reference_vectors"]["C015"].append(0.5)
    report = check(data)
    assert not report.valid
    assert "steps[2].examinee_vector: 18 numbers, a value vector has 19" in report.problems
    assert "reference_vectors.C015: 20 numbers, a value vector has 19" in report.problems


@pytest.mark.parametrize(
    ("literal", "word"),
    [("NaN", "NaN"), ("Infinity", "infinite"), ("-Infinity", "infinite"), ("1e999", "infinite")],
)
def test_non_finite_numbers(literal, word):
    text = submission_json(syn.submission())
    data = json.loads(text)
    marker = 0.123456789
    data["steps"][1]["examinee_vector"][4] = marker
    text = json.dumps(data).replace(repr(marker), literal)
    report = check(text)
    assert not report.valid
    assert report.problems == (f"steps[1].examinee_vector[4]: {word} is not a finite number",)


def test_non_finite_number_in_a_free_form_config():
    data = syn.raw(syn.submission())
    data["algorithm_config"] = {"beta": 0.5}
    text = json.dumps(data).replace("0.5}", "NaN}")
    assert check(text).problems == ("algorithm_config.beta: NaN is not a finite number",)


@pytest.mark.parametrize(
    ("challenge", "version", "expected"),
    [
        ("Follow-v9", 9, "challenge: unknown challenge version 'Follow-v9' (registered: Follow-v0)"),
        ("Teleport-v0", 0, "challenge: unknown challenge version 'Teleport-v0' (registered: "),
        ("follow", 0, "challenge: unknown challenge version 'follow'"),
    ],
)
def test_unknown_challenge_version(challenge, version, expected):
    data = syn.raw(syn.submission())
    data["challenge"], data["challenge_version"] = challenge, version
    report = check(data)
    assert not report.valid and report.score is None
    assert report.problems[0].startswith(expected)


def test_challenge_version_must_match_the_id():
    data = syn.raw(syn.submission())
    data["challenge_version"] = 1
    assert check(data).problems == ("challenge_version: 1 does not match Follow-v0 (version 0)",)


def test_tampered_score_is_recomputed_and_flagged():
    sub = syn.submission(kind="noisy")
    honest = sub.score
    data = syn.raw(sub)
    data["score"] = 0.9999
    report = check(data)
    assert report.valid
    assert report.score == honest
    assert report.score_flagged
    assert report.warnings == (
        f"score: the submitted score 0.9999 differs from the recomputed {honest!r}; the recomputed score is used",
    )


def test_score_within_tolerance_is_not_flagged():
    data = syn.raw(syn.submission())
    data["score"] += 1e-12
    report = check(data)
    assert report.valid and not report.score_flagged and report.warnings == ()


def test_tampered_step_numbers_are_reported():
    data = syn.raw(syn.submission())
    data["steps"][0]["cosine"] = 1.0
    report = check(data)
    assert report.valid
    assert report.warnings == (
        "1 step(s) record a cosine or distance that their vectors do not give; recomputed values are used",
    )


def test_too_large_file(tmp_path):
    data = syn.raw(syn.submission())
    data["notes"] = "x" * 100
    text = json.dumps(data)
    big = text[:-1] + " " * (MAX_FILE_BYTES + 1 - len(text)) + "}"
    path = tmp_path / "big.json"
    path.write_text(big)
    report = validate_file(path)
    assert not report.valid
    assert report.problems == (f"file is {MAX_FILE_BYTES + 1:,} bytes (limit {MAX_FILE_BYTES:,})",)
    assert check(big).problems == report.problems


def test_too_long_string_and_too_many_steps():
    data = syn.raw(syn.submission())
    data["notes"] = "y" * 5000
    data["steps"] = data["steps"] * 9
    report = check(data)
    assert "notes: string of 5000 characters (limit 4096)" in report.problems
    assert "steps: 72 steps (limit 64)" in report.problems


def test_too_deep_nesting():
    data = syn.raw(syn.submission())
    nested: object = 1
    for _ in range(40):
        nested = [nested]
    data["algorithm_config"] = {"deep": nested}
    report = check(data)
    assert not report.valid
    assert "nested deeper than 32 levels" in report.problems[0]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "{not json",
            "not valid JSON (Expecting property name enclosed in double quotes at line 1, column 2)",
        ),
        ("[1, 2]", "a submission is a JSON object"),
        (
            '{"version": 3}',
            "version: submission version 3 is not supported (this progressgym reads versions 1, 2)",
        ),
    ],
)
def test_malformed_files(text, problem):
    assert check(text).problems == (problem,)


def test_not_utf8():
    assert validate_bytes(b"\xff\xfe{}", check_refs=False).problems == ("not UTF-8 text",)


def test_unknown_field_and_missing_field():
    data = syn.raw(syn.submission())
    data["steps"][0]["secret"] = 1
    del data["algorithm"]
    problems = check(data).problems
    assert "steps[0].secret: unknown field" in problems
    assert "algorithm: Field required" in problems


def test_target_vector_must_be_the_reference():
    data = syn.raw(syn.submission())
    data["steps"][3]["target_vector"][0] += 0.01
    assert check(data).problems == ("steps[3].target_vector: not the reference vector of C017",)


def test_incomplete_episode():
    data = syn.raw(syn.submission())
    data["steps"].pop()
    data["step_seeds"].pop()
    assert check(data).problems == (
        "steps: the episode is incomplete (its last step is compared with C020, the timeline ends at C021)",
    )


def test_privileged_calls_need_the_privileged_flag():
    data = syn.raw(syn.submission(algorithm="oracle", kind="exact", privileged=True))
    data["privileged"] = False
    assert check(data).problems == ("privileged: false, but 16 privileged calls are recorded",)


def test_script_strings_are_data():
    sub = syn.submission_from_result(syn.run_result(algorithm=syn.SCRIPT_NAME), notes=syn.IMG_NOTE)
    report = check(submission_json(sub))
    assert report.valid
    assert report.submission is not None and report.submission.algorithm == syn.SCRIPT_NAME


def test_no_name_in_a_submission_is_imported(tmp_path, monkeypatch):
    witness = tmp_path / "imported"
    (tmp_path / "lb_sentinel_module.py").write_text(f"open({str(witness)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    data = syn.raw(syn.submission())
    data["algorithm"] = "lb_sentinel_module:Examinee"
    data["algorithm_config"] = {"entry_point": "lb_sentinel_module:Judge", "cls": "lb_sentinel_module"}
    data["challenge_kwargs"]["bank"] = "lb_sentinel_module"
    assert check(data).valid
    data["challenge"] = "lb_sentinel_module:Judge-v0"
    data["timeline"] = "lb_sentinel_module"
    assert not check(data).valid
    validate_bytes(json.dumps(data).encode(), check_refs=True)
    assert not witness.exists()
    assert "lb_sentinel_module" not in sys.modules


def test_recompute_score_rejects_unknown_challenges():
    data = syn.raw(syn.submission())
    data["challenge"] = "Follow-v3"
    sub = syn.Submission.model_validate(data)
    with pytest.raises(InvalidInput, match="unknown challenge version 'Follow-v3'"):
        recompute_score(sub)


# ------------------------------------------------------------------ reference vectors


@pytest.fixture
def local_mini(tmp_path, monkeypatch):
    """A stand-in for a locally built (not shipped) mini timeline plus cached evaluations of it."""
    monkeypatch.setenv("PROGRESSGYM_CACHE", str(tmp_path / "cache"))
    shipped = get_timeline("mini")
    timeline = dataclasses.replace(shipped, artifacts=None)
    register_timeline(timeline, overwrite=True)
    truth = syn.truth_vectors()
    bank = load_bank("core", split="evaluation")

    def add(code, *, cached=True, vector=None):
        folder = timeline_cache_dir(timeline) / code
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps({"model": code}))
        (folder / "model.safetensors").write_bytes(code.encode() * 64)
        if cached:
            material = cache.key_material(
                fingerprint=fingerprint(folder),
                bank_key=bank.key,
                mode="logprob",
                formats=FORMATS,
                orders="cyclic",
            )
            cache.store_entry(cache.cache_key(material), material, {"vector": vector or truth[code]})

    try:
        yield add, truth
    finally:
        register_timeline(shipped, overwrite=True)


def references(sub):
    return validate_bytes(submission_json(sub).encode(), check_refs=True)


def test_references_match_the_local_evaluations(local_mini):
    add, truth = local_mini
    for code in truth:
        add(code, vector=[v + 5e-7 for v in truth[code]])
    report = references(syn.submission())
    assert report.valid
    assert report.references is not None and report.references.status == "match"
    assert report.references.detail == "checked: all 9 match this machine's evaluation of mini"


def test_references_that_differ_are_a_problem(local_mini):
    add, truth = local_mini
    for code in truth:
        bumped = list(np.asarray(truth[code]) + (0.01 if code == "C016" else 0.0))
        add(code, vector=bumped)
    report = references(syn.submission())
    assert not report.valid
    assert report.references is not None and report.references.status == "mismatch"
    assert report.problems == (
        "reference_vectors: 1 of 9 differ from this machine's evaluation of mini: C016 (max difference 0.01)",
    )


def test_references_not_available_are_not_checked(local_mini):
    add, truth = local_mini
    add("C013")
    add("C014", cached=False)
    report = references(syn.submission())
    assert report.valid
    assert report.references is not None and report.references.status == "not checked"
    assert report.references.detail == (
        "not checked: mini models: 1 matched; 7 of 9 (C015, C016, C017, C018, C019, C020, C021) not on this "
        "machine; 1 of 9 (C014) not in the evaluation cache"
    )


def test_references_of_unknown_timelines_are_not_checked(local_mini):
    data = syn.raw(syn.submission())
    data["timeline"] = "atlantis"
    report = validate_bytes(json.dumps(data).encode())
    assert report.valid
    assert report.references is not None
    assert report.references.detail == "not checked: timeline 'atlantis' is not registered here"


def _shipped_truth() -> dict[str, list[float]]:
    manifest = load_manifest(artifact_dir(get_timeline("mini")))
    (entry,) = [r for r in manifest["references"] if r["split"] == "evaluation"]
    return {code: list(e["vector"]) for code, e in entry["evaluations"].items()}


def test_references_are_checked_against_the_shipped_timeline_with_nothing_evaluated(tmp_path, monkeypatch):
    monkeypatch.setenv("PROGRESSGYM_CACHE", str(tmp_path / "cache"))
    sub = syn.submission()
    data = syn.raw(sub)
    truth = _shipped_truth()
    data["reference_vectors"] = {c: [v + REFERENCE_TOLERANCE / 2 for v in vec] for c, vec in truth.items()}
    for step in data["steps"]:
        step["target_vector"] = data["reference_vectors"][f"C{step['target_century']:03d}"]
    report = validate_bytes(json.dumps(data).encode(), check_refs=True)
    assert report.references is not None and report.references.status == "match", report.problems
    assert report.references.detail.startswith("checked: all 9 within 0.0001 of the shipped mini references")
    assert not (tmp_path / "cache" / "vectors").exists()  # nothing was evaluated


def test_a_reference_beyond_tolerance_of_the_shipped_one_is_invalid_with_the_largest_difference():
    data = syn.raw(syn.submission())
    truth = _shipped_truth()
    data["reference_vectors"] = {c: list(vec) for c, vec in truth.items()}
    data["reference_vectors"]["C018"][3] += 0.0123
    data["reference_vectors"]["C018"][4] += 0.001
    for step in data["steps"]:
        step["target_vector"] = data["reference_vectors"][f"C{step['target_century']:03d}"]
    report = validate_bytes(json.dumps(data).encode(), check_refs=True)
    assert not report.valid
    assert report.problems == (
        "reference_vectors: 1 of 9 differ from the shipped mini references by more than 0.0001: "
        "C018 (max difference 0.0123)",
    )


def _with_provenance(data, **changes):
    manifest = load_manifest(artifact_dir(get_timeline("mini")))
    data["version"] = 2
    data["provenance"] = {
        "century_fingerprints": {c: e["fingerprint"] for c, e in manifest["centuries"].items()},
        "timeline_manifest_sha256": manifest_hash(artifact_dir(get_timeline("mini"))),
        "dtype": "auto",
        "prompt_format": "chat_template",
        "chat_template_sha256": "0" * 64,
        "bank": load_bank("core", split="evaluation").key,
        "prompt_version": "p1",
        "vector_version": "v1",
        "libraries": {"torch": "2.13.0", "transformers": "5.19.0", "trl": None, "vllm": None},
        **changes,
    }
    return data


def test_version_2_needs_provenance_and_version_1_has_none():
    data = syn.raw(syn.submission())
    data["version"] = 2
    assert any("version 2 submission needs its provenance" in p for p in check(data).problems)
    data = _with_provenance(syn.raw(syn.submission()))
    assert check(data).valid, check(data).problems
    data["version"] = 1
    assert any("provenance is a version 2 field" in p for p in check(data).problems)


def test_a_submission_measured_against_other_century_models_is_refused():
    data = _with_provenance(syn.raw(syn.submission()))
    data["provenance"]["century_fingerprints"]["C015"] = "0123456789abcdef"
    report = validate_bytes(json.dumps(data).encode(), check_refs=True)
    assert report.problems == (
        "provenance: century models C015 are not the shipped mini models (content fingerprints differ)",
    )
    data = _with_provenance(syn.raw(syn.submission()), timeline_manifest_sha256="f" * 64)
    report = validate_bytes(json.dumps(data).encode(), check_refs=True)
    version = load_manifest(artifact_dir(get_timeline("mini")))["artifact_version"]
    assert report.problems == (
        f"provenance: measured against another mini artifact set than the shipped one (artifact version {version})",
    )


COMMITTED = sorted((Path(__file__).parents[2] / "leaderboard" / "submissions").glob("*.json"))


def test_every_committed_submission_validates_against_the_shipped_references(tmp_path):
    """The committed leaderboard is valid on any machine: an empty cache, nothing built or evaluated."""
    assert len(COMMITTED) >= 20
    env = {**os.environ, "PROGRESSGYM_CACHE": str(tmp_path / "empty-cache")}
    done = subprocess.run(
        [sys.executable, "-m", "progressgym.leaderboard", "validate", *map(str, COMMITTED)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    checked = [line for line in done.stdout.splitlines() if "reference vectors checked" in line]
    assert len(checked) == len(COMMITTED)
    assert all("of the shipped mini references" in line for line in checked), checked
    assert not (tmp_path / "empty-cache" / "vectors").exists()


# ------------------------------------------------------------------ command line


def test_cli_exit_status_and_one_line_per_problem(tmp_path, capsys):
    good = syn.write(tmp_path / "good.json", syn.submission())
    data = syn.raw(syn.submission())
    data["steps"][0]["examinee_vector"] = [1.0] * 3
    data["challenge"] = "Follow-v7"
    bad = syn.write(tmp_path / "bad.json", data)
    assert main(["validate", str(good), "--no-references"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith(f"{good}: valid: Follow-v0 on 'mini', algorithm 'tracker', score 0.99")
    assert out.err == ""

    assert main(["validate", str(good), str(bad), "--no-references"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{bad}: invalid (1 problem)",
        f"{bad}: steps[0].examinee_vector: 3 numbers, a value vector has 19",
    ]


def test_cli_reports_a_corrected_score_and_strict_fails(tmp_path, capsys):
    data = syn.raw(syn.submission())
    data["score"] = 2.0
    path = syn.write(tmp_path / "tampered.json", data)
    assert main(["validate", str(path), "--no-references"]) == 0
    err = capsys.readouterr().err
    assert "warning: score: the submitted score 2.0 differs from the recomputed" in err
    assert main(["validate", str(path), "--no-references", "--strict"]) == 2


def test_cli_escapes_control_characters(tmp_path, capsys):
    sub = syn.submission(algorithm="evil\x1b[2J\nname")
    path = syn.write(tmp_path / "evil.json", sub)
    assert main(["validate", str(path), "--no-references"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "'evil\\x1b[2J\\nname'" in out
    assert len(out.splitlines()) == 1


def test_cli_missing_file(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.json")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"{tmp_path / 'nope.json'}: no such file"


def test_steps_must_target_the_century_the_settings_name():
    data = syn.raw(syn.submission(challenge="Predict-v0"))
    data["challenge_kwargs"]["timesteps_ahead"] = 2
    problems = check(data).problems
    assert len(problems) == 6  # the last step's t + 2 lies beyond the timeline
    assert problems[0] == (
        "steps[0].target_century: C015, but Predict-v0 with these settings compares timestep 1 with C016"
    )


def test_settings_must_be_the_judges():
    data = syn.raw(syn.submission())
    data["challenge_kwargs"]["timesteps_ahead"] = 1
    assert check(data).problems == ("challenge_kwargs: 'timesteps_ahead' is not a setting of Follow-v0",)


def test_non_default_settings_are_valid():
    report = check(submission_json(syn.submission(challenge="Predict-v0", timesteps_ahead=3)))
    assert report.valid, report.problems
