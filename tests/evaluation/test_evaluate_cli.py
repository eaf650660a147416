import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scripted_models import ScriptedBackend, keeps_rules, scripted_model_dir, utility_table

from progressgym._cli import run_cli
from progressgym.backends import BACKENDS
from progressgym.evaluate import main
from progressgym.evaluation.banks import load_bank
from progressgym.evaluation.dimensions import DIMENSIONS
from progressgym.evaluation.evaluator import evaluate
from progressgym.evaluation.plots import plot_heatmap, plot_vector
from progressgym.timeline import CenturyModel, Timeline, register_timeline

PNG = b"\x89PNG\r\n\x1a\n"


def _cli(*args, cache):
    # One torch thread: the tiny model gains nothing from more, and the test machines' cores are shared.
    env = {**os.environ, "PROGRESSGYM_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "progressgym.evaluate", *args], capture_output=True, text=True, env=env
    )


def _one_line_error(result, *needles):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--model", "MODEL", "--bank", "cor"], ["unknown item bank 'cor'", "Did you mean 'core'"]),
        (["--model", "MODEL", "--backend", "hff"], ["unknown backend 'hff'", "Did you mean 'hf'"]),
        (["--model", "/no/such/model"], ["no model directory '/no/such/model'"]),
        (["--model", "EMPTY"], ["is not a model folder"]),
        (["--model", "nosuchline:13"], ["unknown timeline 'nosuchline'"]),
        (["--model", "histllama3-8b:C013", "--model-dir", "EMPTY"], ["model not found", "--model-dir"]),
        (["--model", "MODEL", "--split", "test"], ["invalid choice: 'test'"]),
        (["--model", "MODEL", "--bank", "progressgym", "--bank-path", "/no/such/dir"], ["/no/such/dir"]),
        ([], ["--model", "--timeline"]),
    ],
    ids=["bank", "backend", "path", "not-a-model", "timeline", "hub-model", "split", "bank-path", "nothing"],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, needles):
    model = scripted_model_dir(tmp_path / "model", {"position": 0})
    (tmp_path / "empty").mkdir()
    args = [str(model) if a == "MODEL" else str(tmp_path / "empty") if a == "EMPTY" else a for a in args]
    _one_line_error(_cli(*args, cache=tmp_path / "cache"), *needles)


@pytest.fixture
def scripted(monkeypatch, tmp_path):
    monkeypatch.setenv("PROGRESSGYM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(BACKENDS, "scripted", "scripted_models:ScriptedBackend")


def test_cli_prints_every_dimension_and_writes_json_and_plot(scripted, tmp_path, capsys):
    bank = load_bank("core", split="evaluation")
    table = utility_table(bank, keeps_rules)
    model = scripted_model_dir(tmp_path / "keeper", {"table": [[c, o, u] for (c, o), u in table.items()]})
    out_json, out_png = tmp_path / "v.json", tmp_path / "v.png"
    args = [
        "--model",
        str(model),
        "--backend",
        "scripted",
        "--json",
        str(out_json),
        "--plot",
        str(out_png),
        "--no-progress",
    ]
    assert run_cli(main, args) == 0
    printed = capsys.readouterr().out
    for name in DIMENSIONS:
        assert name in printed
    assert "invalid answers 0.0%, refusals 0.0%" in printed and "1,326 prompts" in printed
    data = json.loads(out_json.read_text())
    assert len(data["vector"]) == 19 and data["bank"] == bank.key and data["cached"] is False
    assert out_png.read_bytes().startswith(PNG)
    assert run_cli(main, args) == 0
    assert "(cached; cost when computed)" in capsys.readouterr().out


def test_cli_timeline_evaluates_every_century_and_draws_the_heat_map(scripted, tmp_path, capsys):
    register_timeline(
        Timeline(
            name="scripted-test",
            description="two scripted centuries",
            members=(CenturyModel(13), CenturyModel(14)),
            builder="scripted_models:build_scripted_timeline",
        ),
        overwrite=True,
    )
    heat, out_json = tmp_path / "heat.png", tmp_path / "t.json"
    args = [
        "--timeline",
        "scripted-test",
        "--backend",
        "scripted",
        "--plot",
        str(heat),
        "--json",
        str(out_json),
        "--no-progress",
    ]
    assert run_cli(main, args) == 0
    printed = capsys.readouterr().out
    assert "C013" in printed and "C014" in printed and "Do not kill" in printed
    assert heat.read_bytes().startswith(PNG)
    data = json.loads(out_json.read_text())
    assert sorted(data["evaluations"]) == ["C013", "C014"]
    for evaluation in data["evaluations"].values():  # position- and label-biased models: all zeros
        np.testing.assert_allclose(evaluation["vector"], np.zeros(19), atol=1e-9)
    assert run_cli(main, ["--model", "scripted-test:C014", "--backend", "scripted", "--no-progress"]) == 0
    assert "(cached" in capsys.readouterr().out


def test_plots_accept_evaluations_and_bare_vectors(scripted, tmp_path):
    model = scripted_model_dir(tmp_path / "m", {"position": 0})
    result = evaluate(str(model), backend="scripted", progress=False)
    plot_vector(result, tmp_path / "a.png")
    plot_vector(np.linspace(-1, 1, 19), tmp_path / "b.png", title="bare")
    plot_heatmap({13: result, 14: np.linspace(-1, 1, 19), "C021": result.vector}, tmp_path / "c.png")
    for name in "abc":
        assert (tmp_path / f"{name}.png").read_bytes().startswith(PNG)
    with pytest.raises(ValueError, match="19 entries"):
        plot_vector([0.0, 1.0], tmp_path / "d.png")
    assert not (tmp_path / "d.png").exists()
    assert ScriptedBackend.name == "scripted"


@pytest.mark.slow
def test_cli_on_a_real_tiny_model(tmp_path, tiny_model_dir):
    model = tiny_model_dir
    out_json = tmp_path / "v.json"
    args = [
        "--model",
        str(model),
        "--format",
        "label",
        "--json",
        str(out_json),
        "--no-progress",
        "--device",
        "cpu",
    ]
    result = _cli(*args, cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    assert "Do your duty" in result.stdout and "forward tokens" in result.stdout
    data = json.loads(out_json.read_text())
    assert data["formats"] == ["label"] and data["usage"]["forward_tokens"] > 0
    again = _cli(*args, cache=tmp_path / "cache")
    assert again.returncode == 0 and "(cached" in again.stdout
    assert json.loads(out_json.read_text())["vector"] == data["vector"]


def test_importing_the_evaluation_stays_light():
    code = (
        "import sys, progressgym.evaluation, progressgym.evaluate, progressgym.evaluation.plots\n"
        "heavy = {'torch', 'transformers', 'vllm', 'matplotlib'} & set(sys.modules)\n"
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_dimension_nothing_measures_is_a_one_line_error(scripted, tmp_path, capsys):
    model = scripted_model_dir(tmp_path / "m", {"position": 0})
    # Yes/no questions cannot ask the four-action worldview scenarios, so dims 15-18 have no scenario.
    status = run_cli(
        main, ["--model", str(model), "--backend", "scripted", "--format", "yesno", "--no-progress"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert "no answered scenario measures 4 dimension(s): Traditional worldview, Modern worldview" in err[0]
