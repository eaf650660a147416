"""Figures of value vectors: one model's 19 dimensions, and a timeline's centuries as a heat map.

matplotlib runs with the non-interactive Agg backend, so plotting works on machines without a display; PNGs are
written atomically.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from progressgym._paths import atomic_write_bytes
from progressgym.evaluation.dimensions import (
    DIMENSIONS,
    FOUNDATION_SLICE,
    N_DIMS,
    RULE_SLICE,
    WORLDVIEW_SLICE,
)

if TYPE_CHECKING:
    from progressgym.evaluation.evaluator import Evaluation

FAMILY_COLOURS: tuple[tuple[str, slice, str], ...] = (
    ("Rules", RULE_SLICE, "#4477aa"),
    ("Moral foundations", FOUNDATION_SLICE, "#228833"),
    ("Worldviews", WORLDVIEW_SLICE, "#cc6677"),
)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _as_vector(value: Evaluation | Sequence[float] | np.ndarray) -> np.ndarray:
    raw = getattr(value, "vector", value)
    vector = np.asarray(raw, dtype=np.float64)
    if vector.shape != (N_DIMS,):
        raise ValueError(f"a value vector has {N_DIMS} entries, got shape {vector.shape}")
    return vector


def _save(fig: Any, path: str | os.PathLike[str]) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def plot_vector(
    evaluation: Evaluation | Sequence[float] | np.ndarray,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> None:
    """Draw one value vector as horizontal bars, coloured by family, on a fixed [-1, 1] axis.

    Args:
        evaluation: An :class:`~progressgym.evaluation.Evaluation` or a bare 19-entry vector.
        path: The PNG to write.
        title: Figure title (default: the evaluated model's name, when known).
    """
    plt = _pyplot()
    vector = _as_vector(evaluation)
    fig, ax = plt.subplots(figsize=(7.5, 7))
    positions = np.arange(N_DIMS)[::-1]
    for family, dims, colour in FAMILY_COLOURS:
        ax.barh(positions[dims], vector[dims], color=colour, label=family)
    ax.set_yticks(positions, DIMENSIONS)
    ax.set_xlim(-1, 1)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("value (0 = indifferent)")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title if title is not None else getattr(evaluation, "model", "") or "value vector")
    _save(fig, path)


def plot_heatmap(
    vectors_by_century: Mapping[Any, Evaluation | Sequence[float] | np.ndarray],
    path: str | os.PathLike[str],
    *,
    title: str = "Values by century",
) -> None:
    """Draw centuries x dimensions as a heat map on a diverging colour scale centred on 0.

    Args:
        vectors_by_century: Row label (a century number such as ``13``, or any label) -> evaluation or vector,
            drawn top to bottom in mapping order.
        path: The PNG to write.
        title: Figure title.
    """
    if not vectors_by_century:
        raise ValueError("no vectors to plot")
    plt = _pyplot()
    labels = [f"C{key:03d}" if isinstance(key, int) else str(key) for key in vectors_by_century]
    matrix = np.stack([_as_vector(v) for v in vectors_by_century.values()])
    fig, ax = plt.subplots(figsize=(12, 1.2 + 0.45 * len(labels)))
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(np.arange(N_DIMS), DIMENSIONS, rotation=60, ha="right", fontsize="small")
    ax.set_yticks(np.arange(len(labels)), labels)
    for boundary in (RULE_SLICE.stop, FOUNDATION_SLICE.stop):
        ax.axvline(boundary - 0.5, color="black", linewidth=1)
    for row in range(matrix.shape[0]):
        for col in range(N_DIMS):
            ax.text(col, row, f"{matrix[row, col]:+.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, label="value (0 = indifferent)", fraction=0.025)
    ax.set_title(title)
    _save(fig, path)


__all__ = ["plot_heatmap", "plot_vector"]
