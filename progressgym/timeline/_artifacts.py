"""Timelines shipped as files: century models, one tokenizer and a manifest that fixes them.

A shipped timeline is the benchmark's ground truth, the same bytes on every machine. Its folder holds::

    manifest.json              what the set is (see below); its sha256 is the set's identity
    tokenizer/                 the one tokenizer every century shares
    C013/ ... C021/            config, generation config and weights of each century model

The manifest records the sha256 and size of every file, the content fingerprint of each century model, the
recipe and seed that built them, the design figures measured on them, and the reference vectors of every
century for each evaluation setting the challenges use (with the exact cache-key material of that setting).

Models are loaded from a *materialised* copy in progressgym's cache (one folder per century, tokenizer files
beside the weights, as transformers and vLLM expect), made on first use after every file's sha256 is checked,
under a lock and renamed into place whole. Evaluations of a shipped century model under a recorded setting
return the shipped reference vector instead of recomputing it, so every machine scores against the same truth.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import importlib.resources
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from progressgym._paths import atomic_write_text, cache_dir
from progressgym.error import InvalidInput

MANIFEST = "manifest.json"
TOKENIZER_DIR = "tokenizer"
MANIFEST_FORMAT = 1
"""Layout version of ``manifest.json``."""
_MATERIALISED_MARKER = ".progressgym-materialised"
REFERENCE_TOLERANCE = 1e-4
"""Largest difference accepted between a reference value and the same model evaluated on another machine.

The same weights evaluated with other thread counts, CPUs or float precision differ in the last bits; the
figure behind this bound is measured by ``benchmarks/bench_reference_drift.py`` (see the README)."""


class ShippedTimeline(Protocol):
    """What this module needs of a :class:`~progressgym.timeline.Timeline` (kept structural: no import cycle)."""

    @property
    def name(self) -> str: ...

    @property
    def artifacts(self) -> str | None: ...


class ArtifactError(InvalidInput):
    """A shipped artifact set is missing, damaged or does not match its manifest."""


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of one file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def artifact_dir(timeline: ShippedTimeline) -> Path:
    """The folder of a shipped timeline's files (``Timeline.artifacts`` is ``"package:folder"``)."""
    if timeline.artifacts is None:
        raise TypeError(f"timeline {timeline.name!r} is not shipped as files")
    package, _, folder = timeline.artifacts.partition(":")
    return Path(str(importlib.resources.files(package) / folder))


@functools.lru_cache(maxsize=8)
def _read_manifest(path: str, mtime_ns: int) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"no manifest at {path}: the shipped timeline is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"unreadable manifest {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ArtifactError(f"{path} is not a format-{MANIFEST_FORMAT} timeline manifest")
    return data


def load_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of the artifact set in ``directory`` (read once per file version)."""
    path = directory / MANIFEST
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = 0
    return _read_manifest(str(path), mtime)


def manifest_hash(directory: Path) -> str:
    """The sha256 of the manifest file: the identity of the whole set (it pins every other file's hash)."""
    return sha256_file(directory / MANIFEST)


def verify_files(directory: Path, manifest: Mapping[str, Any]) -> list[str]:
    """Every file of the set checked against the manifest; returns one line per problem (empty: all good)."""
    problems = []
    for name, expected in sorted(manifest["files"].items()):
        path = directory / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif path.stat().st_size != expected["bytes"]:
            problems.append(f"{name}: {path.stat().st_size} bytes, manifest says {expected['bytes']}")
        elif sha256_file(path) != expected["sha256"]:
            problems.append(f"{name}: sha256 differs from the manifest")
    return problems


@contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive file lock on ``lock_path`` (made if missing) for the duration of the block."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def century_files(manifest: Mapping[str, Any], code: str) -> dict[str, str]:
    """For one century: file name in its model folder -> file in the artifact set."""
    files = {Path(name).name: name for name in manifest["files"] if name.startswith(f"{code}/")}
    files.update(
        {Path(name).name: name for name in manifest["files"] if name.startswith(f"{TOKENIZER_DIR}/")}
    )
    return files


def materialised_dir(timeline: ShippedTimeline) -> Path:
    """Where a shipped timeline's model folders live: ``<cache>/timelines/<name>-a<version>-<manifest hash>``."""
    source = artifact_dir(timeline)
    manifest = load_manifest(source)
    return (
        cache_dir()
        / "timelines"
        / f"{timeline.name}-a{manifest['artifact_version']}-{manifest_hash(source)[:12]}"
    )


def materialise(timeline: ShippedTimeline, *, again: bool = False) -> Path:
    """Return the folder of ready-to-load century models of a shipped timeline, making it on first use.

    Every shipped file's sha256 is checked against the manifest before it is copied; the folder is assembled
    in a temporary sibling and renamed into place, under a lock, so concurrent processes make it once.

    Args:
        timeline: A timeline with ``artifacts``.
        again: Discard an existing copy and make it anew (after a damaged copy was found).

    Raises:
        ArtifactError: when a shipped file is missing or differs from the manifest.
    """
    source = artifact_dir(timeline)
    manifest = load_manifest(source)

    def fill(staging: Path) -> None:
        problems = verify_files(source, manifest)
        if problems:
            raise ArtifactError(
                f"shipped timeline {timeline.name!r} in {source} is damaged: {'; '.join(problems[:3])}"
                f"{f' (and {len(problems) - 3} more)' if len(problems) > 3 else ''}; reinstall progressgym"
            )
        for code in manifest["centuries"]:
            folder = staging / code
            folder.mkdir()
            for name, shipped in century_files(manifest, code).items():
                shutil.copyfile(source / shipped, folder / name)

    return fill_in_place(materialised_dir(timeline), _MATERIALISED_MARKER, fill, again=again)


def fill_in_place(target: Path, marker: str, fill: Callable[[Path], None], *, again: bool = False) -> Path:
    """Make the folder ``target`` once: ``fill`` writes it into a temporary sibling, renamed into place whole.

    Under a file lock, so concurrent processes fill it once; ``target/marker`` says it is complete, and a
    complete folder is returned as it is unless ``again``. A failing ``fill`` leaves ``target`` untouched.
    """
    if not again and (target / marker).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(target.parent / f".{target.name}.lock"):
        if not again and (target / marker).is_file():
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            fill(staging)
            (staging / marker).write_text("ok\n")
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return target


def checked_century_dir(timeline: ShippedTimeline, code: str) -> Path:
    """One century's model folder, its content fingerprint checked against the manifest.

    A copy whose fingerprint differs (a damaged or edited file in the cache) is made anew once; if it still
    differs, an :class:`ArtifactError` says so.
    """
    from progressgym.model_ref import fingerprint

    manifest = load_manifest(artifact_dir(timeline))
    if code not in manifest["centuries"]:
        raise ArtifactError(f"the shipped {timeline.name!r} timeline has no {code}")
    expected = manifest["centuries"][code]["fingerprint"]
    folder = materialise(timeline) / code
    if fingerprint(folder) == expected:
        return folder
    folder = materialise(timeline, again=True) / code
    if fingerprint(folder) != expected:
        raise ArtifactError(f"{folder} does not match the shipped {timeline.name} {code} (fingerprint)")
    return folder


def reference_setting(material: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an evaluation's cache-key material that is not the model: what a reference set is for."""
    return {key: value for key, value in material.items() if key != "model"}


def challenge_setting(bank_key: str, formats: Sequence[str] | None = None) -> dict[str, Any]:
    """The setting a reference set is recorded under, as the challenges evaluate.

    ``bank_key`` scored by log-likelihood in cyclic option orders and ``formats`` (``None``: every format); the
    evaluation cache keys vectors by the same material.
    """
    from progressgym.evaluation.cache import key_material
    from progressgym.evaluation.prompts import check_formats

    chosen = check_formats(formats)
    return reference_setting(
        key_material(fingerprint="", bank_key=bank_key, mode="logprob", formats=chosen, orders="cyclic")
    )


def shipped_references(manifest: Mapping[str, Any], material: Mapping[str, Any]) -> dict[str, Any] | None:
    """The manifest's reference set for an evaluation setting (``None`` when it ships none for it)."""
    wanted = reference_setting(material)
    for entry in manifest.get("references", []):
        if entry["setting"] == wanted:
            found: dict[str, Any] = entry
            return found
    return None


def manifest_evaluation(
    manifest: Mapping[str, Any], fingerprint: str, material: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The manifest's evaluation of the century model with ``fingerprint`` under the setting of ``material``.

    Returns:
        A dict for :meth:`progressgym.evaluation.Evaluation.from_dict`, or ``None`` when the model is not one
        of the set's or the setting has no shipped references.
    """
    from progressgym.evaluation.dimensions import DIMENSIONS

    codes = [c for c, m in manifest["centuries"].items() if m["fingerprint"] == fingerprint]
    references = shipped_references(manifest, material) if codes else None
    if references is None:
        return None
    stored = references["evaluations"][codes[0]]
    return {
        "vector": stored["vector"],
        "dims": list(DIMENSIONS),
        "counts": stored["counts"],
        "invalid_rate": 0.0,
        "refusal_rate": 0.0,
        "usage": {},
        "cached": True,
        "cache_key": None,
        "mode": material["mode"],
        "bank": material["bank"],
        "formats": list(material["formats"]),
        "orders": material["orders"],
        "fingerprint": fingerprint,
        "vector_version": material["vector"],
        "extra": {"source": f"shipped {manifest['timeline']} references"},
    }


def write_manifest(directory: Path, manifest: dict[str, Any]) -> str:
    """Fill in the file table of ``manifest`` from ``directory``, write it atomically, return its hash."""
    files = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST):
        name = path.relative_to(directory).as_posix()
        files[name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    manifest = {**manifest, "format": MANIFEST_FORMAT, "files": files}
    atomic_write_text(directory / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest_hash(directory)


__all__ = [
    "MANIFEST",
    "REFERENCE_TOLERANCE",
    "ArtifactError",
    "artifact_dir",
    "checked_century_dir",
    "load_manifest",
    "manifest_hash",
    "fill_in_place",
    "materialise",
    "manifest_evaluation",
    "shipped_references",
    "verify_files",
    "write_manifest",
]
