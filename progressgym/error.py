"""Exceptions raised by progressgym.

Every error a user can cause derives from :class:`Error`; the command-line tools print its message on one
line and exit with status 2 instead of showing a traceback.
"""

from __future__ import annotations


class Error(Exception):
    """Base class of every progressgym error a user can act on."""


class UnknownName(Error, KeyError):
    """A registry lookup missed (timeline, backend, challenge, algorithm, bank...)."""

    def __str__(self) -> str:
        # KeyError would wrap the message in quotes.
        return str(self.args[0]) if self.args else ""


class DependencyNotInstalled(Error, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class ModelNotFound(Error, FileNotFoundError):
    """A century model could not be found in any of the places searched."""


class InvalidInput(Error, ValueError):
    """A file, flag or argument is malformed."""


class EvaluationError(Error, RuntimeError):
    """The moral evaluation cannot produce a meaningful vector (e.g. a dimension has no scenario)."""
