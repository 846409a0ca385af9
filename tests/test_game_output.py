"""The game's output (stdout/stderr) under a flood: 10,000 numbered lines in one second
(`--demo-flood`, demo/errors.gd), read from the event log (`/debug/events`) by an agent with
a cursor while other agents keep asking for other things.

What is kept, and where the rest goes (docs/BENCHMARKS.md, "Issue 13"): Godot's remote
debugger forwards at most `network/limits/debugger/max_chars_per_second` characters of the
game's prints per one-second window (32,768 by default); the line that crosses the limit
is cut short and ends in `[...]`, an `[output overflow, print less text!]` note follows, and
the rest of that window's prints never leave the game. The bridge keeps every output event
it receives, in order, in its bounded log; a reader that falls behind further than the log
holds is told how many events it missed (`dropped`).
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from harness import Editor, make_demo_project
from test_debug_http import Agent, run

from sidecar.app import Sidecar
from sidecar.client.client import BridgeClient
from sidecar.config import Config, parse_args
from sidecar.godot.dap.events import EventLog
from sidecar.godot.dap.session import DapSession

FLOOD_LINES = 10_000
LINE = re.compile(r"flood (\d{5})")
OVERFLOW_NOTE = "[output overflow, print less text!]"
CUT_SHORT = "[...]"
DONE = "demo-flood: done"
FLOOD_WAIT = 60.0  # seconds for the whole flood to be read, on a loaded machine
PROMPT = 5.0  # seconds another agent's request may take during the flood, at the worst


@dataclass
class Reading:
    """What a reader with a cursor learnt from the log: the numbered lines in the order they
    came, and every gap's explanation."""

    numbers: list[int] = field(default_factory=list)
    unexplained: list[tuple[int, int]] = field(default_factory=list)
    overflow_notes: int = 0
    cut_lines: int = 0
    dropped: int = 0
    outputs: list[str] = field(default_factory=list)  # every output event's text, in order
    done: bool = False
    _explained: bool = False  # a note or a `dropped` since the last numbered line

    def page(self, page: dict[str, Any]) -> None:
        if page["dropped"]:
            self.dropped += page["dropped"]
            self._explained = True
        for event in page["events"]:
            if event["event"] == "output":
                self.output(str(event["body"].get("output", "")))

    def output(self, text: str) -> None:
        self.outputs.append(text)
        for line in text.replace("\r\n", "\n").split("\n"):
            number = LINE.fullmatch(line)
            if number:
                self.line(int(number.group(1)))
            elif line == OVERFLOW_NOTE:
                self.overflow_notes += 1
                self._explained = True
            elif line.endswith(CUT_SHORT):
                self.cut_lines += 1
            elif line.startswith(DONE):
                self.done = True

    def line(self, number: int) -> None:
        last = self.numbers[-1] if self.numbers else 0
        if number != last + 1 and not self._explained:
            self.unexplained.append((last, number))
        self.numbers.append(number)
        self._explained = False

    def finish(self) -> None:
        """The lines missing after the last one that came need explaining too."""
        last = self.numbers[-1] if self.numbers else 0
        if last != FLOOD_LINES and not self._explained:
            self.unexplained.append((last, FLOOD_LINES + 1))


async def read_flood(agent: Agent, since: int, flooding: asyncio.Event) -> Reading:
    """Long-polls the log from `since` until the game says the flood is done; sets
    `flooding` at the first numbered line."""
    reading = Reading()
    deadline = time.monotonic() + FLOOD_WAIT
    while not reading.done:
        assert time.monotonic() < deadline, f"no '{DONE}' within {FLOOD_WAIT:g} s"
        page = await agent.ok("GET", "/debug/events", since=since, wait=5, limit=500)
        reading.page(page)
        if reading.numbers:
            flooding.set()
        since = page["next"]
    reading.finish()
    return reading


async def keep_asking(agent: Agent, flooding: asyncio.Event, until: asyncio.Event) -> list[float]:
    """Seconds each of another agent's requests took while the flood ran. The game's tree
    is asked for once the flood has begun: a request that reaches a game still starting
    is lost (Godot drops messages its scene debugger is not there yet to take)."""
    took: list[float] = []
    while not until.is_set():
        paths = ["/status", "/debug/breakpoints", "/game/errors"]
        if flooding.is_set():
            paths.append("/game/tree?depth=1")
        for path in paths:
            start = time.monotonic()
            status, answer, _ = await agent.call("GET", path)
            took.append(time.monotonic() - start)
            assert status == 200, (path, answer)
        await asyncio.sleep(0.05)
    return took


async def second_client(editor: Editor) -> DapSession:
    """A DAP client of our own on the same editor: Godot sends it the same output events."""
    session = DapSession(
        Config(
            project=str(editor.project),
            link_port=None,
            link_token="",
            serve_port=None,
            lsp_port=0,
            dap_port=editor.dap_port,
        )
    )
    assert await session.connect(), session.status.as_json()
    return session


def up_to_done(outputs: list[str]) -> list[str]:
    """The output events up to the one saying the flood is done (the game prints on)."""
    end = next((i for i, text in enumerate(outputs) if DONE in text), len(outputs) - 1)
    return outputs[: end + 1]


def outputs_of(session: DapSession, since: int) -> list[str]:
    events, dropped = session.events.after(since)
    assert dropped == 0
    return up_to_done([str(e.body.get("output", "")) for e in events if e.event == "output"])


async def flood(editor: Editor) -> tuple[Reading, list[float], list[str]]:
    """Launches the flood; returns what the bridge's log gave a reader, how long the other
    agents' requests took meanwhile, and the output events a second DAP client received."""
    results: dict[str, Any] = {}
    session = await second_client(editor)

    async def scenario(agent: Callable[[str], Agent]) -> None:
        reader, other = agent("reader"), agent("other")
        since = (await reader.ok("GET", "/debug/events"))["latest"]
        direct_since = session.events.latest
        flooding, done = asyncio.Event(), asyncio.Event()
        asking = asyncio.create_task(keep_asking(other, flooding, done))
        try:
            await reader.ok("POST", "/debug/launch", {"playArgs": ["--demo-flood"]})
            results["reading"] = await read_flood(reader, since, flooding)
        finally:
            done.set()
            results["took"] = await asking
        await reader.ok("POST", "/debug/terminate", {})
        results["direct"] = outputs_of(session, direct_since)

    try:
        await run(editor.base_url, scenario)
    finally:
        await session.stop()
    return results["reading"], results["took"], results["direct"]


def report(what: str, reading: Reading, took: list[float]) -> None:
    print(
        f"\n{what}: {len(reading.numbers)} of {FLOOD_LINES} lines in "
        f"{len(reading.outputs)} output events; {reading.overflow_notes} overflow notes, "
        f"{reading.cut_lines} lines cut short, {reading.dropped} events dropped by the bridge; "
        f"other agents' requests: {len(took)}, p50 {statistics.median(took) * 1000:.1f} ms, "
        f"max {max(took) * 1000:.1f} ms"
    )


def assert_in_order(reading: Reading) -> None:
    assert reading.numbers, "no numbered line arrived"
    assert all(b > a for a, b in zip(reading.numbers, reading.numbers[1:], strict=False)), (
        "lines out of order or repeated"
    )
    assert not reading.unexplained, f"gaps nobody announced: {reading.unexplained}"


# -- unit: the bridge's log accounts for every event ---------------------------------------


async def test_issue_13_a_paging_reader_accounts_for_every_event() -> None:
    """Events come faster than a reader pages through them (a small log, small pages):
    each one is either read, once and in order, or counted in `dropped`, never both."""
    log = EventLog(capacity=50)
    read: list[int] = []
    dropped = since = 0
    for burst in range(40):
        for _ in range(7 + burst % 5 * 20):
            log.append("output", {"output": "x"})
        page = await log.read(since, wait=0, limit=13)
        read += [e["seq"] for e in page["events"]]
        dropped += page["dropped"]
        since = page["next"]
    while since < log.latest:
        page = await log.read(since, wait=0, limit=13)
        read += [e["seq"] for e in page["events"]]
        dropped += page["dropped"]
        since = page["next"]
    assert read == sorted(set(read))
    assert len(read) + dropped == log.latest and dropped > 0


async def test_issue_13_following_the_log_announces_what_fell_out(tmp_path: Path) -> None:
    """`Client.follow` (and `gdbridge events --follow`) read on from a cursor; events that
    fell out of the bridge's log before they were read used to be skipped without a word."""
    sidecar = Sidecar(parse_args(["--link-port", "1", "--project", str(tmp_path)]))
    log = sidecar.dap_session.events
    assert log.latest == 0
    for n in range(2100):  # the log keeps the newest 2,000
        log.append("output", {"output": f"line {n + 1}\r\n"})
    async with TestServer(sidecar.app) as server:
        client = BridgeClient(f"http://127.0.0.1:{server.port}", agent="follower")

        def first(count: int) -> list[Any]:
            events = client.follow(since=0, wait=0)
            return [next(events) for _ in range(count)]

        got = await asyncio.to_thread(first, 3)
    assert got[0]["event"] == "dropped" and got[0]["body"]["dropped"] == 100, got[0]
    assert got[0]["seq"] == 100
    assert [(e["seq"], e["body"]["output"]) for e in got[1:]] == [
        (101, "line 101\r\n"),
        (102, "line 102\r\n"),
    ]


# -- real editor, real game -----------------------------------------------------------------


async def test_issue_13_a_flood_of_output_keeps_order_and_every_gap_is_explained(
    editor: Editor,
) -> None:
    reading, took, direct = await flood(editor)
    report("default limits", reading, took)
    assert_in_order(reading)
    # Godot's default limit lets about 32 KiB a second through: far from all 10,000 lines,
    # and every window that overflowed says so.
    assert len(reading.numbers) < FLOOD_LINES and reading.overflow_notes >= 1
    assert reading.cut_lines == reading.overflow_notes
    # The bridge lost nothing it received: a second DAP client got the same events.
    assert reading.dropped == 0
    assert up_to_done(reading.outputs) == direct
    assert max(took) < PROMPT, took


async def test_issue_13_with_godots_limit_raised_every_line_arrives(
    tmp_path: Path, godot_bin: str
) -> None:
    project = make_demo_project(tmp_path / "project")
    settings = project / "project.godot"
    settings.write_text(
        settings.read_text() + "\n[network]\n\nlimits/debugger/max_chars_per_second=1000000\n"
    )
    editor = Editor(project)
    try:
        await asyncio.to_thread(editor.start)
        reading, took, direct = await flood(editor)
    finally:
        editor.stop()
    report("max_chars_per_second 1,000,000", reading, took)
    assert_in_order(reading)
    assert reading.numbers == list(range(1, FLOOD_LINES + 1))
    assert reading.overflow_notes == reading.cut_lines == reading.dropped == 0
    assert up_to_done(reading.outputs) == direct
    assert max(took) < PROMPT, took
