"""Grids of runs (``python -m progressgym.run --grid``): settings, bad input, the local and Ray executors,
a cell killed mid-run, and resuming a grid to completion."""

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pg_testkit
import pytest

from progressgym._paths import cache_dir
from progressgym.grid import (
    Executor,
    GridSpec,
    load_grid_config,
    make_grid,
    read_manifest,
)
from progressgym.log import read_result
from progressgym.run import _judge_kwargs, _parse, main

STATIC, ORACLE = "Follow-v0_static_seed0", "Follow-v0_oracle_seed0"


# ------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def mini_timelines():
    """The folder of timelines in the user's cache, with the shipped ``mini`` set copied into it (seconds)."""
    from progressgym.timeline import built_timeline_dir, get_timeline

    built_timeline_dir(get_timeline("mini"))
    return cache_dir() / "timelines"


@pytest.fixture
def fresh_cache(mini_timelines, tmp_path, monkeypatch):
    """A cache with no vectors that reuses the built mini timeline."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "timelines").symlink_to(mini_timelines, target_is_directory=True)
    monkeypatch.setenv("PROGRESSGYM_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def small_bank(tmp_path_factory):
    """Two scenarios per stratum of the core bank: cheap evaluations of the mini models."""
    return pg_testkit.write_test_bank(tmp_path_factory.mktemp("bank") / "small.jsonl")


def _cell_flags(bank):
    return ["--bank", str(bank), "--eval-format", "label", "--device", "cpu"]


def _grid_flags(bank):
    return ["--grid", "--algorithms", "static,oracle", "--challenges", "follow", *_cell_flags(bank)]


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    """An empty working directory and cache: a refused grid writes nothing to either."""
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    cache.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("PROGRESSGYM_CACHE", str(cache))
    yield work
    assert _tree(cache) == []


# ------------------------------------------------------------------------------------------- settings


def test_cells_are_every_combination_in_a_fixed_order():
    spec = make_grid(
        {"algorithms": ["static", "oracle"], "challenges": ["predict", "follow"], "seeds": [2, 0]}
    )[0]
    assert spec.challenges == ("Predict-v0", "Follow-v0")
    assert [c.id for c in spec.cells()] == [
        "Predict-v0_static_seed2",
        "Predict-v0_static_seed0",
        "Predict-v0_oracle_seed2",
        "Predict-v0_oracle_seed0",
        "Follow-v0_static_seed2",
        "Follow-v0_static_seed0",
        "Follow-v0_oracle_seed2",
        "Follow-v0_oracle_seed0",
    ]


def test_backend_flags_reach_every_cell():
    argv = ["--tensor-parallel-size", "4", "--gpu-memory-utilization", "0.6", "--dtype", "bfloat16"]
    settings = {"algorithms": ["static"], "challenges": ["follow"]}
    settings["options"] = _judge_kwargs(_parse(["--grid", *argv])[0])
    spec, _ = make_grid(settings)
    expected = {"tensor_parallel_size": 4, "gpu_memory_utilization": 0.6, "dtype": "bfloat16"}
    assert spec.judge_kwargs("Follow-v0") == {"backend_options": expected}
    assert GridSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_timesteps_ahead_goes_to_predict_only():
    spec, _ = make_grid(
        {"algorithms": ["static"], "challenges": ["follow", "predict"], "options": {"timesteps_ahead": 2}}
    )
    assert spec.judge_kwargs("Predict-v0") == {"timesteps_ahead": 2}
    assert spec.judge_kwargs("Follow-v0") == {}


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_a_config_file_gives_the_grid_and_paths_are_relative_to_it(tmp_path, monkeypatch, suffix):
    folder = tmp_path / "configs"
    folder.mkdir()
    pg_testkit.write_test_bank(folder / "bank.jsonl")
    settings = {
        "algorithms": ["static", "oracle"],
        "challenges": ["follow"],
        "seeds": [0, 1],
        "executor": "local",
        "max_parallel": 2,
        "num_cpus": 1,
        "options": {"bank": "bank.jsonl", "eval_formats": ["label"], "device": "cpu"},
    }
    file = folder / f"grid{suffix}"
    if suffix == ".json":
        file.write_text(json.dumps(settings))
    else:
        file.write_text(
            'algorithms = ["static", "oracle"]\nchallenges = ["follow"]\nseeds = [0, 1]\nexecutor = "local"\n'
            'max_parallel = 2\nnum_cpus = 1\n\n[options]\nbank = "bank.jsonl"\neval_formats = ["label"]\n'
            'device = "cpu"\n'
        )
    monkeypatch.chdir(tmp_path)  # not the config's folder
    spec, executor = make_grid(load_grid_config(file))
    assert spec == GridSpec(
        algorithms=("static", "oracle"),
        challenges=("Follow-v0",),
        seeds=(0, 1),
        options={"bank": str(folder / "bank.jsonl"), "eval_formats": ["label"], "device": "cpu"},
    )
    assert executor == Executor(kind="local", max_parallel=2, num_cpus=1)


def test_import_progressgym_and_the_grid_module_loads_no_ray_or_torch():
    code = (
        "import sys, progressgym, progressgym.grid, progressgym.run\n"
        "print(sorted(m for m in ('ray', 'torch', 'transformers', 'vllm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


BAD = {
    "no challenges": (["--grid", "--algorithms", "static"], "a grid needs challenges"),
    "no algorithms": (["--grid", "--challenges", "follow"], "a grid needs algorithms"),
    "unknown algorithm": (
        ["--grid", "--challenges", "follow", "--algorithms", "static,orcale"],
        "Did you mean 'oracle'?",
    ),
    "unknown challenge": (
        ["--grid", "--challenges", "folow", "--algorithms", "static"],
        "Did you mean 'follow'?",
    ),
    "bad seed": (["--grid", "--challenges", "follow", "--algorithms", "static", "--seeds", "0,x"], "'x'"),
    "repeated seed": (
        ["--grid", "--challenges", "follow", "--algorithms", "static", "--seeds", "1,1"],
        "seeds lists 1 twice",
    ),
    "unknown executor": (
        ["--grid", "--challenges", "follow", "--algorithms", "static", "--executor", "rey"],
        "Did you mean 'ray'?",
    ),
    "gpus on local": (
        ["--grid", "--challenges", "follow", "--algorithms", "static", "--num-gpus", "1"],
        "num_gpus needs the ray executor",
    ),
    "zero parallel": (
        ["--grid", "--challenges", "follow", "--algorithms", "static", "--max-parallel", "0"],
        "max_parallel must be at least 1",
    ),
    "k on follow only": (
        ["--grid", "--challenges", "follow", "--algorithms", "static", "--timesteps-ahead", "2"],
        "timesteps_ahead applies to Predict only",
    ),
    "bad k": (
        ["--grid", "--challenges", "predict", "--algorithms", "static", "--timesteps-ahead", "9"],
        "timesteps_ahead must be between 1 and 7",
    ),
    "single-run flag": (
        ["--grid", "--challenge", "follow", "--algorithms", "static"],
        "--grid takes --challenges",
    ),
    "grid flag without grid": (["--challenge", "follow", "--seeds", "0,1"], "--seeds needs --grid"),
    "missing config": (["--grid", "--grid-config", "nowhere.toml"], "cannot read grid config nowhere.toml"),
    "missing grid": (["--grid", "--resume", "nowhere"], "grid directory nowhere does not exist"),
    "not a grid": (["--grid", "--resume", "."], "is not a grid directory (no grid.json)"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_grid_input_is_one_line_exit_2_and_writes_nothing(case, empty_cwd, capsys):
    argv, expected = BAD[case]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and expected in err, err
    assert _tree(empty_cwd) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'algorithms = ["static"]\nchallenges = ["follow"]\nseed = [1]\n',
            "unknown key 'seed'. Did you mean 'seeds'?",
        ),
        ("algorithms = [\n", "is not valid TOML"),
        ('algorithms = ["static"]\nchallenges = ["follow"]\nseeds = []\n', "seeds must not be empty"),
        ('algorithms = ["static"]\nchallenges = ["follow"]\noptions = 3\n', "options must be a table"),
        (
            'algorithms = ["static"]\nchallenges = ["follow"]\n[options]\nbatch = 3\n',
            "unknown grid option 'batch'",
        ),
        (
            'algorithms = ["static"]\nchallenges = ["follow"]\n[algorithm_config.oracle]\nlr = 1\n',
            "not among the grid's algorithms",
        ),
        (
            'algorithms = ["static"]\nchallenges = ["follow"]\n[options.backend_options]\ntp = 2\n',
            "unknown backend option 'tp'",
        ),
    ],
)
def test_a_bad_config_file_is_one_line_exit_2(text, expected, empty_cwd, capsys):
    (empty_cwd / "grid.toml").write_text(text)
    assert main(["--grid", "--grid-config", "grid.toml"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert _tree(empty_cwd) == ["grid.toml"]


# ------------------------------------------------------------------------------- local executor, resume


@pytest.mark.slow
def test_local_grid_runs_in_parallel_reports_failures_and_resumes(fresh_cache, small_bank, tmp_path, capsys):
    grid = tmp_path / "grid"
    argv = [*_grid_flags(small_bank), "--max-parallel", "2", "--no-progress"]
    assert main([*argv, "--out", str(grid)]) == 0
    table = capsys.readouterr().out
    assert "2 cells: 2 done, 0 failed" in table
    manifest = read_manifest(grid)
    assert [(c["id"], c["state"], c["attempts"]) for c in manifest["cells"]] == [
        (STATIC, "done", 1),
        (ORACLE, "done", 1),
    ]
    assert manifest["executor"]["max_parallel"] == 2
    oracle = read_result(grid / "runs" / ORACLE / "result.json")
    static = read_result(grid / "runs" / STATIC / "result.json")
    assert oracle.score == 1.0 and static.score < 0.9
    assert manifest["cells"][1]["score"] == oracle.score
    assert static.started_at <= oracle.finished_at and oracle.started_at <= static.finished_at  # in parallel
    assert "run directory:" in (grid / "logs" / f"{STATIC}.log").read_text()

    # A cell whose run directory is damaged fails with one line; the other is not run again.
    (grid / "runs" / STATIC / "result.json").unlink()
    (grid / "runs" / STATIC / "steps" / "step-003.json").write_text("{broken")
    oracle_mtime = (grid / "runs" / ORACLE / "result.json").stat().st_mtime_ns
    assert main(["--grid", "--resume", str(grid), "--no-progress"]) == 1
    table = capsys.readouterr().out.splitlines()
    failed = next(line for line in table if line.startswith(STATIC))
    assert "failed" in failed and "step-003.json is not a valid StepCheckpoint" in failed
    assert f"(log: logs/{STATIC}.log)" in failed
    assert "finished earlier" in next(line for line in table if line.startswith(ORACLE))
    assert "1 failed" in table[-1] and f"--grid --resume {grid}" in table[-1]
    assert (grid / "runs" / ORACLE / "result.json").stat().st_mtime_ns == oracle_mtime

    # Another grid is refused; the same command resumes it.
    assert main([*argv, "--seeds", "1", "--resume", str(grid)]) == 2
    assert "holds a different grid (seeds differ)" in capsys.readouterr().err
    with (grid / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert main(["--grid", "--resume", str(grid)]) == 2
        assert "is being run by another process" in capsys.readouterr().err
        fcntl.flock(lock, fcntl.LOCK_UN)
    for step in sorted((grid / "runs" / STATIC / "steps").glob("step-00[3-9].json")):
        step.unlink()
    kept = (grid / "runs" / STATIC / "steps" / "step-002.json").stat()
    assert main([*argv, "--resume", str(grid)]) == 0
    assert "2 cells: 2 done, 0 failed" in capsys.readouterr().out
    again = (grid / "runs" / STATIC / "steps" / "step-002.json").stat()
    assert (again.st_ino, again.st_mtime_ns) == (kept.st_ino, kept.st_mtime_ns)  # continued, not redone
    assert read_result(grid / "runs" / STATIC / "result.json").outcome() == static.outcome()
    assert [c["attempts"] for c in read_manifest(grid)["cells"]] == [3, 1]


# ------------------------------------------------------------------------------------------ Ray executor


def _run_grid_process(*argv: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "progressgym.run", *argv],
        cwd=cwd,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, f"the grid ended before {path} appeared: {process.communicate()}"
        assert time.monotonic() < deadline, f"{path} did not appear in {timeout} s"
        time.sleep(0.01)


@pytest.mark.slow
def test_ray_grid_survives_a_killed_cell_and_resumes_to_completion(fresh_cache, small_bank, tmp_path):
    pytest.importorskip("ray", exc_type=ImportError)
    grid = tmp_path / "grid"
    flags = [*_grid_flags(small_bank), "--executor", "ray", "--num-cpus", "1", "--no-progress"]
    driver = _run_grid_process(*flags, "--out", str(grid), cwd=tmp_path)
    first_step = grid / "runs" / STATIC / "steps" / "step-000.json"
    _wait_for(first_step, driver)
    pid = int((grid / "logs" / f"{STATIC}.pid").read_text())
    os.kill(pid, signal.SIGKILL)  # the process running the static cell, mid-run
    out, err = driver.communicate(timeout=600)
    assert driver.returncode == 1, err

    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("Follow-v0")}
    assert "failed" in rows[STATIC] and "killed by SIGKILL" in rows[STATIC]
    assert " done " in rows[ORACLE]
    oracle = read_result(grid / "runs" / ORACLE / "result.json")  # the other cell's result is intact
    assert oracle.score == 1.0 and len(oracle.steps) == 8
    assert not (grid / "runs" / STATIC / "result.json").exists()
    states = {c["id"]: c["state"] for c in read_manifest(grid)["cells"]}
    assert states == {STATIC: "failed", ORACLE: "done"}
    kept = first_step.stat()

    resumed = _run_grid_process("--grid", "--resume", str(grid), "--no-progress", cwd=tmp_path)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert "2 cells: 2 done, 0 failed" in out and "finished earlier" in out
    again = first_step.stat()
    assert (again.st_ino, again.st_mtime_ns) == (kept.st_ino, kept.st_mtime_ns)  # completed steps kept

    from progressgym.registration import make_examinee, make_judge
    from progressgym.runner import run_episode

    judge = make_judge("follow", bank=str(small_bank), eval_formats=["label"], device="cpu")
    straight = run_episode(judge, make_examinee("static"), seed=0)
    assert read_result(grid / "runs" / STATIC / "result.json").outcome() == straight.outcome()
    assert read_manifest(grid)["executor"]["kind"] == "ray"


@pytest.mark.slow
def test_ray_cells_asking_for_more_than_the_cluster_has_are_refused(tmp_path, small_bank):
    pytest.importorskip("ray", exc_type=ImportError)
    process = _run_grid_process(
        *_grid_flags(small_bank), "--executor", "ray", "--num-gpus", "1000", "--out", "g", cwd=tmp_path
    )
    out, err = process.communicate(timeout=300)
    assert process.returncode == 2 and out == ""
    assert (
        err.strip().splitlines()[-1].startswith("error: each cell asks for 1000 GPUs but the Ray cluster has")
    )
    assert not (tmp_path / "g").exists()
