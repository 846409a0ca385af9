"""Measure the gateway: GET /status round trip through the addon, and memory per idle agent.

Starts its own headless editor on a copy of the demo project (free ports, loopback only),
prints figures, stops everything. Usage: .venv/bin/python tools/measure_gateway.py [N]
"""

from __future__ import annotations

import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from harness import Editor, http_get, make_demo_project, read_response


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
            time.sleep(2)  # let the sessions settle
            round_trips(ed.bridge_port, 50)  # warm up
            t = sorted(round_trips(ed.bridge_port, n))
            print(f"GET /status through the addon, {n} sequential keep-alive requests:")
            print(
                f"  p50 {statistics.median(t):.3f} ms  p99 {t[int(len(t) * 0.99) - 1]:.3f} ms"
                f"  min {t[0]:.3f} ms"
            )
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
