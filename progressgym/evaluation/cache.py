"""Value vectors cached on disk, so the same model is never evaluated twice on the same items.

An entry lives at ``<cache>/vectors/<key>.json`` (``<cache>`` is :func:`progressgym._paths.cache_dir`). The key
hashes everything that can change a vector: the model's content fingerprint, the bank key (name, content
version, split and split version), the vector version, the prompt version, the scoring mode with its formats
and orders (and the generation budget in ``generate`` mode).

Entries are written through a temporary file that is then linked into place, so a reader sees either no entry
or a complete one. When processes evaluate the same model at once (cells of a grid, runs started together),
each computes the same vector (evaluation is deterministic) and the first complete entry stays: a later writer
with the same vector leaves it, so every reader gets the same bytes (only the recorded seconds would differ).
No lock is needed.

Each entry carries a checksum (SHA-256) of its evaluation's content and is validated when read: the checksum
must match and the vector must be 19 finite numbers. An entry that cannot be read, was edited, or holds a
NaN or infinite value is reported with a :class:`CacheWarning`, recomputed and replaced.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from progressgym._paths import atomic_write_text, cache_dir
from progressgym.evaluation.dimensions import N_DIMS, VECTOR_VERSION
from progressgym.evaluation.prompts import PROMPT_VERSION
from progressgym.evaluation.scoring import PARSER_VERSION

ENTRY_VERSION = 2
"""Layout of one cache file (2: with the checksum of its evaluation)."""


class CacheWarning(UserWarning):
    """A cached vector could not be used and is being recomputed."""


def key_material(
    *,
    fingerprint: str,
    bank_key: str,
    mode: str,
    formats: Sequence[str],
    orders: str,
    max_new_tokens: int | None = None,
    prompt_format: str | None = None,
) -> dict[str, Any]:
    """Everything a cached vector depends on, as a JSON-able dict.

    ``prompt_format`` is recorded only when given (see :func:`progressgym.prompt_format.cache_tag`), so the
    keys of models prompted in their usual format do not change.
    """
    material: dict[str, Any] = {
        "model": fingerprint,
        "bank": bank_key,
        "vector": VECTOR_VERSION,
        "prompts": PROMPT_VERSION,
        "mode": mode,
        "formats": list(formats),
        "orders": orders,
    }
    if mode == "generate":
        material["max_new_tokens"] = max_new_tokens
        material["parser"] = PARSER_VERSION
    if prompt_format is not None:
        material["prompt_format"] = prompt_format
    return material


def cache_key(material: dict[str, Any]) -> str:
    """A short, stable hash of :func:`key_material`'s output."""
    text = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def vectors_dir() -> Path:
    """Where cached vectors live."""
    return cache_dir() / "vectors"


def entry_path(key: str) -> Path:
    """The file of one cache entry."""
    return vectors_dir() / f"{key}.json"


def load_entry(key: str) -> dict[str, Any] | None:
    """The cached evaluation (as stored by :func:`store_entry`) under ``key``, or ``None``.

    A file that exists but is not a complete entry for ``key`` is reported with a :class:`CacheWarning` and
    treated as missing, so the caller recomputes and overwrites it.
    """
    path = entry_path(key)
    try:
        return _read_entry(path, key)
    except FileNotFoundError:
        return None
    except OSError as exc:
        warnings.warn(f"cannot read cached vector {path} ({exc}); recomputing", CacheWarning, stacklevel=2)
        return None
    except (ValueError, KeyError) as exc:
        warnings.warn(f"corrupt cached vector {path} ({exc}); recomputing", CacheWarning, stacklevel=2)
        return None


def checksum(evaluation: dict[str, Any]) -> str:
    """The SHA-256 of an evaluation's content (canonical JSON: sorted keys, no spaces)."""
    text = json.dumps(evaluation, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read_entry(path: Path, key: str) -> dict[str, Any]:
    """The evaluation stored in ``path``; raises ``OSError``, ``ValueError`` or ``KeyError`` otherwise.

    Raises ``ValueError`` also for an entry whose content does not match its checksum, or whose vector is
    not :data:`N_DIMS` finite numbers.
    """
    entry = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(entry, dict) or entry.get("version") != ENTRY_VERSION or entry.get("key") != key:
        raise ValueError("not an entry for this key")
    evaluation = entry["evaluation"]
    if not isinstance(evaluation, dict):
        raise ValueError("no evaluation")
    if entry.get("checksum") != checksum(evaluation):
        raise ValueError("its content does not match its checksum")
    vector = evaluation.get("vector")
    if not isinstance(vector, list) or len(vector) != N_DIMS:
        raise ValueError(f"its vector is not {N_DIMS} numbers")
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in vector):
        raise ValueError("its vector holds a value that is not a finite number")
    return evaluation


def _same_vector(a: Any, b: Any) -> bool:
    try:
        return a is not None and [float(x) for x in a] == [float(x) for x in b]
    except (TypeError, ValueError):
        return False


def store_entry(key: str, material: dict[str, Any], evaluation: dict[str, Any]) -> Path:
    """Write one entry atomically and return its path.

    An entry already there with the same vector (another process stored the same key first) is kept as it is,
    so its bytes never change under a reader; any other file there is replaced.
    """
    path = entry_path(key)
    data = {
        "version": ENTRY_VERSION,
        "key": key,
        "material": material,
        "checksum": checksum(evaluation),
        "evaluation": evaluation,
    }
    text = json.dumps(data, indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # fails if the entry exists: the first complete entry stays
        except FileExistsError:
            try:
                same = _same_vector(_read_entry(path, key).get("vector"), evaluation.get("vector"))
            except (OSError, ValueError, KeyError):
                same = False
            if not same:  # damaged, vanished or different: ours replaces it
                os.replace(tmp, path)
        except OSError:  # a file system without hard links
            atomic_write_text(path, text)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


__all__ = [
    "ENTRY_VERSION",
    "CacheWarning",
    "cache_key",
    "checksum",
    "entry_path",
    "key_material",
    "load_entry",
    "store_entry",
    "vectors_dir",
]
