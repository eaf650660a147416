import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from progressgym.error import ModelNotFound, UnknownName
from progressgym.timeline import CENTURIES, get_timeline, list_timelines


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "progressgym.timeline", *args], capture_output=True, text=True, env=full_env
    )


def test_histllama_timelines_have_nine_centuries_with_hub_ids():
    for name, size, version in [("histllama3-8b", "8B", "v0.2"), ("histllama3-70b", "70B", "v0.1")]:
        timeline = get_timeline(name)
        assert timeline.centuries == CENTURIES == tuple(range(13, 22))
        for member in timeline.members:
            assert (
                member.repo_id
                == f"PKU-Alignment/ProgressGym-HistLlama3-{size}-{member.code}-instruct-{version}"
            )
    assert get_timeline("histllama3-8b-pretrain").member("C021").repo_id.endswith("8B-C021-pretrain-v0.2")
    assert {"histllama3-8b", "histllama3-70b"} <= {t.name for t in list_timelines()}


def test_unknown_timeline_suggests_the_closest_name():
    with pytest.raises(UnknownName, match="Did you mean 'histllama3-8b'"):
        get_timeline("histlama3-8b")
    with pytest.raises(UnknownName, match="C022"):
        get_timeline("histllama3-8b").member(22)


def _fake_model(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (folder / "model.safetensors").write_bytes(b"weights of " + folder.name.encode())
    return folder


@pytest.mark.parametrize("folder", ["ProgressGym-HistLlama3-8B-C013-instruct-v0.2", "8B-C013-instruct"])
def test_model_dir_accepts_repo_and_short_folder_names(tmp_path, folder):
    expected = _fake_model(tmp_path / folder)
    ref = get_timeline("histllama3-8b").model("C013", model_dir=tmp_path, download=False)
    assert Path(ref.path) == expected
    assert ref.century == 13 and ref.name == "histllama3-8b:C013"
    assert len(ref.fingerprint) == 16


def test_model_dir_from_environment(tmp_path, monkeypatch):
    _fake_model(tmp_path / "70B-C021-instruct")
    monkeypatch.setenv("PROGRESSGYM_MODEL_DIR", str(tmp_path))
    assert get_timeline("histllama3-70b").model(21, download=False).path.endswith("70B-C021-instruct")


def test_fingerprint_follows_content(tmp_path):
    first = _fake_model(tmp_path / "a" / "8B-C013-instruct")
    ref_a = get_timeline("histllama3-8b").model(13, model_dir=tmp_path / "a", download=False)
    (first / "model.safetensors").write_bytes(b"other weights")
    ref_b = get_timeline("histllama3-8b").model(13, model_dir=tmp_path / "a", download=False)
    assert ref_a.fingerprint != ref_b.fingerprint


def test_missing_model_error_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(ModelNotFound) as info:
        get_timeline("histllama3-8b").model(13, model_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    for part in [
        str(tmp_path),
        "8B-C013-instruct",
        "Hugging Face cache",
        "HF_HUB_OFFLINE",
        "hf download",
        "--model-dir",
    ]:
        assert part in message


def test_cli_list_shows_hub_ids():
    result = _cli("list")
    assert result.returncode == 0
    assert "histllama3-8b " in result.stdout and "histllama3-70b " in result.stdout
    assert "PKU-Alignment/ProgressGym-HistLlama3-70B-C013-instruct-v0.1" in result.stdout


def test_cli_show_lists_all_centuries():
    result = _cli("show", "histllama3-8b")
    assert result.returncode == 0
    for century in CENTURIES:
        assert f"PKU-Alignment/ProgressGym-HistLlama3-8B-C{century:03d}-instruct-v0.2" in result.stdout


def test_cli_fetch_offline_is_one_line_and_exit_2(tmp_path):
    result = _cli(
        "fetch",
        "histllama3-8b",
        "--century",
        "C013",
        env={"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path)},
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: histllama3-8b C013 model not found")
    assert "Traceback" not in result.stderr


def test_cli_unknown_timeline_exit_2():
    result = _cli("show", "histlama3-8b")
    assert result.returncode == 2 and "Did you mean 'histllama3-8b'" in result.stderr


def test_import_is_light():
    code = "import progressgym, sys; print(sorted({'torch','transformers','vllm','trl'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
