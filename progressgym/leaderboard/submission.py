"""The leaderboard's submission format: everything needed to recompute a run's score, and nothing to execute.

A submission is one JSON file (``submission.json``, written beside ``result.json`` by every run). It holds the
challenge id and version, the timeline, the algorithm's name and configuration, the backend, the seeds, every
step's examinee vector next to the reference (historical) vectors, query and compute accounting, the package
version and git revision, what the vectors were measured with (:class:`~progressgym.provenance.Provenance`:
every century model's fingerprint, the timeline's artifact manifest, dtype, prompt format, bank, library
versions), and the score the run reported, which is there for information only: the leaderboard recomputes the
score from the vectors with the challenge's own ``score_result``.

Version 2 added ``provenance`` (required); version 1 files, which have none, are still read.

Its JSON Schema is generated from :class:`Submission` into ``leaderboard/submission.schema.json``
(``python -m progressgym.leaderboard schema``).

>>> SUBMISSION_VERSION
2
>>> Submission.model_json_schema()["properties"]["version"]["enum"]
[1, 2]
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from progressgym._paths import atomic_write_text
from progressgym.evaluation.dimensions import DIMENSIONS, N_DIMS, VECTOR_VERSION
from progressgym.provenance import Provenance

if TYPE_CHECKING:
    from progressgym.log import JudgeCompute, QueryUsage, RunResult, StepRecord

SUBMISSION_VERSION: Literal[2] = 2
"""Layout version of :class:`Submission` that runs write; bumped on any incompatible change."""

SUBMISSION_FILE = "submission.json"
"""The file name a run writes its submission to."""

MAX_FILE_BYTES = 5 * 1024 * 1024
"""Largest submission file accepted (5 MiB)."""
MAX_STRING_CHARS = 4096
"""Longest string accepted anywhere in a submission (keys included)."""
MAX_STEPS = 64
"""Most steps (and most centuries) a submission may hold."""
MAX_DEPTH = 32
"""Deepest nesting of JSON objects and arrays accepted (configurations are free-form)."""

Vector = Annotated[list[float], Field(min_length=N_DIMS, max_length=N_DIMS)]
"""A value vector: 19 finite numbers, in the order of :data:`progressgym.evaluation.dimensions.DIMENSIONS`."""
Text = Annotated[str, Field(max_length=MAX_STRING_CHARS)]
Count = Annotated[int, Field(ge=0)]
Seconds = Annotated[float, Field(ge=0.0)]


class _Model(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid", allow_inf_nan=False)


class Queries(_Model):
    """What the examinee asked the judge (in one step, or over the run)."""

    queries: Count = 0
    """Queries charged against the budget: one per comparison, generated prompt or scored request."""
    prompts: Count = 0
    """Prompts the judge's model answered."""
    forward_tokens: Count = 0
    """Tokens the judge's model processed for these queries."""
    generated_tokens: Count = 0
    """Tokens the judge's model generated for these queries."""
    seconds: Seconds = 0.0
    """Wall-clock seconds the judge's model spent answering."""
    privileged_calls: Count = 0
    """Calls of privileged judge methods: a run with any is a privileged (cheating) reference."""


class JudgeWork(_Model):
    """The judge's own work (in one step, or over the run)."""

    evaluations: Count = 0
    """Value vectors computed (cached vectors are not counted)."""
    evaluation_forward_tokens: Count = 0
    """Tokens processed by those evaluations."""
    training_examples: Count = 0
    """Fine-tuning examples seen by Coevolve's simulated human proxy, epochs included."""
    seconds: Seconds = 0.0
    """Wall-clock seconds the judge spent assessing."""


class Usage(_Model):
    """Query and compute accounting over the whole run."""

    queries: Queries = Field(default_factory=Queries)
    """The examinee's queries to the judge."""
    judge: JudgeWork = Field(default_factory=JudgeWork)
    """The judge's own work."""
    examinee_seconds: Seconds = 0.0
    """Wall-clock seconds spent in the examinee's updates (its queries included): the algorithm's compute."""


class SubmissionStep(_Model):
    """One step of the episode: the examinee's vector and the reference vector it was compared with."""

    step: int
    """Step index, from 0."""
    timestep: int
    """The judge's timestep t (an index into ``centuries``; step 0 is t = 1)."""
    century: int
    """The century of timestep t: the present the examinee lived in."""
    target_century: int
    """The century of the reference model the examinee was compared with (t + k in Predict)."""
    seed: int
    """The step's seed, derived from the run seed and the step index."""
    forfeited: bool = False
    """The examinee submitted no model for this step (no examinee vector; the step counts 0)."""
    examinee_fingerprint: Text | None = None
    """Content fingerprint of the examinee's model after the step."""
    examinee_vector: Vector | None = None
    """The examinee model's value vector (``null`` for a forfeited step)."""
    target_vector: Vector
    """The value vector of the reference model the examinee was compared with."""
    proxy_fingerprint: Text | None = None
    """Coevolve: content fingerprint of the simulated human proxy after the step."""
    proxy_vector: Vector | None = None
    """Coevolve: the proxy's value vector after the step."""
    cosine: float
    """Cosine similarity of the examinee and target vectors, as the run recorded it."""
    distance: float
    """Euclidean distance between the examinee and target vectors, as the run recorded it."""
    reward: float
    """The step's reward, as the run recorded it."""
    queries: Queries = Field(default_factory=Queries)
    """The examinee's queries to the judge in this step."""
    judge_compute: JudgeWork = Field(default_factory=JudgeWork)
    """The judge's own work in this step."""
    examinee_seconds: Seconds = 0.0
    """Wall-clock seconds of the examinee's update in this step."""


class Submission(_Model):
    """A leaderboard submission: one complete run of an algorithm through a challenge.

    The leaderboard never trusts ``score``: it recomputes the score from ``steps`` and ``reference_vectors``
    with the challenge's own ``score_result``. Nothing in a submission is ever imported or executed.
    """

    version: Literal[1, 2] = SUBMISSION_VERSION
    """Layout version of this file (2 since provenance; 1 is still read)."""
    challenge: Text
    """The challenge id with its version, e.g. ``Follow-v0`` (a registered id)."""
    challenge_version: int
    """The ``N`` of ``-vN``: results of different versions are not comparable."""
    challenge_kwargs: dict[str, Any] = Field(default_factory=dict)
    """The judge's keyword arguments (timeline, bank, query budget, ...), as the run recorded them."""
    timeline: Text
    """The timeline name, e.g. ``mini`` or ``histllama3-8b``."""
    centuries: Annotated[list[int], Field(min_length=2, max_length=MAX_STEPS)]
    """The timeline's centuries, oldest first."""
    dimensions: Annotated[list[Text], Field(min_length=N_DIMS, max_length=N_DIMS)] = Field(
        default_factory=lambda: list(DIMENSIONS)
    )
    """The names of the 19 value dimensions, in vector order."""
    vector_version: Text = VECTOR_VERSION
    """The value-vector definition the vectors were computed with."""
    algorithm: Text
    """The algorithm's registered name."""
    algorithm_config: dict[str, Any] = Field(default_factory=dict)
    """The algorithm's configuration."""
    privileged: bool = False
    """The examinee used privileged judge methods (e.g. ``oracle``): a cheating reference, ranked apart."""
    backend: Text
    """The judge's inference backend (``hf``, ``vllm``)."""
    seed: int
    """The run seed."""
    step_seeds: Annotated[list[int], Field(max_length=MAX_STEPS)]
    """Each step's seed."""
    reference_vectors: dict[Text, Vector]
    """The value vector of every historical model of the timeline, by century code (``C013``, ...)."""
    steps: Annotated[list[SubmissionStep], Field(min_length=1, max_length=MAX_STEPS)]
    """One record per step, in order."""
    usage: Usage = Field(default_factory=Usage)
    """Query and compute totals."""
    score: float
    """The score the run reported (for information: the leaderboard recomputes it)."""
    mean_cosine: float
    """Mean examinee-target cosine similarity over steps, as the run reported it."""
    mean_distance: float
    """Mean examinee-target Euclidean distance over steps, as the run reported it."""
    progressgym_version: Text
    """The progressgym version that ran the episode."""
    git_revision: Text | None = None
    """The git revision of the progressgym source, when it ran from a git checkout."""
    started_at: datetime
    """When the run started (ISO 8601)."""
    finished_at: datetime
    """When the run finished (ISO 8601)."""
    notes: Text = ""
    """Free text from the submitter, shown on the submission's page (as text, never as markup)."""
    provenance: Provenance | None = None
    """What the vectors were measured with; required from version 2 on."""

    @model_validator(mode="after")
    def _provenance_from_version_2(self) -> Submission:
        if self.version >= 2 and self.provenance is None:
            raise ValueError("a version 2 submission needs its provenance")
        if self.version == 1 and self.provenance is not None:
            raise ValueError("provenance is a version 2 field; set version to 2")
        return self


def _queries(usage: QueryUsage) -> Queries:
    return Queries(
        queries=usage.queries,
        prompts=usage.prompts,
        forward_tokens=usage.forward_tokens,
        generated_tokens=usage.generated_tokens,
        seconds=usage.seconds,
        privileged_calls=usage.privileged_calls,
    )


def _judge_work(compute: JudgeCompute) -> JudgeWork:
    return JudgeWork(
        evaluations=compute.evaluations,
        evaluation_forward_tokens=compute.evaluation_forward_tokens,
        training_examples=compute.training_examples,
        seconds=compute.seconds,
    )


def _step(record: StepRecord) -> SubmissionStep:
    return SubmissionStep(
        step=record.step,
        timestep=record.timestep,
        century=record.century,
        target_century=record.target_century,
        seed=record.seed,
        forfeited=record.invalid_action or record.examinee_vector is None,
        examinee_fingerprint=record.examinee_model.fingerprint if record.examinee_model else None,
        examinee_vector=record.examinee_vector,
        target_vector=record.target_vector,
        proxy_fingerprint=record.proxy_model.fingerprint if record.proxy_model else None,
        proxy_vector=record.proxy_vector,
        cosine=record.cosine,
        distance=record.distance,
        reward=record.reward,
        queries=_queries(record.queries),
        judge_compute=_judge_work(record.judge_compute),
        examinee_seconds=record.examinee_seconds,
    )


def submission_from_result(run_result: RunResult, *, notes: str = "") -> Submission:
    """The submission of a finished run.

    Args:
        run_result: The run's ``result.json`` content.
        notes: Free text for the submission's page.

    Returns:
        The submission (its ``score`` is the run's, for information).
    """
    return Submission(
        challenge=run_result.challenge,
        challenge_version=run_result.challenge_version,
        challenge_kwargs=dict(run_result.challenge_kwargs),
        timeline=run_result.timeline,
        centuries=list(run_result.centuries),
        algorithm=run_result.algorithm,
        algorithm_config=dict(run_result.algorithm_config),
        privileged=run_result.privileged,
        backend=run_result.backend,
        seed=run_result.seed,
        step_seeds=list(run_result.step_seeds),
        reference_vectors={code: list(v) for code, v in run_result.truth_vectors.items()},
        steps=[_step(record) for record in run_result.steps],
        usage=Usage(
            queries=_queries(run_result.usage.queries),
            judge=_judge_work(run_result.usage.judge),
            examinee_seconds=run_result.usage.examinee_seconds,
        ),
        score=run_result.score,
        mean_cosine=run_result.mean_cosine,
        mean_distance=run_result.mean_distance,
        progressgym_version=run_result.progressgym_version,
        git_revision=run_result.git_revision,
        started_at=datetime.fromisoformat(run_result.started_at),
        finished_at=datetime.fromisoformat(run_result.finished_at),
        notes=notes,
        version=2 if run_result.provenance is not None else 1,
        provenance=run_result.provenance,
    )


def submission_json(submission: Submission) -> str:
    """The submission as indented JSON text (how every submission file is written)."""
    return submission.model_dump_json(indent=2) + "\n"


def write_submission(
    run_dir: str | os.PathLike[str], *, result: RunResult | None = None, notes: str = ""
) -> Path:
    """Write ``submission.json`` into a finished run's directory, atomically.

    Args:
        run_dir: The run directory.
        result: The run's result (default: read from ``run_dir/result.json``).
        notes: Free text for the submission's page.

    Returns:
        The path written.
    """
    root = Path(run_dir)
    if result is None:
        from progressgym.log import read_result

        result = read_result(root / "result.json")
    path = root / SUBMISSION_FILE
    atomic_write_text(path, submission_json(submission_from_result(result, notes=notes)))
    return path


def submission_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`Submission` (what ``leaderboard/submission.schema.json`` holds)."""
    return Submission.model_json_schema()


def schema_text() -> str:
    """:func:`submission_schema` as the exact text of ``submission.schema.json``."""
    return json.dumps(submission_schema(), indent=2, ensure_ascii=False) + "\n"


__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_STEPS",
    "MAX_STRING_CHARS",
    "SUBMISSION_FILE",
    "SUBMISSION_VERSION",
    "JudgeWork",
    "Queries",
    "Submission",
    "SubmissionStep",
    "Usage",
    "schema_text",
    "submission_from_result",
    "submission_json",
    "submission_schema",
    "write_submission",
]
