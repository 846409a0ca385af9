"""Measure the gateway: GET /status and /lsp/hover round trips, and memory per idle agent.

Hover is timed through the bridge and, in the same run, sent straight to Godot's LSP socket
on a connection of our own.

Starts its own headless editor on a copy of the demo project (free ports, loopback only),
prints figures, stops everything. Usage: .venv/bin/python tools/measure_gateway.py [N]
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(_ROOT / "tests"), str(_ROOT)]
import aiohttp  # noqa: E402
from harness import Editor, get_json, http_get, make_demo_project, read_response  # noqa: E402

from sidecar.wire import MessageStream  # noqa: E402

HOVER_ON = "counter += 1"  # hover on `counter` in demo/main.gd


def hover_position(project: Path) -> tuple[str, dict[str, int]]:
    main = project / "demo" / "main.gd"
    lines = main.read_text().splitlines()
    line = next(i for i, t in enumerate(lines) if HOVER_ON in t)
    return main.as_uri(), {"line": line, "character": lines[line].index(HOVER_ON) + 1}


async def direct_hover_ms(project: Path, lsp_port: int, n: int) -> list[float]:
    """Hover round trips on a connection of our own to Godot's LSP."""
    stream = await MessageStream.open("127.0.0.1", lsp_port, timeout=5, name="lsp")
    uri, position = hover_position(project)
    try:
        init = {"processId": None, "rootUri": project.as_uri(), "rootPath": str(project)}
        stream.write({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
        while (await asyncio.wait_for(stream.read(), 60)).get("id") != 1:
            pass
        stream.write({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        params = {"textDocument": {"uri": uri}, "position": position}
        times = []
        for k in range(n):
            ident = 100 + k
            t0 = time.perf_counter()
            msg = {"jsonrpc": "2.0", "id": ident, "method": "textDocument/hover", "params": params}
            stream.write(msg)
            while (await asyncio.wait_for(stream.read(), 10)).get("id") != ident:
                pass  # start-up notifications
            times.append((time.perf_counter() - t0) * 1000)
        return times
    finally:
        stream.close()
        await stream.wait_closed()


async def bridge_hover_ms(base: str, project: Path, n: int) -> list[float]:
    """The same hover, as an agent asks it over HTTP through the addon."""
    _, position = hover_position(project)
    body = {"textDocument": {"uri": "res://demo/main.gd"}, "position": position}
    times = []
    async with aiohttp.ClientSession() as session:
        for _ in range(n):
            t0 = time.perf_counter()
            async with session.post(base + "/lsp/hover", json=body) as resp:
                assert resp.status == 200, await resp.text()
                await resp.read()
            times.append((time.perf_counter() - t0) * 1000)
    return times


def wait_ready(editor: Editor, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not get_json(editor.base_url + "/status")["result"]["overall_ready"]:
        if time.monotonic() > deadline:
            raise SystemExit("services never became ready")
        time.sleep(0.2)


def summary(times: list[float]) -> str:
    t = sorted(times)
    return f"p50 {statistics.median(t):.3f} ms  p99 {t[max(0, int(len(t) * 0.99) - 1)]:.3f} ms"


def rss_kib(editor: Editor) -> tuple[int, int]:
    ed = psutil.Process(editor.pid).memory_info().rss // 1024
    side = sum(psutil.Process(p).memory_info().rss for p in editor.sidecar_pids()) // 1024
    return ed, side


def round_trips(port: int, n: int) -> list[float]:
    times = []
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        req = http_get(port, "/status")
        buf = bytearray()
        for _ in range(n):
            t0 = time.perf_counter()
            s.sendall(req)
            read_response(s, buf)
            times.append((time.perf_counter() - t0) * 1000)
    return times


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    with tempfile.TemporaryDirectory() as tmp:
        ed = Editor(make_demo_project(Path(tmp) / "p"))
        try:
            ed.start()
            wait_ready(ed)
            round_trips(ed.bridge_port, 50)  # warm up
            print(f"GET /status through the addon, {n} sequential keep-alive requests:")
            print("  " + summary(round_trips(ed.bridge_port, n)))
            hover_n = max(20, n // 10)
            bridged = asyncio.run(bridge_hover_ms(ed.base_url, ed.project, hover_n))
            direct = asyncio.run(direct_hover_ms(ed.project, ed.lsp_port, hover_n))
            print(f"/lsp/hover, {hover_n} sequential requests, same run:")
            print("  through the bridge:     " + summary(bridged))
            print("  straight to Godot's LSP: " + summary(direct))
            time.sleep(1)
            e0, s0 = rss_kib(ed)
            socks = []
            for _ in range(100):
                s = socket.create_connection(("127.0.0.1", ed.bridge_port))
                s.sendall(http_get(ed.bridge_port, "/status"))
                read_response(s)
                socks.append(s)
            time.sleep(1)
            e1, s1 = rss_kib(ed)
            print("RSS KiB        editor   sidecar")
            print(f"  0 agents   {e0:8d}  {s0:8d}")
            print(f"100 agents   {e1:8d}  {s1:8d}")
            print(f"added per idle agent: {(e1 + s1 - e0 - s0) / 100:.1f} KiB (editor + sidecar)")
            for s in socks:
                s.close()
        finally:
            ed.stop()


if __name__ == "__main__":
    main()
