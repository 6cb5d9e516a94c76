"""The web UI in a real browser: Debian's headless Chromium driven by Playwright, against
``reelgraph ui`` started on a free loopback port with the tiny model.

Screenshots go to ``tmp_path``; with ``REELGRAPH_UI_SCREENSHOTS=DIR`` they go to DIR (that is
how ``docs/ui-*.png`` were made: ``REELGRAPH_UI_SCREENSHOTS=docs pytest tests/test_webui_browser.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.ui_server import ui_server

pytestmark = pytest.mark.slow
playwright_api = pytest.importorskip("playwright.sync_api", reason="the ui extra is not installed")
CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():  # .ci/run installs it; a bare checkout may not have it
    pytest.skip(
        "Chromium is not installed at /usr/bin/chromium (.ci/run installs it)", allow_module_level=True
    )
PROMPT = "a red ball rolls to the right"
TIMEOUT_MS = 180_000  # generous: the CI machine may be shared; a pass takes seconds
VIDEO_READY = """(selector) => { const v = document.querySelector(selector + ' video');
    return v !== null && v.readyState >= 2 && v.currentSrc !== '' ? v.currentSrc : false; }"""


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    chosen = os.environ.get("REELGRAPH_UI_SCREENSHOTS")
    return Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir):
    """The app on the tiny model in a fresh data directory; yields its URL and runs folder.

    For the screenshots in docs/ the same flows ran on the embedded model over a toy pool:
    ``REELGRAPH_UI_TEST_HOME`` (a data directory with a pool), ``REELGRAPH_UI_TEST_MODEL=toy``,
    ``REELGRAPH_UI_TEST_STEPS``, ``REELGRAPH_UI_TEST_FRAMES`` (README, "The web UI").
    """
    env = os.environ.get
    home = Path(env("REELGRAPH_UI_TEST_HOME") or tmp_path_factory.mktemp("ui-home"))
    runs = tmp_path_factory.mktemp("ui-runs")
    args = ["--share-dir", str(runs), "--model", env("REELGRAPH_UI_TEST_MODEL") or str(tiny_model_dir)]
    args += [
        "--steps",
        env("REELGRAPH_UI_TEST_STEPS") or "2",
        "--frames",
        env("REELGRAPH_UI_TEST_FRAMES") or "4",
    ]
    with ui_server(home, *args) as url:
        yield url, runs


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server[0])
    page.wait_for_selector("#message textarea")
    yield page
    page.screenshot(path=str(tmp_path / "last.png"), full_page=True)  # what the page showed at the end
    context.close()


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _send(page, text: str) -> None:
    page.locator("#message textarea").fill(text)
    page.locator("#send").click()


def _status(page, text: str) -> None:
    page.wait_for_function(
        "(text) => document.querySelector('#status').innerText.includes(text)", arg=text, timeout=TIMEOUT_MS
    )


def _video(page, selector: str, other_than: str | None = None) -> str:
    """Wait until the video element under ``selector`` can play (readyState >= 2), a new one if asked."""
    source = page.wait_for_function(
        f"([selector, old]) => {{ const ready = ({VIDEO_READY})(selector); return ready && ready !== old ? ready : false; }}",
        arg=[selector, other_than or ""],
        timeout=TIMEOUT_MS,
    ).json_value()
    return source


def test_chat_plans_then_generates_edits_and_the_gallery_keeps_both(page, server, shots):
    _tab(page, "Chat")
    _send(page, PROMPT)
    _status(page, "Planned (turn 1)")
    table = page.locator("#plan-table")
    for word in ("units", "references", "noise", "sampling", "extension", "planned"):
        assert word in table.inner_text()
    runs = server[1]
    assert not runs.exists() or not any(runs.iterdir())  # a plan writes no run folder
    page.screenshot(path=str(shots / "ui-chat-plan.png"), full_page=True)

    page.locator("#generate").click()
    first = _video(page, "#video")
    _status(page, "Generated turn 1")
    page.locator("#sheet img").wait_for()
    assert page.locator("#downloads a[href*='video.mp4']").count() == 1
    page.screenshot(path=str(shots / "ui-video.png"), full_page=True)

    _send(page, "now the ball is blue")
    _status(page, "Planned (turn 2)")
    assert "blue ball" in page.locator("#plan-notes").inner_text()
    page.locator("#generate").click()
    second = _video(page, "#video", other_than=first)
    assert second != first
    assert len([p for p in runs.iterdir() if (p / "manifest.json").is_file()]) == 2

    page.reload()
    _tab(page, "Gallery")
    page.wait_for_function("() => document.querySelectorAll('#gallery img').length >= 2")
    assert "now the ball is blue" in page.locator("#chatbot").inner_text()  # the session came back
    page.locator("#gallery img").first.click()
    _video(page, "#run-video")
    _status(page, "Opened")
    page.screenshot(path=str(shots / "ui-gallery.png"), full_page=True)


def test_a_storyboard_of_two_scenes_is_split_planned_and_generated(page, shots):
    _tab(page, "Storyboard")
    page.locator("#story-text textarea").fill("a red ball rolls to the right. then a blue square bounces.")
    page.locator("#split").click()
    _status(page, "2 scene(s)")
    assert "blue square" in page.locator("#scenes").inner_text()
    page.locator("#story-plan").click()
    _status(page, "Planned 2 scene(s)")
    page.screenshot(path=str(shots / "ui-storyboard.png"), full_page=True)
    page.locator("#story-generate").click()
    _video(page, "#story-video")
    _status(page, "Generated 2 scene(s)")


def test_a_cancelled_run_leaves_a_resumable_folder_that_the_gallery_resumes(page, server):
    _tab(page, "Model and settings")
    steps = page.locator("#steps input")
    steps.fill("40")
    steps.press("Enter")
    _tab(page, "Chat")
    page.locator("#session input, #session textarea").first.fill("cancel-test")
    _send(page, "a green square slides to the left")
    _status(page, "Planned (turn 1)")
    page.locator("#generate").click()
    page.wait_for_function("() => /\\d+\\/40 steps/.test(document.querySelector('#status').innerText)")
    page.locator("#cancel").click()
    _status(page, "Cancelled")
    left = [p for p in server[1].iterdir() if (p / ".resume" / "settings.json").is_file()]
    assert len(left) == 1 and not (left[0] / "manifest.json").exists()

    _tab(page, "Gallery")
    page.locator("#refresh").click()
    page.locator("#run-name input").click()
    page.locator("#run-name ul li, ul[role=listbox] li").filter(has_text="[interrupted]").first.click()
    _status(page, "interrupted")
    page.locator("#resume").click()
    _status(page, "Resumed and finished")
    _video(page, "#run-video")
    assert (left[0] / "manifest.json").is_file() and not (left[0] / ".resume").exists()
