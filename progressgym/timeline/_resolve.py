"""Finding a century model on disk: a user's model directory, the Hugging Face cache, then the hub."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from progressgym._paths import cache_dir
from progressgym.error import ModelNotFound
from progressgym.timeline._artifacts import (
    checked_century_dir,
    fill_in_place,
    materialise,
    materialised_dir,
)

if TYPE_CHECKING:
    from collections.abc import Callable


class Member(Protocol):
    """What resolution needs of a :class:`~progressgym.timeline.CenturyModel` (structural: no import cycle)."""

    @property
    def code(self) -> str: ...

    @property
    def repo_id(self) -> str | None: ...

    @property
    def local_names(self) -> tuple[str, ...]: ...


class Line(Protocol):
    """What resolution needs of a :class:`~progressgym.timeline.Timeline` (structural: no import cycle)."""

    @property
    def name(self) -> str: ...

    @property
    def builder(self) -> str | None: ...

    @property
    def artifacts(self) -> str | None: ...

    def build_function(self) -> Callable[[Any, Path], None]: ...


MODEL_DIR_ENV = "PROGRESSGYM_MODEL_DIR"
_BUILT_MARKER = ".progressgym-built"


def _is_model_folder(path: Path) -> bool:
    return (path / "config.json").is_file()


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _short_reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def resolve_model(
    timeline: Line,
    member: Member,
    *,
    model_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> Path:
    """Find (or build, or download) one century model and return its local directory.

    Search order for hub timelines:

    1. ``model_dir`` (or ``$PROGRESSGYM_MODEL_DIR``), under any of the member's local names (the hub repo
       name such as ``ProgressGym-HistLlama3-8B-C013-instruct-v0.2`` or the short ``8B-C013-instruct``);
    2. the local Hugging Face cache;
    3. a download from the hub, with a progress bar (skipped when ``download`` is false or ``HF_HUB_OFFLINE``
       is set).

    Timelines shipped as files (``mini``) are loaded from a hash-checked copy of their files instead; other
    timelines with a builder are built into progressgym's cache on first use.

    Raises:
        ModelNotFound: with every place that was searched and how to provide the model.
    """
    if timeline.artifacts is not None:
        return checked_century_dir(timeline, member.code)
    if timeline.builder is not None:
        return built_timeline_dir(timeline) / member.code

    looked: list[str] = []
    directory = model_dir if model_dir is not None else os.environ.get(MODEL_DIR_ENV)
    if directory:
        root = Path(directory).expanduser()
        for name in member.local_names:
            candidate = root / name
            if _is_model_folder(candidate):
                return candidate
        looked.append(f"{root}/{{{','.join(member.local_names)}}} (no model folder)")
    else:
        looked.append(f"no --model-dir given and ${MODEL_DIR_ENV} unset")

    if member.repo_id is None:
        raise ModelNotFound(f"{timeline.name} {member.code} not found; looked in: {'; '.join(looked)}")

    from huggingface_hub import constants, snapshot_download

    try:
        return Path(snapshot_download(member.repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not in the cache"
        looked.append(f"Hugging Face cache {constants.HF_HUB_CACHE} (not cached)")

    if not download:
        looked.append("hub download (disabled)")
    elif _offline():
        looked.append("hub download (HF_HUB_OFFLINE is set)")
    else:
        try:
            return Path(snapshot_download(member.repo_id))
        except Exception as exc:  # noqa: BLE001 - network, auth and missing-repo errors all end here
            looked.append(f"hub {member.repo_id} ({_short_reason(exc)})")

    folder = member.local_names[0] if member.local_names else member.code
    raise ModelNotFound(
        f"{timeline.name} {member.code} model not found; looked in: {'; '.join(looked)}. "
        f"Provide it with `hf download {member.repo_id} --local-dir DIR/{folder}` "
        f"and pass --model-dir DIR (or set ${MODEL_DIR_ENV}=DIR)"
    )


def timeline_cache_dir(timeline: Line) -> Path:
    """Where a local timeline's model folders live.

    A shipped timeline's hash-checked copy is ``<cache>/timelines/<name>-a<version>-<manifest hash>``; a
    locally built one is ``<cache>/timelines/<name>-<recipe version>``.

    The recipe version comes from the builder module's ``recipe_version()`` when it has one, so that changing
    how a timeline is built never reuses models built the old way.
    """
    import importlib

    if timeline.artifacts is not None:
        return materialised_dir(timeline)
    name = timeline.name
    if timeline.builder is not None:
        module = importlib.import_module(timeline.builder.partition(":")[0])
        recipe = getattr(module, "recipe_version", None)
        if callable(recipe):
            name = f"{name}-{recipe()}"
    return cache_dir() / "timelines" / name


def built_timeline_dir(timeline: Line, *, rebuild: bool = False) -> Path:
    """Return the directory of a local timeline's models: a shipped set's checked copy, or a build.

    The build writes into a temporary sibling directory that is renamed into place only when complete, under
    a file lock, so concurrent processes build once and never see a partial timeline.

    Args:
        timeline: A timeline with a builder.
        rebuild: Discard an existing build and build again.

    Returns:
        The directory holding one model folder per century code.
    """
    if timeline.artifacts is not None:
        return materialise(timeline)  # a shipped timeline is never trained on use
    return fill_in_place(
        timeline_cache_dir(timeline),
        _BUILT_MARKER,
        lambda staging: timeline.build_function()(timeline, staging),
        again=rebuild,
    )
