"""Follow on the ``histllama3-8b`` timeline name, from the run command, on a local structural twin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pg_testkit import write_test_bank

from progressgym.backends import _chat
from progressgym.evaluation.items import read_jsonl_bank
from progressgym.evaluation.prompts import bank_prompts
from progressgym.prompt_format import load_tokenizer, prompt_format_settings
from progressgym.twin import build_histllama3_twin

ALPACA = (
    "<|begin_of_text|>Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
)


@pytest.mark.slow
def test_follow_runs_on_the_histllama3_twin_from_the_run_command(tmp_path: Path) -> None:
    twin = build_histllama3_twin(tmp_path / "models")
    bank = write_test_bank(tmp_path / "bank.jsonl")
    out = tmp_path / "run"
    env = {**os.environ, "PROGRESSGYM_CACHE": str(tmp_path / "cache")}
    env.pop("PROGRESSGYM_PROMPT_FORMAT", None)
    env.pop("PROGRESSGYM_PROMPT_FALLBACK", None)
    command = [
        sys.executable,
        "-m",
        "progressgym.run",
        "--challenge",
        "follow",
        "--algorithm",
        "lifelong-dpo",
        "--preset",
        "full",
        "--timeline",
        "histllama3-8b",
        "--model-dir",
        str(twin),
        "--bank",
        str(bank),
        "--eval-format",
        "label",
        "--device",
        "cpu",
        "--max-items",
        "1",
        "--formats",
        "open",
        "--orders",
        "one",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--no-progress",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert result["timeline"] == "histllama3-8b" and len(result["steps"]) == 8
    assert json.loads((out / "config.json").read_text())["algorithm_config"]["preset"] == "full"
    # The examinee trained models (a step whose preferences were all abstentions keeps the last one).
    names = [step["examinee_model"]["name"] for step in result["steps"]]
    assert sum(name.startswith("lifelong-dpo/step-") for name in names) >= 2, names
    assert all((s / "config.json").is_file() for s in (out / "examinee").iterdir())

    # What every judge query and evaluation of the run sent: the reference's Alpaca text, exactly.
    century = twin / "ProgressGym-HistLlama3-8B-C013-instruct-v0.2"
    item = bank_prompts(read_jsonl_bank(bank, name="test", version="1"), formats=["label"])[0]
    with prompt_format_settings("auto", "alpaca"):
        text = _chat.render_prompt(load_tokenizer(century), item.conversation)
    assert text == ALPACA.format(instruction=item.text)
    assert "Options:\nA. " in item.text and item.text.endswith("Reply with its letter only.")
