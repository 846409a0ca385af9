"""Frames of the link between the addon and the sidecar (docs/LINK.md).

A frame is a u32 big-endian payload length and one msgpack map with a str field `op`. Both ends
accept exactly the same msgpack subset (addons/godot_debug_connection/msgpack.gd is the other
end), so anything one side rejects the other rejects too, with the same error code:

- `empty`: length 0; `too_large`: length above MAX_FRAME;
- `msgpack`: not valid msgpack of the subset: truncated, ext types, invalid UTF-8, an int
  outside int64 (uint64 above 2^63-1), nesting deeper than MAX_DEPTH, a map key that is not
  str or int, a duplicate map key (also when U+0000 is read as U+FFFD, see below);
- `not_map`: the payload is another type; `trailing`: bytes after the map; `no_op`: no str `op`.

Godot Strings cannot hold U+0000, so the addon reads NUL in a str as U+FFFD: not an error, but
the one value that does not survive a trip through Godot unchanged.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack

MAX_FRAME = 16 * 1024 * 1024
MAX_DEPTH = 64

EMPTY = "empty"
TOO_LARGE = "too_large"
MSGPACK = "msgpack"
NOT_MAP = "not_map"
TRAILING = "trailing"
NO_OP = "no_op"
PROTOCOL = "protocol"

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_LENGTH = struct.Struct(">I")

# A `data` frame, {"op": "data", "id": <int>, "data": <bin>}, is what the link carries most.
# Both encoders write its keys in that order, so its payload is _DATA_HEAD, the id, _DATA_KEY
# and the bin: encode_data_frame writes that directly and the decoder cuts it out without
# msgpack; anything laid out otherwise takes the general path, with the same result.
_DATA_HEAD = b"\x83\xa2op\xa4data\xa2id"
_DATA_KEY = b"\xa4data"
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class FrameError(Exception):
    """A protocol error on the link: a frame that must not be sent or was received broken.

    `code` is one of the module's error codes (PROTOCOL for errors raised above this module).
    `frames` holds the good frames that FrameDecoder.feed decoded before the bad one.
    """

    def __init__(self, message: str, code: str = PROTOCOL) -> None:
        super().__init__(message)
        self.code = code
        self.frames: list[dict[str, Any]] = []


class _Invalid(Exception):
    """Raised inside msgpack's callbacks; never leaves this module."""


def _map_from_pairs(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    # Keys are limited to str and int because Python merges 1, 1.0 and True into one key while
    # Godot keeps them apart; a duplicate would make the two sides see different maps.
    for key, _ in pairs:
        if type(key) is not str and type(key) is not int:
            raise _Invalid(f"map key must be str or int, not {type(key).__name__}")
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _Invalid("duplicate map key")
    _check_nul_keys(result)
    return result


def _check_nul_keys(map_: dict[Any, Any]) -> None:
    # Godot reads U+0000 as U+FFFD, so "a\0" and "a\ufffd" are one key to the addon, which
    # rejects the map as having a duplicate key: reject it here too.
    nul_keys = [k for k in map_ if type(k) is str and "\0" in k]
    if not nul_keys:
        return
    as_godot = {k.replace("\0", "\ufffd") for k in nul_keys}
    if len(as_godot) != len(nul_keys) or not as_godot.isdisjoint(map_):
        raise _Invalid("duplicate map key once U+0000 reads as U+FFFD")


def _ext_rejected(code: int, data: bytes) -> Any:
    raise _Invalid(f"ext types are not supported (type {code})")


def _check(value: Any, depth: int) -> None:
    """Raise _Invalid unless `value` is inside the msgpack subset both ends share."""
    if value is None or isinstance(value, (bool, float, str, bytes, bytearray)):
        return
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise _Invalid(f"int {value} outside int64")
        return
    # Exact list/tuple: msgpack.ExtType is a namedtuple that msgpack would write as ext.
    if type(value) in (list, tuple) or isinstance(value, dict):
        if depth >= MAX_DEPTH:
            raise _Invalid(f"nesting deeper than {MAX_DEPTH}")
        if isinstance(value, dict):
            _check_nul_keys(value)
            for key, item in value.items():
                if isinstance(key, bool) or not isinstance(key, (str, int)):
                    raise _Invalid(f"map key must be str or int, not {type(key).__name__}")
                _check(key, depth + 1)
                _check(item, depth + 1)
        else:
            for item in value:
                _check(item, depth + 1)
        return
    # msgpack's own Timestamp (ext -1) is decoded without asking ext_hook, so it ends up here.
    raise _Invalid(f"unsupported type {type(value).__name__}")


def pack(value: Any) -> bytes:
    """Encode one value of the subset exactly as msgpack.gd does; FrameError otherwise."""
    try:
        _check(value, 0)
        packed: bytes = msgpack.packb(value, use_bin_type=True)
        return packed
    except (_Invalid, ValueError, TypeError, OverflowError) as err:
        # UnicodeEncodeError (a lone surrogate in a str) is a ValueError.
        raise FrameError(f"cannot encode: {err}", MSGPACK) from err


def _unpack_first(data: bytes | bytearray) -> tuple[Any, int]:
    """The first value in `data` and the number of bytes after it."""
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=False,
            object_pairs_hook=_map_from_pairs,
            ext_hook=_ext_rejected,
        )
        extra = 0
    except msgpack.ExtraData as err:
        value, extra = err.unpacked, len(err.extra)
    except Exception as err:
        # msgpack reports bad input as ValueError, TypeError (unhashable keys), its own
        # exception classes or our _Invalid: all of them mean "not msgpack of the subset", and
        # the link must survive any bytes the peer sends.
        raise FrameError(f"bad msgpack: {err or type(err).__name__}", MSGPACK) from err
    try:
        _check(value, 0)
    except _Invalid as err:
        raise FrameError(f"bad msgpack: {err}", MSGPACK) from err
    return value, extra


def unpack(data: bytes) -> Any:
    """Decode exactly one value of the subset filling `data`; FrameError otherwise."""
    value, extra = _unpack_first(data)
    if extra:
        raise FrameError(f"{extra} bytes after the value", TRAILING)
    return value


def decode_payload(payload: bytes | bytearray) -> dict[str, Any]:
    """Decode the payload of one frame (without its length prefix); FrameError if it is bad."""
    frame = _data_frame(payload, 0, len(payload))
    return frame if frame is not None else _decode_payload(payload)


def _decode_payload(payload: bytes | bytearray) -> dict[str, Any]:
    msg, extra = _unpack_first(payload)
    if not isinstance(msg, dict):
        raise FrameError(f"payload is a {type(msg).__name__}, not a map", NOT_MAP)
    if extra:
        raise FrameError(f"{extra} bytes after the map", TRAILING)
    if not isinstance(msg.get("op"), str):
        raise FrameError("frame has no str field op", NO_OP)
    return msg


def encode_data_frame(client_id: int, data: bytes | bytearray) -> bytes:
    """encode_frame({"op": "data", "id": client_id, "data": data}), byte for byte, faster."""
    if type(client_id) is not int or not 0 <= client_id <= _INT64_MAX:
        return encode_frame({"op": "data", "id": client_id, "data": data})
    if client_id < 0x80:
        ident = bytes((client_id,))
    elif client_id < 0x100:
        ident = bytes((0xCC, client_id))
    elif client_id < 0x10000:
        ident = b"\xcd" + _U16.pack(client_id)
    elif client_id < 0x100000000:
        ident = b"\xce" + _U32.pack(client_id)
    else:
        ident = b"\xcf" + _U64.pack(client_id)
    n = len(data)
    if n < 0x100:
        head = bytes((0xC4, n))
    elif n < 0x10000:
        head = b"\xc5" + _U16.pack(n)
    else:
        head = b"\xc6" + _U32.pack(n)
    size = len(_DATA_HEAD) + len(ident) + len(_DATA_KEY) + len(head) + n
    if size > MAX_FRAME:
        raise FrameError(f"frame of {size} bytes above {MAX_FRAME}", TOO_LARGE)
    return b"".join((_LENGTH.pack(size), _DATA_HEAD, ident, _DATA_KEY, head, data))


def _data_frame(buf: bytes | bytearray, start: int, end: int) -> dict[str, Any] | None:
    """The `data` frame whose payload is buf[start:end] if laid out as _DATA_HEAD says, else
    None (then the general decoder has the final word on it)."""
    if end - start < 20 or not buf.startswith(_DATA_HEAD, start):
        return None
    p = start + len(_DATA_HEAD)
    kind = buf[p]
    if kind < 0x80:
        client_id, p = kind, p + 1
    elif kind == 0xCC:
        client_id, p = buf[p + 1], p + 2
    elif kind == 0xCD:
        (client_id,), p = _U16.unpack_from(buf, p + 1), p + 3
    elif kind == 0xCE and end - p >= 5:
        (client_id,), p = _U32.unpack_from(buf, p + 1), p + 5
    elif kind == 0xCF and end - p >= 9:
        (client_id,), p = _U64.unpack_from(buf, p + 1), p + 9
        if client_id > _INT64_MAX:
            return None
    else:
        return None
    if end - p < 7 or not buf.startswith(_DATA_KEY, p):
        return None
    p += len(_DATA_KEY)
    kind = buf[p]
    if kind == 0xC4:
        size, p = buf[p + 1], p + 2
    elif kind == 0xC5 and end - p >= 3:
        (size,), p = _U16.unpack_from(buf, p + 1), p + 3
    elif kind == 0xC6 and end - p >= 5:
        (size,), p = _U32.unpack_from(buf, p + 1), p + 5
    else:
        return None
    if p + size != end:
        return None
    return {"op": "data", "id": client_id, "data": bytes(buf[p:end])}


def encode_frame(msg: dict[str, Any]) -> bytes:
    """One frame carrying `msg`. FrameError when the peer would reject it."""
    if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
        raise FrameError("frame has no str field op", NO_OP)
    payload = pack(msg)
    if len(payload) > MAX_FRAME:
        raise FrameError(f"frame of {len(payload)} bytes above {MAX_FRAME}", TOO_LARGE)
    return _LENGTH.pack(len(payload)) + payload


class FrameDecoder:
    """Cut a byte stream into frames.

    After a FrameError the decoder stays broken (every later feed raises again): the link is
    reset anyway, and a half-consumed stream has no trustworthy frame boundary left.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._error: FrameError | None = None

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Add received bytes; return the frames they complete, in order."""
        if self._error is not None:
            raise FrameError(str(self._error), self._error.code)
        buf = self._buf
        buf += data
        frames: list[dict[str, Any]] = []
        off = 0
        try:
            while len(buf) - off >= _LENGTH.size:
                (n,) = _LENGTH.unpack_from(buf, off)
                if n == 0:
                    raise FrameError("frame length 0", EMPTY)
                if n > MAX_FRAME:
                    raise FrameError(f"frame length {n} above {MAX_FRAME}", TOO_LARGE)
                start = off + _LENGTH.size
                if len(buf) - start < n:
                    break
                frame = _data_frame(buf, start, start + n)
                if frame is None:
                    frame = _decode_payload(buf[start : start + n])
                frames.append(frame)
                off = start + n
        except FrameError as err:
            err.frames = frames
            self._error = err
            self._buf = bytearray()
            raise
        # Deleting a bytearray's head only moves its start pointer: no copy per feed.
        del buf[:off]
        return frames

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as frames."""
        return len(self._buf)
