"""Registries of challenges (Judge classes and arguments, by versioned id) and algorithms (Examinees, by name).

Built-in challenges are registered in :mod:`progressgym.judges`, built-in algorithms are listed lazily in
:mod:`progressgym.algorithms`. Third-party packages declare entry points in the groups
``progressgym.challenges`` and ``progressgym.algorithms``; they are loaded the first time a lookup misses.
An entry point may name a module whose import registers things, or an Examinee subclass (registered under
the entry point's name).

>>> from progressgym.registration import challenge_spec
>>> challenge_spec("follow").id
'Follow-v0'
>>> challenge_spec("Predict-v0").kwargs["timesteps_ahead"]
1
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

import progressgym.core as core
from progressgym._registry import Registry, did_you_mean
from progressgym.core import Examinee, Judge
from progressgym.error import InvalidInput, UnknownName

CHALLENGE_GROUP = "progressgym.challenges"
ALGORITHM_GROUP = "progressgym.algorithms"
GYM_NAMESPACE = "progressgym"
"""Challenges are registered with Gymnasium as ``progressgym/<id>``."""

_ID = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9_.]*)-v(?P<version>\d+)$")


def _import(target: str) -> Any:
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class ChallengeSpec:
    """A registered challenge: a Judge class and the keyword arguments that define it.

    Attributes:
        id: ``Name-vN``, e.g. ``Follow-v0``.
        entry_point: The Judge class or ``"module:Class"`` (imported on first use).
        kwargs: Default keyword arguments of the judge.
        description: One line for listings.
        name: The id without its version (``Follow``).
        version: The version number (``0``).
    """

    id: str
    entry_point: str | type[Judge]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    name: str = field(init=False)
    version: int = field(init=False)

    def __post_init__(self) -> None:
        match = _ID.match(self.id)
        if match is None:
            raise InvalidInput(f"challenge id {self.id!r} must look like Name-vN, e.g. Follow-v0")
        object.__setattr__(self, "name", match["name"])
        object.__setattr__(self, "version", int(match["version"]))
        object.__setattr__(self, "kwargs", dict(self.kwargs))

    def judge_class(self) -> type[Judge]:
        """Import and return the Judge class."""
        cls = _import(self.entry_point) if isinstance(self.entry_point, str) else self.entry_point
        if not (isinstance(cls, type) and issubclass(cls, Judge)):
            raise TypeError(f"challenge {self.id}: {self.entry_point!r} is not a Judge subclass")
        return cls

    def make(self, **kwargs: Any) -> Judge:
        """A judge of this challenge; ``kwargs`` override the registered ones."""
        merged = {**self.kwargs, **kwargs}
        cls = self.judge_class()
        try:
            judge = cls(**merged)
        except TypeError as exc:
            raise InvalidInput(f"{self.id}: {exc}") from None
        judge.id = self.id
        return judge


def _load_challenge_plugins() -> None:
    from importlib.metadata import entry_points

    for entry in entry_points(group=CHALLENGE_GROUP):
        entry.load()


def _load_algorithm_plugins() -> None:
    from importlib.metadata import entry_points

    for entry in entry_points(group=ALGORITHM_GROUP):
        obj = entry.load()
        if isinstance(obj, type) and issubclass(obj, Examinee) and entry.name not in ALGORITHMS:
            register_algorithm(entry.name, obj)


CHALLENGES: Registry[ChallengeSpec] = Registry("challenge", loader=_load_challenge_plugins)
ALGORITHMS: Registry[type[Examinee] | str] = Registry("algorithm", loader=_load_algorithm_plugins)


def register_challenge(
    id: str,
    entry_point: str | type[Judge],
    *,
    kwargs: Mapping[str, Any] | None = None,
    description: str = "",
    gym: bool = True,
) -> ChallengeSpec:
    """Register a challenge under a versioned id.

    Args:
        id: ``Name-vN``; bump ``N`` whenever a change can change a score.
        entry_point: The Judge subclass, or ``"module:Class"`` to import it lazily.
        kwargs: Keyword arguments that define the challenge (users may override them).
        description: One line for ``--list``.
        gym: Also register the Gymnasium environment ``progressgym/<id>``.

    Returns:
        The spec.
    """
    spec = ChallengeSpec(id=id, entry_point=entry_point, kwargs=kwargs or {}, description=description)
    CHALLENGES.add(id, spec)
    if gym:
        import gymnasium

        gymnasium.register(
            id=f"{GYM_NAMESPACE}/{id}",
            entry_point="progressgym.env:ProgressGymEnv",
            kwargs={"challenge": id},
        )
    return spec


def _find_challenge(id: str) -> ChallengeSpec | None:
    if id in CHALLENGES:
        return CHALLENGES.get(id)
    lowered = id.lower()
    specs = [CHALLENGES.get(n) for n in CHALLENGES.names()]
    exact = [s for s in specs if s.id.lower() == lowered]
    if exact:
        return exact[0]
    named = [s for s in specs if s.name.lower() == lowered]
    return max(named, key=lambda s: s.version) if named else None


def challenge_spec(id: str) -> ChallengeSpec:
    """Look up a challenge by id (``Follow-v0``) or by name in any case (``follow``: its latest version).

    Raises:
        UnknownName: with a "did you mean" suggestion.
    """
    spec = _find_challenge(id)
    if spec is None:
        _load_plugins_once(CHALLENGES)
        spec = _find_challenge(id)
    if spec is None:
        names = CHALLENGES.names()
        known = names + sorted({CHALLENGES.get(n).name.lower() for n in names})
        raise UnknownName(did_you_mean("challenge", id, known))
    return spec


def make_judge(id: str, **kwargs: Any) -> Judge:
    """A judge for the challenge ``id`` (see :func:`challenge_spec`); ``kwargs`` override its defaults."""
    return challenge_spec(id).make(**kwargs)


def list_challenges() -> list[ChallengeSpec]:
    """Every registered challenge (plugins included), in registration order."""
    _load_plugins_once(CHALLENGES)
    return [CHALLENGES.get(n) for n in CHALLENGES.names()]


E = TypeVar("E", bound=type[Examinee])


@overload
def register_algorithm(name: str) -> Callable[[E], E]: ...


@overload
def register_algorithm(name: str, target: type[Examinee] | str) -> None: ...


def register_algorithm(name: str, target: type[Examinee] | str | None = None) -> Callable[[E], E] | None:
    """Register an Examinee subclass as an algorithm.

    Use as a class decorator, ``@register_algorithm("my-algo")``, or call it with the class or with a lazy
    ``"module:Class"`` string.

    Raises:
        TypeError: when the class is not an Examinee subclass.
        ValueError: when the name is taken by another class.
    """

    def add(cls: E) -> E:
        if not (isinstance(cls, type) and issubclass(cls, Examinee)):
            raise TypeError(f"algorithm {name!r}: {cls!r} is not a subclass of progressgym.Examinee")
        lazy = f"{cls.__module__}:{cls.__qualname__}"
        if name in ALGORITHMS:
            existing = ALGORITHMS.get(name)
            if existing is not cls and existing != lazy:
                raise ValueError(f"algorithm {name!r} is already registered ({existing!r})")
        ALGORITHMS.add(name, cls, overwrite=True)
        cls.name = name
        return cls

    if target is None:
        return add
    if isinstance(target, str):
        ALGORITHMS.add(name, target)
    else:
        add(target)
    return None


def algorithm_class(name: str) -> type[Examinee]:
    """The Examinee class registered as ``name`` (imported on first use).

    Raises:
        UnknownName: with a "did you mean" suggestion.
    """
    entry = ALGORITHMS.get(name)
    if isinstance(entry, str):
        loaded = _import(entry)
        entry = ALGORITHMS.get(name)  # importing the module registers the class itself
        if isinstance(entry, str):
            register_algorithm(name, loaded)
            entry = ALGORITHMS.get(name)
    assert not isinstance(entry, str)
    return entry


def make_examinee(name: str, config: Any = None) -> Examinee:
    """An examinee of the algorithm ``name``.

    Args:
        name: The registered algorithm.
        config: An instance of its ``config_cls``, a dict of its fields, or ``None`` for the defaults.
    """
    cls = algorithm_class(name)
    if isinstance(config, Mapping):
        if cls.config_cls is None:
            if config:
                raise InvalidInput(f"algorithm {name!r} takes no configuration, got {sorted(config)}")
            config = None
        else:
            try:
                config = cls.config_cls(**config)
            except TypeError as exc:
                raise InvalidInput(f"algorithm {name!r}: bad configuration ({exc})") from None
    return cls(config)


def list_algorithms() -> list[str]:
    """Every registered algorithm name (plugins included), in registration order."""
    _load_plugins_once(ALGORITHMS)
    return ALGORITHMS.names()


def _load_plugins_once(registry: Registry[Any]) -> None:
    if registry._loader is not None and not registry._loaded:
        registry._loaded = True
        registry._loader()


def _register_builtin_algorithms() -> None:
    from progressgym.algorithms import ALGORITHMS as BUILTIN

    for name, target in BUILTIN.items():
        if name not in ALGORITHMS:
            ALGORITHMS.add(name, target)


def _challenge_id_of(cls: type[Judge]) -> str | None:
    """The id a Judge class is registered under, or ``None`` (installed as :data:`progressgym.core.judge_ids`)."""
    path = f"{cls.__module__}:{cls.__qualname__}"
    for spec in list_challenges():
        if spec.entry_point is cls or spec.entry_point == path:
            return spec.id
    return None


core.judge_ids = _challenge_id_of
_register_builtin_algorithms()
importlib.import_module("progressgym.judges")  # registers the built-in challenges

__all__ = [
    "ALGORITHMS",
    "ALGORITHM_GROUP",
    "CHALLENGES",
    "CHALLENGE_GROUP",
    "ChallengeSpec",
    "algorithm_class",
    "challenge_spec",
    "list_algorithms",
    "list_challenges",
    "make_examinee",
    "make_judge",
    "register_algorithm",
    "register_challenge",
]
