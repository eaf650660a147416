"""Timelines: named, ordered sequences of century models standing in for human values over time."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from progressgym._registry import Registry
from progressgym.model_ref import ModelRef

CENTURIES: tuple[int, ...] = tuple(range(13, 22))
"""The nine centuries of the ProgressGym timelines: C013 (1200-1299) to C021 (2000-2099)."""


def century_code(century: int) -> str:
    """The ProgressGym code of a century, e.g. ``13 -> "C013"``."""
    return f"C{century:03d}"


def parse_century(text: str | int) -> int:
    """Parse ``13``, ``"13"``, ``"C013"`` or ``"c13"`` into a century number."""
    if isinstance(text, int):
        return text
    cleaned = text.strip().upper().removeprefix("C")
    if not cleaned.isdigit():
        from progressgym.error import InvalidInput

        raise InvalidInput(f"not a century: {text!r} (expected e.g. 13 or C013)")
    return int(cleaned)


@dataclass(frozen=True)
class CenturyModel:
    """One member of a timeline.

    Attributes:
        century: The century the model stands for.
        repo_id: Its Hugging Face hub id, for timelines published on the hub.
        local_names: Folder names under which a user may keep it in a ``--model-dir``.
    """

    century: int
    repo_id: str | None = None
    local_names: tuple[str, ...] = ()

    @property
    def code(self) -> str:
        """The century code, e.g. ``"C013"``."""
        return century_code(self.century)


@dataclass(frozen=True)
class Timeline:
    """A registered sequence of century models.

    Attributes:
        name: Registry name, e.g. ``"histllama3-8b"`` or ``"mini"``.
        description: One line for listings.
        members: The century models, oldest first.
        builder: For timelines built locally, ``"module:function"``; the function is called as
            ``fn(timeline, directory)`` and must write one model folder per century code into ``directory``.
        artifacts: For timelines shipped as files, ``"package:folder"`` of their artifact set (models, one
            tokenizer, a manifest; see :mod:`progressgym.timeline._artifacts`). Such a timeline is loaded from
            those files; its ``builder`` only serves to make a new set.
        checker: For timelines with design targets, ``"module:function"`` run by ``timeline check``; called as
            ``fn(timeline)`` and returns an exit status.
        card: Longer documentation (Markdown).
        writes: Whether the century models write their values in free text. ``False`` for models that hold
            values only in their likelihoods (``mini``'s, whose samples are noise): judges then read answers
            from likelihoods (Coevolve's ``answers=auto`` picks ``choose``).
        extras: Free-form facts shown by ``timeline show`` (parameters, licence, ...).
    """

    name: str
    description: str
    members: tuple[CenturyModel, ...]
    builder: str | None = None
    artifacts: str | None = None
    checker: str | None = None
    card: str = ""
    writes: bool = True
    extras: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def centuries(self) -> tuple[int, ...]:
        """The member centuries, oldest first."""
        return tuple(m.century for m in self.members)

    def member(self, century: int | str) -> CenturyModel:
        """The member for ``century`` (``13`` or ``"C013"``)."""
        from progressgym._registry import did_you_mean

        number = parse_century(century)
        for member in self.members:
            if member.century == number:
                return member
        from progressgym.error import UnknownName

        raise UnknownName(
            did_you_mean(
                f"century of timeline {self.name!r}", century_code(number), [m.code for m in self.members]
            )
        )

    def model(
        self, century: int | str, *, model_dir: str | os.PathLike[str] | None = None, download: bool = True
    ) -> ModelRef:
        """Resolve one century model to a local directory.

        See :func:`progressgym.timeline.resolve_model` for the search order.

        Args:
            century: The century (``13`` or ``"C013"``).
            model_dir: A directory holding downloaded models (else ``$PROGRESSGYM_MODEL_DIR``).
            download: Whether a hub download may be attempted.

        Returns:
            A reference to the local model.
        """
        from progressgym.timeline._resolve import resolve_model

        member = self.member(century)
        path = resolve_model(self, member, model_dir=model_dir, download=download)
        return ModelRef(name=f"{self.name}:{member.code}", path=str(path), century=member.century)

    def models(
        self, *, model_dir: str | os.PathLike[str] | None = None, download: bool = True
    ) -> list[ModelRef]:
        """Resolve every century model, oldest first."""
        return [self.model(c, model_dir=model_dir, download=download) for c in self.centuries]

    def build_function(self) -> Callable[[Timeline, Path], None]:
        """Import the builder of a locally built timeline."""
        if self.builder is None:
            raise TypeError(f"timeline {self.name!r} is not built locally")
        module, _, attr = self.builder.partition(":")
        fn: Callable[[Timeline, Path], None] = getattr(importlib.import_module(module), attr)
        return fn


def _load_timeline_plugins() -> None:
    from importlib.metadata import entry_points

    for entry in entry_points(group="progressgym.timelines"):
        entry.load()


TIMELINES: Registry[Timeline] = Registry("timeline", loader=_load_timeline_plugins)


def register_timeline(timeline: Timeline, *, overwrite: bool = False) -> Timeline:
    """Add a timeline to the registry.

    Args:
        timeline: The timeline.
        overwrite: Replace an existing timeline of the same name.

    Returns:
        The timeline, for chaining.
    """
    TIMELINES.add(timeline.name, timeline, overwrite=overwrite)
    return timeline


def get_timeline(name: str) -> Timeline:
    """Look up a registered timeline by name ("did you mean" on a miss)."""
    return TIMELINES.get(name)


def list_timelines() -> list[Timeline]:
    """All registered timelines, in registration order."""
    return [TIMELINES.get(n) for n in TIMELINES.names()]


def shipped_evaluation(fingerprint: str, material: Mapping[str, Any]) -> dict[str, Any] | None:
    """The shipped reference evaluation of a century model of any shipped timeline, if there is one.

    Args:
        fingerprint: The model's content fingerprint.
        material: The evaluation's cache-key material (:func:`progressgym.evaluation.cache.key_material`).

    Returns:
        A dict for :meth:`progressgym.evaluation.Evaluation.from_dict`, or ``None``.
    """
    from progressgym.timeline._artifacts import artifact_dir, load_manifest, manifest_evaluation

    for timeline in list_timelines():
        if timeline.artifacts is not None:
            found = manifest_evaluation(load_manifest(artifact_dir(timeline)), fingerprint, material)
            if found is not None:
                return found
    return None
