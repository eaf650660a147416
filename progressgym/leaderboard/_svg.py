"""The figures of a submission's page, drawn as inline SVG (no plotting library, no script, no network).

Every piece of text placed in a figure goes through :func:`html.escape`. Colours of lines and markers come from
CSS classes (``style.css``), so the figures follow the page's light or dark theme; only the heat map's cells
carry their colour as a ``fill`` attribute.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_NEGATIVE = (33, 102, 172)
_MIDDLE = (247, 247, 247)
_POSITIVE = (178, 24, 43)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _f(value: float) -> str:
    return f"{value:.1f}"


@dataclass(frozen=True)
class Series:
    """Points of one trajectory: a label per point (shown in tooltips) and its vector."""

    labels: tuple[str, ...]
    vectors: np.ndarray
    """Shape (points, dimensions)."""


def _open(width: float, height: float, label: str, css: str) -> str:
    return (
        f'<svg class="figure {css}" width="{_f(width)}" height="{_f(height)}" viewBox="0 0 {_f(width)} {_f(height)}" '
        'xmlns="http://www.w3.org/2000/svg" '
        f'role="img" aria-label="{_e(label)}"><title>{_e(label)}</title>'
    )


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """Project rows onto their first two principal components; also the share of variance each explains.

    The sign of each component is fixed (its largest loading is positive), so equal data gives an equal
    picture.
    """
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    _, sing, vt = np.linalg.svd(centred, full_matrices=False)
    basis = vt[:2].copy()
    for k in range(basis.shape[0]):
        if basis[k, int(np.argmax(np.abs(basis[k])))] < 0:
            basis[k] = -basis[k]
    projected = centred @ basis.T
    if projected.shape[1] < 2:
        projected = np.hstack([projected, np.zeros((projected.shape[0], 2 - projected.shape[1]))])
    total = float(np.sum(sing**2))
    shares = [float(s**2) / total if total > 0 else 0.0 for s in sing[:2]] + [0.0, 0.0]
    return projected, (shares[0], shares[1])


def trajectory_map(truth: Series, examinee: Series, proxy: Series | None = None) -> str:
    """The historical trajectory and the examinee's (and Coevolve's proxy's), in a 2-D PCA projection.

    The examinee's path starts at the first historical model, where every examinee starts.
    """
    width, height, pad, band = 720.0, 450.0, 48.0, 30.0
    parts = [truth.vectors, truth.vectors[:1], examinee.vectors]
    if proxy is not None:
        parts.append(proxy.vectors)
    points, (share1, share2) = pca_2d(np.vstack([p.reshape(-1, truth.vectors.shape[1]) for p in parts]))
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.where(hi - lo > 1e-12, hi - lo, 1.0)

    def xy(p: np.ndarray) -> tuple[float, float]:
        x = pad + (p[0] - lo[0]) / span[0] * (width - 2 * pad)
        y = height - pad - (p[1] - lo[1]) / span[1] * (height - 2 * pad - band)
        return x, y

    n_truth, n_exam = len(truth.vectors), len(examinee.vectors)
    t_pts = [xy(p) for p in points[:n_truth]]
    e_pts = [xy(p) for p in points[n_truth : n_truth + 1 + n_exam]]
    p_pts = [xy(p) for p in points[n_truth + 1 + n_exam :]]
    out = [
        _open(width, height, "Value trajectory: examinee against the historical models (PCA)", "trajectory")
    ]
    out.append(
        f'<rect class="frame" x="1" y="{_f(band)}" width="{_f(width - 2)}" height="{_f(height - band - 1)}" rx="6"/>'
    )
    out.append(
        f'<text class="axis-label" x="{_f(width / 2)}" y="{_f(height - 12)}" text-anchor="middle">'
        f"first principal component ({share1:.0%} of variance)</text>"
    )
    out.append(
        f'<text class="axis-label" x="16" y="{_f((height + band) / 2)}" text-anchor="middle" '
        f'transform="rotate(-90 16 {_f((height + band) / 2)})">second component ({share2:.0%})</text>'
    )

    def polyline(pts: Sequence[tuple[float, float]], css: str) -> str:
        coords = " ".join(f"{_f(x)},{_f(y)}" for x, y in pts)
        return f'<polyline class="{css}" points="{coords}"/>'

    out.append(polyline(t_pts, "line truth"))
    if p_pts:
        out.append(polyline(p_pts, "line proxy"))
    out.append(polyline(e_pts, "line examinee"))
    for (x, y), label in zip(t_pts, truth.labels, strict=True):
        out.append(
            f'<circle class="dot truth" cx="{_f(x)}" cy="{_f(y)}" r="5"><title>{_e(label)}</title></circle>'
        )
        out.append(f'<text class="point-label" x="{_f(x + 8)}" y="{_f(y - 8)}">{_e(label)}</text>')
    for (x, y), label in zip(p_pts, proxy.labels if proxy else (), strict=True):
        out.append(
            f'<rect class="dot proxy" x="{_f(x - 4)}" y="{_f(y - 4)}" width="8" height="8">'
            f"<title>{_e(label)}</title></rect>"
        )
    for (x, y), label in zip(e_pts[1:], examinee.labels, strict=True):
        out.append(
            f'<path class="cross examinee" d="M{_f(x - 5)},{_f(y - 5)}L{_f(x + 5)},{_f(y + 5)}'
            f'M{_f(x - 5)},{_f(y + 5)}L{_f(x + 5)},{_f(y - 5)}"><title>{_e(label)}</title></path>'
        )
    out.append(_legend(2, 14, proxy is not None))
    out.append("</svg>")
    return "".join(out)


def _legend(x: float, y: float, with_proxy: bool) -> str:
    """A one-row legend above the plot (text widths estimated at 7 px per character)."""
    items = [("truth", "historical models"), ("examinee", "examinee")]
    if with_proxy:
        items.append(("proxy", "simulated human proxy"))
    out = [f'<g class="legend" transform="translate({_f(x)} {_f(y)})">']
    offset = 0.0
    for css, text in items:
        out.append(f'<line class="line {css}" x1="{_f(offset)}" y1="0" x2="{_f(offset + 24)}" y2="0"/>')
        out.append(f'<text class="legend-text" x="{_f(offset + 30)}" y="4">{_e(text)}</text>')
        offset += 30 + 7 * len(text) + 22
    out.append("</g>")
    return "".join(out)


def panel_range(
    truth: np.ndarray,
    examinee: Sequence[tuple[int, np.ndarray]],
    proxy: Sequence[tuple[int, np.ndarray]] = (),
) -> tuple[float, float]:
    """The vertical range all dimension panels share: every value and 0, with a small margin."""
    values = [truth.ravel()] + [v for _, v in examinee] + [v for _, v in proxy]
    lo, hi = float(min(np.min(v) for v in values)), float(max(np.max(v) for v in values))
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    margin = max((hi - lo) * 0.08, 0.02)
    return lo - margin, hi + margin


def dimension_panels(
    dims: Sequence[str],
    centuries: Sequence[int],
    truth: np.ndarray,
    examinee: Sequence[tuple[int, np.ndarray]],
    proxy: Sequence[tuple[int, np.ndarray]] = (),
    columns: int = 4,
) -> str:
    """Small multiples: per dimension, the historical values over the centuries and the examinee's.

    Args:
        dims: Dimension names.
        centuries: The timeline's centuries (x axis).
        truth: Historical vectors, shape (centuries, dimensions).
        examinee: (century it is compared with, vector) per assessed step.
        proxy: (century, vector) of Coevolve's proxy after each step.
        columns: Panels per row.
    """
    pw, ph, gap, top = 178.0, 112.0, 14.0, 22.0
    rows = -(-len(dims) // columns)
    width = columns * pw + (columns - 1) * gap
    height = rows * (ph + top + gap)
    lo, hi = panel_range(truth, examinee, proxy)
    c_lo, c_hi = centuries[0], centuries[-1]
    c_span = max(c_hi - c_lo, 1)

    out = [
        _open(
            width, height, "Each value dimension over the centuries: historical models and examinee", "panels"
        )
    ]
    for d, name in enumerate(dims):
        ox = (d % columns) * (pw + gap)
        oy = (d // columns) * (ph + top + gap)

        def x(c: float, ox: float = ox) -> float:
            return ox + 4 + (c - c_lo) / c_span * (pw - 8)

        def y(v: float, oy: float = oy) -> float:
            return oy + top + (hi - v) / (hi - lo) * ph

        out.append(
            f'<g class="panel"><text class="panel-title" x="{_f(ox)}" y="{_f(oy + 14)}">{_e(name)}</text>'
        )
        out.append(
            f'<rect class="panel-bg" x="{_f(ox)}" y="{_f(oy + top)}" width="{_f(pw)}" height="{_f(ph)}" rx="3"/>'
        )
        out.append(
            f'<line class="zero" x1="{_f(ox)}" y1="{_f(y(0.0))}" x2="{_f(ox + pw)}" y2="{_f(y(0.0))}"/>'
        )
        truth_pts = " ".join(f"{_f(x(c))},{_f(y(float(truth[i, d])))}" for i, c in enumerate(centuries))
        out.append(f'<polyline class="line truth thin" points="{truth_pts}"/>')
        for i, c in enumerate(centuries):
            out.append(
                f'<circle class="dot truth" cx="{_f(x(c))}" cy="{_f(y(float(truth[i, d])))}" r="2.2">'
                f"<title>C{c:03d}: {float(truth[i, d]):+.3f}</title></circle>"
            )
        for css, series in (("proxy", proxy), ("examinee", examinee)):
            if not series:
                continue
            pts = " ".join(f"{_f(x(c))},{_f(y(float(v[d])))}" for c, v in series)
            out.append(f'<polyline class="line {css} thin" points="{pts}"/>')
            for c, v in series:
                out.append(
                    f'<circle class="dot {css}" cx="{_f(x(c))}" cy="{_f(y(float(v[d])))}" r="2.6">'
                    f"<title>{css} at C{c:03d}: {float(v[d]):+.3f}</title></circle>"
                )
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def _diverging(value: float, scale: float) -> str:
    t = max(-1.0, min(1.0, value / scale)) if scale > 0 else 0.0
    end = _POSITIVE if t > 0 else _NEGATIVE
    rgb = [round(m + (e - m) * abs(t)) for m, e in zip(_MIDDLE, end, strict=True)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def heat_map(
    dims: Sequence[str], columns: Sequence[str], diff: np.ndarray, groups: Sequence[int] = (10, 15)
) -> str:
    """Examinee minus truth, one row per dimension and one column per step (NaN: a forfeited step).

    Args:
        dims: Row labels (dimension names).
        columns: Column labels (the century each step is compared with).
        diff: Shape (dimensions, steps).
        groups: Row indices before which a separator is drawn (rules | foundations | worldviews).
    """
    label_w, cell_w, cell_h, head, legend_h = (
        200.0,
        max(28.0, min(56.0, 560.0 / max(len(columns), 1))),
        20.0,
        30.0,
        54.0,
    )
    width = label_w + cell_w * len(columns) + 16
    height = head + cell_h * len(dims) + legend_h
    finite = diff[np.isfinite(diff)]
    scale = max(float(np.max(np.abs(finite))) if finite.size else 0.0, 0.05)
    out = [_open(width, height, "Heat map: examinee minus truth, per dimension and step", "heatmap")]
    for j, label in enumerate(columns):
        cx = label_w + cell_w * (j + 0.5)
        out.append(
            f'<text class="col-label" x="{_f(cx)}" y="{_f(head - 10)}" text-anchor="middle">{_e(label)}</text>'
        )
    for i, name in enumerate(dims):
        cy = head + cell_h * i
        out.append(
            f'<text class="row-label" x="{_f(label_w - 8)}" y="{_f(cy + cell_h * 0.68)}" text-anchor="end">{_e(name)}</text>'
        )
        for j, label in enumerate(columns):
            value = float(diff[i, j])
            cx = label_w + cell_w * j
            if not np.isfinite(value):
                out.append(
                    f'<rect class="cell forfeited" x="{_f(cx)}" y="{_f(cy)}" width="{_f(cell_w)}" height="{_f(cell_h)}">'
                    f"<title>{_e(name)}, {_e(label)}: forfeited</title></rect>"
                )
                continue
            out.append(
                f'<rect class="cell" x="{_f(cx)}" y="{_f(cy)}" width="{_f(cell_w)}" height="{_f(cell_h)}" '
                f'fill="{_diverging(value, scale)}"><title>{_e(name)}, {_e(label)}: {value:+.3f}</title></rect>'
            )
    for g in groups:
        gy = head + cell_h * g
        out.append(f'<line class="separator" x1="0" y1="{_f(gy)}" x2="{_f(width - 16)}" y2="{_f(gy)}"/>')
    # Legend: a gradient drawn as a row of small cells, so no <defs> id can clash between figures.
    ly = head + cell_h * len(dims) + 16
    lx, lw, steps = label_w, min(280.0, cell_w * len(columns)), 28
    for k in range(steps):
        value = -scale + 2 * scale * (k + 0.5) / steps
        out.append(
            f'<rect x="{_f(lx + lw * k / steps)}" y="{_f(ly)}" width="{_f(lw / steps + 0.5)}" height="10" '
            f'fill="{_diverging(value, scale)}"/>'
        )
    out.append(f'<text class="legend-text" x="{_f(lx)}" y="{_f(ly + 26)}">{-scale:+.2f} (below truth)</text>')
    out.append(
        f'<text class="legend-text" x="{_f(lx + lw)}" y="{_f(ly + 26)}" text-anchor="end">{scale:+.2f} (above)</text>'
    )
    out.append("</svg>")
    return "".join(out)


def step_chart(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]]) -> str:
    """Per-step lines (cosine to the target, reward) over the steps; the axis ends at 1 and starts at or below 0."""
    width, height, left, right, top, bottom = 720.0, 220.0, 44.0, 16.0, 14.0, 30.0
    n = max(len(labels), 1)

    def x(j: int) -> float:
        return left + (j + 0.5) / n * (width - left - right)

    present = [v for _, values in series for v in values if v is not None]
    lo = max(-1.0, min(0.0, math.floor((min(present, default=0.0) - 0.05) * 10) / 10))
    ticks = [lo + (1.0 - lo) * k / 4 for k in range(5)]

    def y(v: float) -> float:
        return top + (1.0 - v) / (1.0 - lo) * (height - top - bottom)

    out = [_open(width, height, "Per-step similarity to the target", "steps")]
    for tick in ticks:
        css = "zero" if abs(tick) < 1e-12 else "grid"
        out.append(
            f'<line class="{css}" x1="{_f(left)}" y1="{_f(y(tick))}" x2="{_f(width - right)}" y2="{_f(y(tick))}"/>'
        )
        out.append(
            f'<text class="tick" x="{_f(left - 6)}" y="{_f(y(tick) + 4)}" text-anchor="end">{tick:.2g}</text>'
        )
    for j, label in enumerate(labels):
        out.append(
            f'<text class="tick" x="{_f(x(j))}" y="{_f(height - 10)}" text-anchor="middle">{_e(label)}</text>'
        )
    for css, values in series:
        pts = [(x(j), y(v)) for j, v in enumerate(values) if v is not None]
        if pts:
            out.append(
                f'<polyline class="line {css}" points="{" ".join(f"{_f(a)},{_f(b)}" for a, b in pts)}"/>'
            )
        for j, v in enumerate(values):
            if v is not None:
                out.append(
                    f'<circle class="dot {css}" cx="{_f(x(j))}" cy="{_f(y(v))}" r="3.5">'
                    f"<title>{_e(labels[j])}: {v:+.4f}</title></circle>"
                )
    out.append("</svg>")
    return "".join(out)


__all__ = ["Series", "dimension_panels", "heat_map", "panel_range", "pca_2d", "step_chart", "trajectory_map"]
