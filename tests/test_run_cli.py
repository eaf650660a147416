import json
import subprocess
import sys
from pathlib import Path

import pg_testkit
import pytest

from progressgym.run import main


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    """An empty working directory and an empty cache: a refused command must write nothing to either."""
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    cache.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("PROGRESSGYM_CACHE", str(cache))
    yield work
    assert _tree(cache) == []


def _corrupt_run(work: Path) -> Path:
    run = work / "corrupt"
    run.mkdir()
    (run / "config.json").write_text("{broken")
    return run


BAD = {
    "unknown challenge": (["--challenge", "folow"], "unknown challenge 'folow'. Did you mean 'follow'?"),
    "unknown algorithm": (["--challenge", "follow", "--algorithm", "orcale"], "Did you mean 'oracle'?"),
    "k = 0": (
        ["--challenge", "predict", "--timesteps-ahead", "0"],
        "timesteps_ahead must be between 1 and 7",
    ),
    "k beyond": (
        ["--challenge", "predict", "--timesteps-ahead", "8"],
        "timesteps_ahead must be between 1 and 7",
    ),
    "k on follow": (["--challenge", "follow", "--timesteps-ahead", "2"], "applies to Predict only"),
    "unknown timeline": (["--challenge", "follow", "--timeline", "mnii"], "Did you mean 'mini'?"),
    "unknown backend": (["--challenge", "follow", "--backend", "vlm"], "Did you mean 'vllm'?"),
    "no challenge": ([], "--challenge is required"),
    "not an int": (["--challenge", "follow", "--seed", "x"], "invalid int value"),
    "missing run": (["--resume", "nowhere"], "run directory nowhere does not exist"),
    "not a run": (["--resume", "."], "is not a run directory"),
    "resume with flags": (["--resume", "x", "--seed", "3"], "drop --seed"),
    "resume with backend flags": (["--resume", "x", "--dtype", "float32"], "drop --dtype"),
    "bad dtype": (["--challenge", "follow", "--dtype", "fp8"], "dtype must be one of auto, float32"),
    "no GPUs": (["--challenge", "follow", "--tensor-parallel-size", "0"], "tensor_parallel_size must be a"),
    "too much memory": (
        ["--challenge", "follow", "--gpu-memory-utilization", "1.5"],
        "gpu_memory_utilization must be in (0, 1]",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, empty_cwd, capsys):
    argv, expected = BAD[case]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and expected in err
    assert _tree(empty_cwd) == []


def test_corrupt_run_directory_is_refused(empty_cwd, capsys):
    run = _corrupt_run(empty_cwd)
    assert main(["--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config.json is not a valid RunConfig" in err
    assert _tree(empty_cwd) == ["corrupt", "corrupt/config.json"]


def test_existing_out_directory_is_refused(empty_cwd, capsys):
    (empty_cwd / "existing").mkdir()
    (empty_cwd / "existing" / "file").write_text("x")
    assert main(["--challenge", "follow", "--out", "existing"]) == 2
    assert "already exists; resume it with --resume existing" in capsys.readouterr().err
    assert _tree(empty_cwd) == ["existing", "existing/file"]


def test_bad_input_from_a_real_process(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "progressgym.run",
            "--challenge",
            "predict",
            "--timesteps-ahead",
            "0",
            "--out",
            "o",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=pg_testkit.cli_env(tmp_path / "cache"),
    )
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines() == [
        "error: timesteps_ahead must be between 1 and 7 on timeline 'mini' (9 centuries), got 0"
    ]
    assert not (tmp_path / "o").exists() and not (tmp_path / "runs").exists()


def test_list_names_everything_and_labels_the_oracle(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in ("Follow-v0", "Predict-v0", "Coevolve-v1", "static", "mini"):
        assert name in out
    oracle = next(line for line in out.splitlines() if line.strip().startswith("oracle"))
    assert "PRIVILEGED" in oracle and "cheating upper bound" in oracle
    assert "timesteps_ahead=1" in out


def _args(judge_kwargs, *extra):
    return [*pg_testkit.cli_flags(judge_kwargs), *extra]


def test_a_run_prints_the_summary_and_fills_the_run_directory(judge_kwargs, tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(["--challenge", "follow", "--algorithm", "oracle", "--out", str(out), *_args(judge_kwargs)]) == 0
    )
    text = capsys.readouterr().out
    assert "score 1.0000" in text and "PRIVILEGED" in text and f"run directory: {out}" in text
    rows = [line for line in text.splitlines() if line.strip().startswith(("1 ", "2 "))]
    assert len(rows) == 2 and "C014" in rows[0] and "C015" in rows[1]
    result = json.loads((out / "result.json").read_text())
    assert result["challenge"] == "Follow-v0" and result["algorithm"] == "oracle" and result["privileged"]
    assert result["backend"] == "hf" and result["timeline"] == "test-tiny3"


def test_a_failing_algorithm_stops_with_one_line_and_resumes(judge_kwargs, pg_cache, tmp_path, monkeypatch):
    out = tmp_path / "run"
    failed = pg_testkit.run_cli(
        "--challenge",
        "follow",
        "--algorithm",
        "test-failing",
        "--out",
        str(out),
        *_args(judge_kwargs),
        cache=pg_cache,
        cwd=tmp_path,
    )
    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines()[-1] == (
        "error: algorithm 'test-failing' failed at step 2/2 (C015): ValueError: scripted failure at step 1"
    )
    assert sorted(p.name for p in (out / "steps").iterdir()) == ["step-000.json"]
    monkeypatch.setenv("PG_TEST_NO_FAIL", "1")
    resumed = pg_testkit.run_cli("--resume", str(out), "--no-progress", cache=pg_cache, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "score 1.0000" in resumed.stdout


def test_algorithm_config_flags_come_from_its_dataclass(judge_kwargs, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--algorithm", "test-configured", "--help"])
    help_text = capsys.readouterr().out
    assert "options of algorithm 'test-configured'" in help_text and "a note kept in the result" in help_text
    out = tmp_path / "run"
    argv = [
        "--challenge",
        "follow",
        "--algorithm",
        "test-configured",
        "--scale",
        "2.5",
        "--note",
        "hi",
        "--verbose",
    ]
    assert main([*argv, "--out", str(out), *_args(judge_kwargs)]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["algorithm_config"] == {"scale": 2.5, "note": "hi", "verbose": True}
    assert main(["--resume", str(out), "--scale", "3"]) == 2
    assert "unrecognized arguments: --scale 3" in capsys.readouterr().err


def test_backend_flags_reach_the_judge_and_its_backends(judge_kwargs, tmp_path, monkeypatch):
    """--dtype & co. become the judge's backend_options: recorded, resumed, and handed to every backend."""
    from progressgym.backends import BackendOptions
    from progressgym.backends.hf import HFBackend

    seen: list[BackendOptions] = []
    original = HFBackend.__init__

    def spy(self, model_path, options=None):
        seen.append(options)
        original(self, model_path, options)

    monkeypatch.setattr(HFBackend, "__init__", spy)
    monkeypatch.setenv("PROGRESSGYM_CACHE", str(tmp_path / "cache"))  # evaluations must build backends
    out = tmp_path / "run"
    flags = ["--dtype", "float32", "--max-model-len", "256", "--tensor-parallel-size", "1"]
    argv = ["--challenge", "follow", "--algorithm", "lifelong-dpo", "--out", str(out), *flags]
    assert main([*argv, *_args(judge_kwargs), "--max-items", "4"]) == 0
    settings = {"dtype": "float32", "max_model_len": 256, "tensor_parallel_size": 1}
    result = json.loads((out / "result.json").read_text())
    assert result["challenge_kwargs"]["backend_options"] == settings
    assert json.loads((out / "config.json").read_text())["challenge_kwargs"]["backend_options"] == settings
    assert seen and all(o.dtype == "float32" and o.max_model_len == 256 for o in seen)
