"""The dashboard in a real headless Chromium (Debian's chromium + chromium-driver, driven
by selenium with the system binaries: no browser is downloaded), against a real editor.

The page loads, lists an agent that connects during the test, shows the `stopped` event
of a breakpoint hit, the breakpoint and the diagnostics counts. A screenshot is saved
under the test's tmp dir.

The live game panel (issue 13), against the launched demo game: its scene tree (with a
node whose name is HTML, shown as text), its errors with file:line read on with the
`since` cursor, its screenshot; and a hidden page asks nothing.
"""

from __future__ import annotations

import http.client
import itertools
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from harness import REPO, Editor, make_demo_project
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
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
ERRORS_LINES = (REPO / "demo" / "errors.gd").read_text().splitlines()
PUSH_ERROR_LINE = next(i + 1 for i, t in enumerate(ERRORS_LINES) if "push_error(" in t)
PUSH_WARNING_LINE = next(i + 1 for i, t in enumerate(ERRORS_LINES) if "push_warning(" in t)
# Untrusted text from the game: a node name and an error message that are HTML. Godot
# forbids `. : @ / " %` in node names, so the closing tag is spelt `<_script>`.
EVIL_NAME = "<script>pwned=1<_script><img src=x onerror=pwned=2>"
EVIL_MESSAGE = "<img src=x onerror=pwned=3> evil message"
EVIL_GD = f"""extends Node
## Test only: a node with an HTML name that pushes an HTML error message once.


func _ready() -> void:
	push_error("{EVIL_MESSAGE}")
"""
SHOT_MAX_WIDTH = 640  # what the page asks for (dashboard.html SHOT_MAX_WIDTH)
SHOT_WAIT = 90  # seconds for the game's first picture on a software renderer, under load
MARKER = (100, 120, 200, 80)  # x, y, width, height of demo/main.tscn's magenta ColorRect
MAGENTA = (255, 0, 255)
FAR = 1e12  # Unix seconds no test reaches


def add_evil_node(scene: Path) -> None:
    """A child of the scene's root named EVIL_NAME, with evil.gd (its resource goes before
    the first node, as the format wants)."""
    text = scene.read_text(encoding="utf-8")
    first_node = text.index("[node ")
    resource = '[ext_resource type="Script" path="res://demo/evil.gd" id="evil_gd"]\n\n'
    node = f'\n[node name="{EVIL_NAME}" type="Node" parent="."]\nscript = ExtResource("evil_gd")\n'
    scene.write_text(text[:first_node] + resource + text[first_node:] + node, encoding="utf-8")


@pytest.fixture(scope="module")
def editor(tmp_path_factory: pytest.TempPathFactory, godot_bin: str) -> Iterator[Editor]:
    """The demo project plus one node whose name (and error message) is HTML."""
    project = make_demo_project(tmp_path_factory.mktemp("project"))
    (project / "demo" / "evil.gd").write_text(EVIL_GD, encoding="utf-8")
    add_evil_node(project / "demo" / "main.tscn")
    ed = Editor(project)
    try:
        ed.start()
        yield ed
    finally:
        ed.stop()


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
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # Sent reads it
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


# -- the live game panel (issue 13) ------------------------------------------------------


def open_dashboard(driver: webdriver.Chrome, editor: Editor) -> None:
    driver.get(editor.base_url + "/")
    driver.execute_script("performance.setResourceTimingBufferSize(100000)")
    wait_text(driver, "#overall", "ready")


class Sent:
    """The requests the browser sends, each with the wall-clock time it began, from
    Chromium's DevTools log: it covers every tab, hidden ones too, and requests that never
    got an answer."""

    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver
        self.seen: list[tuple[float, str]] = []

    def to(self, part: str, after: float = 0.0, before: float = FAR) -> list[str]:
        """URLs containing `part` begun between the two times (Unix seconds)."""
        log = self.driver.get_log("performance")  # type: ignore[no-untyped-call]
        for entry in log:
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                params = message["params"]
                self.seen.append((params["wallTime"], params["request"]["url"]))
        return [url for when, url in self.seen if part in url and after < when < before]

    def wait(self, part: str, after: float, timeout: float = 30) -> None:
        WebDriverWait(self.driver, timeout, poll_frequency=0.2).until(
            lambda d: self.to(part, after), message=f"the page never asked for {part}"
        )


@pytest.fixture
def sent(browser: webdriver.Chrome) -> Sent:
    return Sent(browser)


def wait_display_decided(bridge: BridgeClient) -> str:
    """Where the editor's games render, once the sidecar has decided it (it does when the
    addon's link comes up, which can be after both services are ready): a game launched
    before renders nowhere."""
    deadline = time.monotonic() + 60
    while (mode := str(game_display(bridge).get("mode"))) == "unknown":
        assert time.monotonic() < deadline, "the games' display was never decided"
        time.sleep(0.2)
    return mode


def game_display(bridge: BridgeClient) -> dict[str, Any]:
    status: dict[str, Any] = dict(bridge.status())
    return status["game_display"]  # type: ignore[no-any-return]


@pytest.fixture
def demo_game(editor: Editor) -> Iterator[BridgeClient]:
    """The demo game pushing an error and a warning every second (--demo-error)."""
    bridge = BridgeClient(editor.base_url, agent="dashboard-panel", timeout=30)
    assert bridge.wait_ready(60)["overall_ready"]
    wait_display_decided(bridge)
    bridge.launch(play_args=["--demo-error"])
    try:
        yield bridge
    finally:
        bridge.terminate()


def test_issue_13_dashboard_panel_shows_the_games_tree_and_errors(
    editor: Editor, browser: webdriver.Chrome, sent: Sent, demo_game: BridgeClient, tmp_path: Path
) -> None:
    open_dashboard(browser, editor)
    wait_text(browser, "#game-state", "running")
    tree = wait_text(browser, "#game-tree", "Mover", timeout=30)
    for shown in ("Main", "Mover", "Errors", "Window", MAIN, "res://demo/mover.gd"):
        assert shown in tree, f"{shown!r} not in the tree panel: {tree}"

    # The HTML name is text: no element made of it, nothing of it run.
    assert EVIL_NAME in tree
    assert browser.find_elements(By.CSS_SELECTOR, "#game-tree img, #game-tree script") == []
    assert browser.execute_script("return typeof window.pwned") == "undefined"

    # The demo's runtime error and warning, each with its res:// file and line.
    log = wait_text(browser, "#game-log", f"{ERRORS_GD}:{PUSH_ERROR_LINE}", timeout=20)
    wait_text(browser, "#game-log", f"{ERRORS_GD}:{PUSH_WARNING_LINE}")
    log = wait_text(browser, "#game-log", "demo-warning #")
    assert "demo-error #" in log
    log = wait_text(browser, "#game-log", EVIL_MESSAGE)
    assert browser.find_elements(By.CSS_SELECTOR, "#game-log img") == []
    assert browser.execute_script("return typeof window.pwned") == "undefined"

    # Nodes fold and stay folded across refreshes of the tree.
    main = browser.find_element(By.CSS_SELECTOR, "#game-tree li[data-path='/root/Main'] summary")
    mover = "#game-tree li[data-path='/root/Main/Mover']"
    main.click()
    assert not browser.find_element(By.CSS_SELECTOR, mover).is_displayed()
    before = text_of(browser, "#game-tree-meta")
    since = time.time()
    browser.find_element(By.ID, "game-tree-refresh").click()
    sent.wait("/game/tree", since)
    WebDriverWait(browser, 15, poll_frequency=0.2).until(
        lambda d: text_of(d, "#game-tree-meta") != before, message="the tree never refreshed"
    )
    assert not browser.find_element(By.CSS_SELECTOR, mover).is_displayed()
    browser.find_element(By.CSS_SELECTOR, "#game-tree li[data-path='/root/Main'] summary").click()
    assert browser.find_element(By.CSS_SELECTOR, mover).is_displayed()

    # Errors are read on with the cursor: each asked for once, each row once.
    wait_text(browser, "#game-log", "demo-error #3 ", timeout=20)
    cursors = [int(parse_qs(urlsplit(url).query)["since"][0]) for url in sent.to("/game/errors")]
    assert len(cursors) >= 2 and cursors == sorted(set(cursors)), cursors
    rows = [
        int(r.get_attribute("data-seq") or 0)
        for r in browser.find_elements(By.CSS_SELECTOR, "#game-log tbody tr")
    ]
    assert rows == sorted(set(rows), reverse=True) and 0 not in rows, rows  # newest first

    shot = tmp_path / "dashboard-game.png"
    assert browser.save_screenshot(str(shot))
    print(f"\ndashboard screenshot: {shot}")


def test_issue_13_dashboard_asks_nothing_while_hidden_or_without_a_game(
    editor: Editor, browser: webdriver.Chrome, sent: Sent, demo_game: BridgeClient
) -> None:
    open_dashboard(browser, editor)
    wait_text(browser, "#game-state", "running")
    sent.wait("/game/screenshot", 0.0)
    browser.execute_script(
        "window.visibility = [];"
        "document.addEventListener('visibilitychange', () => "
        "visibility.push([document.visibilityState, Date.now() / 1000]))"
    )
    dashboard = browser.current_window_handle
    browser.switch_to.new_window("tab")  # the dashboard's tab is hidden behind it
    time.sleep(6)  # six refreshes' worth
    browser.switch_to.window(dashboard)
    changes = browser.execute_script("return window.visibility")
    assert [state for state, _ in changes] == ["hidden", "visible"], changes
    hidden_at, visible_at = changes[0][1], changes[1][1]
    assert visible_at - hidden_at > 5
    # Seen again: it asks again (the state at once, then what it shows of the game).
    sent.wait("/dashboard/state", visible_at)
    sent.wait("/game/screenshot", visible_at)
    for part in ("/game/", "/dashboard/state"):
        assert sent.to(part, hidden_at, visible_at) == [], part

    # The game ends: no more screenshots nor trees, though the page keeps watching.
    demo_game.terminate()
    wait_text(browser, "#game-state", "no game running")
    ended = time.time()
    sent.wait("/dashboard/state", ended + 3)  # 3 s of the page polling on
    for part in ("/game/screenshot", "/game/tree"):
        assert sent.to(part, ended) == [], part
    assert "no game running" in text_of(browser, "#game-shot-why")
    assert "no game running" in text_of(browser, "#game-tree")


def image_state(driver: webdriver.Chrome) -> dict[str, Any]:
    state: dict[str, Any] = driver.execute_script(
        "const i = document.getElementById('game-screenshot');"
        "return {shown: !i.hidden && i.complete && i.naturalWidth > 0, src: i.src,"
        " width: i.naturalWidth, height: i.naturalHeight}"
    )
    return state


def shown_pixel(driver: webdriver.Chrome, x: int, y: int) -> tuple[int, int, int]:
    """The colour of the page's picture at (x, y) of its own pixels."""
    rgba = driver.execute_script(
        "const i = document.getElementById('game-screenshot');"
        "const c = document.createElement('canvas');"
        "c.width = i.naturalWidth; c.height = i.naturalHeight;"
        "const g = c.getContext('2d'); g.drawImage(i, 0, 0);"
        "return Array.from(g.getImageData(arguments[0], arguments[1], 1, 1).data)",
        x,
        y,
    )
    return rgba[0], rgba[1], rgba[2]


def test_issue_13_dashboard_shows_the_games_screenshot(
    editor: Editor, browser: webdriver.Chrome, sent: Sent, demo_game: BridgeClient
) -> None:
    """The bridge gives this headless editor's games its Xvfb: the page shows their picture,
    scaled as the page asks, refreshed about once a second, one request at a time."""
    open_dashboard(browser, editor)
    wait_text(browser, "#game-state", "running")
    try:
        WebDriverWait(browser, SHOT_WAIT, poll_frequency=0.5).until(
            lambda d: image_state(d)["shown"]
        )
    except TimeoutException:
        where = game_display(demo_game)
        raise AssertionError(
            f"the page never showed a picture: {text_of(browser, '#game-shot-why')} "
            f"(the bridge's games render: {where})"
        ) from None
    status, answer = screenshot_json(editor)
    assert status == 200, answer
    shot = answer["result"]
    shown = image_state(browser)
    assert (shown["width"], shown["height"]) == (shot["width"], shot["height"])
    assert shot["width"] == SHOT_MAX_WIDTH < shot["game_width"]
    assert f"{shot['width']}×{shot['height']}" in text_of(browser, "#game-shot-meta")
    assert not browser.find_element(By.ID, "game-shot-why").is_displayed()

    # It is the game's picture: demo/main.tscn's magenta Marker where the scene puts it.
    scale = shot["width"] / shot["game_width"]
    x, y, w, h = MARKER
    pixel = shown_pixel(browser, round((x + w / 2) * scale), round((y + h / 2) * scale))
    assert all(abs(a - b) <= 8 for a, b in zip(pixel, MAGENTA, strict=True)), pixel

    # Refreshed: a new picture about every second, never two requests at once.
    first = shown["src"]
    WebDriverWait(browser, 20, poll_frequency=0.2).until(
        lambda d: image_state(d)["src"] != first, message="the picture was never refreshed"
    )
    sent.wait("/game/screenshot", time.time() + 3)
    timings: list[list[float]] = browser.execute_script(
        "return performance.getEntriesByType('resource').filter(e => "
        "e.name.includes('/game/screenshot')).map(e => [e.startTime, e.responseEnd])"
    )
    assert len(timings) >= 4, timings
    for (start, end), (next_start, _) in itertools.pairwise(timings):
        assert next_start >= end, f"overlapping screenshot requests: {timings}"
        assert next_start - start >= 950, f"asked more often than once a second: {timings}"


@pytest.fixture
def headless_games(tmp_path: Path, godot_bin: str) -> Iterator[Editor]:
    """An editor whose games get no display (GODOT_BRIDGE_GAME_DISPLAY=off)."""
    ed = Editor(make_demo_project(tmp_path / "project"), env={"GODOT_BRIDGE_GAME_DISPLAY": "off"})
    try:
        ed.start()
        yield ed
    finally:
        ed.stop()


def test_issue_13_dashboard_says_why_there_is_no_picture(
    headless_games: Editor, browser: webdriver.Chrome, sent: Sent
) -> None:
    """A game without a display: the page shows the bridge's 409, which says how to get one,
    and does not ask again during that game."""
    bridge = BridgeClient(headless_games.base_url, agent="dashboard-headless", timeout=30)
    assert bridge.wait_ready(60)["overall_ready"]
    assert wait_display_decided(bridge) == "headless"
    bridge.launch()
    try:
        open_dashboard(browser, headless_games)
        wait_text(browser, "#game-state", "running")
        status, answer = screenshot_json(headless_games)
        assert (status, answer["error"]["code"]) == (409, "no_display"), answer
        message = answer["error"]["message"]
        assert "Xvfb" in message
        wait_text(browser, "#game-shot-why", message)
        assert not browser.find_element(By.ID, "game-screenshot").is_displayed()
        told = time.time()
        sent.wait("/dashboard/state", told + 6)  # a retry's worth of polling
        assert sent.to("/game/screenshot", told) == []
    finally:
        bridge.terminate()


def screenshot_json(editor: Editor) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", editor.bridge_port, timeout=30)
    try:
        conn.request(
            "GET",
            f"/game/screenshot?max_width={SHOT_MAX_WIDTH}",
            headers={"X-Agent-Id": "dashboard-test", "Accept": "application/json"},
        )
        reply = conn.getresponse()
        return reply.status, json.loads(reply.read())
    finally:
        conn.close()


# --- issue 14: the control lease's holder and the audit trail ------------------------------

EVIL_AGENT = "<img src=x onerror=pwned=4>holder"


def test_issue_14_dashboard_shows_the_lease_holder_and_the_audit_trail(
    editor: Editor, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    from harness import call_json

    holder = BridgeClient(editor.base_url, agent=EVIL_AGENT, timeout=30)
    assert holder.wait_ready(60)["overall_ready"]
    open_dashboard(browser, editor)
    wait_text(browser, "#control", "control open")
    holder.take_lease(60)
    try:
        # Another agent's control request is refused: a row of the trail.
        status, refused = call_json(editor, "POST", "/debug/terminate", {}, "dashboard-bob")
        assert status == 409 and refused["error"]["code"] == "lease_held", refused
        assert wait_text(browser, "#control", "control: ") == f"control: {EVIL_AGENT}"
        lease = wait_text(browser, "#lease", "held by ")
        assert lease.startswith(f"held by {EVIL_AGENT} until ") and "s left" in lease
        trail = wait_text(browser, "#audit", "409 lease_held")
        assert "dashboard-bob" in trail and "terminate" in trail
        assert f"lease taken ({EVIL_AGENT})" in trail and "take_lease" in trail
        # The agent's name is text: no element made of it, nothing of it run.
        assert browser.find_elements(By.CSS_SELECTOR, "#control img, #lease img, #audit img") == []
        assert browser.execute_script("return typeof window.pwned") == "undefined"
        shot = tmp_path / "dashboard-lease.png"
        assert browser.save_screenshot(str(shot))
        print(f"\ndashboard screenshot: {shot}")
    finally:
        holder.release_lease()
    wait_text(browser, "#control", "control open")
    wait_text(browser, "#audit", "release_lease")
