"""The shipped mini timeline: hash-checked files, a manifest, loading with no training, shipped references."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from progressgym.evaluation import evaluate
from progressgym.evaluation.banks import load_bank
from progressgym.model_ref import fingerprint
from progressgym.timeline import ArtifactError, artifact_dir, get_timeline, load_manifest
from progressgym.timeline._artifacts import REFERENCE_TOLERANCE, TOKENIZER_DIR, materialise, verify_files
from progressgym.timeline._timeline import TIMELINES

MINI = get_timeline("mini")
SOURCE = artifact_dir(MINI)
MANIFEST = load_manifest(SOURCE)


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PROGRESSGYM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def no_training(monkeypatch):
    """Any attempt to build (train) the mini timeline fails the test."""
    from progressgym.timeline.mini import build

    def refuse(*args, **kwargs):
        raise AssertionError("the shipped timeline must load without training")

    monkeypatch.setattr(build, "build_mini", refuse)


def test_every_shipped_file_matches_the_manifest():
    assert verify_files(SOURCE, MANIFEST) == []
    names = set(MANIFEST["files"])
    for code in MANIFEST["centuries"]:
        assert {f"{code}/config.json", f"{code}/model.safetensors"} <= names
    assert f"{TOKENIZER_DIR}/tokenizer.json" in names
    assert sum(1 for n in names if n.endswith("tokenizer.json")) == 1  # one tokenizer for nine models


def test_the_set_stays_light():
    total = sum(entry["bytes"] for entry in MANIFEST["files"].values())
    assert total < 10_000_000


def test_manifest_records_design_figures_and_references():
    design = MANIFEST["design"]
    assert min(design["target_cosine"]) >= 0.9
    assert design["time_structure"] >= 0.3
    assert min(design["split_cosine"]) >= 0.8
    assert design["static_follow"] <= 0.6
    splits = {entry["split"] for entry in MANIFEST["references"]}
    assert splits == {"evaluation", "elicitation"}
    for entry in MANIFEST["references"]:
        assert set(entry["evaluations"]) == set(MANIFEST["centuries"])
        assert entry["setting"]["bank"] == load_bank("core", split=entry["split"]).key


def test_loading_copies_the_shipped_files_without_training(empty_cache, no_training):
    refs = MINI.models()
    assert [r.fingerprint for r in refs] == [
        MANIFEST["centuries"][m.code]["fingerprint"] for m in MINI.members
    ]
    folder = Path(refs[0].path)
    assert folder.is_relative_to(empty_cache)
    assert {"tokenizer.json", "model.safetensors", "config.json"} <= {p.name for p in folder.iterdir()}


def test_a_damaged_copy_in_the_cache_is_made_again(empty_cache, no_training):
    weights = Path(MINI.model("C015").path) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated
    again = MINI.model("C015")
    assert again.fingerprint == MANIFEST["centuries"]["C015"]["fingerprint"]


def test_a_damaged_shipped_set_is_refused_in_one_line(tmp_path, monkeypatch, empty_cache):
    package = tmp_path / "pkg_shipped"
    shutil.copytree(SOURCE, package / "artifacts")
    (package / "__init__.py").write_text("")
    weights = package / "artifacts" / "C014" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    monkeypatch.syspath_prepend(str(tmp_path))
    broken = dataclasses.replace(MINI, name="mini-broken", artifacts="pkg_shipped:artifacts")
    with pytest.raises(ArtifactError, match=r"C014/model.safetensors: sha256 differs from the manifest"):
        materialise(broken)


def test_evaluating_a_century_gives_the_shipped_reference(empty_cache, monkeypatch):
    import progressgym.backends as backends

    (evaluation_refs,) = [r for r in MANIFEST["references"] if r["split"] == "evaluation"]

    def no_backend(*args, **kwargs):
        raise AssertionError("a shipped reference must not be recomputed")

    with monkeypatch.context() as patch:
        patch.setattr(backends, "make_backend", no_backend)
        result = evaluate("mini:C017", progress=False)
    assert list(result.vector) == evaluation_refs["evaluations"]["C017"]["vector"]
    assert result.cached


def test_evaluated_here_the_weights_give_the_shipped_vector_within_tolerance(empty_cache):
    (evaluation_refs,) = [r for r in MANIFEST["references"] if r["split"] == "evaluation"]
    local = evaluate("mini:C021", use_cache=False, progress=False).vector
    shipped = np.asarray(evaluation_refs["evaluations"]["C021"]["vector"])
    assert np.max(np.abs(local - shipped)) <= REFERENCE_TOLERANCE


def test_a_model_that_is_not_a_century_is_evaluated_normally(empty_cache, tiny_model_dir):
    result = evaluate(tiny_model_dir, progress=False)
    assert not result.cached and result.fingerprint == fingerprint(tiny_model_dir)


def _cli(*args: str, env_cache: Path) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "PROGRESSGYM_CACHE": str(env_cache)}
    return subprocess.run(
        [sys.executable, "-m", "progressgym.timeline", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_build_without_out_says_the_timeline_is_shipped(tmp_path):
    done = _cli("build", "mini", env_cache=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "ships its models" in done.stderr


def test_build_refuses_a_full_out_folder(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    done = _cli("build", "mini", "--out", str(tmp_path / "full"), env_cache=tmp_path)
    assert done.returncode == 2 and "is not an empty folder" in done.stderr
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


@pytest.mark.slow
def test_build_out_writes_a_complete_verifiable_set(tmp_path):
    out = tmp_path / "set"
    done = _cli("build", "mini", "--out", str(out), "--weights-only", env_cache=tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert verify_files(out, manifest) == []
    assert set(manifest["files"]) == set(MANIFEST["files"])
    assert manifest["recipe_version"] and set(manifest["centuries"]) == set(MANIFEST["centuries"])


def test_registry_holds_mini_as_shipped():
    assert TIMELINES.get("mini").artifacts is not None
