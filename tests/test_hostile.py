"""A corpus of hostile input against the real stack (editor + addon + sidecar).

Every case ends in a clear 4xx or a closed connection, never a hang or a 5xx; after each
one a good request on a new connection still works and the sidecar is the same process.
Slow clients (no complete request head in 10 s, a body that never comes) and idle
keep-alive connections are closed; a long-poll is not idle. Run with `-s` to see the table
of outcomes that docs/RELIABILITY.md quotes.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from harness import Editor, http_get, make_demo_project, read_response

IDLE_TIMEOUT = 3  # seconds, GODOT_BRIDGE_IDLE_TIMEOUT of this module's editor
HEAD_TIMEOUT = 10.0  # the addon's fixed limit
RESULTS: dict[str, str] = {}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, godot_bin: str) -> Iterator[Editor]:
    project = make_demo_project(tmp_path_factory.mktemp("hostile"))
    ed = Editor(project, env={"GODOT_BRIDGE_IDLE_TIMEOUT": str(IDLE_TIMEOUT)})
    try:
        ed.start()
        # The corpus expects answers from Godot's services, not 503s while they connect.
        ed.first_sidecar = ed.wait_until_ready()["sidecar"]["pid"]  # type: ignore[attr-defined]
        ed.corpus_mark = ed.mark()  # type: ignore[attr-defined]
        yield ed
    finally:
        ed.stop()


# --- the corpus ----------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    # One write, or several separated by a short pause.
    data: bytes | list[bytes]
    # The statuses expected in order; an empty tuple means "closed without an answer".
    want: tuple[int, ...]
    # True: the connection must be closed afterwards; None: either way.
    closes: bool | None = None
    # Substrings of the last answer's body.
    says: tuple[str, ...] = ()
    # Another acceptable sequence of statuses (a race the client cannot control).
    or_want: tuple[int, ...] | None = None
    extra: dict[str, str] = field(default_factory=dict)


def head(method: str, path: str, *lines: str, host: str = "127.0.0.1") -> bytes:
    return (
        "\r\n".join([f"{method} {path} HTTP/1.1", f"Host: {host}", *lines]) + "\r\n\r\n"
    ).encode()


def post(path: str, body: bytes, *lines: str) -> bytes:
    ct = "Content-Type: application/json"
    return head("POST", path, ct, f"Content-Length: {len(body)}", *lines) + body


def post_json(path: str, value: object) -> bytes:
    return post(path, json.dumps(value).encode())


GOOD = head("GET", "/status")
HOVER_AT = {"line": 1, "character": 1}
MIB = 1024 * 1024

CASES = [
    # malformed request lines
    Case("garbage request line", b"HELLO\r\n\r\n", (400,), True),
    Case("lower-case method", b"get /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", (400,), True),
    Case("unknown method", head("BREW", "/status"), (400,), True),
    Case("tabs as separators", b"GET\t/status\tHTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", (400,), True),
    Case("HTTP/9.9", b"GET /status HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n", (400,), True),
    Case("HTTP/0.9 request", b"GET /status\r\n\r\n", (400,), True, ("missing_host",)),
    Case("HTTP/1.0 without Host", b"GET /status HTTP/1.0\r\n\r\n", (400,), True, ("missing_host",)),
    Case("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", (400,), True),
    Case("CONNECT", head("CONNECT", "127.0.0.1:22"), (415,), None),
    # missing CRLF
    Case("bare LF line ends", b"GET /status HTTP/1.1\nHost: 127.0.0.1\n\n", (400,), True),
    Case("bare CR line ends", b"GET /status HTTP/1.1\rHost: 127.0.0.1\r\r", (400,), True),
    Case("header without colon", head("GET", "/status", "NoColonHere"), (400,), True),
    Case("folded header", head("GET", "/status", "X-A: a", " b"), (400,), True),
    Case("space before colon", head("GET", "/status", "Host : evil.example"), (400,), True),
    # huge headers
    Case("10 KB request line", head("GET", "/" + "a" * 10_000), (400,), True),
    Case("9 KB header value", head("GET", "/status", "X-Big: " + "a" * 9000), (400,), True),
    Case("200 headers", head("GET", "/status", *(f"X-{i}: 1" for i in range(200))), (400,), True),
    Case(
        "100 headers of 8 KB",
        head("GET", "/health", *(f"X-{i}: " + "a" * 8000 for i in range(100))),
        (200,),
    ),
    # Host, Origin, content type
    Case(
        "rebinding Host",
        head("GET", "/status", host="evil.example"),
        (421,),
        False,
        ("misdirected",),
    ),
    Case("two Host headers", head("GET", "/status", "Host: evil.example"), (400,), True),
    Case("foreign Origin", head("GET", "/status", "Origin: http://evil.example"), (403,), False),
    Case(
        "form post",
        head(
            "POST",
            "/debug/continue",
            "Content-Type: application/x-www-form-urlencoded",
            "Content-Length: 3",
        )
        + b"a=b",
        (415,),
        False,
    ),
    Case(
        "text/plain post",
        head("POST", "/debug/threads", "Content-Type: text/plain", "Content-Length: 2") + b"{}",
        (415,),
        False,
    ),
    # huge bodies
    Case("2 MiB body", post("/debug/threads", b" " * (2 * MIB)), (413,), None, ("body_too_large",)),
    Case(
        "1 TB declared, no body",
        head(
            "POST",
            "/debug/threads",
            "Content-Type: application/json",
            "Content-Length: 1000000000000",
        ),
        (413,),
        None,
    ),
    Case(
        "2 MiB chunked body",
        head(
            "POST", "/debug/threads", "Content-Type: application/json", "Transfer-Encoding: chunked"
        )
        + (b"10000\r\n" + b" " * 65536 + b"\r\n") * 32
        + b"0\r\n\r\n",
        (413,),
        None,
    ),
    # framing of the body
    Case(
        "Content-Length and chunked",
        head(
            "POST",
            "/debug/threads",
            "Content-Type: application/json",
            "Content-Length: 2",
            "Transfer-Encoding: chunked",
        )
        + b"2\r\n{}\r\n0\r\n\r\n",
        (400,),
        True,
    ),
    Case(
        "negative Content-Length",
        head("POST", "/debug/threads", "Content-Length: -1"),
        (400,),
        True,
    ),
    Case(
        "two Content-Lengths",
        head("POST", "/debug/threads", "Content-Length: 2", "Content-Length: 3") + b"{}",
        (400,),
        True,
    ),
    Case(
        "bad chunk size",
        head(
            "POST", "/debug/threads", "Content-Type: application/json", "Transfer-Encoding: chunked"
        )
        + b"zz\r\n{}\r\n0\r\n\r\n",
        (400,),
        True,
    ),
    Case(
        "body longer than declared",
        post("/debug/threads", b"{}") + b"XXXXXXXX\r\n\r\n",
        (400,),
        True,
    ),
    # invalid UTF-8
    Case(
        "invalid UTF-8 in the path",
        b"GET /\xff\xfe HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        (400,),
        True,
    ),
    Case(
        "invalid UTF-8 and NUL in a header",
        b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Agent-Id: \xff\x00\r\n\r\n",
        (400,),
        True,
    ),
    Case(
        "invalid UTF-8 body", post("/debug/threads", b"\xff\xfe\xfd"), (400,), False, ("not UTF-8",)
    ),
    # invalid JSON, JSON of the wrong types
    Case(
        "truncated JSON", post("/lsp/hover", b'{"textDocument": '), (400,), False, ("invalid_json",)
    ),
    Case(
        "JSON nested 100000 deep",
        post("/lsp/hover", b"[" * 100_000),
        (400,),
        False,
        ("nests too deeply",),
    ),
    Case("NaN in JSON", post("/lsp/hover", b'{"a": NaN}'), (400,), False, ("NaN",)),
    Case("a 5000-digit number", post("/lsp/hover", b'{"a": ' + b"9" * 5000 + b"}"), (400,), False),
    Case(
        "JSON array body",
        post_json("/lsp/hover", [1, 2]),
        (400,),
        False,
        ("must be a JSON object",),
    ),
    Case(
        "uri of the wrong type",
        post_json("/lsp/hover", {"textDocument": {"uri": 5}, "position": HOVER_AT}),
        (400,),
        False,
        ("textDocument.uri",),
    ),
    Case(
        "negative line",
        post_json(
            "/lsp/hover",
            {
                "textDocument": {"uri": "res://demo/main.gd"},
                "position": {"line": -1, "character": 0},
            },
        ),
        (400,),
        False,
        ("position.line",),
    ),
    Case(
        "text of the wrong type",
        post_json("/edit/applyChanges", {"uri": "res://x.gd", "text": 5}),
        (400,),
        False,
        ("text",),
    ),
    Case("since not a number", head("GET", "/debug/events?since=abc"), (400,), False, ("since",)),
    # path traversal
    Case(
        "traversal ../",
        post_json("/edit/applyChanges", {"uri": "../../../../tmp/pwned.gd", "text": "x"}),
        (403,),
        False,
    ),
    Case(
        "traversal res://..",
        post_json("/edit/applyChanges", {"uri": "res://../pwned.gd", "text": "x"}),
        (403,),
        False,
    ),
    Case(
        "absolute path outside",
        post_json("/edit/applyChanges", {"uri": "/tmp/pwned.gd", "text": "x"}),
        (403,),
        False,
    ),
    Case(
        "file:// outside",
        post_json("/edit/applyChanges", {"uri": "file:///etc/passwd", "text": "x"}),
        (403,),
        False,
    ),
    Case(
        "into .godot/",
        post_json("/edit/applyChanges", {"uri": "res://.godot/pwned.gd", "text": "x"}),
        (403,),
        False,
    ),
    Case("read outside", head("GET", "/lsp/diagnostics?uri=/etc/passwd"), (403,), False),
    Case("URL path ../", head("GET", "/../../etc/passwd"), (404,), False),
    Case("URL path %2e%2e", head("GET", "/%2e%2e/%2e%2e/etc/passwd"), (404,), False),
    # random bytes
    *(
        Case(f"random bytes {seed}", random.Random(seed).randbytes(4096), (400,), True)
        for seed in range(4)
    ),
    Case(
        "random bytes after a request line",
        b"GET / HTTP/1.1\r\n" + random.Random(9).randbytes(512),
        (400,),
        True,
    ),
    # pipelining
    Case(
        "garbage after a valid request, one write", GOOD + b"\x00\x01garbage\r\n\r\n", (400,), True
    ),
    Case(
        "garbage after a valid request, two writes",
        [GOOD, b"\x00\x01garbage\r\n\r\n"],
        (200, 400),
        True,
    ),
    Case("50 pipelined requests", head("GET", "/health") * 50, (200,) * 50, False),
    Case(
        "Expect: 100-continue",
        post("/debug/threads", b"{}", "Expect: 100-continue"),
        (100, 200),
        False,
    ),
    # An agent that half-closes after its request: Godot's StreamPeerTCP reports the peer
    # gone once it sees the FIN, so the answer arrives only if it is faster than that.
    Case("half-close after the request", GOOD, (200,), True, or_want=(), extra={"shutdown": "wr"}),
]


def _exchange(port: int, case: Case, timeout: float = 5.0) -> tuple[list[int], bool, bytes]:
    """Send the case; read answers until the expected number arrived (and, when the case
    must close, until EOF) or `timeout`. Returns (statuses, closed, last body)."""
    statuses: list[int] = []
    closed = False
    last = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        writes = case.data if isinstance(case.data, list) else [case.data]
        for i, chunk in enumerate(writes):
            if i:
                time.sleep(0.3)
            try:
                s.sendall(chunk)
            except OSError:
                break  # the server may close before reading everything
        if case.extra.get("shutdown") == "wr":
            s.shutdown(socket.SHUT_WR)
        buf = bytearray()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(statuses) >= len(case.want) and not case.closes:
                break
            try:
                answer = read_response(s, buf)
            except (ConnectionError, OSError):
                closed = True
                break
            statuses.append(answer.status)
            last = answer.body
            if answer.headers.get("connection") == "close":
                s.settimeout(2)
                try:
                    closed = s.recv(1) == b""
                except OSError:
                    closed = True
                break
    return statuses, closed, last


def _good_request_works(ed: Editor) -> None:
    with socket.create_connection(("127.0.0.1", ed.bridge_port), timeout=10) as s:
        s.sendall(http_get(ed.bridge_port, "/status"))
        answer = read_response(s)
    assert answer.status == 200, answer.body
    assert answer.json()["sidecar"]["pid"] == ed.first_sidecar  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus(hostile: Editor, case: Case) -> None:
    t0 = time.monotonic()
    statuses, closed, last = _exchange(hostile.bridge_port, case)
    took = time.monotonic() - t0
    outcome = " ".join(map(str, statuses)) or "no answer"
    if len(statuses) > 3 and len(set(statuses)) == 1:
        outcome = f"{statuses[0]} x {len(statuses)}"
    RESULTS[case.name] = f"{outcome}{', closed' if closed else ''} ({took * 1000:.0f} ms)"
    assert tuple(statuses) in (case.want, case.or_want), (statuses, last[:300])
    if case.closes is not None:
        assert closed is case.closes, (statuses, closed, last[:300])
    for needle in case.says:
        assert needle in last.decode("utf-8", "replace"), last[:300]
    if statuses and statuses[-1] >= 400 and last.startswith(b"{"):
        body = json.loads(last)  # the bridge's own answers are in the error shape
        assert body["status"] == "error" and body["error"]["code"], body
    _good_request_works(hostile)


def test_nothing_was_written_outside_the_project(hostile: Editor) -> None:
    assert not Path("/tmp/pwned.gd").exists()
    assert not (hostile.project.parent / "pwned.gd").exists()
    assert not (hostile.project / ".godot" / "pwned.gd").exists()


# --- slow and idle clients -------------------------------------------------------------------


@dataclass
class Slow:
    name: str
    statuses: list[int] = field(default_factory=list)
    closed_after: float | None = None
    body: bytes = b""


def _until_closed(s: socket.socket, slow: Slow, t0: float, limit: float) -> None:
    buf = bytearray()
    s.settimeout(limit)
    while True:
        try:
            answer = read_response(s, buf)
        except (ConnectionError, OSError):
            slow.closed_after = time.monotonic() - t0
            return
        slow.statuses.append(answer.status)
        slow.body = answer.body


def test_slow_and_idle_clients_are_closed_long_polls_are_not(hostile: Editor) -> None:
    port = hostile.bridge_port
    mark = hostile.mark()
    limit = HEAD_TIMEOUT + 5
    results: list[Slow] = []

    def sends_then_waits(name: str, data: bytes) -> Callable[[], None]:
        def run() -> None:
            slow = Slow(name)
            t0 = time.monotonic()
            with socket.create_connection(("127.0.0.1", port)) as s:
                if data:
                    s.sendall(data)
                _until_closed(s, slow, t0, limit)
            results.append(slow)

        return run

    silent = sends_then_waits("connects and sends nothing", b"")
    empty_lines = sends_then_waits("sends only empty lines", b"\r\n\r\n\r\n")
    unfinished_head = sends_then_waits(
        "request head without its blank line", b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    )
    slow_body = sends_then_waits(
        "body promised, 10 of 100 bytes sent",
        head("POST", "/debug/threads", "Content-Type: application/json", "Content-Length: 100")
        + b'{"a": 1, ',
    )

    def slowloris() -> None:
        slow = Slow("slowloris: a header byte every 0.5 s")
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            try:
                while time.monotonic() - t0 < limit:
                    s.sendall(b"a")
                    time.sleep(0.5)
            except OSError:
                pass
            _until_closed(s, slow, t0, limit)
        results.append(slow)

    def idle() -> None:
        slow = Slow(f"idle keep-alive after one answer (idle timeout {IDLE_TIMEOUT} s)")
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(GOOD)
            slow.statuses.append(read_response(s).status)
            t0 = time.monotonic()
            _until_closed(s, slow, t0, limit)
        results.append(slow)

    def long_poll() -> None:
        slow = Slow("long-poll of 6 s (longer than the idle timeout), then idle")
        with socket.create_connection(("127.0.0.1", port)) as s:
            t0 = time.monotonic()
            s.sendall(head("GET", "/debug/events?since=1000000000&wait=6"))
            s.settimeout(limit)
            slow.statuses.append(read_response(s).status)
            slow.body = f"answered after {time.monotonic() - t0:.1f} s".encode()
            _until_closed(s, slow, t0, limit)
        results.append(slow)

    def expect_continue() -> None:
        slow = Slow("Expect: 100-continue, then an 11 s long-poll")
        body = json.dumps({"since": 1_000_000_000, "wait": 11}).encode()
        with socket.create_connection(("127.0.0.1", port)) as s:
            t0 = time.monotonic()
            s.sendall(
                head(
                    "POST",
                    "/debug/events",
                    "Content-Type: application/json",
                    f"Content-Length: {len(body)}",
                    "Expect: 100-continue",
                )
            )
            s.settimeout(limit)
            buf = bytearray()
            slow.statuses.append(read_response(s, buf).status)  # 100 Continue
            s.sendall(body)
            slow.statuses.append(read_response(s, buf).status)
            slow.closed_after = time.monotonic() - t0
        results.append(slow)

    threads = [
        threading.Thread(target=f, daemon=True)
        for f in (
            silent,
            empty_lines,
            unfinished_head,
            slowloris,
            slow_body,
            idle,
            long_poll,
            expect_continue,
        )
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(limit + 5)
    assert not any(t.is_alive() for t in threads)
    by_name = {r.name.split(":")[0].split(" (")[0]: r for r in results}
    for r in results:
        done = "answered" if r.name.startswith("Expect") else "closed"
        RESULTS[r.name] = (
            f"{' '.join(map(str, r.statuses)) or 'no answer'}, {done} after "
            f"{r.closed_after:.1f} s"
            + (f" ({r.body.decode()})" if r.name.startswith("long") else "")
        )

    for name in (
        "connects and sends nothing",
        "sends only empty lines",
        "request head without its blank line",
        "slowloris",
    ):
        r = by_name[name]
        assert r.statuses == [408], (name, r)
        assert r.closed_after is not None and HEAD_TIMEOUT - 0.5 < r.closed_after < HEAD_TIMEOUT + 2
    r = by_name["body promised, 10 of 100 bytes sent"]
    assert r.statuses == [408] and b"request_timeout" in r.body, r
    # 10 s for the body, then at most 2 s of lingering for the rest of it.
    assert r.closed_after is not None and r.closed_after < HEAD_TIMEOUT + 3
    r = by_name["idle keep-alive after one answer"]
    assert r.statuses == [200] and r.closed_after is not None
    assert IDLE_TIMEOUT - 0.5 < r.closed_after < IDLE_TIMEOUT + 1.5
    # The interim 100 does not end the request for the addon: no 408 while the answer is due.
    r = by_name["Expect"]
    assert r.statuses == [100, 200], r
    r = by_name["long-poll of 6 s"]
    assert r.statuses == [200], r
    assert r.closed_after is not None and r.closed_after > 6 + IDLE_TIMEOUT - 0.5
    assert hostile.count(r"sent no complete request within 10 s; closing it", mark) >= 4
    assert hostile.count(rf"idle for {IDLE_TIMEOUT} s; closing it", mark) >= 2
    _good_request_works(hostile)


def test_no_error_spam_and_the_sidecar_survived(hostile: Editor) -> None:
    _good_request_works(hostile)
    out = hostile.output[hostile.corpus_mark :]  # type: ignore[attr-defined]
    noise = [
        line
        for line in out.splitlines()
        if "Traceback" in line or "[sidecar] ERROR" in line or "ERROR:" in line
    ]
    assert not noise, noise[:10]
    assert hostile.count(r"GodotBridge sidecar restarting", hostile.corpus_mark) == 0  # type: ignore[attr-defined]


def test_print_the_corpus_table() -> None:
    print("\n| case | outcome |\n|---|---|")
    for name, outcome in RESULTS.items():
        print(f"| {name} | {outcome} |")
