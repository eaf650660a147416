"""What a result was measured against: models, timeline artifacts, prompt format, evaluation and libraries.

A score means something only next to what produced it. Every ``result.json`` and every leaderboard submission
(format version 2) carries a :class:`Provenance`: the content fingerprint of every century model compared, the
shipped timeline's manifest hash when there is one, the judge's dtype, the prompt format and a hash of the
chat template it renders with, the item bank with its split version, the prompt and vector versions, and the
versions of the libraries that ran the models. The leaderboard refuses a submission whose century
fingerprints are not the timeline's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

LIBRARIES: tuple[str, ...] = ("torch", "transformers", "trl", "vllm")
"""The libraries whose versions are recorded (``None`` when not installed)."""

_Text = Annotated[str, Field(max_length=256)]


class Provenance(BaseModel):
    """What a run's vectors were measured with."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    century_fingerprints: dict[_Text, _Text]
    """Content fingerprint of each century model compared, by century code (``C013`` ...)."""
    timeline_manifest_sha256: _Text | None = None
    """sha256 of the shipped timeline's ``manifest.json`` (``None`` for timelines that are not shipped)."""
    dtype: _Text
    """The judge's inference dtype setting (``auto``: bf16 on CUDA, fp32 on CPU)."""
    prompt_format: _Text
    """How conversations were rendered for the century models (``chat_template``, ``alpaca``, ``plain``)."""
    chat_template_sha256: _Text
    """sha256 of the template text that format renders with."""
    bank: _Text
    """The evaluation item bank's key: name, content version, split and split version."""
    prompt_version: _Text
    """Version of the evaluation's question wording."""
    vector_version: _Text
    """Version of the value-vector definition."""
    libraries: dict[_Text, _Text | None]
    """Installed versions of :data:`LIBRARIES`."""


def library_versions() -> dict[str, str | None]:
    """The installed version of each of :data:`LIBRARIES` (``None`` when absent)."""
    found: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def measured_provenance(
    timeline: Any,
    models: Mapping[str, Any],
    *,
    backend_settings: Mapping[str, Any],
    bank_key: str,
) -> Provenance:
    """The provenance of measurements against ``timeline``'s century ``models`` (code -> :class:`ModelRef`).

    Args:
        timeline: The :class:`~progressgym.timeline.Timeline` (its shipped manifest is hashed when it has one).
        models: The century models compared, by century code, oldest first.
        backend_settings: The judge's backend settings (``dtype`` among them).
        bank_key: The evaluation bank's key.
    """
    from progressgym.evaluation.dimensions import VECTOR_VERSION
    from progressgym.evaluation.prompts import PROMPT_VERSION
    from progressgym.prompt_format import prompt_format_fingerprint
    from progressgym.timeline import artifact_dir, manifest_hash

    first: Sequence[Any] = list(models.values())
    prompt_format, template_sha = prompt_format_fingerprint(first[0].path)
    return Provenance(
        century_fingerprints={code: model.fingerprint for code, model in models.items()},
        timeline_manifest_sha256=manifest_hash(artifact_dir(timeline)) if timeline.artifacts else None,
        dtype=str(backend_settings.get("dtype", "auto")),
        prompt_format=prompt_format,
        chat_template_sha256=template_sha,
        bank=bank_key,
        prompt_version=PROMPT_VERSION,
        vector_version=VECTOR_VERSION,
        libraries=library_versions(),
    )


__all__ = ["LIBRARIES", "Provenance", "measured_provenance", "library_versions"]
