"""``ModelRef``: a frozen pointer to one model on disk, never a loaded model."""

from __future__ import annotations

import hashlib
import json
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


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.safetensors.index.json", "*.bin.index.json")


def _safetensors_problem(file: Path) -> str | None:
    """What is wrong with a ``.safetensors`` file's header or length, or ``None`` (reads the header only)."""
    size = file.stat().st_size
    with file.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            return f"{file.name} is truncated ({size} bytes)"
        length = int.from_bytes(head, "little")
        if length > min(size - 8, 100 * 1024 * 1024):
            return f"{file.name} is truncated or not a safetensors file (header of {length} bytes)"
        try:
            header = json.loads(handle.read(length).decode("utf-8"))
            ends = [
                int(entry["data_offsets"][1])
                for key, entry in header.items()
                if key != "__metadata__" and isinstance(entry, dict)
            ]
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, IndexError):
            return f"{file.name} is not a safetensors file (unreadable header)"
    if 8 + length + max(ends, default=0) > size:
        return f"{file.name} is truncated ({size} bytes; its header describes {8 + length + max(ends)})"
    return None


def model_dir_problem(path: str | os.PathLike[str]) -> str | None:
    """Why a directory cannot be loaded as a model, found without loading its weights (fast), or ``None``.

    Checks for a ``config.json`` that is a JSON object naming its ``model_type``, a tokenizer, weight files,
    and that every ``.safetensors`` file is as long as its header says; then, when transformers is installed,
    that transformers accepts the configuration (known model type, fields of the right types).

    Args:
        path: The model directory.

    Returns:
        A short description of the first problem found, or ``None`` when the files look complete.
    """
    root = Path(path)
    if not root.is_dir():
        return f"{root} is not a directory"
    config_file = root / "config.json"
    if not config_file.is_file():
        return f"{root} has no config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return f"{config_file} is not valid JSON"
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        return f"{config_file} names no model_type"
    if not any((root / name).is_file() for name in _TOKENIZER_FILES):
        return f"{root} has no tokenizer (none of {', '.join(_TOKENIZER_FILES)})"
    weights = sorted({f for pattern in _WEIGHT_PATTERNS for f in root.glob(pattern) if f.is_file()})
    if not weights:
        return f"{root} has no weights (no *.safetensors or pytorch_model*.bin)"
    for file in weights:
        if file.suffix == ".safetensors":
            try:
                problem = _safetensors_problem(file)
            except OSError as exc:
                problem = f"cannot read {file.name}: {exc.strerror or exc}"
            if problem is not None:
                return f"{root}: {problem}"
    return _config_problem(root)


def _config_problem(root: Path) -> str | None:
    """What transformers finds wrong with a model directory's configuration, or ``None``."""
    try:
        from transformers import AutoConfig
    except ImportError:  # the backends that load models need transformers; nothing more to check without it
        return None
    try:
        AutoConfig.from_pretrained(str(root))
    except Exception as exc:  # transformers raises many kinds of error for a bad configuration
        detail = " ".join(str(exc).split()).split(". ")[0]
        if len(detail) > 200:
            detail = detail[:197] + "..."
        return f"{root / 'config.json'} is not a configuration transformers accepts ({detail})"
    return None


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
