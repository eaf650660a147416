"""Hostile input to the run and evaluate commands: one line, exit status 2, nothing created or half-written."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from progressgym._cli import run_cli
from progressgym.evaluate import main as evaluate_main
from progressgym.log import RunConfig, write_model
from progressgym.run import main as run_main


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def work(tmp_path, monkeypatch):
    """An empty working directory and cache; the hub is offline. The cache must stay empty."""
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    cache.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("PROGRESSGYM_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield work
    assert _tree(cache) == []


def _run_dir(work: Path, *, config_bytes: bytes | None = None, step_bytes: bytes | None = None) -> Path:
    run = work / "run"
    (run / "steps").mkdir(parents=True)
    config = RunConfig(
        challenge="Follow-v0",
        challenge_kwargs={},
        algorithm="static",
        seed=0,
        progressgym_version="0",
        created_at="2026-01-01T00:00:00+00:00",
    )
    write_model(run / "config.json", config)
    if config_bytes is not None:
        (run / "config.json").write_bytes(config_bytes)
    if step_bytes is not None:
        (run / "steps" / "step-000.json").write_bytes(step_bytes)
    return run


def _setup_run(case: str, work: Path) -> list[str]:
    """The run command's arguments of one case, after preparing what it needs in ``work``."""
    (work / "afile").write_text("x")
    if case == "resume config not UTF-8":
        return ["--resume", str(_run_dir(work, config_bytes=b'{"challenge": "\xff\xfe"}'))]
    if case == "resume step not UTF-8":
        return ["--resume", str(_run_dir(work, step_bytes=b'{"record": "\xc3\x28"}'))]
    if case == "resume a file":
        return ["--resume", "afile"]
    follow = ["--challenge", "follow", "--out", "out"]
    if case == "out under a file":
        return ["--challenge", "follow", "--out", "afile/out"]
    if case == "out under /proc":
        return ["--challenge", "follow", "--out", "/proc/progressgym-out"]
    if case == "out under /sys":
        return ["--challenge", "follow", "--out", "/sys/progressgym/out"]
    if case == "out is a file":
        return ["--challenge", "follow", "--out", "afile"]
    dpo = [*follow, "--algorithm", "lifelong-dpo"]
    settings = {
        "preset huge": ["--preset", "huge"],
        "epochs -3": ["--epochs", "-3"],
        "learning rate -1": ["--learning-rate", "-1"],
        "formats nope": ["--formats", "nope"],
        "official bank without path": ["--bank", "progressgym"],
        "official bank with empty path": ["--bank", "progressgym", "--bank-path", str(work / "empty")],
    }
    (work / "empty").mkdir()
    return [*dpo, *settings[case]]


RUN_CASES = {
    "resume config not UTF-8": "config.json is not UTF-8 text",
    "resume step not UTF-8": "step-000.json is not UTF-8 text",
    "resume a file": "afile is a file, not a run directory",
    "out under a file": "afile is a file, not a directory",
    "out under /proc": "is under /proc",
    "out under /sys": "is under /sys",
    "out is a file": "--out afile is a file, not a directory",
    "preset huge": "unknown preset 'huge'",
    "epochs -3": "epochs must be positive",
    "learning rate -1": "learning_rate must be positive",
    "formats nope": "unknown example format 'nope'",
    "official bank without path": "--bank-path",
    "official bank with empty path": "holds none of moralchoice.csv",
}


@pytest.mark.parametrize("case", list(RUN_CASES))
def test_run_refuses_with_one_line_before_writing(case, work, capsys):
    argv = _setup_run(case, work)
    before = _tree(work)
    assert run_main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    assert RUN_CASES[case] in captured.err
    assert _tree(work) == before  # no config.json, examinee/, judge/ or runs/


def _safetensors(path: Path, *, truncate: bool) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [100], "data_offsets": [0, 400]}}).encode()
    data = b"\0" * (10 if truncate else 400)
    path.write_bytes(len(header).to_bytes(8, "little") + header + data)


def _model(work: Path, case: str) -> Path:
    model = work / "model"
    model.mkdir()
    config: dict[str, object] = {"model_type": "llama"}
    if case == "wrong field type":
        config["hidden_size"] = "abc"
    elif case == "unknown model type":
        config["model_type"] = "nonsense"
    if case == "config only":
        (model / "config.json").write_text(json.dumps(config))
        return model
    (model / "config.json").write_text("{not json" if case == "malformed config" else json.dumps(config))
    (model / "tokenizer.json").write_text("{}")
    if case != "no weights":
        _safetensors(model / "model.safetensors", truncate=case == "truncated weights")
    return model


EVALUATE_CASES = {
    "config only": "has no tokenizer",
    "no weights": "has no weights",
    "malformed config": "config.json is not valid JSON",
    "truncated weights": "model.safetensors is truncated",
    "wrong field type": "is not a configuration transformers accepts (Validation error for field 'hidden_size'",
    "unknown model type": "is not a configuration transformers accepts (The checkpoint you are trying to load has",
    "json under a file": "--json afile/out.json cannot be created: ",
    "plot under a file": "--plot afile/out.png cannot be created: ",
    "plot under /proc": "--plot /proc/out.png is under /proc",
}


@pytest.mark.parametrize("case", list(EVALUATE_CASES))
def test_evaluate_refuses_with_one_line_before_loading(case, work, capsys):
    (work / "afile").write_text("x")
    model = _model(work, case if "under" not in case else "truncated weights")
    argv = ["--model", str(model), "--no-progress"]
    if case.startswith("json"):
        argv += ["--json", "afile/out.json"]
    elif case == "plot under a file":
        argv += ["--plot", "afile/out.png"]
    elif case == "plot under /proc":
        argv += ["--plot", "/proc/out.png"]
    before = _tree(work)
    assert run_cli(evaluate_main, argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    assert EVALUATE_CASES[case] in captured.err
    assert _tree(work) == before


def test_no_progress_also_hides_the_loading_weights_bars():
    # huggingface_hub imported first, as the run command does before it sees --no-progress.
    code = (
        "import huggingface_hub\n"
        "from progressgym._cli import silence_progress_bars\n"
        "silence_progress_bars()\n"
        "from transformers.utils import logging\n"
        "assert not logging.is_progress_bar_enabled()\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr


SHARED = Path(__file__).resolve().parents[1].parent / "shared/data/progressgym-moralevals"
OFFICIAL = ("moralchoice.csv", "foundation.csv", "views.csv")


@pytest.mark.skipif(
    not all((SHARED / name).is_file() for name in OFFICIAL),
    reason=f"ProgressGym's official item files are not at {SHARED}",
)
def test_run_refuses_a_cut_official_bank_before_writing(work, capsys):
    folder = work / "bank"
    folder.mkdir()
    for name in OFFICIAL:
        (folder / name).write_bytes((SHARED / name).read_bytes())
    data = (folder / "moralchoice.csv").read_bytes()
    (folder / "moralchoice.csv").write_bytes(data[: len(data) // 3])
    before = _tree(work)
    argv = ["--challenge", "follow", "--out", "out", "--bank", "progressgym", "--bank-path", str(folder)]
    assert run_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "of the 680 scenarios of the published moralchoice.csv" in err
    assert _tree(work) == before


@pytest.mark.parametrize(
    ("module", "case"),
    [
        ("progressgym.run", "resume config not UTF-8"),
        ("progressgym.run", "out under /proc"),
        ("progressgym.run", "preset huge"),
        ("progressgym.evaluate", "config only"),
    ],
)
def test_a_real_process_prints_one_line_and_exits_2(module, case, work):
    if module == "progressgym.run":
        argv, expected = _setup_run(case, work), RUN_CASES[case]
    else:
        argv, expected = ["--model", str(_model(work, case))], EVALUATE_CASES[case]
    before = _tree(work)
    done = subprocess.run(
        [sys.executable, "-m", module, *argv], capture_output=True, text=True, cwd=work, timeout=300
    )
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], done.stderr
    assert _tree(work) == before
