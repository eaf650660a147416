"""Multi-process runs: ranks from the environment, the barrier, and a whole run under ``accelerate launch``."""

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pg_testkit
import pytest

from progressgym import _distributed as dist
from progressgym.error import InvalidInput
from progressgym.run import main

_LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "ACCELERATE_USE_CPU")


@pytest.fixture
def single_process(monkeypatch):
    for name in _LAUNCH_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def second_of_two(single_process, monkeypatch):
    """The environment of rank 1 of 2, as a launcher sets it."""
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------------------------- ranks


def test_without_a_launcher_this_is_rank_0_of_1(single_process):
    assert (dist.process_rank(), dist.world_size(), dist.local_rank()) == (0, 1, None)
    assert dist.is_main_process() and not dist.is_distributed()
    dist.wait_for_everyone()  # a single process never waits


def test_ranks_come_from_the_launchers_environment(second_of_two, monkeypatch):
    assert (dist.process_rank(), dist.world_size(), dist.local_rank()) == (1, 2, 1)
    assert dist.is_distributed() and not dist.is_main_process()
    monkeypatch.setenv("RANK", "0")
    assert dist.is_main_process()


def test_unreadable_values_mean_a_single_process(single_process, monkeypatch):
    monkeypatch.setenv("RANK", "first")
    monkeypatch.setenv("WORLD_SIZE", "0")
    monkeypatch.setenv("LOCAL_RANK", "")
    assert (dist.process_rank(), dist.world_size(), dist.local_rank()) == (0, 1, None)


def test_importing_and_asking_loads_no_torch():
    code = (
        "import sys, progressgym, progressgym._distributed as d; d.wait_for_everyone(); "
        "d.rank_device('auto'); print(d.process_rank(), d.world_size(), 'torch' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k not in _LAUNCH_VARS}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["0", "1", "False"]


def test_the_device_stays_as_given_on_cpus_and_in_one_process(single_process, monkeypatch):
    for device in ("auto", "cpu", "cuda", "cuda:1"):
        assert dist.rank_device(device) == device
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert dist.rank_device("cpu") == "cpu" and dist.rank_device("cuda:0") == "cuda:0"
    if not _cuda():
        assert dist.rank_device("auto") == "auto"
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")
    assert dist.rank_device("auto") == "auto"


@pytest.mark.gpu
def test_each_rank_gets_its_own_gpu(second_of_two):
    import torch

    expected = f"cuda:{1 % torch.cuda.device_count()}"
    assert dist.rank_device("auto") == expected and dist.rank_device("cuda") == expected


def test_the_barrier_holds_every_process_until_the_last_arrives(tmp_path):
    """Rank 1 arrives 2 s late; rank 0 must not leave the barrier before rank 1 has reached it."""
    script = tmp_path / "barrier.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, sys, time
            from pathlib import Path
            from progressgym._distributed import process_rank, wait_for_everyone
            marker = Path(sys.argv[1])
            if process_rank() == 1:
                time.sleep(2)
                marker.write_text("arrived")
            wait_for_everyone()
            print(process_rank(), marker.exists())
            """
        )
    )
    port = str(_free_port())
    marker = tmp_path / "rank1-arrived"
    procs = []
    for rank in (0, 1):
        env = {k: v for k, v in os.environ.items() if k not in _LAUNCH_VARS}
        env.update(
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
            LOCAL_WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
            CUDA_VISIBLE_DEVICES="",
            OMP_NUM_THREADS="1",
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script), str(marker)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    assert [out.split()[-2:] for out, _ in outputs] == [["0", "True"], ["1", "True"]]


# -------------------------------------------------------------------------------- the run command


def test_a_run_under_several_processes_needs_out(second_of_two, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["--challenge", "follow", "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: a run under 2 processes (accelerate launch, torchrun) needs --out: the run directory they share"
    )
    assert main(["--grid", "--algorithms", "static", "--challenges", "follow"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --grid starts one process per cell itself; run it once, not under 2 processes "
        "(accelerate launch, torchrun)"
    )
    assert list(tmp_path.iterdir()) == []


def test_run_episode_under_several_processes_needs_a_run_directory(judge_kwargs, second_of_two):
    from progressgym.registration import make_examinee, make_judge
    from progressgym.runner import run_episode

    judge = make_judge("follow", **judge_kwargs)
    with pytest.raises(InvalidInput, match="needs a run directory they share"):
        run_episode(judge, make_examinee("static"))


# ------------------------------------------------------------------------------- accelerate launch


def _run_args(judge_kwargs, out: Path) -> list[str]:
    return [
        "--challenge",
        "follow",
        "--algorithm",
        "lifelong-dpo",
        "--max-items",
        "4",
        *pg_testkit.cli_flags(judge_kwargs),
        "--out",
        str(out),
    ]


def _launch(script: Path, args: list[str], cache: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``accelerate launch`` of the run CLI in 2 CPU processes (torchrun underneath, gloo between them).

    ``--multi_gpu`` is what starts several processes: ``--cpu`` with ``--num_processes 2`` starts one
    process unless an MPI host file is given. Without visible GPUs the processes use the CPU and gloo.
    """
    env = {k: v for k, v in pg_testkit.cli_env(cache).items() if k not in _LAUNCH_VARS}
    env["CUDA_VISIBLE_DEVICES"] = ""
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
        str(script),
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def _judged(step: dict) -> dict:
    """What the judge asked and answered in a step: independent of how the examinee's model was trained."""
    return {
        "seed": step["seed"],
        "century": step["century"],
        "target_vector": step["target_vector"],
        "queries": {
            k: step["queries"][k] for k in ("queries", "prompts", "forward_tokens", "privileged_calls")
        },
    }


@pytest.mark.slow
def test_a_run_under_accelerate_launch_trains_data_parallel_and_writes_once(judge_kwargs, pg_cache, tmp_path):
    script = tmp_path / "run_cli.py"
    script.write_text("import pg_testkit\npg_testkit.cli()\n")
    single, parallel = tmp_path / "single", tmp_path / "parallel"

    alone = pg_testkit.run_cli(*_run_args(judge_kwargs, single), cache=pg_cache, cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr[-3000:]
    launched = _launch(script, _run_args(judge_kwargs, parallel), pg_cache, tmp_path)
    assert launched.returncode == 0, launched.stderr[-3000:]

    # Exactly one run directory, complete, written once (one summary printed, by rank 0).
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["parallel", "single"]
    assert launched.stdout.count("run directory:") == 1
    assert sorted(p.name for p in (parallel / "steps").iterdir()) == ["step-000.json", "step-001.json"]
    assert (parallel / "trajectory.png").is_file() and (parallel / "submission.json").is_file()
    assert not list((parallel / "examinee").glob(".*")), "a scratch directory was left behind"
    one, many = (json.loads((d / "result.json").read_text()) for d in (single, parallel))

    # The judge's side is the same computation in every process: identical to a single-process run.
    for key in ("challenge", "algorithm", "centuries", "seed", "step_seeds", "truth_vectors", "privileged"):
        assert one[key] == many[key], key
    assert [_judged(s) for s in one["steps"]] == [_judged(s) for s in many["steps"]]
    states = [
        json.loads((d / "steps" / "step-001.json").read_text())["examinee_state"] for d in (single, parallel)
    ]
    assert states[0]["history"] == states[1]["history"]  # the same elicited preferences
    assert [e["examples"] for e in states[0]["log"]] == [e["examples"] for e in states[1]["log"]]
    # Training was data-parallel: two processes of batch B make one step of 2B, so the weights differ
    # slightly from a single process's (identical weights would mean the processes trained alone).
    fingerprints = [[s["examinee_model"]["fingerprint"] for s in r["steps"]] for r in (one, many)]
    assert fingerprints[0] != fingerprints[1]
    assert many["score"] == pytest.approx(one["score"], abs=1e-3)
    for a, b in zip(one["steps"], many["steps"], strict=True):
        assert b["cosine"] == pytest.approx(a["cosine"], abs=1e-3)

    # Interrupted after its first step and resumed under the launcher: the same result, to the bit.
    for name in ("result.json", "trajectory.png", "submission.json", "steps/step-001.json"):
        (parallel / name).unlink()
    shutil.rmtree(parallel / "examinee" / "step-001")
    resumed = _launch(script, ["--resume", str(parallel), "--no-progress"], pg_cache, tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again = json.loads((parallel / "result.json").read_text())
    assert again["score"] == many["score"]
    assert [s["examinee_model"]["fingerprint"] for s in again["steps"]] == fingerprints[1]
