"""``ModelRef``: a frozen pointer to one model on disk, never a loaded model."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

# Files above this size are fingerprinted from samples (size + head, middle and tail blocks): hashing tens of
# gigabytes of weights on every lookup would cost minutes, and changed weights change these samples.
_FULL_HASH_LIMIT = 64 * 1024 * 1024
_SAMPLE = 1024 * 1024
_IGNORED = {".gitattributes", "README.md"}


def _hash_file(path: Path, digest: hashlib._Hash) -> None:
    size = path.stat().st_size
    digest.update(f"{path.name}:{size}\n".encode())
    with path.open("rb") as handle:
        if size <= _FULL_HASH_LIMIT:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
            return
        for offset in (0, size // 2, size - _SAMPLE):
            handle.seek(offset)
            digest.update(handle.read(_SAMPLE))


def fingerprint(path: str | os.PathLike[str]) -> str:
    """A content fingerprint of a model directory (or single file), usable as a cache key.

    Every regular file counts (by relative name, size and content); small files are hashed in full, large
    weight files by size plus three 1 MiB samples. Hidden files and the model card are ignored.

    Args:
        path: The model directory or file.

    Returns:
        A 16-hex-digit fingerprint.
    """
    root = Path(path)
    digest = hashlib.sha256()
    if root.is_file():
        _hash_file(root, digest)
        return digest.hexdigest()[:16]
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = file.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or file.name in _IGNORED:
            continue
        digest.update(str(rel).encode())
        _hash_file(file, digest)
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ModelRef:
    """Where one model lives and what it is.

    Attributes:
        name: A human-readable name, e.g. ``"mini:C013"`` or ``"lifelong-dpo/step-3"``.
        path: The local model directory (a ``save_pretrained`` folder).
        century: The century the model stands for (13..21), if it is a historical model.
        fingerprint: Content fingerprint of ``path`` (computed on creation when left empty).
    """

    name: str
    path: str
    century: int | None = None
    fingerprint: str = field(default="", compare=True)

    def __post_init__(self) -> None:
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", fingerprint(self.path))

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], *, name: str | None = None) -> ModelRef:
        """Make a reference to a local model directory.

        Args:
            path: The model directory.
            name: Display name; defaults to the directory name.

        Returns:
            The reference, fingerprinted.
        """
        resolved = Path(path).expanduser().resolve()
        return cls(name=name or resolved.name, path=str(resolved))
