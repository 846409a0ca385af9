"""A burst of agents connecting at the same instant: first-answer latency, addon against direct.

    .venv/bin/python tools/burst.py [--connections 100] [--runs 5] [--addon DIR]
                                    [--also NAME=DIR ...] [--warm] [--histogram]

Like `autocannon -c 100`: N connections opened at once (one asyncio loop issues every
`connect` before any answer is read), each sends `GET /status` as soon as it is connected;
measured is the time from the start of the burst to the end of each connection's first
answer. Through the addon (Godot's `TCPServer`, listen backlog 8) and against the same sidecar
served directly (`python -m sidecar --serve PORT`, backlog 128), both on one fresh headless
editor of the demo project. Before each addon run the bench waits until the pump has parked
(and any hot spell after the previous burst is over), which is how a burst usually finds it.
`--addon DIR` measures another copy of the addon (e.g. an older checkout's) instead; `--also
NAME=DIR` adds an editor with that copy, measured in the same rounds (a paired comparison on
a machine whose load moves); `--warm` sends one request just before each burst (a pump that
is awake); `--histogram` prints each run's answers per 100 ms.
Not a test: it prints, it does not assert.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]
from harness import Editor, free_port, get_json, make_demo_project  # noqa: E402

# After a burst that filled the listen backlog the pump watches for the dropped SYNs' resends
# until ~7.1 s after it (windows at 1 s, 3 s and 7 s: agent_server.gd), then parks after 1 s
# without traffic: wait past both, so each burst finds the pump parked and no window open.
QUIET_BEFORE_RUN = 8.5


async def _first_answer(port: int, t0: float) -> tuple[float, int]:
    """Connects, asks `GET /status`, reads the whole answer: (seconds since t0, status)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        await reader.readexactly(length)
        return time.perf_counter() - t0, status
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _burst(port: int, n: int, warm: bool) -> list[tuple[float, int]]:
    if warm:
        await _first_answer(port, time.perf_counter())
    t0 = time.perf_counter()
    results = await asyncio.gather(
        *(_first_answer(port, t0) for _ in range(n)), return_exceptions=True
    )
    out: list[tuple[float, int]] = []
    for r in results:
        out.append(r if isinstance(r, tuple) else (time.perf_counter() - t0, -1))
    return out


def burst(port: int, n: int, warm: bool = False) -> list[tuple[float, int]]:
    return asyncio.run(_burst(port, n, warm))


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * len(s)) - 1))]


def summary(results: list[tuple[float, int]]) -> dict[str, Any]:
    ms = [t * 1000 for t, _ in results]
    statuses: dict[int, int] = {}
    for _, status in results:
        statuses[status] = statuses.get(status, 0) + 1
    return {
        "p50": statistics.median(ms),
        "p99": pct(ms, 0.99),
        "max": max(ms),
        "over_1s": sum(1 for t in ms if t >= 1000),
        "statuses": statuses,
    }


def wait_ready(port: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, KeyError):
            status = get_json(f"http://127.0.0.1:{port}/status", timeout=2)
            if status["overall_ready"]:
                return
        time.sleep(0.2)
    raise SystemExit(f"port {port}: services never became ready")


def start_editor(root: Path, name: str, addon: Path | None) -> Editor:
    project = make_demo_project(root / name)
    if addon is not None:
        target = project / "addons" / "godot_debug_connection"
        shutil.rmtree(target)
        shutil.copytree(addon, target)
    editor = Editor(project)
    editor.start()
    wait_ready(editor.bridge_port)
    return editor


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--connections", type=int, default=100)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--addon", type=Path, help="measure this copy of the addon directory")
    p.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="also measure an editor with this copy of the addon, in the same rounds",
    )
    p.add_argument("--histogram", action="store_true", help="print each run's answer times")
    p.add_argument(
        "--warm", action="store_true", help="one request right before each burst: a pump awake"
    )
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="burst-"))
    editors: list[Editor] = []
    direct: subprocess.Popen[bytes] | None = None
    try:
        editor = start_editor(root, "project", args.addon)
        editors.append(editor)
        targets = [("addon", editor.bridge_port)]
        for spec in args.also:
            name, _, path = spec.partition("=")
            other = start_editor(root, name, Path(path))
            editors.append(other)
            targets.append((name, other.bridge_port))
        port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "sidecar",
            "--serve",
            str(port),
            "--project",
            str(editor.project),
        ]
        cmd += ["--lsp-port", str(editor.lsp_port), "--dap-port", str(editor.dap_port)]
        with open(root / "direct.log", "ab") as log:
            direct = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        wait_ready(port)
        targets.append(("direct", port))
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in targets}
        for run in range(args.runs):
            for name, target_port in targets:
                time.sleep(QUIET_BEFORE_RUN)
                results = burst(target_port, args.connections, args.warm)
                s = summary(results)
                rows[name].append(s)
                print(
                    f"run {run + 1} {name:6}  p50 {s['p50']:7.1f} ms  p99 {s['p99']:7.1f} ms  "
                    f"max {s['max']:7.1f} ms  >=1 s: {s['over_1s']:3}  {s['statuses']}",
                    flush=True,
                )
                if args.histogram:
                    buckets: dict[int, int] = {}
                    for t, _ in results:
                        buckets[int(t * 10)] = buckets.get(int(t * 10), 0) + 1
                    print("  answers per 100 ms:", dict(sorted(buckets.items())))
        print(f"\n{args.connections} connections at once, median of {args.runs} runs:")
        for name, runs in rows.items():
            med = {k: statistics.median(r[k] for r in runs) for k in ("p50", "p99", "max")}
            worst = max(r["max"] for r in runs)
            print(
                f"  {name:6}  p50 {med['p50']:7.1f} ms  p99 {med['p99']:7.1f} ms  "
                f"max {med['max']:7.1f} ms (slowest of all runs {worst:.0f} ms)"
            )
    finally:
        if direct is not None:
            direct.kill()
            direct.wait()
        for editor in editors:
            editor.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
