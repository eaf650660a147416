"""The ``progressgym`` item bank: ProgressGym's official moral-evaluation items, read from their CSV files.

ProgressGym evaluates models on three ``final.csv`` files (``src/evaluation/raw_dataset/{moralchoice,
foundation,views}/final.csv`` in its repository). This module reads them from a directory holding
``moralchoice.csv``, ``foundation.csv`` and ``views.csv`` (or ProgressGym's own ``raw_dataset/`` layout) and
maps them onto the :class:`~progressgym.evaluation.items.Scenario` schema:

* ``moralchoice.csv`` -> family ``rules``. Column ``aX_<rule>`` answers "does choosing action X violate the
  rule?" (reference section 4.5), so ``Yes`` -> ``breaks[X-1][r] = True``, ``No`` -> ``False`` and
  ``No Agreement`` -> ``None``. The reading is the same for all ten columns, ``aX_duty`` included: ``Yes``
  there means the action *neglects* the duty, i.e. breaks the rule "Do your duty" (in the "Do your duty"
  dilemmas the dutiful action1 is annotated ``No`` and action2 ``Yes``).
* ``foundation.csv`` -> family ``foundations``; ``generation_theme`` gives the theme and action1 honours it
  (``honouring = 0``), as ProgressGym's generation prompt asks.
* ``views.csv`` -> family ``worldviews``; action1..action4 express the traditional, modern, postmodern and
  integrative worldviews; ``generation_theme`` (Axiology, Ontology...) becomes ``theme``.

The files have quirks; each one is handled explicitly and described in :attr:`ItemBank.report`:

* 97 ``scenario_id`` values of ``moralchoice.csv`` occur twice (hand-written ``H_001``..``H_100`` collide with
  generated rows). ProgressGym keeps only the last row of each id; here every distinct row is kept, the first
  under its own id and the repeats as ``ID#2``, ``ID#3``... Rows whose content is identical are merged.
* One moral-choice row has ``generation_rule`` "Do cause pain"; it is kept (its annotations are in the
  ``aX_`` columns) and ``meta["generation_rule"]`` holds the normalised "Do not cause pain".
* ``views.csv`` holds a stray copy of its header (``V_106``: context "context", choices "choice1".."choice4");
  it is dropped. Its column ``generaton_type`` (sic) is accepted under either spelling.
* A few ``views.csv`` rows have their four choices split across the wrong cells (a choice list written with
  curly quotes and cut at the wrong commas); they are re-split at the quoted-choice boundaries when that gives
  exactly four choices, and dropped otherwise.
* ``foundation.csv`` spells the theme ``Purity_Sancity``; both spellings map to ``purity_sanctity``.
* Texts lose surrounding whitespace, wrapping quotes and stray separators (`` "I will ..."`` -> ``I will ...``).
* Any other unreadable row is dropped with its reason in the report; a file that lacks a required column is an
  :class:`~progressgym.error.InvalidInput` error.
* The published files give 680, 600 and 538 scenarios (:data:`EXPECTED_SCENARIOS`). A file that gives fewer (cut
  short, or with junk rows) is refused unless ``allow_partial`` is set; then the shortfall is in the report.

Without a directory the Hugging Face dataset ``PKU-Alignment/ProgressGym-MoralEvals`` is searched for the three
CSV files (the local cache first; a download unless ``HF_HUB_OFFLINE`` is set). As published, that dataset holds
only the earlier ``prototype_*.json`` items, so in practice the official bank needs ``--bank-path DIR``.

This module finds the files and assembles the bank; :mod:`~progressgym.evaluation.banks._official_rows` reads
their rows.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path

from progressgym.error import Error, InvalidInput
from progressgym.evaluation.banks._official_rows import (
    _SPECS,
    _BankBuilder,
    clean_text,
)
from progressgym.evaluation.items import ItemBank

OFFICIAL_FILES: tuple[str, ...] = ("moralchoice.csv", "foundation.csv", "views.csv")
"""The three item files, in the order they are read."""

HUB_DATASET = "PKU-Alignment/ProgressGym-MoralEvals"

DATA_VERSION = "final-2024-10"
"""ProgressGym's ``final.csv`` item files (committed 2024-10-24)."""

LOADER_VERSION = "1"
"""Bumped whenever this loader reads the same bytes differently; hashed into the bank version."""

EXPECTED_SCENARIOS: dict[str, int] = {"moralchoice.csv": 680, "foundation.csv": 600, "views.csv": 538}
"""Scenarios each published file gives (``DATA_VERSION``); a file giving fewer is damaged or incomplete."""

PARTIAL_FLAG = "--allow-partial-bank"
"""The command-line flag that accepts a file giving fewer scenarios than published."""

BANK_PATH_HINT = (
    "pass --bank-path DIR with a directory holding moralchoice.csv, foundation.csv and views.csv "
    "(ProgressGym's src/evaluation/raw_dataset/{moralchoice,foundation,views}/final.csv)"
)

_STEMS = tuple(name.removesuffix(".csv") for name in OFFICIAL_FILES)

_LAYOUTS = (
    "{stem}.csv",
    "raw_dataset/{stem}/final.csv",
    "src/evaluation/raw_dataset/{stem}/final.csv",
    "evaluation/raw_dataset/{stem}/final.csv",
    "{stem}/final.csv",
)
"""Where the three files may sit under a directory: flat, or ProgressGym's repository layout."""


class BankNotFound(Error, FileNotFoundError):
    """The official item files could not be found where they were looked for."""


def load_progressgym_bank(
    path: str | os.PathLike[str] | None = None, *, allow_partial: bool = False
) -> ItemBank:
    """Read ProgressGym's official moral-evaluation items as the ``progressgym`` bank.

    Args:
        path: A directory holding ``moralchoice.csv``, ``foundation.csv`` and ``views.csv`` (or ProgressGym's
            repository / ``raw_dataset`` layout with ``{moralchoice,foundation,views}/final.csv``). ``None``
            searches the Hugging Face dataset ``PKU-Alignment/ProgressGym-MoralEvals``.
        allow_partial: Accept a file that gives fewer scenarios than the published one (see
            :data:`EXPECTED_SCENARIOS`); the report then says how many are missing.

    Returns:
        The whole bank (split ``"all"``); its version is ``final-2024-10-<hash>``, the hash covering the three
        files' bytes and this loader's version, and its ``report`` says what was done to each quirk.

    Raises:
        BankNotFound: A file is missing from ``path``, or ``path`` is ``None`` and the hub has no copy.
        InvalidInput: A file is not UTF-8 CSV or lacks a required column, or (without ``allow_partial``) gives
            fewer scenarios than the published file.
    """
    files = find_official_files(path) if path is not None else _files_from_hub()
    digest = hashlib.sha256(f"progressgym-official-loader:{LOADER_VERSION}\n".encode())
    builder = _BankBuilder()
    for name in OFFICIAL_FILES:
        data = files[name].read_bytes()
        digest.update(f"{name}:{len(data)}\n".encode())
        digest.update(data)
        kept, dropped = builder.read_file(_SPECS[name], data)
        expected = EXPECTED_SCENARIOS[name]
        if kept < expected:
            if not allow_partial:
                reason = f"; first dropped {dropped[0]}" if dropped else ""
                raise InvalidInput(
                    f"{files[name]} gives {kept} of the {expected} scenarios of the published {name}{reason}; "
                    f"restore the file, or evaluate on what it gives with python -m progressgym.evaluate "
                    f"{PARTIAL_FLAG}"
                )
            builder.report.append(
                f"{name}: dropped {expected - kept} of the {expected} published scenarios ({kept} given; "
                "partial bank allowed)"
            )
    counts = Counter(s.family for s in builder.scenarios)
    summary = (
        f"progressgym bank ({DATA_VERSION}) from {os.path.commonpath([str(p.parent) for p in files.values()])}: "
        f"{counts['rules']} rules, {counts['foundations']} foundations, "
        f"{counts['worldviews']} worldviews scenarios"
    )
    return ItemBank(
        name="progressgym",
        version=f"{DATA_VERSION}-{digest.hexdigest()[:10]}",
        scenarios=tuple(builder.scenarios),
        report=(summary, *builder.report),
    )


def find_official_files(directory: str | os.PathLike[str]) -> dict[str, Path]:
    """Locate the three item files under ``directory``.

    Returns:
        ``{"moralchoice.csv": path, "foundation.csv": path, "views.csv": path}``.

    Raises:
        BankNotFound: ``directory`` does not exist or lacks a file (the message names what is missing).
    """
    root = Path(directory).expanduser()
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise BankNotFound(f"item bank path {root} {what}; {BANK_PATH_HINT}")
    best: dict[str, Path] = {}
    for layout in _LAYOUTS:
        found = {
            name: root / layout.format(stem=stem)
            for name, stem in zip(OFFICIAL_FILES, _STEMS, strict=True)
            if (root / layout.format(stem=stem)).is_file()
        }
        if len(found) == len(OFFICIAL_FILES):
            return found
        if len(found) > len(best):
            best = found
    if not best:
        raise BankNotFound(
            f"{root} holds none of {', '.join(OFFICIAL_FILES)} (nor raw_dataset/*/final.csv); {BANK_PATH_HINT}"
        )
    missing = ", ".join(name for name in OFFICIAL_FILES if name not in best)
    present = ", ".join(str(p.relative_to(root)) for p in best.values())
    raise BankNotFound(
        f"{root} has {present} but is missing {missing}; the progressgym bank needs all of "
        f"{', '.join(OFFICIAL_FILES)} (ProgressGym's raw_dataset/{{moralchoice,foundation,views}}/final.csv)"
    )


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _short_reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def _files_from_hub() -> dict[str, Path]:
    """Find the three CSV files in the hub dataset (cache first, then a download unless offline)."""
    from huggingface_hub import constants, snapshot_download

    looked: list[str] = []

    def search(snapshot: Path, label: str) -> dict[str, Path] | None:
        try:
            return find_official_files(snapshot)
        except BankNotFound:
            looked.append(f"{label} {snapshot} (no moralchoice.csv/foundation.csv/views.csv in it)")
            return None

    try:
        cached = Path(
            snapshot_download(
                HUB_DATASET, repo_type="dataset", allow_patterns=["*.csv"], local_files_only=True
            )
        )
    except Exception:  # noqa: BLE001 - any failure means "not in the cache"
        looked.append(f"Hugging Face cache {constants.HF_HUB_CACHE} (dataset {HUB_DATASET} not cached)")
    else:
        found = search(cached, "cached snapshot")
        if found:
            return found

    if _offline() or constants.HF_HUB_OFFLINE:
        looked.append(f"hub dataset {HUB_DATASET} (not downloaded: HF_HUB_OFFLINE is set)")
    else:
        try:
            downloaded = Path(snapshot_download(HUB_DATASET, repo_type="dataset", allow_patterns=["*.csv"]))
        except Exception as exc:  # noqa: BLE001 - network, auth and missing-repo errors all end here
            looked.append(f"hub dataset {HUB_DATASET} ({_short_reason(exc)})")
        else:
            found = search(downloaded, f"hub dataset {HUB_DATASET} snapshot")
            if found:
                return found
    raise BankNotFound(
        f"ProgressGym's official item files not found; looked in: {'; '.join(looked)}. "
        "(As published, that dataset holds only prototype_*.json items, not these CSV files.) "
        f"To use the progressgym bank, {BANK_PATH_HINT}"
    )


__all__ = [
    "EXPECTED_SCENARIOS",
    "BANK_PATH_HINT",
    "OFFICIAL_FILES",
    "BankNotFound",
    "clean_text",
    "find_official_files",
    "load_progressgym_bank",
]
