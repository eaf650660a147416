"""Making a shipped artifact set of the mini timeline: build, lay out, measure, write the manifest.

``python -m progressgym.timeline build mini --out DIR`` runs :func:`build_artifacts`. The set it writes is
complete: nine century folders (config, generation config, weights), the one tokenizer they share, and a
manifest with every file's sha256, each model's fingerprint, the recipe and seed, the targets, the reference
vectors of every century for the evaluation settings the challenges use, and the design figures. Replacing
``progressgym/timeline/mini/artifacts`` with such a set (and raising ``ARTIFACT_VERSION``) changes the
benchmark's ground truth: every leaderboard submission must then be made again.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from progressgym.evaluation.items import Split
from progressgym.timeline._timeline import Timeline

ARTIFACT_VERSION = 2
"""Version of the shipped mini set; raise it whenever the shipped files change.

2: the weights of 1, with references keyed by split version s2 (the same ``core`` halves) and vote flips
measured as the mini presets elicit."""
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors")
"""The files of a century folder that are the model; every other file belongs to the shared tokenizer."""
REFERENCE_SPLITS: tuple[Split, ...] = ("evaluation", "elicitation")
"""Splits whose reference vectors are shipped: the judges score on the first, the check reads both."""


def _lay_out(built: Path, out: Path, codes: list[str]) -> None:
    """Copy a build's century folders into the shipped layout, keeping one copy of the tokenizer."""
    from progressgym.timeline._artifacts import TOKENIZER_DIR, ArtifactError, sha256_file

    tokenizer: dict[str, str] = {}
    (out / TOKENIZER_DIR).mkdir(parents=True)
    for code in codes:
        (out / code).mkdir()
        for file in sorted((built / code).iterdir()):
            if file.name in MODEL_FILES:
                shutil.copyfile(file, out / code / file.name)
            elif file.name not in tokenizer:
                tokenizer[file.name] = sha256_file(file)
                shutil.copyfile(file, out / TOKENIZER_DIR / file.name)
            elif tokenizer[file.name] != sha256_file(file):
                raise ArtifactError(
                    f"{code}/{file.name} differs from the first century's: no shared tokenizer"
                )


def _references(built: Path, codes: list[str]) -> list[dict[str, Any]]:
    """Evaluate every century model on every reference split (no cache) in the challenges' settings."""
    from progressgym.evaluation import evaluate
    from progressgym.evaluation.banks import load_bank
    from progressgym.model_ref import ModelRef
    from progressgym.timeline._artifacts import challenge_setting

    entries = []
    for split in REFERENCE_SPLITS:
        bank = load_bank("core", split=split)
        evaluations = {}
        for code in codes:
            result = evaluate(ModelRef.from_path(built / code), bank=bank, use_cache=False, progress=False)
            evaluations[code] = {"vector": [float(v) for v in result.vector], "counts": list(result.counts)}
        entries.append({"split": split, "setting": challenge_setting(bank.key), "evaluations": evaluations})
    return entries


def build_artifacts(
    timeline: Timeline,
    out: Path,
    *,
    weights_only: bool = False,
    from_build: Path | None = None,
    progress: bool = True,
) -> str:
    """Build the mini timeline from its recipe and write a complete artifact set into ``out``.

    Args:
        timeline: The ``mini`` timeline.
        out: A folder that does not exist yet (or is empty); written whole or not at all.
        weights_only: Lay out the models and the file table only, without measuring references and design
            figures (for comparing a rebuild's weights).
        from_build: Lay out this finished build of the current recipe (one folder per century code and a
            ``targets.json``) instead of building again.
        progress: Show the build's progress bar.

    Returns:
        The sha256 of the written manifest.
    """
    from progressgym.model_ref import ModelRef, fingerprint
    from progressgym.timeline._artifacts import write_manifest
    from progressgym.timeline.mini.build import (
        BUILD_THREADS,
        MINI_SEED,
        MODEL_SHAPE,
        build_mini,
        recipe_version,
    )
    from progressgym.timeline.mini.check import design_figures, elicited_votes, target_votes, vote_flips

    codes = [m.code for m in timeline.members]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-", dir=out.parent) as scratch:
        built, staged = Path(scratch) / "built", Path(scratch) / "set"
        if from_build is not None:
            built = from_build
        else:
            built.mkdir()
            build_mini(timeline, built, progress=progress)
        _lay_out(built, staged, codes)
        manifest: dict[str, Any] = {
            "timeline": timeline.name,
            "artifact_version": ARTIFACT_VERSION,
            "recipe_version": recipe_version(),
            "seed": MINI_SEED,
            "dtype": "float32",
            "model_shape": MODEL_SHAPE,
            "made_with": {
                "torch": version("torch"),
                "transformers": version("transformers"),
                "python": platform.python_version(),
                "machine": platform.machine(),
                "build_threads": BUILD_THREADS,
            },
            "centuries": {code: {"fingerprint": fingerprint(built / code)} for code in codes},
            "targets": {
                code: [float(v) for v in vector] for code, vector in zip(codes, _targets(built), strict=True)
            },
        }
        if not weights_only:
            references = _references(built, codes)
            by_split = {r["split"]: r["evaluations"] for r in references}
            vectors = {s: [np.asarray(by_split[s][c]["vector"]) for c in codes] for s in REFERENCE_SPLITS}
            targets = [np.asarray(manifest["targets"][c]) for c in codes]
            figures = design_figures(vectors["evaluation"], vectors["elicitation"], targets)
            figures["vote_flips"] = vote_flips(elicited_votes([ModelRef.from_path(built / c) for c in codes]))
            figures["target_vote_flips"] = vote_flips(target_votes(targets))
            manifest["references"] = references
            manifest["design"] = figures
        digest = write_manifest(staged, manifest)
        if out.exists():
            out.rmdir()  # only an empty folder may be replaced; a full one raises here
        os.replace(staged, out)
    return digest


def _targets(built: Path) -> list[list[float]]:
    import json

    data: dict[str, list[float]] = json.loads((built / "targets.json").read_text(encoding="utf-8"))
    return list(data.values())
