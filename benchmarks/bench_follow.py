"""The README's run command on the mini timeline, cold (empty cache) then warm (the same cache), in one run.

Each run is ``python -m progressgym.run --challenge follow --algorithm A`` in its own process (``A``:
``lifelong-dpo``, the README's default). For each it prints the wall time, the peak memory of that process
(with its children), the value vectors the judge computed and those it found cached or shipped, the
examinee's judge queries, and the forward tokens (evaluations plus queries).

The cold run starts from an empty cache folder (``PROGRESSGYM_CACHE`` pointing to a temporary folder): the
shipped mini files are checked and copied in, the century models' vectors come from the shipped references,
and every examinee model is evaluated. The warm run repeats the command on the same cache: the examinee is
trained again (training is never cached) and its models, identical by seed, find their vectors cached.

    python benchmarks/bench_follow.py                         # the README's run command
    python benchmarks/bench_follow.py --algorithm static      # no training: the judge's own cost
    python benchmarks/bench_follow.py --algorithm oracle -- --eval-format label   # extra run flags after --
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from progressgym.log import read_result

# Runs one command and prints the peak resident memory (KiB) of the processes it waited for.
_MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def run_once(name: str, cache: Path, out: Path, algorithm: str, extra: list[str]) -> dict[str, object]:
    command = [
        sys.executable,
        "-m",
        "progressgym.run",
        "--challenge",
        "follow",
        "--algorithm",
        algorithm,
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]
    env = {**os.environ, "PROGRESSGYM_CACHE": str(cache)}
    before = set((cache / "vectors").glob("*.json")) if (cache / "vectors").is_dir() else set()
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command], env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{name} run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    result = read_result(out / "result.json")
    # The judge asks for one vector per distinct model: the century models plus the examinee's models that
    # are not among them (a static examinee keeps the first century model). A vector identifies its model.
    wanted = {tuple(v) for v in result.truth_vectors.values()}
    wanted |= {tuple(s.examinee_vector) for s in result.steps if s.examinee_vector is not None}
    computed = result.usage.judge.evaluations
    return {
        "run": name,
        "seconds": seconds,
        "peak_mib": peak_kib / 1024,
        "computed": computed,
        "cached": len(wanted) - computed,
        "written": len(set((cache / "vectors").glob("*.json")) - before),
        "queries": result.usage.queries.queries,
        "forward_tokens": result.usage.judge.evaluation_forward_tokens + result.usage.queries.forward_tokens,
        "score": result.score,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algorithm", default="lifelong-dpo", help="the examinee (default: lifelong-dpo)")
    parser.add_argument("extra", nargs="*", help="flags passed on to progressgym.run (after --)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-follow-") as tmp:
        cache = Path(tmp) / "cache"
        cache.mkdir()
        rows = []
        for name in ("cold", "warm"):
            print(f"{name} run ...", flush=True)
            row = run_once(name, cache, Path(tmp) / f"run-{name}", args.algorithm, args.extra)
            print(f"{name}: {row['seconds']:.1f} s", flush=True)
            rows.append(row)

    cold_label = "cold (empty cache)"
    print()
    print(f"Follow-v0 | {args.algorithm} | mini | extra flags: {' '.join(args.extra) or '(none)'}")
    print(
        f"{'run':<26} {'wall s':>8} {'peak MiB':>9} {'computed':>9} {'cached':>7} {'written':>8} {'queries':>8} "
        f"{'forward tokens':>15} {'score':>7}"
    )
    for row in rows:
        label = cold_label if row["run"] == "cold" else "warm (same cache)"
        print(
            f"{label:<26} {row['seconds']:>8.1f} {row['peak_mib']:>9.0f} {row['computed']:>9} "
            f"{row['cached']:>7} {row['written']:>8} {row['queries']:>8} {row['forward_tokens']:>15,} "
            f"{row['score']:>7.4f}"
        )
    cold, warm = rows
    print(
        f"warm/cold wall time {warm['seconds'] / cold['seconds']:.3f}x (warm is {cold['seconds'] / warm['seconds']:.0f}x faster)"
    )
    if cold["score"] != warm["score"]:
        print("warning: the two runs scored differently")


if __name__ == "__main__":
    main()
