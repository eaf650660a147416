import json
import os
import subprocess
import sys

import datasets
import pytest

from progressgym.evaluation.banks import bank_dataset, export_bank, load_bank, load_export
from progressgym.evaluation.banks.export import scenario_from_row
from progressgym.evaluation.prompts import bank_prompts


def _cli(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "progressgym.evaluate", "export", *args],
        capture_output=True,
        text=True,
        env=env,
    )


def test_cli_export_round_trips_through_load_from_disk(tmp_path):
    out = tmp_path / "core-eval"
    result = _cli("--bank", "core", "--split", "evaluation", "--out", str(out))
    assert result.returncode == 0, result.stderr
    bank = load_bank("core", split="evaluation")
    assert bank.key in result.stdout

    scenarios = datasets.load_from_disk(str(out / "scenarios"))
    rebuilt = tuple(scenario_from_row(row) for row in scenarios)
    assert rebuilt == bank.scenarios
    assert [s.meta for s in rebuilt] == [s.meta for s in bank]
    assert bank.key in scenarios.info.description

    prompts = datasets.load_from_disk(str(out / "prompts"))
    items = bank_prompts(bank)
    assert len(prompts) == len(items)
    for row, item in zip(prompts, items, strict=True):
        assert (row["scenario_id"], row["format"], tuple(row["order"])) == (
            item.scenario_id,
            item.format,
            item.order,
        )
        assert row["text"] == item.text
        assert tuple(row["candidates"]) == item.candidates
        assert tuple(row["candidate_action"]) == item.candidate_action

    manifest = json.loads((out / "export.json").read_text())
    assert manifest["bank_key"] == bank.key
    assert manifest["counts"] == {"scenarios": len(bank), "prompts": len(items)}
    jsonl = [json.loads(line) for line in (out / "scenarios.jsonl").read_text().splitlines()]
    assert jsonl == scenarios.to_list()
    assert len((out / "prompts.jsonl").read_text().splitlines()) == len(items)

    exported = load_export(out)
    assert exported.bank == bank and exported.bank.key == bank.key


def test_dataset_of_every_split_and_both_configs():
    for split in ("evaluation", "elicitation", "all"):
        bank = load_bank("core", split=split)
        assert len(bank_dataset("core", split=split)) == len(bank)
    prompts = bank_dataset("core", split="elicitation", config="prompts")
    assert len(prompts) == len(bank_prompts(load_bank("core", split="elicitation")))


def test_export_is_refused_over_a_folder_and_never_left_half_written(tmp_path):
    bank = load_bank("core", split="evaluation")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = _cli("--out", str(out))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: --out {out} exists and is not empty (pass --overwrite to replace it)"
    ]
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    export_bank(bank, out, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "export.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no scratch folder left behind


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--bank", "cor", "--out", "OUT"], "Did you mean 'core'"),
        (["--split", "test", "--out", "OUT"], "invalid choice: 'test'"),
        (["--bank", "core"], "required: --out"),
        (["--out", "/proc/x"], "kernel file system"),
        (["--bank", "core", "--allow-partial-bank", "--out", "OUT"], "--bank progressgym only"),
    ],
    ids=["bank", "split", "no-out", "proc", "partial"],
)
def test_bad_export_input_is_one_line_and_exit_2(tmp_path, args, needle):
    result = _cli(*[str(tmp_path / "o") if a == "OUT" else a for a in args])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr
    assert not (tmp_path / "o").exists()


def test_an_export_from_another_split_rule_is_refused(tmp_path):
    out = export_bank(load_bank("core", split="evaluation"), tmp_path / "e")
    manifest = json.loads((out / "export.json").read_text())
    manifest["bank_key"] = manifest["bank_key"].rsplit("@", 1)[0] + "@s0"
    (out / "export.json").write_text(json.dumps(manifest))
    with pytest.raises(Exception, match="export the bank again"):
        load_export(out)
