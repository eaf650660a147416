"""Showing submitted strings safely in one-line messages (terminal output, error reports)."""

from __future__ import annotations

from typing import Any


def show(value: Any, limit: int = 80) -> str:
    r"""A submitted value for a one-line message: strings quoted, control characters escaped, long text shortened.

    >>> print(show("a\x1b[31mb"))
    'a\x1b[31mb'
    >>> print(show("x" * 100, limit=5))
    'xxxxx...'
    >>> print(show(2))
    2
    """
    quoted = isinstance(value, str)
    text = value if quoted else repr(value)
    shortened = len(text) > limit
    text = text[:limit]
    escaped = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    if not quoted:
        return escaped + ("..." if shortened else "")
    return "'" + escaped.replace("'", "\\'") + ("...'" if shortened else "'")


__all__ = ["show"]
