"""The Content-Length message stream, fed from memory and over real loopback sockets."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest
from harness import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.errors import ProtocolError, TransportError
from sidecar.godot.wire import MAX_MESSAGE, FramingError, MessageStream, PeerClosed, encode


class _NullWriter:
    """Enough of a StreamWriter for streams that are only read."""

    def __init__(self) -> None:
        self.closed = False

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def _stream(chunks: list[bytes]) -> MessageStream:
    reader = asyncio.StreamReader()
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_eof()
    return MessageStream(reader, _NullWriter(), "fake")  # type: ignore[arg-type]


async def _read_all(chunks: list[bytes]) -> list[dict[str, Any]]:
    stream = _stream(chunks)  # StreamReader wants a running loop
    out = []
    with pytest.raises(PeerClosed):
        for _ in range(1000):
            out.append(await stream.read())
    return out


def test_encode_is_content_length_framed_utf8() -> None:
    raw = encode({"text": "é"})
    header, body = raw.split(b"\r\n\r\n", 1)
    assert header == b"Content-Length: %d" % len(body)
    assert json.loads(body) == {"text": "é"}
    assert len(body) == len('{"text":"é"}'.encode())


async def test_reads_consecutive_messages_then_eof() -> None:
    data = encode({"a": 1}) + encode({"b": [1, 2]}) + encode({})
    got = await _read_all([data])
    assert got == [{"a": 1}, {"b": [1, 2]}, {}]


async def test_tolerates_other_headers_and_stray_blank_lines() -> None:
    body = b'{"x":true}'
    data = (
        b"\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n"
        b"content-length: %d\r\n\r\n" % len(body) + body
    )
    assert await _read_all([data]) == [{"x": True}]


async def test_multi_megabyte_message_in_small_chunks() -> None:
    big = {"items": ["x" * 100] * 40_000}  # ~4 MB, like Godot's LSP capabilities
    raw = encode(big)
    chunks = [raw[i : i + 65_536] for i in range(0, len(raw), 65_536)]
    assert await _read_all(chunks) == [big]


@settings(max_examples=examples(60), deadline=None)
@given(
    messages=st.lists(
        st.dictionaries(
            st.text(max_size=8),
            st.one_of(st.integers(), st.text(max_size=20), st.booleans(), st.none()),
            max_size=5,
        ),
        max_size=5,
    ),
    cut=st.integers(min_value=1, max_value=17),
)
def test_any_messages_survive_any_chunking(messages: list[dict[str, Any]], cut: int) -> None:
    raw = b"".join(encode(m) for m in messages)
    chunks = [raw[i : i + cut] for i in range(0, len(raw), cut)]
    assert asyncio.run(_read_all(chunks)) == messages


async def test_bad_json_body_is_a_protocol_error_and_the_stream_stays_in_step() -> None:
    bad = b"{nope"
    data = b"Content-Length: %d\r\n\r\n" % len(bad) + bad + encode({"ok": 1})
    stream = _stream([data])
    with pytest.raises(ProtocolError) as err:
        await stream.read()
    assert not isinstance(err.value, FramingError)
    assert await stream.read() == {"ok": 1}


async def test_json_that_is_not_an_object_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="list"):
        await _stream([b"Content-Length: 2\r\n\r\n[]"]).read()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"garbage without colon\r\n\r\n{}", "malformed header"),
        (b"Content-Type: x\r\n\r\n{}", "no Content-Length"),
        (b"Content-Length: -4\r\n\r\n{}", "bad Content-Length"),
        (b"Content-Length: %d\r\n\r\n" % (MAX_MESSAGE + 1), "exceeds"),
        (b"Content-Length: \xff\r\n\r\n", "not ASCII"),
    ],
)
async def test_bad_headers_are_framing_errors(data: bytes, match: str) -> None:
    with pytest.raises(FramingError, match=match) as err:
        await _stream([data]).read()
    assert err.value.status == 502


async def test_endless_header_is_a_framing_error() -> None:
    with pytest.raises(FramingError):
        await _stream([b"X" * 200_000]).read()


@pytest.mark.parametrize(
    "data",
    [b"", b"Content-Length: 10\r\n", b'Content-Length: 10\r\n\r\n{"a":'],
    ids=["clean-eof", "mid-header", "mid-body"],
)
async def test_eof_is_peer_closed(data: bytes) -> None:
    with pytest.raises(PeerClosed) as err:
        await _stream([data]).read()
    assert isinstance(err.value, TransportError)
    assert err.value.status == 503


async def test_roundtrip_over_loopback_and_write_after_close() -> None:
    received: list[dict[str, Any]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = MessageStream(reader, writer, "client")
        msg = await peer.read()
        received.append(msg)
        peer.write({"echo": msg})
        await peer.drain()
        peer.close()
        await peer.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        stream = await MessageStream.open("127.0.0.1", port, timeout=2, name="server")
        stream.write({"hello": "wörld", "n": 1.5})
        await stream.drain()
        assert await stream.read() == {"echo": {"hello": "wörld", "n": 1.5}}
        with pytest.raises(PeerClosed):
            await stream.read()
        stream.close()
        with pytest.raises(PeerClosed):
            stream.write({"late": True})
        await stream.wait_closed()
        assert received == [{"hello": "wörld", "n": 1.5}]
    finally:
        server.close()
        await server.wait_closed()


async def test_open_refused_is_a_transport_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        with pytest.raises(TransportError, match=f"127.0.0.1:{port}") as err:
            await MessageStream.open("127.0.0.1", port, timeout=2, name="godot")
        assert err.value.status == 503
        assert err.value.headers["Retry-After"] == "1"
