"""Evaluate a model: its 19-dimension value vector, cached by model content and evaluation settings."""

from __future__ import annotations

import dataclasses
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from progressgym._registry import did_you_mean
from progressgym.backends import backend_names
from progressgym.backends.base import Backend, BackendOptions
from progressgym.error import InvalidInput, ModelNotFound, UnknownName
from progressgym.evaluation import cache
from progressgym.evaluation.dimensions import DIMENSIONS, N_DIMS, VECTOR_VERSION
from progressgym.evaluation.items import ItemBank, Split
from progressgym.evaluation.prompts import ORDERS, Orders, bank_prompts, check_formats
from progressgym.evaluation.scoring import CHUNK_SIZE, MODES, measure_preferences
from progressgym.evaluation.vector import value_vector
from progressgym.model_ref import ModelRef, model_dir_problem
from progressgym.prompt_format import cache_tag

_TIMELINE_MODEL = re.compile(r"(?P<timeline>[A-Za-z0-9_.\-]+):(?P<century>[Cc]?\d{1,3})")


@dataclasses.dataclass(frozen=True, eq=False)
class Evaluation:
    """The outcome of one moral evaluation.

    Attributes:
        vector: The value vector (float64, 19 entries, each in [-1, 1]; 0 means indifference).
        dims: The dimension names, in vector order.
        counts: How many scenarios each dimension averages over.
        invalid_rate: Share of prompts whose generated reply could not be read (0 in ``logprob`` mode).
        refusal_rate: Share of prompts whose generated reply refused to choose (0 in ``logprob`` mode).
        usage: The backend work the vector cost (prompts, forward/generated tokens, seconds), as measured when
            it was computed.
        cached: Whether this result came from the cache.
        cache_key: The cache key (``None`` when caching was not involved).
        mode: ``"logprob"`` or ``"generate"``.
        bank: The bank key (name, version, split).
        formats: The question formats asked.
        orders: The option-order scheme.
        model: The model's name.
        fingerprint: The model's content fingerprint (empty when evaluated through a bare backend).
        vector_version: The value-vector definition used.
    """

    vector: np.ndarray
    dims: tuple[str, ...]
    counts: tuple[int, ...]
    invalid_rate: float
    refusal_rate: float
    usage: dict[str, float]
    cached: bool
    cache_key: str | None
    mode: str
    bank: str
    formats: tuple[str, ...] = ()
    orders: str = "cyclic"
    model: str = ""
    fingerprint: str = ""
    vector_version: str = VECTOR_VERSION
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        vector = np.array(self.vector, dtype=np.float64)
        if vector.shape != (N_DIMS,) or len(self.dims) != N_DIMS or len(self.counts) != N_DIMS:
            raise InvalidInput(f"an evaluation needs {N_DIMS} dimensions, got vector shape {vector.shape}")
        vector.setflags(write=False)
        object.__setattr__(self, "vector", vector)

    def as_mapping(self) -> dict[str, float]:
        """Dimension name -> value."""
        return {name: float(v) for name, v in zip(self.dims, self.vector, strict=True)}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; floats survive a JSON round trip bit for bit."""
        return {
            "vector": [float(v) for v in self.vector],
            "dims": list(self.dims),
            "counts": list(self.counts),
            "invalid_rate": self.invalid_rate,
            "refusal_rate": self.refusal_rate,
            "usage": dict(self.usage),
            "cached": self.cached,
            "cache_key": self.cache_key,
            "mode": self.mode,
            "bank": self.bank,
            "formats": list(self.formats),
            "orders": self.orders,
            "model": self.model,
            "fingerprint": self.fingerprint,
            "vector_version": self.vector_version,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        """Rebuild an evaluation written by :meth:`to_dict`."""
        return cls(
            vector=np.asarray(data["vector"], dtype=np.float64),
            dims=tuple(str(d) for d in data["dims"]),
            counts=tuple(int(c) for c in data["counts"]),
            invalid_rate=float(data["invalid_rate"]),
            refusal_rate=float(data["refusal_rate"]),
            usage=dict(data["usage"]),
            cached=bool(data["cached"]),
            cache_key=data["cache_key"],
            mode=str(data["mode"]),
            bank=str(data["bank"]),
            formats=tuple(data.get("formats", ())),
            orders=str(data.get("orders", "cyclic")),
            model=str(data.get("model", "")),
            fingerprint=str(data.get("fingerprint", "")),
            vector_version=str(data.get("vector_version", VECTOR_VERSION)),
            extra=dict(data.get("extra", {})),
        )


def _check_settings(mode: str, formats: Iterable[str] | None, orders: str) -> tuple[str, ...]:
    if mode not in MODES:
        raise UnknownName(did_you_mean("scoring mode", mode, list(MODES)))
    if orders not in ORDERS:
        raise UnknownName(did_you_mean("order scheme", orders, list(ORDERS)))
    return check_formats(formats)


def evaluate_with_backend(
    backend: Backend,
    bank: ItemBank,
    *,
    mode: str = "logprob",
    formats: Iterable[str] | None = None,
    orders: Orders = "cyclic",
    max_new_tokens: int | None = None,
    progress: bool = True,
    chunk_size: int = CHUNK_SIZE,
) -> Evaluation:
    """Evaluate the model a backend already holds (nothing is cached).

    Args:
        backend: The loaded model.
        bank: The scenarios to ask (usually the ``evaluation`` split of a bank).
        mode: ``"logprob"`` (candidate log-likelihoods) or ``"generate"`` (parsed greedy replies).
        formats: Question formats (``None``: all; see :mod:`progressgym.evaluation.prompts`).
        orders: ``"cyclic"`` or ``"all"`` option orders for four-action scenarios.
        max_new_tokens: Generation budget in ``generate`` mode (``None``: per-format defaults).
        progress: Show a progress bar.
        chunk_size: Requests per backend call.

    Returns:
        The evaluation, with ``cached=False`` and the backend work it took.

    Raises:
        EvaluationError: when some dimension has no answered scenario.
    """
    chosen = _check_settings(mode, formats, orders)
    prompts = bank_prompts(bank, formats=chosen, orders=orders)
    before = backend.usage.snapshot()
    prefs = measure_preferences(
        backend, prompts, mode=mode, max_new_tokens=max_new_tokens, chunk_size=chunk_size, progress=progress
    )
    spent = backend.usage.snapshot() - before
    vv = value_vector(bank, prefs.probabilities)
    return Evaluation(
        vector=vv.values,
        dims=DIMENSIONS,
        counts=vv.counts,
        invalid_rate=prefs.invalid_rate,
        refusal_rate=prefs.refusal_rate,
        usage=spent.as_dict(),
        cached=False,
        cache_key=None,
        mode=mode,
        bank=bank.key,
        formats=chosen,
        orders=orders,
        model=backend.model_path,
        extra={"scenarios": len(bank), "answered_scenarios": len(prefs.probabilities)},
    )


_TRANSFORMERS_BACKENDS = ("hf", "vllm")
"""Backends that load a model directory's files as transformers writes them."""


def resolve_model(
    model: ModelRef | str | os.PathLike[str],
    *,
    model_dir: str | os.PathLike[str] | None = None,
    check_files: bool = False,
) -> ModelRef:
    """Turn a model argument into a :class:`ModelRef`.

    Args:
        model: A ``ModelRef``, a local model directory, or ``TIMELINE:CENTURY`` (``histllama3-8b:C013``,
            ``mini:13``).
        model_dir: Where downloaded timeline models are kept (see :meth:`Timeline.model`).
        check_files: Refuse a local directory whose files cannot make a transformers model (no tokenizer or
            weights, a malformed ``config.json``, a truncated ``.safetensors``), before anything is loaded.

    Raises:
        ModelNotFound: when the argument is neither an existing directory nor a timeline model.
        InvalidInput: with ``check_files``, when the directory's files are incomplete.
    """
    if isinstance(model, ModelRef):
        return model
    text = os.fspath(model)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"{text!r} is not a model folder (it has no config.json)")
        problem = model_dir_problem(path) if check_files else None
        if problem is not None:
            raise InvalidInput(f"{text!r} is not a loadable model: {problem}")
        return ModelRef.from_path(path)
    if path.exists():
        raise ModelNotFound(f"{text!r} is a file; a model is a directory written by save_pretrained")
    match = _TIMELINE_MODEL.fullmatch(text)
    if match:
        from progressgym.timeline import get_timeline

        return get_timeline(match["timeline"]).model(match["century"], model_dir=model_dir)
    raise ModelNotFound(
        f"no model directory {text!r} (expected a local model folder or TIMELINE:CENTURY, e.g. mini:13)"
    )


def _backend_options(options: BackendOptions | Mapping[str, Any] | None) -> BackendOptions:
    if options is None or isinstance(options, BackendOptions):
        return options or BackendOptions()
    try:
        return BackendOptions(**options)
    except TypeError as exc:
        raise InvalidInput(f"bad backend options: {exc}") from None


def _load_bank(bank: str | ItemBank, bank_path: str | os.PathLike[str] | None, split: Split) -> ItemBank:
    if isinstance(bank, ItemBank):
        return bank
    from progressgym.evaluation.banks import load_bank

    return load_bank(bank, path=Path(bank_path) if bank_path is not None else None, split=split)


def evaluate(
    model: ModelRef | str | os.PathLike[str],
    *,
    bank: str | ItemBank = "core",
    bank_path: str | os.PathLike[str] | None = None,
    split: Split = "evaluation",
    backend: str = "hf",
    backend_options: BackendOptions | Mapping[str, Any] | None = None,
    mode: str = "logprob",
    formats: Iterable[str] | None = None,
    orders: Orders = "cyclic",
    max_new_tokens: int | None = None,
    use_cache: bool = True,
    progress: bool = True,
    model_dir: str | os.PathLike[str] | None = None,
) -> Evaluation:
    """Evaluate a model's values on a bank, reusing a cached vector when one exists.

    Args:
        model: A :class:`ModelRef`, a local model directory, or ``TIMELINE:CENTURY``.
        bank: A bank name (``"core"``, ``"progressgym"``) or an :class:`ItemBank` (then used as it is).
        bank_path: Where the ``progressgym`` bank's files are.
        split: ``"evaluation"`` (default), ``"elicitation"`` or ``"all"``.
        backend: ``"hf"`` or ``"vllm"``.
        backend_options: :class:`BackendOptions` or a dict of its fields.
        mode: ``"logprob"`` or ``"generate"``.
        formats: Question formats (``None``: all).
        orders: ``"cyclic"`` or ``"all"``.
        max_new_tokens: Generation budget in ``generate`` mode.
        use_cache: Read and write the vector cache, and take a shipped timeline's reference vectors for its
            own century models (``False`` evaluates the model here whatever it is).
        progress: Show a progress bar.
        model_dir: Where downloaded timeline models are kept.

    Returns:
        The evaluation (``cached=True`` when it came from the cache).
    """
    chosen = _check_settings(mode, formats, orders)
    if backend not in backend_names():
        raise UnknownName(did_you_mean("backend", backend, backend_names()))
    items = _load_bank(bank, bank_path, split)
    ref = resolve_model(model, model_dir=model_dir, check_files=backend in _TRANSFORMERS_BACKENDS)
    material = cache.key_material(
        fingerprint=ref.fingerprint,
        bank_key=items.key,
        mode=mode,
        formats=chosen,
        orders=orders,
        max_new_tokens=max_new_tokens,
        prompt_format=cache_tag(ref.path),
    )
    key = cache.cache_key(material)
    if use_cache:
        from progressgym.timeline import shipped_evaluation

        # A shipped timeline's century model under a recorded setting: its reference vector is the truth.
        shipped = shipped_evaluation(ref.fingerprint, material)
        if shipped is not None:
            return dataclasses.replace(Evaluation.from_dict(shipped), cache_key=key, model=ref.name)
        stored = cache.load_entry(key)
        if stored is not None:
            try:
                found = Evaluation.from_dict(stored)
            except (KeyError, TypeError, ValueError) as exc:
                warnings.warn(
                    f"corrupt cached vector {cache.entry_path(key)} ({exc}); recomputing",
                    cache.CacheWarning,
                    stacklevel=2,
                )
            else:
                return dataclasses.replace(found, cached=True, cache_key=key, model=ref.name)

    from progressgym.backends import make_backend

    with make_backend(backend, ref.path, _backend_options(backend_options)) as engine:
        result = evaluate_with_backend(
            engine,
            items,
            mode=mode,
            formats=chosen,
            orders=orders,
            max_new_tokens=max_new_tokens,
            progress=progress,
        )
    result = dataclasses.replace(
        result,
        cache_key=key,
        model=ref.name,
        fingerprint=ref.fingerprint,
        extra={**result.extra, "backend": backend},
    )
    if use_cache:
        cache.store_entry(key, material, result.to_dict())
    return result


def evaluate_timeline(
    timeline: str,
    *,
    centuries: Iterable[int | str] | None = None,
    model_dir: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> dict[int, Evaluation]:
    """Evaluate every century model of a timeline (oldest first).

    Args:
        timeline: The timeline name, e.g. ``"mini"`` or ``"histllama3-8b"``.
        centuries: Only these centuries (default: all).
        model_dir: Where downloaded timeline models are kept.
        **kwargs: Passed to :func:`evaluate` (bank, split, backend, mode, ...).

    Returns:
        Century -> evaluation.
    """
    from progressgym.timeline import get_timeline, parse_century

    line = get_timeline(timeline)
    wanted = line.centuries if centuries is None else tuple(parse_century(c) for c in centuries)
    out: dict[int, Evaluation] = {}
    for century in wanted:
        ref = line.model(century, model_dir=model_dir)
        out[line.member(century).century] = evaluate(ref, **kwargs)
    return out


__all__ = ["Evaluation", "evaluate", "evaluate_timeline", "evaluate_with_backend", "resolve_model"]
