"""Checking a submission's reference vectors against the timeline's own.

The reference (historical) vectors of a timeline are a fact of the timeline and the evaluation settings, not of
the submitter. A shipped timeline (``mini``) carries them in its manifest: the submitted vectors must equal those
within :data:`REFERENCE_TOLERANCE`, on any machine, with nothing evaluated. For other timelines, when the models
are on this machine and their vectors are in progressgym's evaluation cache (:mod:`progressgym.evaluation.cache`,
keyed by model fingerprint and evaluation settings), the submitted vectors must equal the cached ones. Nothing is
built, downloaded or evaluated unless asked (``evaluate_missing``); what cannot be looked up is reported as "not
checked".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from progressgym.error import Error
from progressgym.leaderboard._text import show

if TYPE_CHECKING:
    from progressgym.evaluation.items import ItemBank
    from progressgym.leaderboard.submission import Submission
    from progressgym.model_ref import ModelRef
    from progressgym.timeline import Timeline

from progressgym.timeline._artifacts import REFERENCE_TOLERANCE

Status = Literal["match", "mismatch", "not checked"]


@dataclass(frozen=True)
class ReferenceCheck:
    """The outcome of comparing a submission's reference vectors with locally cached ones.

    Attributes:
        status: ``match`` (every vector found and equal), ``mismatch`` (some vector differs) or
            ``not checked`` (nothing differs, but not every vector could be looked up).
        detail: One line for people.
        mismatches: ``"C015 (max difference 0.031)"`` for each differing vector.
    """

    status: Status
    detail: str
    mismatches: tuple[str, ...] = field(default=())


def _not_checked(reason: str) -> ReferenceCheck:
    return ReferenceCheck("not checked", f"not checked: {reason}")


def _count(codes: Sequence[str], total: int) -> str:
    return f"all {total}" if len(codes) == total else f"{len(codes)} of {total} ({', '.join(codes)})"


def _local_model(timeline: Timeline, code: str) -> ModelRef | None:
    """The timeline's model of ``code`` if it is on this machine already (never built or downloaded)."""
    from pathlib import Path

    from progressgym.error import ModelNotFound
    from progressgym.model_ref import ModelRef
    from progressgym.timeline import timeline_cache_dir

    member = timeline.member(code)
    if timeline.builder is not None:
        # A built timeline directory only appears once complete (it is renamed into place).
        path = timeline_cache_dir(timeline) / member.code
        if not (Path(path) / "config.json").is_file():
            return None
        return ModelRef(name=f"{timeline.name}:{member.code}", path=str(path), century=member.century)
    try:
        return timeline.model(member.century, download=False)
    except (ModelNotFound, OSError):
        return None


def _evaluation_settings(kwargs: Mapping[str, Any]) -> tuple[ItemBank, tuple[str, ...]] | str:
    """The item bank and question formats a judge with these arguments evaluates with, or why not known."""
    from progressgym.evaluation.banks import load_bank
    from progressgym.evaluation.prompts import check_formats

    bank = kwargs.get("bank", "core")
    if bank != "core" or kwargs.get("bank_path") is not None:
        return f"the run used item bank {show(bank)}, which is read from local files"
    formats = kwargs.get("eval_formats")
    if formats is not None and not (isinstance(formats, list) and all(isinstance(f, str) for f in formats)):
        return "eval_formats is not a list of format names"
    try:
        chosen = tuple(check_formats(formats))
    except Error as exc:
        return str(exc)
    return load_bank("core", split="evaluation"), chosen


def _largest_difference(a: Sequence[float], b: Sequence[float]) -> float:
    import numpy as np

    if len(a) != len(b):
        return float("inf")
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def _check_shipped(
    submission: Submission, timeline: Timeline, bank_key: str, formats: tuple[str, ...]
) -> ReferenceCheck | None:
    """Compare with a shipped timeline's manifest; ``None`` when it ships no references for these settings."""
    from progressgym.timeline import artifact_dir, load_manifest
    from progressgym.timeline._artifacts import challenge_setting, shipped_references

    manifest = load_manifest(artifact_dir(timeline))
    shipped = shipped_references(manifest, challenge_setting(bank_key, formats))
    if shipped is None:
        return None
    expected = shipped["evaluations"]
    total = len(submission.reference_vectors)
    mismatches = []
    for code in sorted(set(submission.reference_vectors) | set(expected)):
        if code not in expected or code not in submission.reference_vectors:
            mismatches.append(f"{code} (not a century of the shipped {timeline.name} or missing)")
            continue
        diff = _largest_difference(submission.reference_vectors[code], expected[code]["vector"])
        if diff > REFERENCE_TOLERANCE:
            mismatches.append(f"{code} (max difference {diff:.3g})")
    if mismatches:
        return ReferenceCheck(
            "mismatch",
            f"{len(mismatches)} of {total} differ from the shipped {timeline.name} references by more than "
            f"{REFERENCE_TOLERANCE:g}: {', '.join(mismatches)}",
            tuple(mismatches),
        )
    return ReferenceCheck(
        "match",
        f"checked: all {total} within {REFERENCE_TOLERANCE:g} of the shipped {timeline.name} references "
        f"(artifact version {manifest['artifact_version']})",
    )


def check_provenance(submission: Submission) -> list[str]:
    """Problems with a submission's provenance against the timeline here (shipped timelines only).

    A version 2 submission on a shipped timeline must name exactly the shipped century models (by content
    fingerprint) and the shipped manifest: a run against other models measured something else.
    """
    from progressgym.error import UnknownName
    from progressgym.timeline import artifact_dir, get_timeline, load_manifest, manifest_hash

    if submission.provenance is None:
        return []
    try:
        timeline = get_timeline(submission.timeline)
    except UnknownName:
        return []
    if timeline.artifacts is None:
        return []
    source = artifact_dir(timeline)
    manifest = load_manifest(source)
    expected = {code: entry["fingerprint"] for code, entry in manifest["centuries"].items()}
    given = submission.provenance.century_fingerprints
    problems = []
    wrong = sorted(code for code in set(expected) | set(given) if given.get(code) != expected.get(code))
    if wrong:
        problems.append(
            f"provenance: century models {', '.join(wrong)} are not the shipped {timeline.name} models "
            "(content fingerprints differ)"
        )
    if submission.provenance.timeline_manifest_sha256 != manifest_hash(source):
        problems.append(
            f"provenance: measured against another {timeline.name} artifact set than the shipped one "
            f"(artifact version {manifest['artifact_version']})"
        )
    return problems


def check_references(submission: Submission, *, evaluate_missing: bool = False) -> ReferenceCheck:
    """Compare ``submission.reference_vectors`` with this machine's evaluations of the same models.

    Args:
        submission: A structurally valid submission.
        evaluate_missing: Evaluate the timeline models that are on this machine but not in the cache (loads
            each model: slow for large timelines). Models that are not on this machine are never fetched.

    Returns:
        The outcome; ``mismatch`` makes a submission invalid.
    """
    from progressgym.error import UnknownName
    from progressgym.evaluation import cache
    from progressgym.timeline import get_timeline

    try:
        timeline = get_timeline(submission.timeline)
    except UnknownName:
        return _not_checked(f"timeline {show(submission.timeline)} is not registered here")
    settings = _evaluation_settings(submission.challenge_kwargs)
    if isinstance(settings, str):
        return _not_checked(settings)
    bank, formats = settings
    if timeline.artifacts is not None:
        shipped = _check_shipped(submission, timeline, bank.key, formats)
        if shipped is not None:
            return shipped

    matched: list[str] = []
    absent: list[str] = []
    uncached: list[str] = []
    mismatches: list[str] = []
    for code in sorted(submission.reference_vectors):
        try:
            ref = _local_model(timeline, code)
        except Error:
            ref = None
        if ref is None:
            absent.append(code)
            continue
        material = cache.key_material(
            fingerprint=ref.fingerprint, bank_key=bank.key, mode="logprob", formats=formats, orders="cyclic"
        )
        stored = cache.load_entry(cache.cache_key(material))
        local: Sequence[float] | None = None if stored is None else stored.get("vector")
        if local is None and evaluate_missing:
            from progressgym.evaluation import evaluate

            local = list(evaluate(ref, bank=bank, formats=formats, progress=False).vector)
        if local is None or len(local) != len(submission.reference_vectors[code]):
            uncached.append(code)
            continue
        diff = _largest_difference(local, submission.reference_vectors[code])
        if diff > REFERENCE_TOLERANCE:
            mismatches.append(f"{code} (max difference {diff:.3g})")
        else:
            matched.append(code)

    total = len(submission.reference_vectors)
    if mismatches:
        return ReferenceCheck(
            "mismatch",
            f"{len(mismatches)} of {total} differ from this machine's evaluation of "
            f"{submission.timeline}: {', '.join(mismatches)}",
            tuple(mismatches),
        )
    if absent or uncached:
        reasons = [f"{len(matched)} matched"] if matched else []
        if absent:
            reasons.append(f"{_count(absent, total)} not on this machine")
        if uncached:
            reasons.append(f"{_count(uncached, total)} not in the evaluation cache")
        return _not_checked(f"{submission.timeline} models: {'; '.join(reasons)}")
    return ReferenceCheck(
        "match", f"checked: all {total} match this machine's evaluation of {submission.timeline}"
    )


__all__ = ["REFERENCE_TOLERANCE", "ReferenceCheck", "check_provenance", "check_references"]
