"""The pump of `godot_bridge.gd`: it parks when nothing moves and wakes when bytes arrive.

Speed is the benchmark's business (tools/bench.py, P1/P2/P7); these tests check what must hold
whatever the machine: a parked pump costs (almost) no CPU, and nothing waits on it forever.
"""

from __future__ import annotations

import os
import signal
import socket
import time

import psutil
from harness import Editor, http_get, read_response

PARK_AFTER = 1.0  # s without traffic before the pump parks (WARM_USEC in godot_bridge.gd)
WINDOW = 3.0  # s of idling watched per thread


def _thread_cpu(pid: int) -> dict[int, float]:
    return {t.id: t.user_time + t.system_time for t in psutil.Process(pid).threads()}


def _status(sock: socket.socket, port: int) -> int:
    sock.sendall(http_get(port, "/status"))
    return read_response(sock).status


def test_parked_pump_uses_no_cpu_and_wakes_for_the_next_request(editor: Editor) -> None:
    port = editor.bridge_port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as kept:
        assert _status(kept, port) == 200
        time.sleep(PARK_AFTER + 0.5)
        before = _thread_cpu(editor.pid)
        time.sleep(WINDOW)
        after = _thread_cpu(editor.pid)
        # The main thread runs the editor; every other thread (the pump among them) should
        # sleep. A pump polling every 2 ms burns ~0.1 s in this window, a spinning one ~3 s.
        used = {tid: cpu - before.get(tid, 0.0) for tid, cpu in after.items() if tid != editor.pid}
        busiest = max(used.values(), default=0.0)
        assert busiest < 0.04, f"a thread other than the main one stayed busy: {used}"
        # A kept-alive agent and a new one are both answered by the parked pump.
        assert _status(kept, port) == 200
    time.sleep(PARK_AFTER + 0.5)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as fresh:
        assert _status(fresh, port) == 200


def test_sidecar_lost_while_parked_is_respawned_without_a_request(editor: Editor) -> None:
    old = editor.wait_until_serving()["sidecar"]["pid"]
    time.sleep(PARK_AFTER + 0.5)
    mark = editor.mark()
    os.kill(old, signal.SIGKILL)
    # No agent asks anything: the parked pump must notice the lost link and respawn by itself.
    m = editor.wait_for(r"GodotBridge sidecar connected \(pid (\d+)\)", timeout=20, start=mark)
    new = int(m.group(1))
    assert new != old
    status = editor.wait_until_serving(timeout=10)
    assert status["sidecar"]["pid"] == new
