"""The item banks progressgym can evaluate with, by name.

* ``core``: the project's own bank, shipped in the package (``core_*.jsonl`` beside this file).
* ``progressgym``: ProgressGym's official items, read from a directory the user names (``--bank-path``) or,
  when the hub is reachable, from the ``PKU-Alignment/ProgressGym-MoralEvals`` dataset.

Any bank split is also a ``datasets.Dataset`` (:func:`bank_dataset`, :mod:`~progressgym.evaluation.banks.export`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from progressgym._registry import did_you_mean
from progressgym.error import UnknownName
from progressgym.evaluation.banks.export import export_bank, load_export, read_manifest, to_dataset
from progressgym.evaluation.items import ItemBank, Scenario, Split, read_jsonl_bank

if TYPE_CHECKING:
    import datasets

BANK_NAMES: tuple[str, ...] = ("core", "progressgym")
CORE_DIR = Path(__file__).parent


def core_files() -> list[Path]:
    """The JSONL files making up the ``core`` bank, in a fixed order."""
    return sorted(CORE_DIR.glob("core_*.jsonl"))


def load_core_bank() -> ItemBank:
    """Read the ``core`` bank; its version is a hash of its files, so any edit invalidates cached vectors."""
    files = core_files()
    digest = hashlib.sha256()
    scenarios: list[Scenario] = []
    for file in files:
        digest.update(file.read_bytes())
        scenarios.extend(read_jsonl_bank(file, name="core", version="part").scenarios)
    return ItemBank(name="core", version=f"1-{digest.hexdigest()[:10]}", scenarios=tuple(scenarios))


def load_bank(
    name: str, *, path: str | Path | None = None, split: Split = "all", allow_partial: bool = False
) -> ItemBank:
    """Load a bank by name and return the requested split.

    Args:
        name: ``"core"`` or ``"progressgym"``.
        path: For ``progressgym``: a directory holding ``moralchoice.csv``, ``foundation.csv`` and
            ``views.csv`` (without it the hub dataset is tried).
        split: ``"evaluation"``, ``"elicitation"`` or ``"all"``.
        allow_partial: For ``progressgym``: accept files giving fewer scenarios than the published ones.

    Returns:
        The bank (or its split).
    """
    if name == "core":
        bank = load_core_bank()
    elif name == "progressgym":
        from progressgym.evaluation.banks.official import load_progressgym_bank

        bank = load_progressgym_bank(path, allow_partial=allow_partial)
    else:
        raise UnknownName(did_you_mean("item bank", name, list(BANK_NAMES)))
    return bank.get_split(split)


def bank_dataset(
    name: str,
    *,
    split: Split = "evaluation",
    config: str = "scenarios",
    path: str | Path | None = None,
    allow_partial: bool = False,
) -> datasets.Dataset:
    """A bank split as a ``datasets.Dataset`` (see :func:`~progressgym.evaluation.banks.export.to_dataset`).

    Args:
        name: ``"core"`` or ``"progressgym"``.
        split: ``"evaluation"`` (default), ``"elicitation"`` or ``"all"``.
        config: ``"scenarios"`` (one row per scenario) or ``"prompts"`` (one row per question asked).
        path: For ``progressgym``: the directory of its CSV files.
        allow_partial: For ``progressgym``: accept files giving fewer scenarios than the published ones.

    Returns:
        The dataset.
    """
    bank = load_bank(name, path=path, split=split, allow_partial=allow_partial)
    return to_dataset(bank, config)


__all__ = [
    "BANK_NAMES",
    "bank_dataset",
    "core_files",
    "export_bank",
    "load_bank",
    "load_core_bank",
    "load_export",
    "read_manifest",
    "to_dataset",
]
