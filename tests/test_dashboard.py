"""The dashboard in a real headless Chromium (Debian's chromium + chromium-driver, driven
by selenium with the system binaries: no browser is downloaded), against a real editor.

The page loads, lists an agent that connects during the test, shows the `stopped` event
of a breakpoint hit, the breakpoint and the diagnostics counts. A screenshot is saved
under the test's tmp dir.
"""

from __future__ import annotations

import http.client
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import REPO, Editor
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from sidecar.api.dashboard import DASHBOARD_STATE
from sidecar.client.client import BridgeClient
from sidecar.errors import RequestError

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1400,1100",
)
MAIN = "res://demo/main.gd"
ERRORS_GD = "res://demo/errors.gd"
MAIN_GD = (REPO / "demo" / "main.gd").read_text().splitlines()
COUNTER_LINE = next(i + 1 for i, t in enumerate(MAIN_GD) if "counter += 1" in t)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail(
            "Debian's chromium and chromium-driver are not installed (make test installs them)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def text_of(driver: webdriver.Chrome, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


def wait_text(driver: webdriver.Chrome, css: str, wanted: str, timeout: float = 15) -> str:
    WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        lambda d: wanted in text_of(d, css),
        message=f"{wanted!r} never showed in {css}",
    )
    return text_of(driver, css)


def test_dashboard_shows_agents_and_a_breakpoint_stop(
    editor: Editor, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    bridge = BridgeClient(editor.base_url, agent="dashboard-test", timeout=30)
    assert bridge.wait_ready(60)["overall_ready"]
    browser.get(editor.base_url + "/")
    assert browser.title == "Godot bridge"
    wait_text(browser, "#overall", "ready")
    services = wait_text(browser, "#services", "connected")
    assert "debug_adapter" in services and "language_server" in services

    # An agent that connects while the page is open: one kept-alive connection.
    probe = http.client.HTTPConnection("127.0.0.1", editor.bridge_port, timeout=10)
    try:
        probe.request("GET", "/health", headers={"X-Agent-Id": "probe-agent"})
        assert probe.getresponse().read()
        agents = wait_text(browser, "#agents", "probe-agent")
        assert "dashboard" in agents  # the page itself polls as an agent

        since = bridge.events()["latest"]
        bridge.add_breakpoint(MAIN, COUNTER_LINE)
        bridge.launch()
        assert bridge.wait_for("stopped", since, 30) is not None
        wait_text(browser, "#events .ev-stopped", "stopped")
        assert "breakpoint" in text_of(browser, "#events")
        breakpoints = wait_text(browser, "#breakpoints", "dashboard-test")
        assert str(COUNTER_LINE) in breakpoints
        bridge.diagnostics(MAIN, wait=5)  # Godot publishes them: a row with counts
        wait_text(browser, "#diagnostics", MAIN)

        shot = tmp_path / "dashboard.png"
        assert browser.save_screenshot(str(shot))
        print(f"\ndashboard screenshot: {shot}")
        assert shot.stat().st_size > 10_000
    finally:
        probe.close()
        bridge.remove_breakpoint(MAIN)
        bridge.terminate()

    browser.get(editor.base_url + "/dashboard")
    wait_text(browser, "#events", "stopped")


def test_issue_12_dashboard_state_is_declared_with_its_events_count() -> None:
    """`events` defaults to 30 in the declaration alone; text is a 400 naming it."""
    assert DASHBOARD_STATE.parse({}, from_query=True).events == 30
    assert DASHBOARD_STATE.parse({"events": "5"}, from_query=True).events == 5
    with pytest.raises(RequestError) as exc:
        DASHBOARD_STATE.parse({"events": "many"}, from_query=True)
    assert (exc.value.status, exc.value.details["field"]) == (400, "events")


def test_dashboard_counts_the_games_errors_per_file(
    editor: Editor, browser: webdriver.Chrome
) -> None:
    bridge = BridgeClient(editor.base_url, agent="dashboard-game", timeout=30)
    assert bridge.wait_ready(60)["overall_ready"]
    browser.get(editor.base_url + "/")
    wait_text(browser, "#overall", "ready")
    bridge.launch(play_args=["--demo-error"])  # demo/errors.gd pushes one of each a second
    try:
        wait_text(browser, "#game-errors", ERRORS_GD)
        assert "game " in text_of(browser, "#game-count")

        def both_counted(d: webdriver.Chrome) -> bool:
            after = text_of(d, "#game-errors").split(ERRORS_GD)[1].split()[:2]
            return [n.isdigit() and int(n) >= 1 for n in after] == [True, True]

        WebDriverWait(browser, 10, poll_frequency=0.2).until(
            both_counted, message="no error and warning counts for " + ERRORS_GD
        )
    finally:
        bridge.terminate()
