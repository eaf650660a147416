"""How far the shipped mini reference vectors move when the same weights are evaluated another way.

The shipped reference vectors were computed once, in float32, on one CPU. Another machine evaluating the same
weights rounds differently in the last bits (other SIMD widths, thread counts, batch shapes). This script
evaluates every century model of the shipped ``mini`` timeline, on the evaluation split, in the challenges'
settings, several ways in one run, and prints the largest difference of each from the shipped vectors:

* float32 with 1 and with 2 threads (what the reference used is recorded in its manifest);
* float32 with batch size 1 and 64 (other padding, other reduction order);
* float64 (the exact value the float32 figures round);
* bfloat16 (a precision no reference should be checked in; shown for scale).

The validator's tolerance (``progressgym.timeline._artifacts.REFERENCE_TOLERANCE``) is set well above the
float32/float64 figures and well below the bfloat16 one.

    python benchmarks/bench_reference_drift.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    import torch

    from progressgym.backends import make_backend
    from progressgym.backends.base import BackendOptions
    from progressgym.evaluation.banks import load_bank
    from progressgym.evaluation.evaluator import evaluate_with_backend
    from progressgym.timeline import artifact_dir, get_timeline, load_manifest
    from progressgym.timeline._artifacts import REFERENCE_TOLERANCE

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--centuries", type=int, default=9, help="evaluate the first N centuries (default 9)")
    args = parser.parse_args()

    timeline = get_timeline("mini")
    manifest = load_manifest(artifact_dir(timeline))
    (shipped,) = [r for r in manifest["references"] if r["split"] == "evaluation"]
    bank = load_bank("core", split="evaluation")
    ways = [
        ("float32, 1 thread", "float32", 1, 16),
        ("float32, 2 threads", "float32", 2, 16),
        ("float32, batch 1", "float32", 1, 1),
        ("float32, batch 64", "float32", 1, 64),
        ("float64", "float64", 1, 16),
        ("bfloat16", "bfloat16", 1, 16),
    ]
    print(f"reference: {manifest['made_with']}; tolerance {REFERENCE_TOLERANCE:g}")
    print(f"{'evaluated as':<22} {'max |diff|':>12} {'mean |diff|':>12} {'seconds':>8}")
    for label, dtype, threads, batch in ways:
        torch.set_num_threads(threads)
        diffs = []
        start = time.perf_counter()
        for member in timeline.members[: args.centuries]:
            ref = timeline.model(member.century)
            options = BackendOptions(device="cpu", dtype=dtype, batch_size=batch)
            with make_backend("hf", ref.path, options) as engine:
                vector = evaluate_with_backend(engine, bank, mode="logprob", progress=False).vector
            diffs.append(np.abs(vector - np.asarray(shipped["evaluations"][member.code]["vector"])))
        every = np.concatenate(diffs)
        print(f"{label:<22} {every.max():>12.2e} {every.mean():>12.2e} {time.perf_counter() - start:>8.1f}")


if __name__ == "__main__":
    main()
