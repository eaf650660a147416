"""Inference backends behind one batched interface.

Backends are looked up by name and imported lazily, so ``import progressgym`` never loads torch or vLLM:

>>> from progressgym.backends import backend_names
>>> backend_names()
['hf', 'vllm']
"""

from __future__ import annotations

import importlib

from progressgym._registry import did_you_mean
from progressgym.backends.base import (
    TUNABLE_SETTINGS,
    Backend,
    BackendOptions,
    Conversation,
    GenerateRequest,
    Message,
    ScoreRequest,
    Usage,
    check_backend_settings,
    user,
)
from progressgym.error import UnknownName

# name -> "module:Class"; nothing heavy is imported until a backend is made.
BACKENDS: dict[str, str] = {
    "hf": "progressgym.backends.hf:HFBackend",
    "vllm": "progressgym.backends.vllm:VLLMBackend",
}


def backend_names() -> list[str]:
    """The registered backend names."""
    return list(BACKENDS)


def backend_class(name: str) -> type[Backend]:
    """Import and return the backend class registered as ``name``.

    Raises:
        UnknownName: with a "did you mean" suggestion.
        DependencyNotInstalled: when the backend's library is missing (names the extra to install).
    """
    if name not in BACKENDS:
        raise UnknownName(did_you_mean("backend", name, list(BACKENDS)))
    module, _, attr = BACKENDS[name].partition(":")
    cls: type[Backend] = getattr(importlib.import_module(module), attr)
    return cls


def make_backend(name: str, model_path: str, options: BackendOptions | None = None) -> Backend:
    """Create the backend ``name`` serving the model at ``model_path``."""
    return backend_class(name)(model_path, options)


__all__ = [
    "BACKENDS",
    "Backend",
    "BackendOptions",
    "Conversation",
    "GenerateRequest",
    "Message",
    "ScoreRequest",
    "TUNABLE_SETTINGS",
    "Usage",
    "backend_class",
    "backend_names",
    "check_backend_settings",
    "make_backend",
    "user",
]
