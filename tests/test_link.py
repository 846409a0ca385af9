"""sidecar/link/editor_link.py against a small fake addon: frames in, HTTP out, per client id."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from harness import REPO

from sidecar.app import Sidecar
from sidecar.config import parse_args
from sidecar.link.editor_link import DATA_CHUNK, Link
from sidecar.link.frames import FrameDecoder, encode_frame
from sidecar.link.vconn import serve_direct

TOKEN = "0123456789abcdef"
GUI_EDITOR = {"godot_version": "4.6.3.stable", "project": str(REPO), "headless": False}


class FakeAddon:
    """The addon's side of the link, as a test can drive it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = FrameDecoder()
        self.frames: list[dict[str, Any]] = []

    def send(self, **frame: Any) -> None:
        self.writer.write(encode_frame(frame))

    async def next_frame(self, timeout: float = 5.0) -> dict[str, Any]:
        while not self.frames:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise EOFError("link closed")
            self.frames.extend(self.decoder.feed(data))
        return self.frames.pop(0)

    async def response_bytes(self, client_id: int, until: bytes, timeout: float = 5.0) -> bytes:
        """Concatenated `data` for `client_id` until `until` has been seen."""
        got = b""
        while until not in got:
            frame = await self.next_frame(timeout)
            if frame["op"] == "data" and frame["id"] == client_id:
                got += frame["data"]
        return got

    async def whole_response(self, client_id: int, timeout: float = 5.0) -> bytes:
        """One whole HTTP response for `client_id`: its head and Content-Length bytes."""
        got = await self.response_bytes(client_id, b"\r\n\r\n", timeout)
        head, _, body = got.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
        while len(body) < length:
            frame = await self.next_frame(timeout)
            if frame["op"] == "data" and frame["id"] == client_id:
                body += frame["data"]
        return head + b"\r\n\r\n" + body


@asynccontextmanager
async def linked(max_clients: int = 7, clients: list | None = None) -> AsyncIterator[FakeAddon]:
    """A sidecar Link in this process, connected to a fake addon that said hello."""
    accepted: asyncio.Queue[FakeAddon] = asyncio.Queue()

    async def on_connect(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await accepted.put(FakeAddon(r, w))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = parse_args(["--link-port", str(port), "--project", str(REPO)])
    sidecar = Sidecar(config)
    await sidecar.start()
    link = Link(port, TOKEN, sidecar)
    task = asyncio.create_task(link.run())
    addon = await asyncio.wait_for(accepted.get(), 5)
    hello = await addon.next_frame()
    assert hello == {"op": "hello", "token": TOKEN, "pid": os.getpid(), "version": 1}
    addon.send(op="hello", version=1, max_clients=max_clients, clients=clients or [])
    # Once linked, the sidecar asks what editor it serves (issue 13: a headless one's games
    # get a display); a GUI editor's need nothing more.
    info = await addon.next_frame()
    assert (info["op"], info["name"]) == ("action", "editor_info"), info
    addon.send(op="action_result", rid=info["rid"], ok=True, result=GUI_EDITOR)
    addon.link = link  # type: ignore[attr-defined]
    try:
        yield addon
    finally:
        addon.writer.close()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)
        await sidecar.stop()
        server.close()


GET_STATUS = b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def test_request_on_a_virtual_connection_is_answered_on_it() -> None:
    async with linked(clients=[[5, "127.0.0.1:40000"]]) as addon:
        addon.send(op="open", id=1, peer="127.0.0.1:40001")
        addon.send(op="data", id=1, data=GET_STATUS)
        raw = await addon.whole_response(1)
        assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b'"active":2' in raw and b'"max":7' in raw


async def test_pipelined_requests_split_across_frames_are_answered_in_order() -> None:
    async with linked() as addon:
        addon.send(op="open", id=3, peer="127.0.0.1:40003")
        two = GET_STATUS + b"GET /missing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        addon.send(op="data", id=3, data=two[:10])
        addon.send(op="data", id=3, data=two[10:50])
        addon.send(op="data", id=3, data=two[50:])
        raw = await addon.response_bytes(3, b"not_found")
        assert raw.index(b"200 OK") < raw.index(b"404 Not Found")


async def test_connection_close_request_gets_answer_then_close_frame() -> None:
    async with linked() as addon:
        addon.send(op="open", id=2, peer="127.0.0.1:40002")
        addon.send(
            op="data",
            id=2,
            data=b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        ops = []
        while not ops or ops[-1] != "close":
            frame = await addon.next_frame()
            assert frame["id"] == 2
            ops.append(frame["op"])
        assert ops[0] == "data" and ops[-1] == "close"


async def test_clients_are_kept_apart_and_closed_ones_leave_status() -> None:
    async with linked() as addon:
        for cid in (10, 11):
            addon.send(op="open", id=cid, peer=f"127.0.0.1:{cid}")
        addon.send(op="close", id=10, reason="agent closed")
        req = b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Agent-Id: eleven\r\n\r\n"
        addon.send(op="data", id=11, data=req)
        raw = await addon.whole_response(11)
        assert b'"active":1' in raw
        assert b'"agent":"eleven"' in raw
        # Bytes for a client that is gone are dropped, not answered on someone else.
        addon.send(op="data", id=10, data=GET_STATUS)
        addon.send(op="data", id=11, data=GET_STATUS)
        raw = await addon.whole_response(11)
        assert raw.count(b"HTTP/1.1 200") == 1


async def test_editor_action_round_trip() -> None:
    async with linked() as addon:
        link: Link = addon.link  # type: ignore[attr-defined]
        pending = asyncio.create_task(link.action("ping", {}))
        frame = await addon.next_frame()
        assert frame == {"op": "action", "rid": frame["rid"], "name": "ping", "args": {}}
        addon.send(op="action_result", rid=frame["rid"], ok=True, result={"pong": True})
        assert await pending == {"pong": True}
        failing = asyncio.create_task(link.action("nope", {}))
        frame = await addon.next_frame()
        addon.send(op="action_result", rid=frame["rid"], ok=False, error="unknown action")
        with pytest.raises(RuntimeError, match="unknown action"):
            await failing


def _spawn_sidecar(port: int, token: str, tmp: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, GODOT_BRIDGE_LINK_TOKEN=token)
    return subprocess.Popen(
        [sys.executable, "-m", "sidecar", "--link-port", str(port), "--project", str(tmp)],
        env=env,
        cwd=REPO,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow  # starts a real sidecar process (~1 s)
async def test_sidecar_process_exits_when_the_link_closes(tmp_path: Path) -> None:
    got: asyncio.Queue[FakeAddon] = asyncio.Queue()

    async def on_connect(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await got.put(FakeAddon(r, w))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proc = _spawn_sidecar(port, TOKEN, tmp_path)
    try:
        addon = await asyncio.wait_for(got.get(), 20)
        hello = await addon.next_frame(20)
        assert hello["token"] == TOKEN and hello["pid"] == proc.pid
        addon.send(op="hello", version=1, max_clients=100, clients=[])
        addon.writer.close()
        rc = await asyncio.to_thread(proc.wait, 10)
        assert rc == 0
    finally:
        proc.kill()
        proc.wait()
        server.close()


@pytest.mark.slow  # starts a real sidecar process (~1 s)
def test_sidecar_process_exits_when_nobody_listens(tmp_path: Path) -> None:
    from harness import free_port

    proc = _spawn_sidecar(free_port(), TOKEN, tmp_path)
    try:
        rc = proc.wait(20)
        assert rc != 0
        assert b"link failed" in proc.stderr.read()  # type: ignore[union-attr]
    finally:
        proc.kill()
        proc.wait()


async def test_writes_in_one_loop_turn_share_frames_and_big_ones_are_split() -> None:
    async with linked() as addon:
        for cid in (1, 2):
            addon.send(op="open", id=cid, peer=f"127.0.0.1:{cid}")
        await asyncio.sleep(0.1)
        link: Link = addon.link  # type: ignore[attr-defined]
        big = bytes(range(256)) * (3 * DATA_CHUNK // 256) + b"tail"
        link.send(1, b"head ")
        link.send(1, bytearray(b"body"))  # merged into the frame above
        link.send(2, memoryview(b"other agent"))
        link.send(1, big)
        link.close(1, "done")
        frames = [await addon.next_frame() for _ in range(7)]
        assert [(f["op"], f["id"]) for f in frames] == [
            ("data", 1),
            ("data", 2),
            ("data", 1),
            ("data", 1),
            ("data", 1),
            ("data", 1),
            ("close", 1),
        ]
        assert frames[0]["data"] == b"head body" and frames[1]["data"] == b"other agent"
        assert all(len(f["data"]) <= DATA_CHUNK for f in frames[2:6])
        assert b"".join(f["data"] for f in frames[2:6]) == big


async def test_direct_mode_registers_agents_like_the_addon_does() -> None:
    """`--serve`: agents on real sockets get client ids and show in /status."""

    config = parse_args(["--serve", "0", "--project", str(REPO)])
    sidecar = Sidecar(config)
    await sidecar.start()
    server = await serve_direct(
        sidecar.app_server,
        "127.0.0.1",
        0,
        on_open=lambda cid, peer: sidecar.agents.add(cid, peer),
        on_close=sidecar.agents.remove,
    )
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Agent-Id: direct\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        agents = json.loads(await reader.readexactly(length))["clients"]
        assert agents["active"] == 1
        assert agents["agents"][0]["id"] == 1 and agents["agents"][0]["agent"] == "direct"
        writer.close()
        for _ in range(50):
            if len(sidecar.agents) == 0:
                break
            await asyncio.sleep(0.02)
        assert len(sidecar.agents) == 0
    finally:
        server.close()
        await sidecar.stop()
