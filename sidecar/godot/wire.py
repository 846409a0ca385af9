"""Content-Length framed JSON messages, the wire format of both DAP and LSP.

A message is ``Content-Length: N\\r\\n\\r\\n`` followed by N bytes of UTF-8 JSON. Godot's
parsers only understand that one header (the DAP server reads the length at a fixed
offset), so that is all we write; on reading, other headers are tolerated.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sidecar.errors import PeerTimeout, ProtocolError, TransportError

# Godot's LSP sends a capabilities notification of several MB; leave ample room while
# still refusing a length that can only be a corrupt header.
MAX_MESSAGE = 64 * 1024 * 1024
_MAX_HEADER = 8 * 1024
_SEPARATOR = b"\r\n\r\n"


class PeerClosed(TransportError):
    """The peer closed the connection or it was reset."""

    code = "peer_closed"


class FramingError(ProtocolError):
    """The byte stream is out of step (bad header, absurd length): the connection is unusable."""

    code = "bad_framing"


def encode(msg: dict[str, Any]) -> bytes:
    body = json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def parse_header(raw: bytes) -> int:
    """The content length announced by one header block (without the blank line)."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise FramingError("message header is not ASCII") from None
    length: int | None = None
    for line in text.split("\r\n"):
        name, sep, value = line.partition(":")
        if not sep:
            raise FramingError(f"malformed header line {line[:80]!r}")
        if name.strip().lower() == "content-length":
            value = value.strip()
            if not value.isdigit():
                raise FramingError(f"bad Content-Length {value[:40]!r}")
            length = int(value)
    if length is None:
        raise FramingError("message header has no Content-Length")
    if length > MAX_MESSAGE:
        raise FramingError(f"message of {length} bytes exceeds the {MAX_MESSAGE} byte limit")
    return length


def decode_body(body: bytes) -> dict[str, Any]:
    """One message body as a JSON object. A bad body leaves the stream in step."""
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"message is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"message is a JSON {type(value).__name__}, not an object")
    return value


class MessageStream:
    """Reads and writes framed JSON messages over one asyncio stream pair."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str = "peer"
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.name = name

    @classmethod
    async def open(
        cls, host: str, port: int, *, timeout: float, name: str = "peer"
    ) -> MessageStream:
        """Connect to host:port, raising TransportError (PeerTimeout after `timeout`)."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), timeout=timeout
            )
        except asyncio.TimeoutError:
            raise PeerTimeout(
                f"{name} on {host}:{port} did not accept within {timeout:g} s"
            ) from None
        except OSError as exc:
            raise TransportError(
                f"cannot connect to {name} on {host}:{port}: {exc.strerror or exc}"
            ) from None
        return cls(reader, writer, name)

    async def read(self) -> dict[str, Any]:
        """The next message. PeerClosed at EOF; FramingError or ProtocolError on bad input."""
        header = await self._read_header()
        length = parse_header(header)
        try:
            # readexactly is not bound by the reader's line limit, so multi-MB bodies pass.
            body = await self._reader.readexactly(length)
        except asyncio.IncompleteReadError:
            raise PeerClosed(f"{self.name} closed the connection mid-message") from None
        except OSError as exc:
            raise PeerClosed(f"{self.name} connection failed: {exc}") from None
        return decode_body(body)

    async def _read_header(self) -> bytes:
        try:
            raw = await self._reader.readuntil(_SEPARATOR)
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise PeerClosed(f"{self.name} closed the connection mid-header") from None
            raise PeerClosed(f"{self.name} closed the connection") from None
        except asyncio.LimitOverrunError:
            raise FramingError(f"{self.name} sent a header longer than the limit") from None
        except OSError as exc:
            raise PeerClosed(f"{self.name} connection failed: {exc}") from None
        if len(raw) > _MAX_HEADER:
            raise FramingError(f"{self.name} sent a {len(raw)} byte header")
        # Tolerate stray blank lines between messages.
        return raw[: -len(_SEPARATOR)].lstrip(b"\r\n")

    def write(self, msg: dict[str, Any]) -> None:
        """Queue one message for sending; PeerClosed if the connection is gone."""
        if self._writer.is_closing():
            raise PeerClosed(f"{self.name} connection is closed")
        self._writer.write(encode(msg))

    async def drain(self) -> None:
        """Wait until the peer has taken what was written (flow control)."""
        try:
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise PeerClosed(f"{self.name} connection failed: {exc}") from None

    def close(self) -> None:
        self._writer.close()

    async def wait_closed(self) -> None:
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass  # already gone: closing is all we wanted
