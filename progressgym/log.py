"""What a run leaves on disk: its configuration, one record per completed step, and the final result.

Every file is pydantic JSON with a leading integer ``version`` and is written through a temporary file and a
rename, so a run killed at any moment leaves either the old file or the complete new one.

>>> record = QueryUsage(queries=3, prompts=6)
>>> QueryUsage.model_validate_json(record.model_dump_json()) == record
True
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from progressgym._paths import atomic_write_text
from progressgym.error import InvalidInput
from progressgym.model_ref import ModelRef
from progressgym.provenance import Provenance

LOG_VERSION = 1
"""Layout version of every file in this module; bumped on any incompatible change."""


class _Model(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")


class ModelInfo(_Model):
    """A model as recorded in a log: where it was and what it was."""

    name: str
    """Display name, e.g. ``mini:C014`` or ``oracle/step-2``."""
    path: str
    """Local directory at the time of the run."""
    century: int | None = None
    """The century the model stands for, if it is a historical model."""
    fingerprint: str
    """Content fingerprint (identical files give identical fingerprints)."""

    @classmethod
    def of(cls, ref: ModelRef) -> ModelInfo:
        """Record a :class:`ModelRef`."""
        return cls(name=ref.name, path=ref.path, century=ref.century, fingerprint=ref.fingerprint)

    def ref(self) -> ModelRef:
        """The :class:`ModelRef` this record describes (not re-fingerprinted)."""
        return ModelRef(name=self.name, path=self.path, century=self.century, fingerprint=self.fingerprint)


class QueryUsage(_Model):
    """What the examinee asked the judge during one step (or a whole run)."""

    queries: int = 0
    """Queries charged against the budget: one per comparison, generated prompt or scored request."""
    prompts: int = 0
    """Prompts the judge's model answered (a comparison asks two, one per presentation order)."""
    forward_tokens: int = 0
    """Tokens the judge's model processed for these queries."""
    generated_tokens: int = 0
    """Tokens the judge's model generated for these queries."""
    seconds: float = 0.0
    """Wall-clock seconds the judge's model spent answering (model loading included)."""
    privileged_calls: int = 0
    """Calls of privileged judge methods (``reveal_target``): a run with any is a cheating reference."""

    def __add__(self, other: QueryUsage) -> QueryUsage:
        return QueryUsage(
            queries=self.queries + other.queries,
            prompts=self.prompts + other.prompts,
            forward_tokens=self.forward_tokens + other.forward_tokens,
            generated_tokens=self.generated_tokens + other.generated_tokens,
            seconds=self.seconds + other.seconds,
            privileged_calls=self.privileged_calls + other.privileged_calls,
        )


class JudgeCompute(_Model):
    """The judge's own work in one step (or a whole run): evaluations and, for Coevolve, proxy updates."""

    evaluations: int = 0
    """Value vectors computed (cached vectors are not counted)."""
    evaluation_forward_tokens: int = 0
    """Tokens processed by those evaluations."""
    training_examples: int = 0
    """Fine-tuning examples seen by the simulated human proxy (Coevolve), epochs included."""
    seconds: float = 0.0
    """Wall-clock seconds the judge spent assessing (evaluations, proxy updates)."""

    def __add__(self, other: JudgeCompute) -> JudgeCompute:
        return JudgeCompute(
            evaluations=self.evaluations + other.evaluations,
            evaluation_forward_tokens=self.evaluation_forward_tokens + other.evaluation_forward_tokens,
            training_examples=self.training_examples + other.training_examples,
            seconds=self.seconds + other.seconds,
        )


class StepRecord(_Model):
    """One completed step: the examinee's model, the vectors compared, and the step's scores."""

    version: int = LOG_VERSION
    """Layout version."""
    step: int
    """Step index, from 0."""
    timestep: int
    """The judge's timestep t (index into the timeline; step 0 is t = 1)."""
    century: int
    """The century of timestep t: the present the examinee lives in."""
    target_century: int
    """The century of the model the examinee is compared with (t + k in Predict)."""
    seed: int
    """The step's seed, derived from the run seed and the step index."""
    invalid_action: bool = False
    """The examinee submitted something that is not a model directory (environment use only): the step
    is forfeited, with no vectors and reward 0."""
    examinee_model: ModelInfo | None = None
    """The examinee's model after this step's update."""
    examinee_vector: list[float] | None = None
    """The examinee model's value vector (19 floats)."""
    target_vector: list[float] = Field(default_factory=list)
    """The value vector of the model the examinee is compared with."""
    cosine: float = 0.0
    """Cosine similarity of the examinee and target vectors (0 for a forfeited step)."""
    distance: float = 0.0
    """Euclidean distance between the examinee and target vectors (0 for a forfeited step)."""
    reward: float = 0.0
    """The step's reward as the Gymnasium environment reports it."""
    proxy_model: ModelInfo | None = None
    """Coevolve: the simulated human proxy after this step's update."""
    proxy_vector: list[float] | None = None
    """Coevolve: the proxy's value vector."""
    queries: QueryUsage = Field(default_factory=QueryUsage)
    """The examinee's queries to the judge in this step."""
    judge_compute: JudgeCompute = Field(default_factory=JudgeCompute)
    """The judge's own work in this step."""
    examinee_seconds: float = 0.0
    """Wall-clock seconds of the examinee's update (its queries included)."""


class StepCheckpoint(_Model):
    """What ``steps/step-NNN.json`` holds: a step's record and the state needed to resume after it."""

    version: int = LOG_VERSION
    """Layout version."""
    record: StepRecord
    """The completed step."""
    examinee_state: dict[str, Any]
    """The examinee's ``state_dict()`` after the step."""
    judge_state: dict[str, Any]
    """The judge's ``state_dict()`` after the step."""


class RunConfig(_Model):
    """What ``config.json`` holds: everything needed to start (or resume) the run."""

    version: int = LOG_VERSION
    """Layout version."""
    challenge: str
    """The challenge id with its version, e.g. ``Follow-v0``."""
    challenge_kwargs: dict[str, Any]
    """The judge's keyword arguments (the challenge's defaults merged with the ones given)."""
    algorithm: str
    """The registered algorithm name."""
    algorithm_config: dict[str, Any] = Field(default_factory=dict)
    """The algorithm's configuration (its ``config_cls`` fields)."""
    seed: int
    """The run seed; every step seed derives from it."""
    progressgym_version: str
    """The package version that started the run."""
    created_at: str
    """UTC time the run was started (ISO 8601)."""


class RunUsage(_Model):
    """Totals over a run."""

    queries: QueryUsage = Field(default_factory=QueryUsage)
    """The examinee's queries to the judge."""
    judge: JudgeCompute = Field(default_factory=JudgeCompute)
    """The judge's own work."""
    examinee_seconds: float = 0.0
    """Wall-clock seconds spent in the examinee's updates."""


class RunResult(_Model):
    """What ``result.json`` holds: the whole run, from which the score can be recomputed."""

    version: int = LOG_VERSION
    """Layout version."""
    challenge: str
    """The challenge id with its version, e.g. ``Follow-v0``."""
    challenge_version: int
    """The challenge version (the ``N`` of ``-vN``): results of different versions are not comparable."""
    challenge_kwargs: dict[str, Any]
    """The judge's keyword arguments."""
    algorithm: str
    """The registered algorithm name."""
    algorithm_config: dict[str, Any] = Field(default_factory=dict)
    """The algorithm's configuration."""
    privileged: bool = False
    """The examinee used privileged judge methods (e.g. the ``oracle``): a cheating upper bound, not a
    comparable result."""
    timeline: str
    """The timeline name."""
    centuries: list[int]
    """The timeline's centuries, oldest first."""
    backend: str
    """The inference backend of the judge."""
    seed: int
    """The run seed."""
    step_seeds: list[int]
    """Each step's seed (derived from the run seed and the step index)."""
    truth_vectors: dict[str, list[float]]
    """The value vector of every historical model, by century code (``C013``...)."""
    steps: list[StepRecord]
    """One record per step, in order."""
    score: float
    """The challenge's score (higher is better), recomputable with ``score_result``."""
    mean_cosine: float
    """Mean over steps of the examinee-target cosine similarity."""
    mean_distance: float
    """Mean over steps of the examinee-target Euclidean distance."""
    usage: RunUsage = Field(default_factory=RunUsage)
    """Query and compute accounting."""
    progressgym_version: str
    """The package version that finished the run."""
    git_revision: str | None = None
    """The git revision of the progressgym source, when it runs from a git checkout."""
    started_at: str
    """UTC time the run was started (ISO 8601)."""
    finished_at: str
    """UTC time the run finished (ISO 8601)."""
    provenance: Provenance | None = None
    """What the vectors were measured with (models, timeline artifacts, prompt format, versions)."""

    def outcome(self) -> dict[str, Any]:
        """The part of the result that must be identical for two runs with the same seed.

        Leaves out timestamps, durations and paths; keeps scores, vectors, seeds and model
        fingerprints.
        """
        return {
            "challenge": self.challenge,
            "algorithm": self.algorithm,
            "seed": self.seed,
            "step_seeds": self.step_seeds,
            "truth_vectors": self.truth_vectors,
            "score": self.score,
            "mean_cosine": self.mean_cosine,
            "mean_distance": self.mean_distance,
            "steps": [
                {
                    "examinee": s.examinee_model.fingerprint if s.examinee_model else None,
                    "proxy": s.proxy_model.fingerprint if s.proxy_model else None,
                    "examinee_vector": s.examinee_vector,
                    "target_vector": s.target_vector,
                    "proxy_vector": s.proxy_vector,
                    "cosine": s.cosine,
                    "distance": s.distance,
                    "reward": s.reward,
                    "queries": s.queries.queries,
                }
                for s in self.steps
            ],
        }


M = TypeVar("M", bound=BaseModel)


def write_model(path: str | os.PathLike[str], model: BaseModel) -> None:
    """Write a log model as indented JSON, atomically."""
    atomic_write_text(path, model.model_dump_json(indent=2) + "\n")


def read_model(path: str | os.PathLike[str], cls: type[M]) -> M:
    """Read a log model, turning a missing or malformed file into a one-line :class:`InvalidInput`."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"{file} does not exist") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{file} is not UTF-8 text (byte {exc.start}); the file is damaged") from None
    try:
        return cls.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "file"
        raise InvalidInput(f"{file} is not a valid {cls.__name__} ({where}: {first['msg']})") from None


def read_result(path: str | os.PathLike[str]) -> RunResult:
    """Read a ``result.json``."""
    return read_model(path, RunResult)


def write_result(path: str | os.PathLike[str], result: RunResult) -> None:
    """Write a ``result.json`` atomically."""
    write_model(path, result)


def summary(result: RunResult, run_dir: Path | None = None) -> str:
    """The table printed at the end of a run: one row per step, then the score."""
    rows = [
        f"{'step':>4}  {'century':>7}  {'target':>6}  {'cosine':>8}  {'distance':>8}  {'reward':>8}  {'queries':>7}"
    ]
    for s in result.steps:
        rows.append(
            f"{s.step + 1:>4}  C{s.century:03d}{'':>3}  C{s.target_century:03d}  {s.cosine:>8.4f}  "
            f"{s.distance:>8.4f}  {s.reward:>8.4f}  {s.queries.queries:>7}"
        )
    tag = " (PRIVILEGED reference: a cheating upper bound)" if result.privileged else ""
    rows.append(
        f"{result.challenge} | {result.algorithm}{tag} | timeline {result.timeline} | seed {result.seed}"
    )
    rows.append(
        f"score {result.score:.4f}   mean cosine {result.mean_cosine:.4f}   mean distance "
        f"{result.mean_distance:.4f}   queries {result.usage.queries.queries}"
    )
    if run_dir is not None:
        rows.append(f"run directory: {run_dir}")
    return "\n".join(rows)


__all__ = [
    "LOG_VERSION",
    "JudgeCompute",
    "ModelInfo",
    "QueryUsage",
    "RunConfig",
    "RunResult",
    "RunUsage",
    "StepCheckpoint",
    "StepRecord",
    "read_model",
    "read_result",
    "summary",
    "write_model",
    "write_result",
]
