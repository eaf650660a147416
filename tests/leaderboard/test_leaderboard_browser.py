"""The built leaderboard in a real headless Chromium, opened from disk (file://), driven by Playwright.

Skipped when Debian's ``chromium`` (``/usr/bin/chromium``) or the ``playwright`` package is missing; Playwright's
own browser downloads are never used. Screenshots go to ``tmp_path`` and are copied to
``$PROGRESSGYM_SCREENSHOT_DIR`` (default: ``<tmp>/progressgym-screenshots``); the test prints where.
"""

import os
import shutil
import tempfile
from pathlib import Path

import leaderboard_synthetic as syn
import pytest

from progressgym.leaderboard.site import build_site

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs Debian's chromium at /usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.events = {"dialogs": [], "errors": [], "requests": []}
    page.on("dialog", lambda d: (page.events["dialogs"].append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: page.events["errors"].append(str(e)))
    page.on("console", lambda m: m.type == "error" and page.events["errors"].append(m.text))
    page.on("request", lambda r: page.events["requests"].append(r.url))
    yield page
    context.close()


def stable_copy(shot: Path, capsys) -> Path:
    folder = Path(
        os.environ.get("PROGRESSGYM_SCREENSHOT_DIR", Path(tempfile.gettempdir()) / "progressgym-screenshots")
    )
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / shot.name
    shutil.copyfile(shot, target)
    with capsys.disabled():
        print(f"\nscreenshot: {shot}\nscreenshot copy: {target}")
    return target


def column(page, table, index):
    return page.eval_on_selector_all(
        f"{table} tbody tr", f"rows => rows.map(r => r.cells[{index}].getAttribute('data-sort'))"
    )


def test_leaderboard_in_a_browser(page, tmp_path, capsys):
    syn.sample_set(tmp_path / "subs")
    result = build_site(tmp_path / "subs", tmp_path / "site", check_refs=False)
    page.goto((tmp_path / "site" / "index.html").as_uri())
    page.wait_for_load_state("load")
    follow = "#follow-v0 table"

    # Ranked by the recomputed score.
    scores = [float(v) for v in column(page, follow, 2)]
    assert scores == sorted(scores, reverse=True) and len(scores) == 5
    assert page.get_attribute(f"{follow} th:nth-child(3)", "aria-sort") == "descending"

    # Clicking a header re-sorts; clicking it again reverses.
    page.click(f"{follow} th:nth-child(3) button")
    assert [float(v) for v in column(page, follow, 2)] == sorted(scores)
    assert page.get_attribute(f"{follow} th:nth-child(3)", "aria-sort") == "ascending"
    page.click(f"{follow} th:nth-child(4) button")
    distances = [float(v) for v in column(page, follow, 3)]
    assert distances == sorted(distances) and distances[0] == 0.0
    page.click(f"{follow} th:nth-child(2) button")
    names = column(page, follow, 1)
    assert names == sorted(names) and names[0].startswith("<script>")
    page.click(f"{follow} th:nth-child(2) button")
    assert column(page, follow, 1) == sorted(names, reverse=True)
    assert page.get_attribute(f"{follow} th:nth-child(3)", "aria-sort") is None

    # The hostile submission is text: nothing ran, and its name appears literally.
    assert page.evaluate("typeof window.__pwned") == "undefined"
    link = page.locator(f"{follow} td.algorithm a", has_text="window.__pwned")
    assert link.inner_text() == syn.SCRIPT_NAME
    page.click(f"{follow} th:nth-child(3) button")  # back to best first for the picture
    index_shot = tmp_path / "leaderboard-index.png"
    page.screenshot(path=str(index_shot), full_page=True)
    stable_copy(index_shot, capsys)

    # Its detail page: the plot is drawn, the notes are text, still nothing ran.
    link.click()
    page.wait_for_load_state("load")
    assert page.locator("h1.algo-name").inner_text().startswith(syn.SCRIPT_NAME)
    assert page.locator(".notes p").inner_text() == syn.IMG_NOTE
    trajectory = page.locator("svg.figure.trajectory")
    assert trajectory.is_visible()
    box = trajectory.bounding_box()
    assert box is not None and box["width"] > 400 and box["height"] > 200
    assert page.locator("svg.trajectory polyline.examinee").count() == 1
    assert page.locator("svg.trajectory .cross.examinee").count() == 8
    assert page.locator("svg.heatmap rect.cell").count() == 19 * 8
    assert page.evaluate("typeof window.__pwned") == "undefined"
    detail_shot = tmp_path / "leaderboard-detail.png"
    page.screenshot(path=str(detail_shot), full_page=True)
    stable_copy(detail_shot, capsys)

    assert page.events["dialogs"] == []
    assert page.events["errors"] == []
    assert all(url.startswith("file://") for url in page.events["requests"]), page.events["requests"]
    assert len(result.entries) == 8
