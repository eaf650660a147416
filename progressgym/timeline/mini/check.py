"""``python -m progressgym.timeline check mini``: measure the mini timeline against its design.

Prints, from one command:

* each century's measured vector (evaluation split) against its target (cosine >= 0.9 required);
* the structure of time: mean cosine of adjacent centuries minus cos(C013, C021) (>= 0.3 required);
* the agreement of the elicitation split with the evaluation split (cosine >= 0.8 per century);
* the Follow score of a static examinee that keeps the C013 model (<= 0.6 required);
* a build from nothing in a fresh cache (<= 3 minutes and <= 3 GB peak memory) and whether it is
  byte-identical to the cached build (a second build with the same seed).
"""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

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


def weights_hash(directory: Path) -> str:
    """SHA-256 over every century's weight file, in century order."""
    digest = hashlib.sha256()
    for weights in sorted(directory.glob("C0*/model.safetensors")):
        digest.update(weights.parent.name.encode())
        digest.update(weights.read_bytes())
    return digest.hexdigest()


def _fresh_build() -> tuple[float, float, str]:
    """Build in a throw-away cache, in a child process; returns (seconds, peak GB, weights hash)."""
    with tempfile.TemporaryDirectory(prefix="progressgym-mini-check-") as scratch:
        env = {**os.environ, "PROGRESSGYM_CACHE": scratch}
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "progressgym.timeline", "build", "mini"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        seconds = time.perf_counter() - start
        peak_kb = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)
        # The build lands in <cache>/timelines/mini-<recipe version>; there is exactly one in a fresh cache.
        (built,) = (Path(scratch) / "timelines").glob("mini-*/")
        return seconds, peak_kb / 1024 / 1024, weights_hash(built)


def check_mini(timeline: Timeline, *, fresh_build: bool = True, strict_time: bool = False) -> int:
    """Run every check of the mini timeline and print the figures.

    Args:
        timeline: The ``mini`` timeline.
        fresh_build: Also time a build from nothing (in a temporary cache) and compare its weights.
        strict_time: Count the build's time and memory limits in the exit status. Off by default: wall time
            depends on the machine and its load, so it is reported rather than enforced.

    Returns:
        0 when every enforced requirement holds, 1 otherwise.
    """
    from progressgym.evaluation import evaluate
    from progressgym.timeline import built_timeline_dir
    from progressgym.timeline.mini.targets import target_vectors

    results: list[tuple[str, bool]] = []
    timing: list[tuple[str, bool]] = []
    if fresh_build:
        seconds, peak_gb, fresh_hash = _fresh_build()
        print(
            f"build from nothing: {seconds:.1f} s wall, {peak_gb:.2f} GB peak memory, weights sha256 {fresh_hash[:16]}"
        )
        timing.append((f"build <= {MAX_BUILD_SECONDS:.0f} s wall", seconds <= MAX_BUILD_SECONDS))
        timing.append((f"build <= {MAX_BUILD_GB:.0f} GB peak memory", peak_gb <= MAX_BUILD_GB))
    cached = built_timeline_dir(timeline)
    cached_hash = weights_hash(cached)
    print(f"cached build: {cached}, weights sha256 {cached_hash[:16]}")
    if fresh_build:
        identical = cached_hash == fresh_hash
        print(f"second build byte-identical: {'yes' if identical else 'NO'}")
        results.append(("byte-identical rebuild", identical))

    targets = target_vectors(timeline.centuries)
    measured, elicited = [], []
    for member in timeline.members:
        ref = timeline.model(member.century)
        measured.append(evaluate(ref, split="evaluation", progress=False).vector)
        elicited.append(evaluate(ref, split="elicitation", progress=False).vector)

    print(f"\n{'century':<8} {'cos(measured, target)':>22} {'cos(elicitation, evaluation)':>29}")
    target_cos = [cosine(m, t) for m, t in zip(measured, targets, strict=False)]
    split_cos = [cosine(e, m) for e, m in zip(elicited, measured, strict=False)]
    for member, tc, sc in zip(timeline.members, target_cos, split_cos, strict=False):
        print(f"{member.code:<8} {tc:>22.3f} {sc:>29.3f}")
    results.append(
        (
            f"every century within cosine {MIN_TARGET_COSINE} of its target",
            min(target_cos) >= MIN_TARGET_COSINE,
        )
    )
    results.append(
        (f"elicitation split within cosine {MIN_SPLIT_COSINE}", min(split_cos) >= MIN_SPLIT_COSINE)
    )

    adjacent = float(np.mean([cosine(a, b) for a, b in zip(measured, measured[1:], strict=False)]))
    ends = cosine(measured[0], measured[-1])
    print(
        f"\nmean cosine of adjacent centuries {adjacent:.3f}; cos(first, last) {ends:.3f}; difference {adjacent - ends:.3f}"
    )
    results.append((f"time structure >= {MIN_TIME_STRUCTURE}", adjacent - ends >= MIN_TIME_STRUCTURE))

    static = float(np.mean([cosine(measured[0], m) for m in measured[1:]]))
    print(f"Follow score of a static examinee (keeps the {timeline.members[0].code} model): {static:.3f}")
    results.append((f"static Follow <= {MAX_STATIC_FOLLOW}", static <= MAX_STATIC_FOLLOW))

    print()
    for label, ok in results + timing:
        print(f"[{'pass' if ok else 'FAIL'}] {label}")
    enforced = results + (timing if strict_time else [])
    return 0 if all(ok for _, ok in enforced) else 1
