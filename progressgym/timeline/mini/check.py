"""``python -m progressgym.timeline check mini``: check the shipped mini timeline and measure its design.

Prints, from one command:

* every shipped file against the manifest (sha256) and each century model's content fingerprint;
* each century's vector evaluated here against the shipped reference vector (largest difference, allowed up to
  :data:`~progressgym.timeline._artifacts.REFERENCE_TOLERANCE`: other CPUs round differently in the last bits);
* each century's measured vector (evaluation split) against its target (cosine >= 0.9 required);
* the structure of time: mean cosine of adjacent centuries minus cos(C013, C021) (>= 0.3 required);
* the agreement of the elicitation split with the evaluation split (cosine >= 0.8 per century);
* the Follow score of a static examinee that keeps the C013 model (<= 0.6 required);
* the share of elicitation preference pairs whose vote flips between centuries, as the mini presets elicit it
  (``elicitation=likelihood``) and as the targets imply it;
* with ``--rebuild``, a build from the recipe in a scratch folder, its time and peak memory, and whether its
  weights are byte-identical to the shipped ones (they are on a CPU like the one that made them; training
  rounds differently on others).
"""

from __future__ import annotations

import functools
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from progressgym.elicitation import Method
from progressgym.model_ref import ModelRef
from progressgym.timeline._timeline import Timeline

MAX_BUILD_SECONDS = 180.0
MAX_BUILD_GB = 3.0
MIN_TARGET_COSINE = 0.9
MIN_SPLIT_COSINE = 0.8
MIN_TIME_STRUCTURE = 0.3
MAX_STATIC_FOLLOW = 0.6


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors (0 when either is all zeros)."""
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm > 0 else 0.0


def design_figures(
    evaluation: Sequence[np.ndarray], elicitation: Sequence[np.ndarray], targets: Sequence[np.ndarray]
) -> dict[str, Any]:
    """The design figures of a timeline from its vectors on both splits and its targets, oldest first."""
    adjacent = float(np.mean([cosine(a, b) for a, b in zip(evaluation, evaluation[1:], strict=False)]))
    ends = cosine(evaluation[0], evaluation[-1])
    return {
        "target_cosine": [cosine(m, t) for m, t in zip(evaluation, targets, strict=True)],
        "split_cosine": [cosine(e, m) for e, m in zip(elicitation, evaluation, strict=True)],
        "adjacent_cosine": adjacent,
        "first_last_cosine": ends,
        "time_structure": adjacent - ends,
        "static_follow": float(np.mean([cosine(evaluation[0], m) for m in evaluation[1:]])),
    }


def vote_flips(votes: Sequence[Sequence[int]]) -> dict[str, Any]:
    """How often elicited votes reverse over a timeline.

    Args:
        votes: Per century, oldest first, one vote per preference item: +1 (first response), -1 (second) or 0
            (no clear preference).

    Returns:
        ``pairs``; ``flip_share``, the share of items whose vote is +1 in some century and -1 in another;
        ``adjacent_flip_shares``, per pair of neighbouring centuries the share of items voted +1 in one and -1
        in the other.
    """
    table = np.asarray(votes, dtype=int)
    ever = np.any(table > 0, axis=0) & np.any(table < 0, axis=0)
    adjacent = [float(np.mean(a * b < 0)) for a, b in zip(table, table[1:], strict=False)]
    return {
        "pairs": int(table.shape[1]),
        "flip_share": float(np.mean(ever)),
        "adjacent_flip_shares": adjacent,
    }


def _same(ref: ModelRef) -> ModelRef:
    return ref


def elicited_votes(models: Sequence[ModelRef], method: Method = "likelihood") -> list[list[int]]:
    """Each model's vote on every elicitation preference item, asked exactly as judges ask it.

    ``likelihood`` is how the mini presets elicit (the two responses' log-likelihoods as replies to the
    scenario's question): the mini models hold their values there. The pairwise question's labels
    (``compare``, the full presets' method) carry almost nothing on these 2-layer models: about 98% of the
    items come out as abstentions.
    """
    from progressgym.backends.base import BackendOptions
    from progressgym.core import JudgeInterface, StepInfo
    from progressgym.elicitation import elicit_preferences, preference_items
    from progressgym.evaluation.banks import load_bank

    scenarios = load_bank("core", split="elicitation").scenarios
    items = preference_items(scenarios)
    votes = []
    for index, ref in enumerate(models):
        info = StepInfo("check", index, len(models), index, ref.century or 0, seed=0)
        judge = JudgeInterface(
            info,
            human=functools.partial(_same, ref),
            scenarios=lambda: scenarios,
            backend="hf",
            options=BackendOptions(device="cpu", seed=0),
        )
        try:
            records, _ = elicit_preferences(judge, items, method=method)
        finally:
            judge.close()
        votes.append([r.direction for r in records])
    return votes


def target_votes(targets: Sequence[np.ndarray]) -> list[list[int]]:
    """The votes on every elicitation preference item that each century's target values imply.

    A holder of the target prefers response A with the probability the build teaches
    (:func:`~progressgym.timeline.mini.build.action_probabilities`, renormalised over the pair); within the
    judges' abstention margin of 1/2 the vote is 0.
    """
    from progressgym.elicitation import DEFAULT_MARGIN, preference_items
    from progressgym.evaluation.banks import load_bank
    from progressgym.timeline.mini.build import action_probabilities

    scenarios = {s.id: s for s in load_bank("core", split="elicitation")}
    items = preference_items(list(scenarios.values()))
    votes = []
    for target in targets:
        row = []
        for item in items:
            probs = action_probabilities(scenarios[item.scenario_id], np.asarray(target))
            p_a = probs[item.action_a] / (probs[item.action_a] + probs[item.action_b])
            row.append(0 if abs(p_a - 0.5) < DEFAULT_MARGIN else (1 if p_a > 0.5 else -1))
        votes.append(row)
    return votes


def describe_flips(label: str, flips: dict[str, Any]) -> str:
    """One line: the share of items ever flipping, and per pair of neighbouring centuries."""
    adjacent = ", ".join(f"{share:.0%}" for share in flips["adjacent_flip_shares"])
    return (
        f"{label}: {flips['flip_share']:.1%} of {flips['pairs']} pairs flip at least once; between adjacent "
        f"centuries {adjacent}"
    )


def _rebuild(shipped: dict[str, Any]) -> list[tuple[str, bool]]:
    """Build from the recipe in a scratch folder (child process); compare its weights with the shipped ones."""
    with tempfile.TemporaryDirectory(prefix="progressgym-mini-rebuild-") as scratch:
        out = Path(scratch) / "mini"
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "progressgym.timeline",
                "build",
                "mini",
                "--out",
                str(out),
                "--weights-only",
            ],
            env={**os.environ, "PROGRESSGYM_CACHE": scratch},
            check=True,
            stdout=subprocess.DEVNULL,
        )
        seconds = time.perf_counter() - start
        peak_gb = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024 / 1024
        from progressgym.timeline._artifacts import sha256_file

        differing = [
            name
            for name, entry in shipped["files"].items()
            if name.endswith(".safetensors") and sha256_file(out / name) != entry["sha256"]
        ]
    print(f"rebuild from the recipe: {seconds:.1f} s wall, {peak_gb:.2f} GB peak memory")
    print(
        "rebuilt weights byte-identical to the shipped ones: "
        + ("yes" if not differing else f"NO ({len(differing)} of 9 differ; expected on another kind of CPU)")
    )
    return [
        (f"rebuild <= {MAX_BUILD_SECONDS:.0f} s wall", seconds <= MAX_BUILD_SECONDS),
        (f"rebuild <= {MAX_BUILD_GB:.0f} GB peak memory", peak_gb <= MAX_BUILD_GB),
    ]


def check_mini(timeline: Timeline, *, rebuild: bool = False, strict_time: bool = False) -> int:
    """Run every check of the shipped mini timeline and print the figures.

    Args:
        timeline: The ``mini`` timeline.
        rebuild: Also build the timeline from its recipe in a scratch folder and compare the weights.
        strict_time: Count the rebuild's time and memory limits in the exit status (wall time depends on the
            machine and its load, so by default it is reported, not enforced).

    Returns:
        0 when every enforced requirement holds, 1 otherwise.
    """
    from progressgym.evaluation import evaluate
    from progressgym.timeline._artifacts import (
        REFERENCE_TOLERANCE,
        artifact_dir,
        challenge_setting,
        load_manifest,
        manifest_hash,
        shipped_references,
        verify_files,
    )
    from progressgym.timeline.mini.build import recipe_version

    source = artifact_dir(timeline)
    manifest = load_manifest(source)
    results: list[tuple[str, bool]] = []
    problems = verify_files(source, manifest)
    print(f"shipped set: {source}")
    print(
        f"  artifact version {manifest['artifact_version']}, manifest sha256 {manifest_hash(source)[:16]}, "
        f"{len(manifest['files'])} files, {sum(f['bytes'] for f in manifest['files'].values()) / 1e6:.1f} MB"
    )
    for line in problems:
        print(f"  {line}")
    results.append(("every shipped file matches the manifest (sha256)", not problems))
    if problems:
        return _report(results)
    fingerprints = {m.code: timeline.model(m.century).fingerprint for m in timeline.members}
    same = all(fingerprints[c] == manifest["centuries"][c]["fingerprint"] for c in fingerprints)
    results.append(("every century model's fingerprint matches the manifest", same))
    if manifest["recipe_version"] != recipe_version():
        print(
            f"  note: the recipe changed since this set was made ({manifest['recipe_version']} -> "
            f"{recipe_version()}); the shipped files stay the truth until a new set is made with `build --out`"
        )

    measured: dict[str, list[np.ndarray]] = {}
    worst = 0.0
    for split in ("evaluation", "elicitation"):
        from progressgym.evaluation.banks import load_bank

        bank = load_bank("core", split=split)
        shipped = shipped_references(manifest, challenge_setting(bank.key))
        if shipped is None:
            print(f"  the manifest has no references for the {split} split as evaluated now ({bank.key})")
            results.append((f"shipped references for the {split} split", False))
            return _report(results)
        vectors = []
        for member in timeline.members:
            local = evaluate(
                timeline.model(member.century), bank=bank, use_cache=False, progress=False
            ).vector
            reference = np.asarray(shipped["evaluations"][member.code]["vector"])
            worst = max(worst, float(np.max(np.abs(local - reference))))
            vectors.append(local)
        measured[split] = vectors
    print(f"  largest difference between vectors evaluated here and the shipped references: {worst:.2e}")
    results.append(
        (
            f"vectors evaluated here within {REFERENCE_TOLERANCE:g} of the shipped ones",
            worst <= REFERENCE_TOLERANCE,
        )
    )

    targets = [np.asarray(manifest["targets"][m.code]) for m in timeline.members]
    figures = design_figures(measured["evaluation"], measured["elicitation"], targets)
    print(f"\n{'century':<8} {'cos(measured, target)':>22} {'cos(elicitation, evaluation)':>29}")
    for member, tc, sc in zip(
        timeline.members, figures["target_cosine"], figures["split_cosine"], strict=True
    ):
        print(f"{member.code:<8} {tc:>22.3f} {sc:>29.3f}")
    print(
        f"\nmean cosine of adjacent centuries {figures['adjacent_cosine']:.3f}; cos(first, last) "
        f"{figures['first_last_cosine']:.3f}; difference {figures['time_structure']:.3f}"
    )
    print(
        f"Follow score of a static examinee (keeps the {timeline.members[0].code} model): {figures['static_follow']:.3f}"
    )
    results += [
        (
            f"every century within cosine {MIN_TARGET_COSINE} of its target",
            min(figures["target_cosine"]) >= MIN_TARGET_COSINE,
        ),
        (
            f"elicitation split within cosine {MIN_SPLIT_COSINE}",
            min(figures["split_cosine"]) >= MIN_SPLIT_COSINE,
        ),
        (f"time structure >= {MIN_TIME_STRUCTURE}", figures["time_structure"] >= MIN_TIME_STRUCTURE),
        (f"static Follow <= {MAX_STATIC_FOLLOW}", figures["static_follow"] <= MAX_STATIC_FOLLOW),
    ]

    print("\nvotes on the elicitation preference items:")
    print(describe_flips("  implied by the targets", vote_flips(target_votes(targets))))
    elicited = vote_flips(elicited_votes([timeline.model(m.century) for m in timeline.members]))
    print(describe_flips("  elicited from the models (likelihood)", elicited))
    timing = _rebuild(manifest) if rebuild else []
    return _report(results, timing if strict_time else [], timing)


def _report(
    results: list[tuple[str, bool]],
    enforced_timing: list[tuple[str, bool]] | None = None,
    timing: list[tuple[str, bool]] | None = None,
) -> int:
    print()
    for label, ok in results + (timing or []):
        print(f"[{'pass' if ok else 'FAIL'}] {label}")
    enforced = results + (enforced_timing or [])
    return 0 if all(ok for _, ok in enforced) else 1
