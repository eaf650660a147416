"""A grid's settings: its cells, its spec and executor, and the configuration file they are read from."""

from __future__ import annotations

import inspect
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from progressgym._registry import did_you_mean
from progressgym.error import DependencyNotInstalled, InvalidInput

GRID_FILE = "grid.json"


GRID_VERSION = 1
"""Layout version of ``grid.json``."""


RUNS = "runs"


LOGS = "logs"


EXECUTORS = ("local", "ray")


STATES = ("pending", "running", "done", "failed")


OPTIONS = (
    "timeline",
    "backend",
    "device",
    "backend_options",
    "query_budget",
    "bank",
    "bank_path",
    "eval_formats",
    "model_dir",
    "timesteps_ahead",
)
"""Judge arguments a grid may set for all its cells (the flags of a single run)."""


CONFIG_KEYS = (
    "algorithms",
    "challenges",
    "seeds",
    "options",
    "algorithm_config",
    "executor",
    "max_parallel",
    "num_cpus",
    "num_gpus",
    "ray_address",
)
"""Keys of a grid configuration file."""


_PARENT_ENV = "PROGRESSGYM_GRID_PARENT"


_LOCK = ".lock"


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


_INT_OPTIONS = ("query_budget", "timesteps_ahead")


_PATH_OPTIONS = ("bank_path", "model_dir")


@dataclass(frozen=True)
class Cell:
    """One run of a grid.

    Attributes:
        challenge: The challenge id, e.g. ``Follow-v0``.
        algorithm: The registered algorithm name.
        seed: The run seed.
    """

    challenge: str
    algorithm: str
    seed: int

    @property
    def id(self) -> str:
        """``<challenge>_<algorithm>_seed<N>``, safe as a file name."""
        return _UNSAFE.sub("-", f"{self.challenge}_{self.algorithm}_seed{self.seed}")


@dataclass(frozen=True)
class GridSpec:
    """What a grid runs: every combination of its algorithms, challenges and seeds.

    Attributes:
        algorithms: Registered algorithm names.
        challenges: Challenge names or ids (``follow``, ``Predict-v0``); :meth:`checked` turns them into ids.
        seeds: Run seeds.
        options: Judge arguments shared by every cell (see :data:`OPTIONS`); ``timesteps_ahead`` goes only to
            the challenges that take it.
        algorithm_config: Per algorithm, the fields of its configuration that differ from the defaults.
    """

    algorithms: tuple[str, ...]
    challenges: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    options: Mapping[str, Any] = field(default_factory=dict)
    algorithm_config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def checked(self) -> GridSpec:
        """This grid with challenge ids, checked the way a single run checks its flags (nothing is loaded).

        Raises:
            InvalidInput: for an empty or repeated list, an unknown option or a bad value.
            UnknownName: for an unknown challenge, algorithm, timeline, backend or bank.
        """
        from progressgym.registration import challenge_spec, make_examinee

        algorithms = _unique("algorithms", self.algorithms)
        challenges = _unique("challenges", [challenge_spec(name).id for name in self.challenges])
        seeds = _unique("seeds", [_int("seeds", s) for s in self.seeds])
        unknown = sorted(set(self.options) - set(OPTIONS))
        if unknown:
            raise InvalidInput(did_you_mean("grid option", unknown[0], list(OPTIONS)))
        options = {k: v for k, v in self.options.items() if v is not None}
        for name in _INT_OPTIONS:
            if name in options:
                options[name] = _int(name, options[name])
        if "eval_formats" in options:
            formats = options["eval_formats"]
            options["eval_formats"] = [formats] if isinstance(formats, str) else list(formats)
        stray = sorted(set(self.algorithm_config) - set(algorithms))
        if stray:
            raise InvalidInput(
                f"algorithm_config names {stray[0]!r}, which is not among the grid's algorithms"
            )
        for name in algorithms:
            make_examinee(name, dict(self.algorithm_config.get(name, {})))
        spec = GridSpec(
            algorithms=tuple(algorithms),
            challenges=tuple(challenges),
            seeds=tuple(seeds),
            options=options,
            algorithm_config={k: dict(v) for k, v in self.algorithm_config.items() if v},
        )
        if "timesteps_ahead" in options and not any(_takes_timesteps(c) for c in challenges):
            raise InvalidInput(f"timesteps_ahead applies to Predict only, not {', '.join(challenges)}")
        for challenge in challenges:
            challenge_spec(challenge).make(**spec.judge_kwargs(challenge))
        ids = [cell.id for cell in spec.cells()]
        if len(set(ids)) != len(ids):
            raise InvalidInput("two cells of the grid would share a directory name; rename an algorithm")
        return spec

    def cells(self) -> list[Cell]:
        """Every cell, challenge by challenge, then algorithm, then seed."""
        return [Cell(c, a, s) for c in self.challenges for a in self.algorithms for s in self.seeds]

    def judge_kwargs(self, challenge: str) -> dict[str, Any]:
        """The judge arguments of ``challenge``'s cells."""
        kwargs = dict(self.options)
        if "timesteps_ahead" in kwargs and not _takes_timesteps(challenge):
            del kwargs["timesteps_ahead"]
        return kwargs

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in ``grid.json``."""
        return {
            "algorithms": list(self.algorithms),
            "challenges": list(self.challenges),
            "seeds": list(self.seeds),
            "options": dict(self.options),
            "algorithm_config": {k: dict(v) for k, v in self.algorithm_config.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GridSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(
            algorithms=tuple(data["algorithms"]),
            challenges=tuple(data["challenges"]),
            seeds=tuple(data["seeds"]),
            options=dict(data.get("options", {})),
            algorithm_config={k: dict(v) for k, v in data.get("algorithm_config", {}).items()},
        )


@dataclass(frozen=True)
class Executor:
    """Where and how many cells run at once (not part of a grid's identity: a resume may change it).

    Attributes:
        kind: ``local`` (processes on this machine) or ``ray`` (one Ray task per cell).
        max_parallel: Cells running at once (default: 1 locally; with Ray, as many as the resources allow).
        num_cpus: CPU cores each cell needs (a Ray resource; also the cell's thread count).
        num_gpus: GPUs each cell needs (a Ray resource; Ray sets the cell's ``CUDA_VISIBLE_DEVICES``).
        ray_address: A running Ray cluster to join (default: start a local one for the grid).
    """

    kind: str = "local"
    max_parallel: int | None = None
    num_cpus: float | None = None
    num_gpus: float | None = None
    ray_address: str | None = None

    def checked(self) -> Executor:
        """These settings, checked.

        Raises:
            InvalidInput: for an unknown executor, a non-positive count, or a Ray setting on ``local``.
        """
        if self.kind not in EXECUTORS:
            raise InvalidInput(did_you_mean("executor", self.kind, list(EXECUTORS)))
        if self.max_parallel is not None and _int("max_parallel", self.max_parallel) < 1:
            raise InvalidInput(f"max_parallel must be at least 1, got {self.max_parallel}")
        if self.num_cpus is not None and not _number("num_cpus", self.num_cpus) > 0:
            raise InvalidInput(f"num_cpus must be positive, got {self.num_cpus}")
        if self.num_gpus is not None and _number("num_gpus", self.num_gpus) < 0:
            raise InvalidInput(f"num_gpus must not be negative, got {self.num_gpus}")
        if self.kind == "local" and self.num_gpus:
            raise InvalidInput("num_gpus needs the ray executor (the local executor does not place cells)")
        if self.kind == "local" and self.ray_address:
            raise InvalidInput("ray_address needs the ray executor")
        return self


def load_grid_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a grid configuration file (``.toml`` or ``.json``) into a dict of :data:`CONFIG_KEYS`.

    Example (TOML)::

        algorithms = ["static", "oracle"]
        challenges = ["follow", "predict"]
        seeds = [0, 1, 2]
        executor = "ray"
        num_cpus = 1

        [options]                    # judge arguments of every cell
        timeline = "mini"
        eval_formats = ["label"]

        [algorithm_config.lifelong-dpo]
        preset = "mini"

    Paths among the options (a ``.jsonl`` bank, ``bank_path``, ``model_dir``) are relative to the file's folder.

    Raises:
        InvalidInput: when the file is missing, malformed, or has an unknown key.
    """
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read grid config {file}: {exc.strerror or exc}") from None
    suffix = file.suffix.lower()
    try:
        if suffix == ".toml":
            data = _toml().loads(raw.decode("utf-8"))
        elif suffix == ".json":
            data = json.loads(raw)
        else:
            raise InvalidInput(f"grid config {file} must be a .toml or .json file")
    except (ValueError, UnicodeDecodeError) as exc:
        detail = " ".join(str(exc).split())
        raise InvalidInput(f"grid config {file} is not valid {suffix[1:].upper()} ({detail})") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"grid config {file} must hold a table of settings")
    for key in data:
        if key not in CONFIG_KEYS:
            raise InvalidInput(f"grid config {file}: " + did_you_mean("key", key, list(CONFIG_KEYS)))
    for key in ("options", "algorithm_config"):
        if key in data and not isinstance(data[key], dict):
            raise InvalidInput(f"grid config {file}: {key} must be a table")
    for name, value in data.get("algorithm_config", {}).items():
        if not isinstance(value, dict):
            raise InvalidInput(f"grid config {file}: algorithm_config.{name} must be a table")
    for key in ("algorithms", "challenges", "seeds"):
        if key in data and isinstance(data[key], str):
            data[key] = parse_list(data[key])
    options = dict(data.get("options", {}))
    for name in (*_PATH_OPTIONS, "bank"):
        value = options.get(name)
        if isinstance(value, str) and _is_path_option(name, value) and not Path(value).is_absolute():
            options[name] = str(file.parent / value)
    if options:
        data["options"] = options
    return data


def make_grid(settings: Mapping[str, Any]) -> tuple[GridSpec, Executor]:
    """The checked grid and executor from settings (a configuration file's dict, flags laid over it).

    Relative paths among the options are made absolute (cells do not run in the current directory).

    Raises:
        InvalidInput: when ``algorithms`` or ``challenges`` is missing, or any setting is invalid.
    """
    for key in ("challenges", "algorithms"):
        if not settings.get(key):
            raise InvalidInput(f"a grid needs {key} (--{key} a,b or {key} in --grid-config)")
    for key in ("algorithms", "challenges", "seeds"):
        if key in settings and not isinstance(settings[key], (list, tuple)):
            raise InvalidInput(f"{key} must be a list, got {settings[key]!r}")
    options = dict(settings.get("options") or {})
    for name in (*_PATH_OPTIONS, "bank"):
        value = options.get(name)
        if isinstance(value, str) and _is_path_option(name, value):
            options[name] = str(Path(value).expanduser().resolve())
    spec = GridSpec(
        algorithms=tuple(str(a) for a in settings["algorithms"]),
        challenges=tuple(str(c) for c in settings["challenges"]),
        seeds=tuple(settings["seeds"] if settings.get("seeds") is not None else (0,)),
        options=options,
        algorithm_config=dict(settings.get("algorithm_config") or {}),
    ).checked()
    executor = Executor(
        kind=str(settings.get("executor") or "local"),
        max_parallel=settings.get("max_parallel"),
        num_cpus=settings.get("num_cpus"),
        num_gpus=settings.get("num_gpus"),
        ray_address=settings.get("ray_address"),
    ).checked()
    return spec, executor


def parse_list(text: str) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (empty items dropped)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``.

    Raises:
        InvalidInput: when an item is not an integer.
    """
    return [_int("seeds", part) for part in parse_list(text)]


def _toml() -> Any:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise DependencyNotInstalled(
                "reading TOML on Python 3.10 needs tomli (pip install tomli); or write the grid config as JSON"
            ) from None
    return tomllib


def _takes_timesteps(challenge: str) -> bool:
    from progressgym.registration import challenge_spec

    return "timesteps_ahead" in inspect.signature(challenge_spec(challenge).judge_class()).parameters


def _is_path_option(name: str, value: str) -> bool:
    return name in _PATH_OPTIONS or (name == "bank" and value.endswith(".jsonl"))


def _unique(what: str, values: Sequence[Any]) -> list[Any]:
    if not values:
        raise InvalidInput(f"{what} must not be empty")
    seen: list[Any] = []
    for value in values:
        if value in seen:
            raise InvalidInput(f"{what} lists {value!r} twice")
        seen.append(value)
    return seen


def _int(what: str, value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidInput(f"{what}: {value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    raise InvalidInput(f"{what}: {value!r} is not an integer")


def _number(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{what}: {value!r} is not a number")
    return float(value)
