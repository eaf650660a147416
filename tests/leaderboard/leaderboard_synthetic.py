"""Synthetic but valid RunResults for the leaderboard tests: real scoring, made-up value vectors, no models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from progressgym.evaluation.dimensions import N_DIMS
from progressgym.judges._common import cosine, distance, suffix_max_similarity
from progressgym.leaderboard.submission import Submission, submission_from_result, submission_json
from progressgym.log import JudgeCompute, ModelInfo, QueryUsage, RunResult, RunUsage, StepRecord
from progressgym.registration import challenge_spec
from progressgym.timeline import century_code

CENTURIES = list(range(13, 22))


def truth_vectors(seed: int = 7) -> dict[str, list[float]]:
    """Nine historical vectors drifting smoothly through value space."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(-0.6, 0.6, N_DIMS)
    drift = rng.normal(0.0, 0.09, N_DIMS)
    wobble = rng.normal(0.0, 0.03, (len(CENTURIES), N_DIMS))
    vectors = {}
    for i, c in enumerate(CENTURIES):
        v = np.clip(start + drift * i + wobble[i], -1.0, 1.0)
        vectors[century_code(c)] = [float(x) for x in v]
    return vectors


def _examinee(kind: str, truth: np.ndarray, target: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "static":
        return truth[0]
    if kind == "lag":
        return truth[target - 1]
    if kind == "noisy":
        return np.clip(truth[target] + rng.normal(0.0, 0.12, N_DIMS), -1, 1)
    if kind == "close":
        return np.clip(truth[target] + rng.normal(0.0, 0.03, N_DIMS), -1, 1)
    if kind == "exact":
        return truth[target]
    raise ValueError(kind)


def run_result(
    challenge: str = "Follow-v0",
    algorithm: str = "tracker",
    kind: str = "close",
    *,
    seed: int = 0,
    timesteps_ahead: int = 1,
    privileged: bool = False,
    queries_per_step: int = 12,
    finished_at: str = "2025-03-01T12:00:00+00:00",
    algorithm_config: dict[str, Any] | None = None,
) -> RunResult:
    """A RunResult whose vectors are synthetic and whose scores are computed like a real run's."""
    spec = challenge_spec(challenge)
    rng = np.random.default_rng(seed + 1000)
    truth_map = truth_vectors()
    truth = np.array([truth_map[century_code(c)] for c in CENTURIES])
    ahead = timesteps_ahead if spec.name == "Predict" else 0
    steps: list[StepRecord] = []
    for step in range(len(CENTURIES) - 1 - ahead):
        t = step + 1
        target = t + ahead
        examinee = _examinee(kind, truth, target, rng)
        record = StepRecord(
            step=step,
            timestep=t,
            century=CENTURIES[t],
            target_century=CENTURIES[target],
            seed=1000 + step,
            examinee_model=ModelInfo(
                name=f"{algorithm}/step-{step}", path="/nowhere", fingerprint=f"{step:016x}"
            ),
            examinee_vector=[float(x) for x in examinee],
            target_vector=[float(x) for x in truth[target]],
            cosine=cosine(examinee, truth[target]),
            distance=distance(examinee, truth[target]),
            reward=cosine(examinee, truth[target]),
            queries=QueryUsage(
                queries=queries_per_step,
                prompts=2 * queries_per_step,
                seconds=0.5,
                privileged_calls=1 if privileged else 0,
            ),
            judge_compute=JudgeCompute(evaluations=1, evaluation_forward_tokens=5000, seconds=1.5),
            examinee_seconds=2.0 + step,
        )
        if spec.name == "Coevolve":
            proxy = 0.5 * (truth[t] + examinee)
            record = record.model_copy(
                update={
                    "proxy_model": ModelInfo(
                        name=f"proxy:{step}", path="/nowhere", fingerprint=f"{step + 99:016x}"
                    ),
                    "proxy_vector": [float(x) for x in proxy],
                    "reward": suffix_max_similarity(proxy, list(truth)),
                }
            )
        steps.append(record)
    queries = QueryUsage()
    compute = JudgeCompute()
    for s in steps:
        queries = queries + s.queries
        compute = compute + s.judge_compute
    kwargs: dict[str, Any] = {"timeline": "mini", "backend": "hf", "bank": "core", "eval_formats": None}
    if spec.name == "Predict":
        kwargs["timesteps_ahead"] = timesteps_ahead
    return RunResult(
        challenge=spec.id,
        challenge_version=spec.version,
        challenge_kwargs=kwargs,
        algorithm=algorithm,
        algorithm_config=algorithm_config if algorithm_config is not None else {"learning_rate": 1e-4},
        privileged=privileged,
        timeline="mini",
        centuries=CENTURIES,
        backend="hf",
        seed=seed,
        step_seeds=[s.seed for s in steps],
        truth_vectors=truth_map,
        steps=steps,
        score=spec.judge_class().score_result(steps, truth_map),
        mean_cosine=sum(s.cosine for s in steps) / len(steps),
        mean_distance=sum(s.distance for s in steps) / len(steps),
        usage=RunUsage(
            queries=queries, judge=compute, examinee_seconds=sum(s.examinee_seconds for s in steps)
        ),
        progressgym_version="0.1.0",
        git_revision="0123456789abcdef0123456789abcdef01234567",
        started_at="2025-03-01T11:00:00+00:00",
        finished_at=finished_at,
    )


def submission(**kwargs: Any) -> Submission:
    return submission_from_result(run_result(**kwargs))


def raw(sub: Submission) -> dict[str, Any]:
    """The submission as parsed JSON, for tampering."""
    return json.loads(submission_json(sub))


def write(path: Path, data: dict[str, Any] | Submission | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, Submission):
        text = submission_json(data)
    elif isinstance(data, str):
        text = data
    else:
        text = json.dumps(data, indent=2)
    path.write_text(text, encoding="utf-8")
    return path


SCRIPT_NAME = '<script>window.__pwned = 1; alert("x")</script>'
IMG_NOTE = '<img src="x" onerror="window.__pwned = 2"> & "quotes" </script><script>window.__pwned=3</script>'


def sample_set(folder: Path) -> list[Path]:
    """A small leaderboard: three Follow entries (one with a hostile name), an oracle, Predict and Coevolve."""
    subs = {
        "follow-close.json": submission(
            algorithm="lifelong-dpo", kind="close", finished_at="2025-03-02T10:00:00+00:00"
        ),
        "follow-noisy.json": submission(
            algorithm="extrapolative-dpo", kind="noisy", finished_at="2025-03-03T10:00:00+00:00"
        ),
        "follow-static.json": submission(algorithm="static", kind="static", queries_per_step=0),
        "follow-oracle.json": submission(
            algorithm="oracle", kind="exact", privileged=True, queries_per_step=0
        ),
        "follow-script.json": submission_from_result(
            run_result(algorithm=SCRIPT_NAME, kind="lag", queries_per_step=3), notes=IMG_NOTE
        ),
        "predict-close.json": submission(challenge="Predict-v0", algorithm="lifelong-dpo", kind="close"),
        "predict-static.json": submission(challenge="Predict-v0", algorithm="static", kind="static"),
        "coevolve-close.json": submission(challenge="Coevolve-v1", algorithm="lifelong-dpo", kind="close"),
    }
    return [write(folder / name, sub) for name, sub in subs.items()]
