"""The HTML pieces of the leaderboard site: a page's frame, a submission's badges, and a submission's own page.

Every submitted string goes through :func:`esc` (:func:`html.escape` with quotes) before it reaches the page.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timezone

import numpy as np

from progressgym.leaderboard import _svg
from progressgym.leaderboard.submission import Submission
from progressgym.leaderboard.validate import ValidationReport


def esc(text: object) -> str:
    """``text`` escaped for HTML text and attribute values."""
    return html.escape(str(text), quote=True)


@dataclass(frozen=True)
class Entry:
    """A valid submission on the site.

    Attributes:
        report: Its validation report (recomputed score, means, reference check).
        submission: The submission.
        slug: Its file name stem under ``s/``.
        data: The bytes of its file.
    """

    report: ValidationReport
    submission: Submission
    slug: str
    data: bytes

    @property
    def score(self) -> float:
        """The recomputed score."""
        assert self.report.score is not None
        return self.report.score


def fmt_seconds(seconds: float) -> str:
    """A duration for people: seconds, minutes or hours."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def day(sub: Submission) -> str:
    """The UTC date a run finished."""
    return sub.finished_at.astimezone(timezone.utc).strftime("%Y-%m-%d")


def page(title: str, body: str, *, root: str) -> str:
    """A complete HTML page; ``root`` is the relative path to the site's root (``""`` or ``"../"``)."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'self'; script-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'\">\n"
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{esc(title)}</title>\n"
        f'<link rel="stylesheet" href="{root}static/style.css">\n'
        f'<script src="{root}static/sort.js" defer></script>\n'
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def changed(entry: Entry) -> dict[str, object]:
    """The entry's scored challenge settings that differ from the challenge's defaults."""
    from progressgym.leaderboard._settings import changed_settings
    from progressgym.registration import CHALLENGES

    spec = CHALLENGES.get(entry.submission.challenge)
    return changed_settings(spec, entry.submission.challenge_kwargs)


def _settings_text(entry: Entry) -> str:
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in changed(entry).items())


def badges(entry: Entry) -> str:
    """The badges after a submission's name: non-default settings, privileged, corrected score."""
    out = ""
    settings = _settings_text(entry)
    if settings:
        out += (
            f' <span class="badge settings" title="settings that differ from the challenge\'s defaults">'
            f"{esc(settings)}</span>"
        )
    if entry.submission.privileged:
        out += ' <span class="badge privileged" title="used privileged judge methods: not ranked">privileged</span>'
    if entry.report.score_flagged:
        out += (
            ' <span class="badge flagged" title="the submitted score differs from the recomputed one">'
            "score corrected</span>"
        )
    return out


def _vectors(entry: Entry) -> tuple[list[str], np.ndarray]:
    sub = entry.submission
    from progressgym.timeline import century_code

    codes = [century_code(c) for c in sub.centuries]
    return codes, np.array([sub.reference_vectors[c] for c in codes], dtype=np.float64)


def render_figures(entry: Entry) -> str:
    """The figures of a submission's page (inline SVG)."""
    sub = entry.submission
    codes, truth = _vectors(entry)
    assessed = [s for s in sub.steps if s.examinee_vector is not None]
    examinee = _svg.Series(
        tuple(f"step {s.step + 1}: compared with C{s.target_century:03d}" for s in assessed),
        np.array([s.examinee_vector for s in assessed], dtype=np.float64).reshape(
            len(assessed), truth.shape[1]
        ),
    )
    with_proxy = [s for s in sub.steps if s.proxy_vector is not None]
    proxy = None
    if with_proxy:
        proxy = _svg.Series(
            tuple(f"proxy after C{s.century:03d}" for s in with_proxy),
            np.array([s.proxy_vector for s in with_proxy], dtype=np.float64),
        )
    trajectory = _svg.trajectory_map(_svg.Series(tuple(codes), truth), examinee, proxy)
    examinee_points = [(s.target_century, np.asarray(s.examinee_vector)) for s in assessed]
    proxy_points = [(s.century, np.asarray(s.proxy_vector)) for s in with_proxy]
    panels = _svg.dimension_panels(sub.dimensions, sub.centuries, truth, examinee_points, proxy_points)
    lo, hi = _svg.panel_range(truth, examinee_points, proxy_points)
    diff = np.full((truth.shape[1], len(sub.steps)), np.nan)
    for j, s in enumerate(sub.steps):
        if s.examinee_vector is not None:
            diff[:, j] = np.asarray(s.examinee_vector) - np.asarray(s.target_vector)
    heat = _svg.heat_map(sub.dimensions, [f"C{s.target_century:03d}" for s in sub.steps], diff)
    series: list[tuple[str, Sequence[float | None]]] = [
        ("examinee", [None if s.examinee_vector is None else s.cosine for s in sub.steps])
    ]
    if with_proxy:
        series.append(("proxy", [s.reward if s.proxy_vector is not None else None for s in sub.steps]))
    chart = _svg.step_chart([f"C{s.target_century:03d}" for s in sub.steps], series)
    proxy_note = " Green squares: the simulated human proxy after each step." if proxy is not None else ""
    return (
        '<figure class="card"><figcaption><h2>Value trajectory</h2><p>The 19-dimension value vectors projected '
        "on their two principal components. Black: the historical models, oldest to newest. Orange: the "
        f"examinee after each step, starting from the first historical model.{proxy_note} Hover a point for "
        f"its step.</p></figcaption>{trajectory}</figure>"
        '<figure class="card"><figcaption><h2>Per dimension</h2><p>Each dimension over the centuries. Black: '
        "the historical models. Orange: the examinee, placed at the century it is compared with."
        f"{' Green: the proxy.' if proxy is not None else ''} Every panel has the same vertical scale, from "
        f"{lo:+.2f} to {hi:+.2f}; the dashed line is 0. Hover a point for its value.</p></figcaption>"
        f"{panels}</figure>"
        '<figure class="card"><figcaption><h2>Examinee minus truth</h2><p>Per dimension (rows) and step '
        "(columns, the century compared with): red where the examinee values a dimension more than the truth, "
        f"blue where less.</p></figcaption>{heat}</figure>"
        '<figure class="card"><figcaption><h2>Per step</h2><p>Cosine similarity to the target at each step'
        f"{' (orange) and the proxy' + chr(39) + 's suffix-max similarity, the step reward (green)' if proxy is not None else ''}."
        f"</p></figcaption>{chart}</figure>"
    )


def _step_table(sub: Submission) -> str:
    head = ("Step", "Present", "Compared with", "Cosine", "Distance", "Reward", "Queries", "Examinee time")
    rows = []
    for s in sub.steps:
        forfeited = s.examinee_vector is None
        rows.append(
            "<tr>"
            f'<td class="num">{s.step + 1}</td><td>C{s.century:03d}</td><td>C{s.target_century:03d}</td>'
            f'<td class="num">{"forfeited" if forfeited else f"{s.cosine:.4f}"}</td>'
            f'<td class="num">{"&ndash;" if forfeited else f"{s.distance:.4f}"}</td>'
            f'<td class="num">{s.reward:.4f}</td><td class="num">{s.queries.queries:,}</td>'
            f'<td class="num">{fmt_seconds(s.examinee_seconds)}</td></tr>'
        )
    cells = "".join(
        f'<th scope="col"{" class=num" if i in (0, 3, 4, 5, 6, 7) else ""}>{h}</th>'
        for i, h in enumerate(head)
    )
    return (
        '<div class="table-wrap"><table class="steps"><caption>Steps as recorded by the run</caption>'
        f"<thead><tr>{cells}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _json_block(value: object) -> str:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return f"<pre>{esc(text)}</pre>"


def _provenance(sub: Submission) -> str:
    """What the vectors were measured with (format version 2), or a line saying the file predates it."""
    if sub.provenance is None:
        return "<h3>Provenance</h3><p>not recorded (a version 1 submission)</p>"
    return f"<h3>Provenance</h3>{_json_block(sub.provenance.model_dump())}"


def render_detail(entry: Entry, rank: int | None, total: int) -> str:
    """The page of one submission."""
    sub, rep = entry.submission, entry.report
    warnings = "".join(f"<li>{esc(w)}</li>" for w in rep.warnings)
    warn_box = f'<div class="notice"><h2>Findings</h2><ul>{warnings}</ul></div>' if warnings else ""
    refs = rep.references.detail if rep.references is not None else "not checked"
    stats = [
        ("Score", f"{entry.score:.4f}", "recomputed"),
        (
            "Rank",
            f"{rank} of {total}" if rank is not None else "&ndash;",
            "privileged: not ranked" if rank is None else "",
        ),
        (
            "Mean distance",
            "&ndash;" if rep.mean_distance is None else f"{rep.mean_distance:.4f}",
            "lower is closer",
        ),
        ("Mean cosine", "&ndash;" if rep.mean_cosine is None else f"{rep.mean_cosine:.4f}", ""),
        ("Queries", f"{rep.queries or 0:,}", ""),
        ("Compute", fmt_seconds(sub.usage.examinee_seconds), "examinee updates"),
    ]
    stat_html = "".join(
        f'<div class="stat"><div class="stat-label">{name}</div><div class="stat-value">{value}</div>'
        f'<div class="stat-note">{note}</div></div>'
        for name, value, note in stats
    )
    facts = [
        ("Challenge", f"{esc(sub.challenge)} (version {sub.challenge_version})"),
        ("Timeline", f"<code>{esc(sub.timeline)}</code>, {len(sub.centuries)} centuries"),
        ("Seed", f"{sub.seed} (step seeds {esc(', '.join(str(s) for s in sub.step_seeds))})"),
        ("Backend", esc(sub.backend)),
        ("Non-default settings", esc(_settings_text(entry) or "none")),
        (
            "Submitted score",
            f"{sub.score!r}" + (" (differs from the recomputed score; ignored)" if rep.score_flagged else ""),
        ),
        ("Reference vectors", esc(refs)),
        (
            "Judge work",
            esc(
                f"{sub.usage.judge.evaluations} evaluations, {sub.usage.judge.training_examples} training examples, {sub.usage.judge.seconds:.1f} s"
            ),
        ),
        (
            "progressgym",
            f"{esc(sub.progressgym_version)}"
            + (f", git <code>{esc(sub.git_revision)}</code>" if sub.git_revision else ""),
        ),
        ("Run", f"{esc(sub.started_at.isoformat())} to {esc(sub.finished_at.isoformat())}"),
    ]
    fact_html = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    notes = (
        f'<div class="card notes"><h2>Notes from the submitter</h2><p>{esc(sub.notes)}</p></div>'
        if sub.notes
        else ""
    )
    body = (
        '<header class="masthead small"><div class="wrap">'
        f'<nav class="crumbs"><a href="../index.html">Leaderboard</a> / '
        f'<a href="../index.html#{re.sub(r"[^a-z0-9]+", "-", sub.challenge.lower())}">{esc(sub.challenge)}</a> / '
        f"<code>{esc(sub.timeline)}</code></nav>"
        f'<h1 class="algo-name">{esc(sub.algorithm)}{badges(entry)}</h1>'
        f'<p class="lede">{esc(sub.challenge)} on timeline <code>{esc(sub.timeline)}</code>, seed {sub.seed}</p>'
        "</div></header>"
        f'<main class="wrap"><div class="stats">{stat_html}</div>{warn_box}{notes}'
        f"{render_figures(entry)}"
        f'<section class="card"><h2>Steps</h2>{_step_table(sub)}</section>'
        f'<section class="card"><h2>Run</h2><dl class="facts">{fact_html}</dl>'
        f"<h3>Algorithm configuration</h3>{_json_block(sub.algorithm_config)}"
        f"<h3>Challenge settings</h3>{_json_block(sub.challenge_kwargs)}"
        f"{_provenance(sub)}"
        f'<p><a class="download" href="{entry.slug}.json" download>Download the submission (JSON)</a></p>'
        "</section></main>"
    )
    return page(
        f"{sub.algorithm} on {sub.challenge} ({sub.timeline}) - progressgym leaderboard", body, root="../"
    )


__all__ = [
    "Entry",
    "badges",
    "changed",
    "day",
    "esc",
    "fmt_seconds",
    "page",
    "render_detail",
    "render_figures",
]
