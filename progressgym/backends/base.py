"""The inference-backend contract: batched generation and batched candidate scoring.

A backend wraps one loaded model. Callers build request objects and hand over whole batches; backends decide
how to batch, share prompt computation and count their work. Prompts are chat conversations: the backend
applies the model's chat template (or a plain fallback template when the tokenizer has none).
"""

from __future__ import annotations

import abc
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from progressgym.error import InvalidInput

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    """One turn of a chat conversation."""

    role: Role
    content: str


Conversation = tuple[Message, ...]


def user(content: str) -> Conversation:
    """A one-turn conversation holding a single user message."""
    return (Message("user", content),)


@dataclass(frozen=True)
class GenerateRequest:
    """Generate the assistant's reply to ``prompt``.

    Attributes:
        prompt: The conversation so far; the reply is the next assistant turn.
        max_new_tokens: Upper bound on generated tokens.
        temperature: 0 means greedy decoding.
        top_p: Nucleus sampling mass (ignored when greedy).
        seed: Per-request seed for sampling; ``None`` uses the backend's seed.
    """

    prompt: Conversation
    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None


@dataclass(frozen=True)
class ScoreRequest:
    """Score candidate assistant replies to ``prompt``.

    Attributes:
        prompt: The conversation; each candidate is scored as the start of the next assistant turn.
        candidates: The candidate replies (at least one).
    """

    prompt: Conversation
    candidates: tuple[str, ...]


@dataclass
class Usage:
    """The work a backend has done since it was created (or since :meth:`reset`).

    Attributes:
        prompts: Requests answered (generate and score).
        forward_tokens: Tokens pushed through the model's forward pass (prompt and candidate tokens, plus one per
            generated token).
        generated_tokens: Tokens produced by generation.
        seconds: Wall-clock seconds spent inside backend calls.
    """

    prompts: int = 0
    forward_tokens: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0

    def reset(self) -> None:
        """Zero every counter."""
        self.prompts = self.forward_tokens = self.generated_tokens = 0
        self.seconds = 0.0

    def snapshot(self) -> Usage:
        """A copy of the current counts."""
        return Usage(self.prompts, self.forward_tokens, self.generated_tokens, self.seconds)

    def __sub__(self, other: Usage) -> Usage:
        return Usage(
            self.prompts - other.prompts,
            self.forward_tokens - other.forward_tokens,
            self.generated_tokens - other.generated_tokens,
            self.seconds - other.seconds,
        )

    def as_dict(self) -> dict[str, float]:
        """The counters as a plain dict (for JSON)."""
        return {
            "prompts": self.prompts,
            "forward_tokens": self.forward_tokens,
            "generated_tokens": self.generated_tokens,
            "seconds": round(self.seconds, 4),
        }


@dataclass(frozen=True)
class BackendOptions:
    """Settings common to every backend.

    Attributes:
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``.
        dtype: ``"auto"`` (bf16 on CUDA, fp32 on CPU), ``"float32"``, ``"float64"`` (CPU checks of
            reference vectors), ``"bfloat16"`` or ``"float16"``.
        seed: Seed for sampling.
        batch_size: Requests per forward batch (``hf``); vLLM schedules its own batches.
        tensor_parallel_size: GPUs per model (``vllm`` on CUDA).
        gpu_memory_utilization: Fraction of GPU memory vLLM may take.
        max_model_len: Context length cap (``None``: the model's own).
    """

    device: str = "auto"
    dtype: str = "auto"
    seed: int = 0
    batch_size: int = 16
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.85
    max_model_len: int | None = None
    extra: dict[str, object] = field(default_factory=dict, hash=False, compare=False)


DTYPES: tuple[str, ...] = ("auto", "float32", "float64", "bfloat16", "float16")


TUNABLE_SETTINGS: tuple[str, ...] = (
    "dtype",
    "batch_size",
    "tensor_parallel_size",
    "gpu_memory_utilization",
    "max_model_len",
)
"""The :class:`BackendOptions` fields a judge or the run command may set (device and seed are set apart)."""


def check_backend_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate backend settings given by name (a judge's ``backend_options``) and return them as a dict.

    Raises:
        InvalidInput: for an unknown name (with the known ones) or a value of the wrong type or range.
    """
    if settings is not None and not isinstance(settings, Mapping):
        raise InvalidInput(f"backend options must be a table of name = value, got {settings!r}")
    checked: dict[str, Any] = {}
    for name, value in (settings or {}).items():
        if name not in TUNABLE_SETTINGS:
            raise InvalidInput(f"unknown backend option {name!r}; known: {', '.join(TUNABLE_SETTINGS)}")
        if name == "dtype":
            if value not in DTYPES:
                raise InvalidInput(f"dtype must be one of {', '.join(DTYPES)}, got {value!r}")
        elif name == "gpu_memory_utilization":
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
                raise InvalidInput(f"gpu_memory_utilization must be in (0, 1], got {value!r}")
            value = float(value)
        elif (value is not None or name != "max_model_len") and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise InvalidInput(f"{name} must be a positive integer, got {value!r}")
        checked[name] = value
    return checked


class Backend(abc.ABC):
    """An inference engine serving one model.

    Subclasses implement :meth:`_generate` and :meth:`_score`; the public methods validate input, time the
    call and update :attr:`usage`.
    """

    name: ClassVar[str]
    """Registry name of the backend (``"hf"``, ``"vllm"``...)."""

    def __init__(self, model_path: str, options: BackendOptions | None = None) -> None:
        self.model_path = str(model_path)
        self.options = options or BackendOptions()
        self.usage = Usage()

    def generate(self, requests: Sequence[GenerateRequest]) -> list[str]:
        """Generate one reply per request, in order."""
        if not requests:
            return []
        with self._timed():
            out = self._generate(list(requests))
        self.usage.prompts += len(requests)
        return out

    def score(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        """Log-likelihood (natural log, summed over tokens) of each candidate given its prompt.

        Returns:
            One list per request, aligned with its ``candidates``.
        """
        if not requests:
            return []
        for request in requests:
            if not request.candidates:
                raise ValueError("a ScoreRequest needs at least one candidate")
        with self._timed():
            out = self._score(list(requests))
        self.usage.prompts += len(requests)
        return out

    @contextmanager
    def _timed(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.usage.seconds += time.perf_counter() - start

    @abc.abstractmethod
    def _generate(self, requests: list[GenerateRequest]) -> list[str]:
        """Backend-specific generation; must add to ``usage.forward_tokens`` and ``usage.generated_tokens``."""

    @abc.abstractmethod
    def _score(self, requests: list[ScoreRequest]) -> list[list[float]]:
        """Backend-specific scoring; must add to ``usage.forward_tokens``."""

    def close(self) -> None:  # noqa: B027 - an optional hook: backends without resources need not override it
        """Release the model (GPU memory, engine processes). Safe to call twice."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
