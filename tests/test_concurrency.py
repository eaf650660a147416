"""Runs and cells at the same time: run directories never collide and the shared vector cache stays whole."""

import json
import os
import subprocess
import sys
import textwrap
import threading
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np
import pg_testkit
import pytest

from progressgym import run as run_cli
from progressgym._paths import cache_dir, claim_new_dir
from progressgym.evaluation import cache
from progressgym.log import read_result

# ------------------------------------------------------------------------------------- run directories


def test_claimed_directories_are_distinct_under_a_race(tmp_path):
    base = tmp_path / "runs" / "Follow-v0_static_seed0_20250101-000000"
    claimed: list[Path] = []
    start = threading.Barrier(12)

    def claim():
        start.wait()
        claimed.append(claim_new_dir(base))

    threads = [threading.Thread(target=claim) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(claimed)) == 12 and all(path.is_dir() for path in claimed)
    assert sorted(p.name for p in claimed) == sorted([base.name] + [f"{base.name}-{n}" for n in range(2, 13)])


def test_two_default_run_directories_in_the_same_second_differ(tmp_path, monkeypatch):
    class FrozenClock(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2025, 1, 1, 12, 0, 0)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run_cli, "datetime", FrozenClock)
    first = run_cli._default_out("Follow-v0", "static", 0)
    second = run_cli._default_out("Follow-v0", "static", 0)
    assert first == Path("runs/Follow-v0_static_seed0_20250101-120000")
    assert second == Path("runs/Follow-v0_static_seed0_20250101-120000-2")
    assert first.is_dir() and second.is_dir()  # claimed when named, so a third run cannot take them


# ---------------------------------------------------------------------------------------- vector cache

_WRITER = textwrap.dedent(
    """
    import sys
    from progressgym.evaluation import cache
    key, writer, vector = sys.argv[1], sys.argv[2], float(sys.argv[3])
    for n in range(100):
        payload = {"vector": [vector] * 19, "usage": {"writer": writer, "n": n}, "pad": "x" * 100_000}
        cache.store_entry(key, {"writer": writer}, payload)
    """
)


def test_concurrent_writers_of_one_key_leave_the_first_complete_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("PROGRESSGYM_CACHE", str(tmp_path / "cache"))
    key = "c" * 24
    env = {**os.environ, "PROGRESSGYM_CACHE": str(tmp_path / "cache")}
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, key, name, "0.25"], env=env) for name in ("a", "b")
    ]
    path = cache.entry_path(key)
    first: bytes | None = None
    reads = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a torn read would warn
        while any(w.poll() is None for w in writers):
            entry = cache.load_entry(key)
            if entry is None:
                continue
            data = path.read_bytes()
            first = first or data
            assert data == first  # a writer with the same vector leaves the entry alone
            assert entry["vector"] == [0.25] * 19
            reads += 1
    assert all(w.returncode == 0 for w in writers)
    assert path.read_bytes() == first and json.loads(first)["evaluation"]["usage"]["n"] == 0
    assert [p.name for p in cache.vectors_dir().iterdir()] == [path.name]  # no temporary files left

    # An entry with another vector (or a damaged one) is replaced.
    changed = subprocess.run([sys.executable, "-c", _WRITER, key, "c", "0.5"], env=env, check=True)
    assert changed.returncode == 0 and cache.load_entry(key)["vector"] == [0.5] * 19
    path.write_text("{torn")
    cache.store_entry(key, {}, {"vector": [0.75] * 19})
    assert cache.load_entry(key)["vector"] == [0.75] * 19


# ------------------------------------------------------------------------------- two runs at the same time


@pytest.fixture(scope="module")
def mini_timelines():
    """The folder of timelines in the user's cache, with the shipped ``mini`` set copied into it (seconds)."""
    from progressgym.timeline import built_timeline_dir, get_timeline

    built_timeline_dir(get_timeline("mini"))
    return cache_dir() / "timelines"


@pytest.mark.slow
def test_two_runs_started_at_once_finish_apart_and_share_a_sound_cache(mini_timelines, tmp_path):
    shared = tmp_path / "cache"  # no vectors yet: both runs compute and store the same entries at once
    shared.mkdir()
    (shared / "timelines").symlink_to(mini_timelines, target_is_directory=True)
    bank = pg_testkit.write_test_bank(tmp_path / "small.jsonl")
    work = tmp_path / "work"
    work.mkdir()
    command = [
        sys.executable,
        "-m",
        "progressgym.run",
        "--challenge",
        "follow",
        "--algorithm",
        "static",
        "--bank",
        str(bank),
        "--eval-format",
        "label",
        "--device",
        "cpu",
        "--no-progress",
    ]
    env = {**os.environ, "PROGRESSGYM_CACHE": str(shared)}
    runs = [
        subprocess.Popen(
            command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=900) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in outputs]

    folders = sorted((work / "runs").iterdir())
    assert len(folders) == 2 and all(f.name.startswith("Follow-v0_static_seed0_") for f in folders)
    printed = sorted(out.strip().splitlines()[-1].removeprefix("run directory: ") for out, _ in outputs)
    assert printed == [str(f.relative_to(work)) for f in folders]
    results = [read_result(f / "result.json") for f in folders]
    assert results[0].outcome() == results[1].outcome()

    # Every entry is a complete file; no temporary file is left behind.
    files = sorted((shared / "vectors").iterdir())
    assert files and all(not f.name.startswith(".") for f in files)
    vectors = {}
    for file in files:
        entry = json.loads(file.read_text())
        assert entry["key"] == file.stem
        vectors[file.stem] = entry["evaluation"]["vector"]
    recorded = {tuple(v) for v in results[0].truth_vectors.values()}
    recorded |= {tuple(s.examinee_vector) for s in results[0].steps}
    assert {tuple(v) for v in vectors.values()} == recorded  # the vectors both runs used, and only those

    # A second reader, in another process, gets the same vectors.
    reader = (
        "import json, sys\nfrom progressgym.evaluation import cache\n"
        "print(json.dumps({k: cache.load_entry(k)['vector'] for k in sys.argv[1:]}))"
    )
    again = subprocess.run(
        [sys.executable, "-W", "error", "-c", reader, *vectors],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(again.stdout) == vectors
    assert all(np.isfinite(v).all() for v in vectors.values())
