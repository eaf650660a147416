"""Validating a submission and recomputing its score, from its JSON alone.

A submission is parsed as data and nothing else: no name in it is ever imported, called or used as a path. The
challenge it names is looked up in progressgym's registry, and that challenge's own ``score_result`` recomputes
the score from the recorded vectors. The checks, in order:

1. size: the file is at most 5 MiB; strings at most 4096 characters; nesting at most 32 levels;
2. JSON: UTF-8 text holding one object; every number finite (no ``NaN``, ``Infinity``, or overflow);
3. schema: :class:`~progressgym.leaderboard.submission.Submission` (a known ``version``, every vector 19
   numbers, at most 64 steps, no unknown fields);
4. consistency: a registered challenge id with the same version and only settings its judge takes; the 19
   dimension names; reference vectors for exactly the timeline's centuries; steps in order, each compared with
   the century the challenge names (t, or t + k in Predict) and that century's reference vector; an episode that
   reaches the last century; ``privileged`` set when privileged calls were made;
5. references: on a shipped timeline (``mini``) the vectors equal the shipped references within 1e-4 and a
   version 2 submission's provenance names the shipped century models and manifest; on other timelines the
   vectors equal this machine's cached evaluations of its models, when available (otherwise "not checked");
6. score: recomputed; a submitted score that differs by more than 1e-9 is reported and ignored.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from progressgym.error import Error, InvalidInput
from progressgym.evaluation.dimensions import DIMENSIONS, N_DIMS, VECTOR_VERSION
from progressgym.leaderboard._references import ReferenceCheck, check_provenance, check_references
from progressgym.leaderboard._text import show
from progressgym.leaderboard.submission import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_STEPS,
    MAX_STRING_CHARS,
    SUBMISSION_VERSION,
    Submission,
)

if TYPE_CHECKING:
    from progressgym.log import StepRecord

SCORE_TOLERANCE = 1e-9
"""Largest difference between a submitted and the recomputed score that is not reported."""
MAX_REPORTED = 50
"""Problems listed per file; the rest are counted."""
_VECTOR_FIELDS = {"examinee_vector", "target_vector", "proxy_vector"}
_TARGET_TOLERANCE = 1e-9


@dataclass(frozen=True)
class ValidationReport:
    """What validating one submission found.

    Attributes:
        source: Where the submission came from (a path, or a name given by the caller).
        submission: The parsed submission (``None`` when it is not even structurally valid).
        problems: One line per problem; any problem makes the submission invalid.
        warnings: One line per finding that does not invalidate it (a submitted score that differs from the
            recomputed one, recorded per-step numbers that do not match their vectors, ...).
        score: The recomputed score (``None`` when it could not be recomputed).
        mean_cosine: Mean examinee-target cosine over the assessed steps, recomputed from the vectors.
        mean_distance: Mean examinee-target Euclidean distance over the assessed steps, recomputed.
        queries: Queries the examinee asked, summed over steps.
        references: The reference-vector check (``None`` when not run).
        score_flagged: The submitted score differs from the recomputed one.
    """

    source: str
    submission: Submission | None
    problems: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    score: float | None = None
    mean_cosine: float | None = None
    mean_distance: float | None = None
    queries: int | None = None
    references: ReferenceCheck | None = None
    score_flagged: bool = False

    @property
    def valid(self) -> bool:
        """No problem was found."""
        return self.submission is not None and self.score is not None and not self.problems


@dataclass
class _Findings:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.problems.append(text)


def _where(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            safe = text.isidentifier() and len(text) <= 40
            out += (f".{text}" if out else text) if safe else f"[{show(text, 40)}]"
    return out or "file"


def _scan(value: Any, loc: list[Any], findings: _Findings, depth: int = 0) -> None:
    """Report non-finite numbers, over-long strings and over-deep nesting anywhere in the parsed JSON."""
    if depth > MAX_DEPTH:
        findings.problem(f"{_where(loc)}: nested deeper than {MAX_DEPTH} levels")
        return
    if isinstance(value, float) and not math.isfinite(value):
        what = "NaN" if math.isnan(value) else "infinite"
        findings.problem(f"{_where(loc)}: {what} is not a finite number")
    elif isinstance(value, str) and len(value) > MAX_STRING_CHARS:
        findings.problem(f"{_where(loc)}: string of {len(value)} characters (limit {MAX_STRING_CHARS})")
    elif isinstance(value, dict):
        for key, item in value.items():
            if len(key) > MAX_STRING_CHARS:
                findings.problem(f"{_where(loc)}: key of {len(key)} characters (limit {MAX_STRING_CHARS})")
                continue
            _scan(item, [*loc, key], findings, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _scan(item, [*loc, index], findings, depth + 1)


def _schema_problem(error: Any) -> str | None:
    loc = error.get("loc", ())
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind in {"finite_number", "string_too_long"}:
        return None  # reported by _scan with a clearer message
    where = _where(loc)
    is_vector = (loc and loc[-1] in _VECTOR_FIELDS) or (len(loc) == 2 and loc[0] == "reference_vectors")
    if kind in {"too_short", "too_long"} and is_vector:
        return f"{where}: {ctx.get('actual_length', '?')} numbers, a value vector has {N_DIMS}"
    if kind == "too_long" and tuple(loc) == ("steps",):
        return f"steps: {ctx.get('actual_length', '?')} steps (limit {MAX_STEPS})"
    if kind == "extra_forbidden":
        return f"{where}: unknown field"
    return f"{where}: {error.get('msg', kind)}"


READ_VERSIONS: tuple[int, ...] = (1, 2)
"""Submission layout versions this progressgym reads (runs write :data:`SUBMISSION_VERSION`)."""


def _parse(data: bytes, findings: _Findings) -> Submission | None:
    if len(data) > MAX_FILE_BYTES:
        findings.problem(f"file is {len(data):,} bytes (limit {MAX_FILE_BYTES:,})")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        findings.problem("not UTF-8 text")
        return None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        findings.problem(f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})")
        return None
    except RecursionError:
        findings.problem(f"file: nested deeper than {MAX_DEPTH} levels")
        return None
    except ValueError as exc:  # e.g. an integer with thousands of digits
        findings.problem(f"not valid JSON ({' '.join(str(exc).split())[:120]})")
        return None
    if not isinstance(raw, dict):
        findings.problem("a submission is a JSON object")
        return None
    version = raw.get("version", SUBMISSION_VERSION)
    if version not in READ_VERSIONS or isinstance(version, bool):
        findings.problem(
            f"version: submission version {show(version)} is not supported "
            f"(this progressgym reads versions {', '.join(map(str, READ_VERSIONS))})"
        )
        return None
    _scan(raw, [], findings)
    try:
        submission = Submission.model_validate_json(text, strict=True)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            message = _schema_problem(error)
            if message is not None:
                findings.problem(message)
        return None
    return None if findings.problems else submission


def step_records(submission: Submission) -> list[StepRecord]:
    """The submission's steps as :class:`~progressgym.log.StepRecord` objects, for ``score_result``."""
    from progressgym.log import StepRecord

    return [
        StepRecord(
            step=s.step,
            timestep=s.timestep,
            century=s.century,
            target_century=s.target_century,
            seed=s.seed,
            invalid_action=s.forfeited,
            examinee_vector=None if s.forfeited else s.examinee_vector,
            target_vector=list(s.target_vector),
            cosine=s.cosine,
            distance=s.distance,
            reward=s.reward,
            proxy_vector=s.proxy_vector,
        )
        for s in submission.steps
    ]


def recompute_score(submission: Submission) -> float:
    """The submission's score, recomputed by its challenge's ``score_result`` from the recorded vectors.

    Raises:
        InvalidInput: when the challenge id is not a registered one.
    """
    findings = _Findings()
    spec = _registered_challenge(submission, findings)
    if spec is None:
        raise InvalidInput(findings.problems[0])
    return float(spec.judge_class().score_result(step_records(submission), submission.reference_vectors))


def _registered_challenge(submission: Submission, findings: _Findings) -> Any:
    from progressgym.registration import list_challenges

    specs = {spec.id: spec for spec in list_challenges()}
    spec = specs.get(submission.challenge)
    if spec is None:
        name = submission.challenge.rpartition("-v")[0]
        same = sorted(i for i, s in specs.items() if s.name == name)
        known = ", ".join(same or sorted(specs))
        findings.problem(
            f"challenge: unknown challenge version {show(submission.challenge)} (registered: {known})"
        )
        return None
    if submission.challenge_version != spec.version:
        findings.problem(
            f"challenge_version: {submission.challenge_version} does not match {spec.id} (version {spec.version})"
        )
    return spec


def _check_settings(sub: Submission, spec: Any, findings: _Findings) -> None:
    """Settings the judge knows, and steps compared with the century those settings name."""
    from progressgym.leaderboard._settings import default_settings, target_offset

    known = default_settings(spec)
    for key in sorted(set(sub.challenge_kwargs) - set(known)):
        findings.problem(f"challenge_kwargs: {show(key, 40)} is not a setting of {spec.id}")
    offset = target_offset(spec, sub.challenge_kwargs)
    if offset is None:
        return
    for index, step in enumerate(sub.steps):
        target = step.timestep + offset
        if step.timestep > 0 and target < len(sub.centuries) and step.target_century != sub.centuries[target]:
            findings.problem(
                f"steps[{index}].target_century: C{step.target_century:03d}, but {spec.id} with these settings "
                f"compares timestep {step.timestep} with C{sub.centuries[target]:03d}"
            )


def _check_consistency(sub: Submission, findings: _Findings) -> None:
    from progressgym.timeline import century_code

    if list(sub.dimensions) != list(DIMENSIONS):
        findings.problem("dimensions: not progressgym's 19 value dimensions in order")
    if sub.vector_version != VECTOR_VERSION:
        findings.problem(
            f"vector_version: vectors of definition {show(sub.vector_version)} are not comparable with "
            f"{VECTOR_VERSION}"
        )
    centuries = sub.centuries
    if any(b <= a for a, b in zip(centuries, centuries[1:], strict=False)):
        findings.problem("centuries: not strictly increasing")
    codes = {century_code(c) for c in centuries}
    missing = sorted(codes - set(sub.reference_vectors))
    extra = sorted(set(sub.reference_vectors) - codes)
    if missing:
        findings.problem(f"reference_vectors: no vector for {', '.join(missing)}")
    if extra:
        findings.problem(f"reference_vectors: {', '.join(show(c, 12) for c in extra)} not in centuries")

    previous = 0
    for index, step in enumerate(sub.steps):
        where = f"steps[{index}]"
        if step.step != index:
            findings.problem(f"{where}.step: {step.step}, expected {index}")
        if step.timestep != previous + 1 or not 0 < step.timestep < len(centuries):
            findings.problem(f"{where}.timestep: {step.timestep} does not follow timestep {previous}")
        elif step.century != centuries[step.timestep]:
            findings.problem(
                f"{where}.century: {step.century} is not the century of timestep {step.timestep}"
            )
        previous = step.timestep
        if step.target_century not in centuries:
            findings.problem(f"{where}.target_century: {step.target_century} is not a timeline century")
        else:
            reference = sub.reference_vectors.get(century_code(step.target_century))
            if (
                reference is not None
                and max(abs(a - b) for a, b in zip(step.target_vector, reference, strict=True))
                > _TARGET_TOLERANCE
            ):
                findings.problem(
                    f"{where}.target_vector: not the reference vector of {century_code(step.target_century)}"
                )
        if step.forfeited != (step.examinee_vector is None):
            findings.problem(f"{where}: forfeited steps, and only they, have no examinee_vector")
    if sub.steps and sub.steps[-1].target_century != centuries[-1]:
        findings.problem(
            f"steps: the episode is incomplete (its last step is compared with C{sub.steps[-1].target_century:03d}, "
            f"the timeline ends at C{centuries[-1]:03d})"
        )
    if list(sub.step_seeds) != [s.seed for s in sub.steps]:
        findings.problem("step_seeds: not the seeds of the steps")
    calls = sub.usage.queries.privileged_calls + sum(s.queries.privileged_calls for s in sub.steps)
    if calls and not sub.privileged:
        findings.problem(f"privileged: false, but {calls} privileged calls are recorded")
    if sub.finished_at < sub.started_at:
        findings.warnings.append("finished_at is earlier than started_at")


def _recomputed_means(sub: Submission, findings: _Findings) -> tuple[float | None, float | None]:
    from progressgym.judges._common import cosine, distance

    cosines, distances, off = [], [], 0
    for step in sub.steps:
        if step.examinee_vector is None:
            continue
        cos, dist = (
            cosine(step.examinee_vector, step.target_vector),
            distance(step.examinee_vector, step.target_vector),
        )
        cosines.append(cos)
        distances.append(dist)
        off += abs(cos - step.cosine) > SCORE_TOLERANCE or abs(dist - step.distance) > SCORE_TOLERANCE
    if off:
        findings.warnings.append(
            f"{off} step(s) record a cosine or distance that their vectors do not give; recomputed values are used"
        )
    if not cosines:
        return None, None
    return sum(cosines) / len(cosines), sum(distances) / len(distances)


def validate_submission(
    submission: Submission,
    *,
    source: str = "<submission>",
    check_refs: bool = True,
    evaluate_missing: bool = False,
) -> ValidationReport:
    """Check a parsed submission's consistency and references, and recompute its score.

    Args:
        submission: The submission.
        source: A name for messages.
        check_refs: Compare the reference vectors with this machine's cached evaluations.
        evaluate_missing: Evaluate timeline models that are here but not cached (see ``check_references``).

    Returns:
        The report.
    """
    findings = _Findings()
    spec = _registered_challenge(submission, findings)
    _check_consistency(submission, findings)
    if spec is not None:
        _check_settings(submission, spec, findings)
    mean_cosine, mean_distance = _recomputed_means(submission, findings)
    queries = sum(s.queries.queries for s in submission.steps)
    if queries != submission.usage.queries.queries:
        findings.warnings.append(
            f"usage.queries.queries is {submission.usage.queries.queries}, the steps add up to {queries}; "
            "the steps' sum is used"
        )
    score: float | None = None
    flagged = False
    if spec is not None:
        try:
            score = float(
                spec.judge_class().score_result(step_records(submission), submission.reference_vectors)
            )
        except (Error, ValueError, KeyError, ZeroDivisionError) as exc:
            findings.problem(f"score: cannot be recomputed ({' '.join(str(exc).split())[:200]})")
        if score is not None and not math.isfinite(score):
            findings.problem(f"score: the recomputed score is {score}")
            score = None
        if score is not None and abs(score - submission.score) > SCORE_TOLERANCE:
            flagged = True
            findings.warnings.append(
                f"score: the submitted score {submission.score!r} differs from the recomputed {score!r}; "
                "the recomputed score is used"
            )
    references = None
    if check_refs and not findings.problems:
        for problem in check_provenance(submission):
            findings.problem(problem)
    if check_refs and not findings.problems:
        references = check_references(submission, evaluate_missing=evaluate_missing)
        if references.status == "mismatch":
            findings.problem(f"reference_vectors: {references.detail}")
    return ValidationReport(
        source=source,
        submission=submission,
        problems=tuple(findings.problems),
        warnings=tuple(findings.warnings),
        score=score,
        mean_cosine=mean_cosine,
        mean_distance=mean_distance,
        queries=queries,
        references=references,
        score_flagged=flagged,
    )


def validate_bytes(
    data: bytes, *, source: str = "<submission>", check_refs: bool = True, evaluate_missing: bool = False
) -> ValidationReport:
    """Validate a submission given as the bytes of its file (see the module docstring for the checks)."""
    findings = _Findings()
    submission = _parse(data, findings)
    if submission is None:
        return ValidationReport(source=source, submission=None, problems=tuple(findings.problems))
    return validate_submission(
        submission, source=source, check_refs=check_refs, evaluate_missing=evaluate_missing
    )


def validate_file(
    path: str | os.PathLike[str], *, check_refs: bool = True, evaluate_missing: bool = False
) -> ValidationReport:
    """Validate a submission file; an unreadable or over-large file is a problem, never an exception."""
    file = Path(path)
    source = str(file)
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            return ValidationReport(
                source=source,
                submission=None,
                problems=(f"file is {size:,} bytes (limit {MAX_FILE_BYTES:,})",),
            )
        data = file.read_bytes()
    except FileNotFoundError:
        return ValidationReport(source=source, submission=None, problems=("no such file",))
    except OSError as exc:
        return ValidationReport(
            source=source, submission=None, problems=(f"cannot read ({exc.strerror or exc})",)
        )
    return validate_bytes(data, source=source, check_refs=check_refs, evaluate_missing=evaluate_missing)


def report_lines(report: ValidationReport) -> tuple[list[str], list[str]]:
    """The report as printed by ``validate``: (lines for stdout, lines for stderr), one finding per line."""
    out: list[str] = []
    err: list[str] = []
    name = report.source
    problems = list(report.problems)
    if report.valid and report.submission is not None:
        sub = report.submission
        out.append(
            f"{name}: valid: {sub.challenge} on {show(sub.timeline, 40)}, algorithm {show(sub.algorithm, 40)}, "
            f"score {report.score:.6f} (recomputed)"
        )
    else:
        err.append(f"{name}: invalid ({len(problems)} problem{'s' if len(problems) != 1 else ''})")
    for line in problems[:MAX_REPORTED]:
        err.append(f"{name}: {line}")
    if len(problems) > MAX_REPORTED:
        err.append(f"{name}: ... and {len(problems) - MAX_REPORTED} more problems")
    for line in report.warnings:
        err.append(f"{name}: warning: {line}")
    if report.references is not None and report.references.status != "mismatch":
        out.append(f"{name}: reference vectors {report.references.detail}")
    return out, err


__all__ = [
    "SCORE_TOLERANCE",
    "ValidationReport",
    "recompute_score",
    "report_lines",
    "step_records",
    "validate_bytes",
    "validate_file",
    "validate_submission",
]
