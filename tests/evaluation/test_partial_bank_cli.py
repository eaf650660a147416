"""The evaluate command on a damaged official bank: refused on one line, or with --allow-partial-bank, reported."""

import json
import shutil
from pathlib import Path

import pytest
from scripted_models import scripted_model_dir

from progressgym._cli import run_cli
from progressgym.backends import BACKENDS
from progressgym.evaluate import main
from progressgym.evaluation.banks.official import OFFICIAL_FILES

SHARED = Path(__file__).resolve().parents[2].parent / "shared/data/progressgym-moralevals"

pytestmark = pytest.mark.skipif(
    not all((SHARED / name).is_file() for name in OFFICIAL_FILES),
    reason=f"ProgressGym's official item files are not at {SHARED} (they are not shipped with the project)",
)


@pytest.fixture
def cut_bank(tmp_path, monkeypatch):
    """The official files with moralchoice.csv cut mid-row; a scripted model and backend."""
    monkeypatch.setenv("PROGRESSGYM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(BACKENDS, "scripted", "scripted_models:ScriptedBackend")
    folder = tmp_path / "bank"
    folder.mkdir()
    for name in OFFICIAL_FILES:
        shutil.copyfile(SHARED / name, folder / name)
    data = (folder / "moralchoice.csv").read_bytes()
    (folder / "moralchoice.csv").write_bytes(data[: int(len(data) * 0.37)])
    return folder, scripted_model_dir(tmp_path / "model", {"position": 0})


def _args(folder, model, *extra):
    bank = ["--bank", "progressgym", "--bank-path", str(folder)]
    return [
        "--model",
        str(model),
        *bank,
        "--backend",
        "scripted",
        "--format",
        "label",
        "--no-progress",
        *extra,
    ]


def test_a_cut_official_file_is_refused_on_one_line(cut_bank, tmp_path, capsys):
    folder, model = cut_bank
    assert run_cli(main, _args(folder, model, "--json", str(tmp_path / "out.json"))) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "of the 680 scenarios of the published moralchoice.csv" in captured.err
    assert "--allow-partial-bank" in captured.err
    assert not (tmp_path / "out.json").exists()


def test_allow_partial_bank_prints_and_records_what_was_dropped(cut_bank, tmp_path, capsys):
    folder, model = cut_bank
    out = tmp_path / "out.json"
    assert run_cli(main, _args(folder, model, "--allow-partial-bank", "--json", str(out))) == 0
    printed = capsys.readouterr().out
    assert "bank: what the loader dropped" in printed
    assert "moralchoice.csv: dropped" in printed and "of the 680 published scenarios" in printed
    recorded = json.loads(out.read_text())["bank_dropped"]
    assert any(line.startswith("moralchoice.csv: dropped") for line in recorded)
    assert any("stray header row" in line for line in recorded)  # views.csv's known junk row
    assert all(line in printed for line in recorded)


def test_allow_partial_bank_needs_the_official_bank(capsys):
    assert run_cli(main, ["--model", "x", "--allow-partial-bank"]) == 2
    assert "--allow-partial-bank applies to --bank progressgym only" in capsys.readouterr().err
