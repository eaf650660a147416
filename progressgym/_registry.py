"""A small name registry with "did you mean" errors, shared by timelines, backends, challenges and algorithms."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from progressgym.error import UnknownName

T = TypeVar("T")


def did_you_mean(kind: str, name: str, known: list[str]) -> str:
    """Build the message for an unknown ``name`` of some ``kind``.

    Args:
        kind: What was looked up, e.g. ``"backend"``.
        name: The name that was not found.
        known: The names that exist.

    Returns:
        A one-line message with the closest match, if any, and the full list.
    """
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}.{hint} Available: {', '.join(sorted(known)) or '(none)'}"


class Registry(Generic[T]):
    """An ordered mapping from names to entries with helpful lookup errors.

    ``loader`` (optional) is called once on the first miss, so that plugins declared as entry points can
    register themselves lazily before the lookup is retried.
    """

    def __init__(self, kind: str, loader: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._loader = loader
        self._loaded = False

    def add(self, name: str, entry: T, *, overwrite: bool = False) -> None:
        """Register ``entry`` under ``name``; a second registration of the same name is an error."""
        if name in self._entries and not overwrite:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry

    def get(self, name: str) -> T:
        """Return the entry for ``name`` or raise :class:`UnknownName` with suggestions."""
        if name not in self._entries and self._loader is not None and not self._loaded:
            self._loaded = True
            self._loader()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownName(did_you_mean(self.kind, name, list(self._entries))) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def names(self) -> list[str]:
        """All registered names, in registration order."""
        return list(self._entries)
