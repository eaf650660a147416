"""``regenerate``: the leaderboard's own submissions, from runs of the built-in algorithms on the mini timeline.

Each run is exactly what a user gets from ``python -m progressgym.run --challenge C --algorithm A --seed S``
(it is started that way, in a subprocess); its ``submission.json`` is copied to
``leaderboard/submissions/<challenge>_<algorithm>_seed<S>.json`` and the site is rebuilt into
``leaderboard/site/``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from progressgym.error import InvalidInput

TIMELINE = "mini"


def builtin_challenges() -> list[str]:
    """The ids of the challenges progressgym itself registers."""
    from progressgym.registration import list_challenges

    return [
        s.id
        for s in list_challenges()
        if isinstance(s.entry_point, str) and s.entry_point.startswith("progressgym.judges.")
    ]


def challenge_ids(names: Sequence[str]) -> list[str]:
    """The registered ids of challenges given by id or name (``follow`` -> ``Follow-v0``).

    Run directories and submission files are named by the id, so ``follow`` and ``Follow-v0`` reuse (and
    replace) the same files.

    Raises:
        UnknownName: for a name no challenge has.
    """
    from progressgym.registration import challenge_spec

    return [challenge_spec(name).id for name in names]


def builtin_algorithms() -> list[str]:
    """The names of progressgym's own algorithms."""
    from progressgym.algorithms import ALGORITHMS

    return list(ALGORITHMS)


def submission_name(challenge: str, algorithm: str, seed: int) -> str:
    """The file name of a regenerated submission."""
    return f"{challenge.lower()}_{algorithm}_seed{seed}.json"


def _run(challenge: str, algorithm: str, seed: int, run_dir: Path) -> None:
    if (run_dir / "result.json").is_file():
        return
    command = [sys.executable, "-m", "progressgym.run", "--no-progress"]
    if (run_dir / "config.json").is_file():
        command += ["--resume", str(run_dir)]
    else:
        command += ["--challenge", challenge, "--algorithm", algorithm, "--seed", str(seed)]
        command += ["--timeline", TIMELINE, "--out", str(run_dir)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise InvalidInput(
            f"{challenge} / {algorithm} failed ({' '.join(command[1:])}): {lines[-1] if lines else 'no output'}"
        )


def regenerate(
    folder: Path,
    *,
    seed: int = 0,
    work: Path | None = None,
    challenges: Sequence[str] | None = None,
    algorithms: Sequence[str] | None = None,
) -> list[Path]:
    """Run every built-in algorithm through every built-in challenge, write the submissions, build the site.

    Args:
        folder: The leaderboard folder (``submissions/`` and ``site/`` are written in it).
        seed: The run seed.
        work: Where run directories are kept (runs already finished there are reused); default: a temporary
            folder, removed at the end.
        challenges: Only these challenge ids.
        algorithms: Only these algorithms.

    Returns:
        The submission files written.
    """
    from progressgym.leaderboard.site import build_site
    from progressgym.leaderboard.submission import write_submission

    chosen_challenges = challenge_ids(challenges) if challenges else builtin_challenges()
    chosen_algorithms = list(algorithms or builtin_algorithms())
    scratch = Path(tempfile.mkdtemp(prefix="progressgym-leaderboard-")) if work is None else work
    written: list[Path] = []
    try:
        for challenge in chosen_challenges:
            for algorithm in chosen_algorithms:
                run_dir = scratch / f"{challenge}_{algorithm}_seed{seed}"
                started = time.perf_counter()
                print(f"{challenge} / {algorithm}: running ...", flush=True)
                _run(challenge, algorithm, seed, run_dir)
                source = write_submission(run_dir)
                target = folder / "submissions" / submission_name(challenge, algorithm, seed)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
                written.append(target)
                print(
                    f"{challenge} / {algorithm}: {target} ({time.perf_counter() - started:.0f} s)", flush=True
                )
    finally:
        if work is None:
            shutil.rmtree(scratch, ignore_errors=True)
    result = build_site(folder / "submissions", folder / "site")
    print(f"wrote {result.out_dir}/index.html: {len(result.entries)} submissions")
    return written


__all__ = ["builtin_algorithms", "builtin_challenges", "challenge_ids", "regenerate", "submission_name"]
