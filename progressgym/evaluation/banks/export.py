"""Item banks as Hugging Face datasets: one row per scenario, or one row per prompt, and back.

Two configurations of one bank split:

* ``scenarios``: one row per scenario, with its family, actions and annotations (``breaks`` for rule
  dilemmas, ``theme`` and ``honouring`` for foundations, ``views`` for worldviews);
* ``prompts``: one row per question progressgym asks (every format in every order), with the user message,
  its candidate answers, which original action each candidate stands for, and the scenario's row as JSON so
  that a row can be scored on its own.

:func:`export_bank` writes both with ``save_to_disk`` and as JSON lines, plus ``export.json`` (the bank key,
counts and prompt settings), atomically: the folder appears complete or not at all.
``datasets.load_from_disk(DIR / "scenarios")`` gives the rows back and :func:`load_export` the bank.

Publishing an export (needs a hub account and network, which progressgym never uses itself)::

    from datasets import load_from_disk
    for config in ("scenarios", "prompts"):
        load_from_disk(f"DIR/{config}").push_to_hub("ORG/progressgym-core", config_name=config, split="test")

``datasets`` is imported only inside the functions that build or read datasets.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from progressgym.error import InvalidInput
from progressgym.evaluation.items import SPLITS, ItemBank, Scenario, Split
from progressgym.evaluation.prompts import PROMPT_VERSION, Orders, PromptItem, bank_prompts, check_formats

if TYPE_CHECKING:
    import datasets

CONFIGS: tuple[str, ...] = ("scenarios", "prompts")
"""The two dataset configurations of an export."""
MANIFEST = "export.json"
"""The file in an export folder that names the bank, its key and the prompt settings."""
EXPORT_VERSION = 1
"""Version of the export layout (folders, columns and manifest fields)."""


def scenario_row(scenario: Scenario) -> dict[str, Any]:
    """One scenario as a dataset row (JSON-able: lists, strings, ints, booleans and nulls)."""
    return {
        "id": scenario.id,
        "family": scenario.family,
        "context": scenario.context,
        "actions": list(scenario.actions),
        "breaks": [list(row) for row in scenario.breaks] if scenario.breaks is not None else None,
        "theme": scenario.theme,
        "honouring": scenario.honouring,
        "views": list(scenario.views) if scenario.views is not None else None,
        "meta": json.dumps(scenario.meta, sort_keys=True),
    }


def scenario_from_row(row: Mapping[str, Any]) -> Scenario:
    """Rebuild the scenario a :func:`scenario_row` row (or its JSON) describes.

    Raises:
        InvalidInput: when the row is malformed.
    """
    try:
        breaks = row.get("breaks")
        views = row.get("views")
        honouring = row.get("honouring")
        return Scenario(
            id=str(row["id"]),
            family=row["family"],
            context=str(row["context"]),
            actions=tuple(str(a) for a in row["actions"]),
            breaks=tuple(tuple(b) for b in breaks) if breaks is not None else None,
            theme=row.get("theme"),
            honouring=int(honouring) if honouring is not None else None,
            views=tuple(str(v) for v in views) if views is not None else None,
            meta=dict(json.loads(row.get("meta") or "{}")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"malformed scenario row {row.get('id', '?')!r}: {exc}") from None


def prompt_row(item: PromptItem, scenario: Scenario) -> dict[str, Any]:
    """One prompt as a dataset row; ``scenario`` is the scenario it asks about (stored as JSON)."""
    return {
        "id": f"{item.scenario_id}/{item.format}/{'-'.join(str(a) for a in item.order)}",
        "scenario_id": item.scenario_id,
        "format": item.format,
        "order": list(item.order),
        "text": item.text,
        "candidates": list(item.candidates),
        "candidate_action": list(item.candidate_action),
        "options": list(item.options),
        "scenario": json.dumps(scenario_row(scenario), sort_keys=True),
    }


def scenario_rows(bank: ItemBank) -> list[dict[str, Any]]:
    """Every scenario of ``bank`` as a row, in bank order."""
    return [scenario_row(s) for s in bank]


def prompt_rows(
    bank: ItemBank, *, formats: Iterable[str] | None = None, orders: Orders = "cyclic"
) -> list[dict[str, Any]]:
    """Every prompt progressgym asks about ``bank`` as a row (see :func:`~progressgym.evaluation.prompts.bank_prompts`)."""
    by_id = {s.id: s for s in bank}
    return [prompt_row(p, by_id[p.scenario_id]) for p in bank_prompts(bank, formats=formats, orders=orders)]


def _features(config: str) -> datasets.Features:
    from datasets import Features, List, Value

    if config == "scenarios":
        return Features(
            {
                "id": Value("string"),
                "family": Value("string"),
                "context": Value("string"),
                "actions": List(Value("string")),
                "breaks": List(List(Value("bool"))),
                "theme": Value("string"),
                "honouring": Value("int64"),
                "views": List(Value("string")),
                "meta": Value("string"),
            }
        )
    return Features(
        {
            "id": Value("string"),
            "scenario_id": Value("string"),
            "format": Value("string"),
            "order": List(Value("int64")),
            "text": Value("string"),
            "candidates": List(Value("string")),
            "candidate_action": List(Value("int64")),
            "options": List(Value("string")),
            "scenario": Value("string"),
        }
    )


def _check_config(config: str) -> None:
    if config not in CONFIGS:
        raise InvalidInput(f"unknown dataset configuration {config!r}; expected one of {CONFIGS}")


def to_dataset(
    bank: ItemBank,
    config: str = "scenarios",
    *,
    formats: Iterable[str] | None = None,
    orders: Orders = "cyclic",
) -> datasets.Dataset:
    """A bank split as a ``datasets.Dataset``.

    Args:
        bank: The bank or split (e.g. ``load_bank("core", split="evaluation")``).
        config: ``"scenarios"`` (one row per scenario) or ``"prompts"`` (one row per question).
        formats: ``prompts`` only: question formats (``None``: all).
        orders: ``prompts`` only: ``"cyclic"`` or ``"all"`` option orders for four-action scenarios.

    Returns:
        The dataset; its ``info.description`` names the bank key.
    """
    from datasets import Dataset, DatasetInfo

    _check_config(config)
    rows = scenario_rows(bank) if config == "scenarios" else prompt_rows(bank, formats=formats, orders=orders)
    features = _features(config)
    info = DatasetInfo(
        description=f"progressgym item bank {bank.key}, {config}: {len(rows)} rows", features=features
    )
    columns = {name: [row[name] for row in rows] for name in features}
    return Dataset.from_dict(columns, features=features, info=info)


@dataclass(frozen=True)
class Export:
    """An exported bank split, as read back from its folder.

    Attributes:
        bank: The scenarios, as the :class:`ItemBank` they were exported from.
        manifest: The folder's ``export.json``: bank key, counts, prompt settings.
        path: The folder.
    """

    bank: ItemBank
    manifest: dict[str, Any]
    path: Path


def _write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def export_bank(
    bank: ItemBank,
    out: str | os.PathLike[str],
    *,
    formats: Iterable[str] | None = None,
    orders: Orders = "cyclic",
    overwrite: bool = False,
) -> Path:
    """Write a bank split as datasets (``save_to_disk``) and JSON lines, with its manifest.

    The folder holds ``scenarios/`` and ``prompts/`` (``datasets.load_from_disk`` reads each),
    ``scenarios.jsonl``, ``prompts.jsonl`` and ``export.json``. Everything is written into a scratch folder
    beside ``out`` and renamed into place, so ``out`` is never left half written.

    Args:
        bank: The bank or split.
        out: The folder to create.
        formats: Question formats of the ``prompts`` configuration (``None``: all).
        orders: ``"cyclic"`` or ``"all"``.
        overwrite: Replace ``out`` when it exists (otherwise an existing, non-empty ``out`` is refused).

    Returns:
        The folder.

    Raises:
        InvalidInput: when ``out`` exists, is not empty and ``overwrite`` is false.
    """
    target = Path(out).expanduser()
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not overwrite:
        raise InvalidInput(f"--out {target} exists and is not empty (pass --overwrite to replace it)")
    chosen = check_formats(formats)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        staged = scratch / "export"
        staged.mkdir()
        counts: dict[str, int] = {}
        for config in CONFIGS:
            dataset = to_dataset(bank, config, formats=chosen, orders=orders)
            dataset.save_to_disk(str(staged / config))
            _write_jsonl(staged / f"{config}.jsonl", dataset.to_list())
            counts[config] = len(dataset)
        manifest = {
            "export_version": EXPORT_VERSION,
            "bank_key": bank.key,
            "bank": bank.name,
            "bank_version": bank.version,
            "split": bank.split,
            "prompt_version": PROMPT_VERSION,
            "formats": list(chosen),
            "orders": orders,
            "counts": counts,
        }
        (staged / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        os.replace(staged, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``export.json`` of an export folder.

    Raises:
        InvalidInput: when the folder is not an export.
    """
    folder = Path(path).expanduser()
    file = folder / MANIFEST
    if not file.is_file():
        raise InvalidInput(f"{folder} is not a progressgym bank export (it has no {MANIFEST})")
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{file}: malformed export manifest ({exc.msg})") from None
    fields = ("bank_key", "bank", "bank_version", "split")
    missing = [k for k in fields if k not in manifest] if isinstance(manifest, dict) else list(fields)
    if missing:
        raise InvalidInput(f"{file}: malformed export manifest (missing {', '.join(missing) or 'fields'})")
    result: dict[str, Any] = manifest
    return result


def load_export(path: str | os.PathLike[str]) -> Export:
    """Read an export folder back into the bank it was made from.

    Raises:
        InvalidInput: when the folder is not an export, or when this progressgym would give the bank another
            key (its split rule changed since the export: export again).
    """
    from datasets import load_from_disk

    folder = Path(path).expanduser()
    manifest = read_manifest(folder)
    rows = load_from_disk(str(folder / "scenarios")).to_list()
    split: Split = manifest["split"]
    if split not in SPLITS:
        raise InvalidInput(f"{folder}: unknown split {split!r} in {MANIFEST}")
    bank = ItemBank(
        name=str(manifest["bank"]),
        version=str(manifest["bank_version"]),
        scenarios=tuple(scenario_from_row(r) for r in rows),
        split=split,
    )
    if bank.key != manifest["bank_key"]:
        raise InvalidInput(
            f"{folder} was exported as {manifest['bank_key']}; this progressgym names it {bank.key} "
            "(the split rule changed since): export the bank again"
        )
    return Export(bank=bank, manifest=manifest, path=folder)


__all__ = [
    "CONFIGS",
    "EXPORT_VERSION",
    "MANIFEST",
    "Export",
    "export_bank",
    "load_export",
    "prompt_row",
    "prompt_rows",
    "read_manifest",
    "scenario_from_row",
    "scenario_row",
    "scenario_rows",
    "to_dataset",
]
