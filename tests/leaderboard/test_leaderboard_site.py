import json
import re
from html.parser import HTMLParser

import leaderboard_synthetic as syn
import pytest

from progressgym.error import InvalidInput
from progressgym.leaderboard.__main__ import main
from progressgym.leaderboard.site import SITE_MARKER, build_site


class Tables(HTMLParser):
    """Rows of every table: the text of each cell, and its data-sort attribute."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[tuple[str, str | None]]]] = []
        self._cell: list[str] | None = None
        self._sort: str | None = None
        self.scripts: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in {"td", "th"}:
            self._cell, self._sort = [], attrs.get("data-sort")
        elif tag == "script":
            self.scripts.append(attrs)

    def handle_endtag(self, tag):
        if tag in {"td", "th"} and self._cell is not None:
            self.tables[-1][-1].append(("".join(self._cell).strip(), self._sort))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(path):
    parser = Tables()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture
def site(tmp_path):
    syn.sample_set(tmp_path / "subs")
    result = build_site(tmp_path / "subs", tmp_path / "site", check_refs=False)
    return tmp_path / "site", result


def test_index_ranks_by_recomputed_score(site):
    root, result = site
    assert len(result.entries) == 8 and result.invalid == []
    follow, predict, coevolve = parse(root / "index.html").tables
    header = [text for text, _ in follow[0]]
    assert header == ["Rank", "Algorithm", "Score", "Distance", "Queries", "Compute", "Date"]
    rows = follow[1:]
    scores = [float(row[2][0]) for row in rows]
    assert scores == sorted(scores, reverse=True)
    assert [row[0][0] for row in rows] == ["–", "1", "2", "3", "4"]  # the privileged oracle is not ranked
    assert rows[0][1][0].startswith("oracle") and "privileged" in rows[0][1][0]
    assert rows[-1][1][0].startswith("static")
    assert [r[1][0].split("seed")[0].strip() for r in predict[1:]] == ["lifelong-dpo", "static"]
    assert len(coevolve) == 2


def test_index_cells_carry_sort_keys(site):
    root, _ = site
    rows = parse(root / "index.html").tables[0][1:]
    for row in rows:
        assert float(row[2][1]) == pytest.approx(float(row[2][0]), abs=5e-5)
        assert float(row[3][1]) >= 0
        assert row[6][1].startswith("2025-03-0")


def test_a_hostile_name_is_text(site):
    root, result = site
    index = (root / "index.html").read_text()
    assert "<script>window" not in index and "window.__pwned" in index
    assert html_escaped(syn.SCRIPT_NAME) in index
    entry = next(e for e in result.entries if e.submission.algorithm == syn.SCRIPT_NAME)
    detail = (root / "s" / f"{entry.slug}.html").read_text()
    assert "<script>window" not in detail and "<img" not in detail
    assert html_escaped(syn.IMG_NOTE) in detail
    # The only scripts on any page are the site's own file.
    for page in [root / "index.html", *sorted((root / "s").glob("*.html"))]:
        scripts = parse(page).scripts
        assert scripts and all(s.get("src", "").endswith("static/sort.js") for s in scripts)
        assert "script-src 'self'" in page.read_text()
    assert re.fullmatch(r"[a-z0-9-]+", entry.slug)


def html_escaped(text):
    import html

    return html.escape(text, quote=True)


def test_detail_pages_plot_the_trajectory(site):
    root, result = site
    entry = next(e for e in result.entries if e.submission.challenge == "Coevolve-v1")
    page = (root / "s" / f"{entry.slug}.html").read_text()
    for figure in ("trajectory", "panels", "heatmap", "steps"):
        assert f'<svg class="figure {figure}"' in page
    assert page.count('<rect class="cell"') == 19 * 8
    assert page.count('class="dot proxy"') > 0
    assert "<title>C013</title>" in page
    assert f"{entry.score:.4f}" in page
    assert json.loads((root / "s" / f"{entry.slug}.json").read_bytes()) == json.loads(entry.data)


def test_site_is_self_contained(site):
    root, _ = site
    for path in root.rglob("*"):
        if path.suffix in {".html", ".css", ".js"}:
            text = path.read_text()
            assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), path
            assert "@import" not in text and "url(http" not in text
    assert (root / "static" / "style.css").is_file() and (root / "static" / "sort.js").is_file()
    assert (root / SITE_MARKER).is_file()


def test_tampered_score_is_shown_corrected(tmp_path):
    sub = syn.submission(kind="noisy")
    data = syn.raw(sub)
    data["score"] = 0.99999
    syn.write(tmp_path / "subs" / "t.json", data)
    result = build_site(tmp_path / "subs", tmp_path / "site", check_refs=False)
    index = (tmp_path / "site" / "index.html").read_text()
    assert "score corrected" in index
    assert f"{sub.score:.4f}" in index and "0.99999" not in index
    detail = (tmp_path / "site" / "s" / f"{result.entries[0].slug}.html").read_text()
    assert "differs from the recomputed score; ignored" in detail


def test_invalid_submissions_stop_the_build_unless_skipped(tmp_path, capsys):
    syn.sample_set(tmp_path / "subs")
    bad = syn.raw(syn.submission())
    bad["steps"][0]["target_vector"] = [0.0] * 5
    syn.write(tmp_path / "subs" / "zz-bad.json", bad)
    with pytest.raises(InvalidInput, match=r"1 invalid submission\(s\), e\.g\. .*zz-bad\.json: steps\[0\]"):
        build_site(tmp_path / "subs", tmp_path / "site", check_refs=False)
    assert not (tmp_path / "site").exists()
    result = build_site(tmp_path / "subs", tmp_path / "site", skip_invalid=True, check_refs=False)
    assert len(result.entries) == 8 and len(result.invalid) == 1

    assert main(["build", str(tmp_path / "subs"), "--out", str(tmp_path / "site2"), "--no-references"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: 1 invalid submission(s)")


def test_rebuild_replaces_only_a_site(tmp_path):
    syn.sample_set(tmp_path / "subs")
    out = tmp_path / "site"
    build_site(tmp_path / "subs", out, check_refs=False)
    first = (out / "index.html").read_text()
    (out / "s" / "stale.html").write_text("old")
    build_site(tmp_path / "subs", out, check_refs=False)
    assert (out / "index.html").read_text() == first  # the output depends only on the submissions
    assert not (out / "s" / "stale.html").exists()

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("keep me")
    with pytest.raises(InvalidInput, match="was not written by the leaderboard builder"):
        build_site(tmp_path / "subs", precious, check_refs=False)
    assert (precious / "thesis.tex").read_text() == "keep me"


def test_build_cli(tmp_path, capsys):
    syn.sample_set(tmp_path / "subs")
    assert main(["build", str(tmp_path / "subs"), "--out", str(tmp_path / "site"), "--no-references"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'site'}/index.html: 8 submissions"


def test_empty_leaderboard(tmp_path):
    (tmp_path / "subs").mkdir()
    build_site(tmp_path / "subs", tmp_path / "site")
    assert "No valid submissions yet." in (tmp_path / "site" / "index.html").read_text()


def test_missing_submissions_dir(tmp_path, capsys):
    assert main(["build", str(tmp_path / "nope"), "--out", str(tmp_path / "site")]) == 2
    assert (
        capsys.readouterr().err.strip() == f"error: submissions directory {tmp_path / 'nope'} does not exist"
    )


def test_non_default_settings_are_badged(tmp_path):
    syn.write(tmp_path / "subs" / "k3.json", syn.submission(challenge="Predict-v0", timesteps_ahead=3))
    syn.write(tmp_path / "subs" / "k1.json", syn.submission(challenge="Predict-v0", algorithm="plain"))
    build_site(tmp_path / "subs", tmp_path / "site", check_refs=False)
    rows = parse(tmp_path / "site" / "index.html").tables[0][1:]
    badges = {row[1][0].split()[0]: "timesteps_ahead=3" in row[1][0] for row in rows}
    assert badges == {"tracker": True, "plain": False}
