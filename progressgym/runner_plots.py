"""``trajectory.png``: how the examinee's values moved compared with the historical models'."""

from __future__ import annotations

import io
import os

import numpy as np

from progressgym._paths import atomic_write_bytes
from progressgym.log import RunResult
from progressgym.timeline import century_code


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """Project row vectors onto their first two principal components (fewer rows give zero columns)."""
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    basis = vt[:2]
    # A fixed sign per component, so the same data always gives the same picture.
    for k in range(basis.shape[0]):
        pivot = int(np.argmax(np.abs(basis[k])))
        if basis[k, pivot] < 0:
            basis[k] = -basis[k]
    projected = centred @ basis.T
    if projected.shape[1] < 2:
        projected = np.hstack([projected, np.zeros((projected.shape[0], 2 - projected.shape[1]))])
    return projected


def _grouped_labels(labels: list[str], points: np.ndarray) -> list[tuple[str, tuple[float, float]]]:
    """One label per distinct point: ``C014`` or, for a point held over several steps, ``C014-C021``."""
    groups: dict[tuple[float, float], list[str]] = {}
    for label, (px, py) in zip(labels, points, strict=True):
        groups.setdefault((round(float(px), 6), round(float(py), 6)), []).append(label)
    return [(names[0] if len(names) == 1 else f"{names[0]}-{names[-1]}", xy) for xy, names in groups.items()]


def plot_trajectory(result: RunResult, path: str | os.PathLike[str]) -> None:
    """Write the trajectory figure of a run (PNG, atomically).

    Left: per-step cosine similarity and Euclidean distance to the target, by century. Right: a 2-D PCA
    projection of the historical vectors, the examinee's vectors (and Coevolve's proxy vectors), with
    century labels.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [s for s in result.steps if s.examinee_vector is not None]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    title = f"{result.challenge}, {result.algorithm} on {result.timeline}: score {result.score:.4f}"
    if result.privileged:
        title += " (privileged reference)"
    fig.suptitle(title)

    labels = [century_code(s.century) for s in steps]
    x = np.arange(len(steps))
    left.plot(x, [s.cosine for s in steps], marker="o", label="cosine to target")
    left.plot(x, [s.distance for s in steps], marker="s", label="distance to target")
    if any(s.proxy_vector is not None for s in steps):
        left.plot(x, [s.reward for s in steps], marker="^", label="proxy suffix-max similarity")
    left.set_xticks(x, labels)
    left.set_xlabel("present century (step)")
    left.axhline(0.0, color="grey", linewidth=0.5)
    left.legend(loc="best", fontsize=8)
    left.set_title("per step")

    codes = sorted(result.truth_vectors)
    truth = np.array([result.truth_vectors[c] for c in codes], dtype=np.float64)
    examinee = np.array([s.examinee_vector for s in steps], dtype=np.float64).reshape(len(steps), -1)
    proxies = np.array(
        [s.proxy_vector for s in steps if s.proxy_vector is not None], dtype=np.float64
    ).reshape(-1, truth.shape[1])
    points = pca_2d(np.vstack([truth, examinee.reshape(-1, truth.shape[1]), proxies]))
    t_pts = points[: len(truth)]
    e_pts = points[len(truth) : len(truth) + len(examinee)]
    p_pts = points[len(truth) + len(examinee) :]
    right.plot(t_pts[:, 0], t_pts[:, 1], "-o", color="black", label="historical models")
    for code, (px, py) in zip(codes, t_pts, strict=True):
        right.annotate(code, (px, py), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if len(e_pts):
        right.plot(e_pts[:, 0], e_pts[:, 1], "--x", color="tab:red", label="examinee")
        for text, (px, py) in _grouped_labels(labels, e_pts):
            right.annotate(
                text, (px, py), textcoords="offset points", xytext=(4, -10), fontsize=7, color="tab:red"
            )
    if len(p_pts):
        right.plot(p_pts[:, 0], p_pts[:, 1], ":^", color="tab:green", label="human proxy")
        proxy_labels = [century_code(s.century) for s in steps if s.proxy_vector is not None]
        for label, (px, py) in _grouped_labels(proxy_labels, p_pts):
            right.annotate(
                label, (px, py), textcoords="offset points", xytext=(-28, 4), fontsize=7, color="tab:green"
            )
    right.set_xlabel("PC 1")
    right.set_ylabel("PC 2")
    right.legend(loc="best", fontsize=8)
    right.set_title("value vectors (PCA)")

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


__all__ = ["pca_2d", "plot_trajectory"]
