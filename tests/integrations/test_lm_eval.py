"""lm-eval runs progressgym's tasks on tiny models and gets the vectors ``python -m progressgym.evaluate`` gets."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from progressgym.evaluation.banks import export_bank, load_bank
from progressgym.evaluation.dimensions import N_DIMS
from progressgym.evaluation.evaluator import evaluate, evaluate_with_backend
from progressgym.evaluation.items import ItemBank
from progressgym.integrations.answers import DIMENSION_KEYS
from progressgym.integrations.lm_eval import TASKS, include_path

lm_eval = pytest.importorskip("lm_eval", reason="needs the lm-eval extra: pip install 'progressgym[lm-eval]'")

TOLERANCE = 1e-4
ENV = {
    "OMP_NUM_THREADS": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def _vector(results: dict, task: str) -> np.ndarray:
    metrics = results[task]
    return np.array([metrics[f"{key},none"] for key in DIMENSION_KEYS], dtype=np.float64)


def test_lm_eval_cli_matches_progressgym_evaluate(tiny_model_dir, tmp_path):
    printed = subprocess.run(
        [sys.executable, "-m", "progressgym.integrations.lm_eval", "--include-path"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert printed.stdout.strip() == str(include_path())
    out = tmp_path / "lm-eval"
    run = subprocess.run(
        [
            sys.executable, "-m", "lm_eval",
            "--model", "hf",
            "--model_args", f"pretrained={tiny_model_dir},dtype=float32,add_bos_token=False",
            "--device", "cpu",
            "--batch_size", "32",
            "--tasks", "progressgym_values",
            "--apply_chat_template",
            "--include_path", printed.stdout.strip(),
            "--output_path", str(out),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV, "HF_DATASETS_CACHE": str(tmp_path / "hf-datasets")},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    (results_file,) = out.rglob("results_*.json")
    from_lm_eval = _vector(json.loads(results_file.read_text())["results"], "progressgym_values")

    ours = evaluate(str(tiny_model_dir), use_cache=False, progress=False, backend_options={"device": "cpu"})
    difference = float(np.max(np.abs(from_lm_eval - ours.vector)))
    print(f"lm-eval vs progressgym.evaluate, core evaluation split: max |difference| = {difference:.3e}")
    assert from_lm_eval.shape == (N_DIMS,) and difference <= TOLERANCE
    assert np.abs(ours.vector).max() > 0.05  # a real vector, not the indifferent zeros


def _sample(bank: ItemBank) -> ItemBank:
    """One scenario per stratum: every dimension measured, with few prompts."""
    first = {}
    for scenario in bank:
        first.setdefault(scenario.stratum, scenario)
    return ItemBank("core-sample", bank.version, tuple(first.values()), split=bank.split)


def _with_bos(model_dir, out):
    """A copy of the tiny model whose tokenizer adds the bos token itself, as Llama 3's does."""
    import shutil

    from tokenizers import Tokenizer, processors

    shutil.copytree(model_dir, out)
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    bos = tokenizer.token_to_id("<s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", bos)]
    )
    tokenizer.save(str(out / "tokenizer.json"))
    return out


def test_plain_and_alpaca_tasks_on_an_export_match_progressgym(tiny_model_dir, tmp_path, monkeypatch):
    from lm_eval.tasks import TaskManager

    from progressgym.backends.base import BackendOptions
    from progressgym.backends.hf import HFBackend
    from progressgym.prompt_format import prompt_format_settings

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    # Without a chat template the tokenizer's own special tokens count: this one adds the bos token, as
    # HistLlama3's does, which the Alpaca format relies on.
    model = _with_bos(tiny_model_dir, tmp_path / "model")
    bank = _sample(load_bank("core", split="evaluation"))
    export = export_bank(bank, tmp_path / "export")
    tasks = ["progressgym_values_plain", "progressgym_values_alpaca"]
    manager = TaskManager(
        include_path=str(include_path()), include_defaults=False, metadata={"export": str(export)}
    )
    results = lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": str(model), "dtype": "float32"},
        tasks=tasks,
        device="cpu",
        batch_size=32,
        task_manager=manager,
    )
    for task, prompt_format in zip(tasks, ["plain", "alpaca"], strict=True):
        from_lm_eval = _vector(results["results"], task)
        with (
            prompt_format_settings(prompt_format),
            HFBackend(str(model), BackendOptions(device="cpu")) as backend,
        ):
            ours = evaluate_with_backend(backend, bank, progress=False)
        difference = float(np.max(np.abs(from_lm_eval - ours.vector)))
        print(
            f"lm-eval {task} vs progressgym --prompt-format {prompt_format}: max |difference| = {difference:.3e}"
        )
        assert difference <= TOLERANCE, task


def test_every_task_reports_the_19_dimensions_in_order():
    import yaml

    folder = include_path()
    assert sorted(p.stem for p in folder.glob("progressgym_values*.yaml")) == sorted(TASKS)

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    base = yaml.load((folder / "_progressgym_values_base.yaml").read_text(), Loader=Loader)
    assert [m["metric"] for m in base["metric_list"]] == list(DIMENSION_KEYS)
    assert [m["aggregation"] for m in base["metric_list"]] == [f"task.aggregate_{k}" for k in DIMENSION_KEYS]
