"""sidecar/link/frames.py against tests/fixtures/frames.json (made by tools/gen_frame_fixtures.py
from msgpack-python) and against random input: only FrameError may ever come out."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import msgpack
import pytest
from harness import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.link import frames
from sidecar.link.frames import (
    MAX_FRAME,
    FrameDecoder,
    FrameError,
    decode_payload,
    encode_data_frame,
    encode_frame,
    pack,
    unpack,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = json.loads((ROOT / "tests" / "fixtures" / "frames.json").read_text(encoding="utf-8"))
VALID = FIXTURES["valid"]
INVALID = FIXTURES["invalid"]
ERROR_CODES = {"empty", "too_large", "msgpack", "not_map", "trailing", "no_op"}


def expand_hex(text: str) -> bytes:
    """Fixture hex, where "(<hex>*<n>)" is <hex> repeated n times."""
    return bytes.fromhex(re.sub(r"\(([0-9a-f]+)\*(\d+)\)", lambda m: m[1] * int(m[2]), text))


def from_json(value: Any) -> Any:
    """Fixture JSON to Python: {"$bin": hex} is bytes, {"$map": [[k, v], ...]} a dict."""
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and "$bin" in value:
            return expand_hex(value["$bin"])
        if len(value) == 1 and "$map" in value:
            return {from_json(k): from_json(v) for k, v in value["$map"]}
        return {k: from_json(v) for k, v in value.items()}
    return value


def typed(value: Any) -> Any:
    """A form where equality also means equal types (1, 1.0 and True differ) and bit-equal
    floats (so -0.0 != 0.0 and NaN == NaN)."""
    if isinstance(value, dict):
        return ("map", [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    if isinstance(value, float):
        return ("float", struct.pack(">d", value))
    return (type(value).__name__, value)


def nested(depth: int) -> Any:
    """`depth` lists inside each other."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def by_name(fixtures: list[dict[str, Any]]) -> Any:
    return pytest.mark.parametrize("fx", fixtures, ids=[f["name"] for f in fixtures])


def test_fixture_file_covers_the_spec() -> None:
    names = [f["name"] for f in VALID + INVALID]
    assert len(names) == len(set(names))
    ops = {from_json(f["value"])["op"] for f in VALID}
    assert {"hello", "open", "data", "close", "action", "action_result", "log"} <= ops
    assert {f["error"] for f in INVALID} == ERROR_CODES


def test_link_md_hex_examples_are_fixtures() -> None:
    text = (ROOT / "docs" / "LINK.md").read_text(encoding="utf-8")
    examples = re.findall(r"```\n([0-9a-f]{8}(?: [0-9a-f]{2})+)\n```", text)
    assert len(examples) == 2
    fixture_hex = {f["hex"] for f in VALID}
    for example in examples:
        assert example.replace(" ", "") in fixture_hex


@by_name(VALID)
def test_decodes_fixture(fx: dict[str, Any]) -> None:
    frames = FrameDecoder().feed(expand_hex(fx["hex"]))
    assert len(frames) == 1
    assert typed(frames[0]) == typed(from_json(fx["value"]))


@by_name(VALID)
def test_encodes_fixture_to_identical_bytes(fx: dict[str, Any]) -> None:
    assert encode_frame(from_json(fx["value"])) == expand_hex(fx["hex"])


@by_name(INVALID)
def test_rejects_invalid_fixture(fx: dict[str, Any]) -> None:
    with pytest.raises(FrameError) as err:
        FrameDecoder().feed(expand_hex(fx["hex"]))
    assert err.value.code == fx["error"]


def test_whole_fixture_stream_byte_by_byte() -> None:
    small = [f for f in VALID if len(f["hex"]) < 4000]
    stream = b"".join(expand_hex(f["hex"]) for f in small)
    decoder = FrameDecoder()
    frames = []
    for i in range(len(stream)):
        frames += decoder.feed(stream[i : i + 1])
    assert [typed(f) for f in frames] == [typed(from_json(f["value"])) for f in small]
    assert decoder.buffered == 0


def test_many_frames_in_one_chunk() -> None:
    msgs = [{"op": "data", "id": i, "data": bytes([i % 256]) * (i % 50)} for i in range(5000)]
    stream = b"".join(encode_frame(m) for m in msgs)
    decoder = FrameDecoder()
    assert decoder.feed(stream[:-1]) == msgs[:-1]
    assert decoder.buffered == len(encode_frame(msgs[-1])) - 1
    assert decoder.feed(stream[-1:]) == msgs[-1:]
    assert decoder.buffered == 0


def test_error_is_sticky_and_keeps_earlier_frames() -> None:
    good = encode_frame({"op": "open", "id": 1, "peer": "p"})
    decoder = FrameDecoder()
    with pytest.raises(FrameError) as err:
        decoder.feed(good + good + bytes(4) + good)
    assert err.value.code == "empty"
    assert [f["id"] for f in err.value.frames] == [1, 1]
    with pytest.raises(FrameError) as again:
        decoder.feed(good)
    assert again.value.code == "empty"


def test_frame_error_from_a_message_alone() -> None:
    err = FrameError("expected hello")
    assert str(err) == "expected hello"
    assert err.code == "protocol"


def test_length_limits() -> None:
    # A header announcing exactly MAX_FRAME bytes just waits for them...
    decoder = FrameDecoder()
    assert decoder.feed(struct.pack(">I", MAX_FRAME) + b"\x83") == []
    # ...and one byte more is an error before the payload arrives.
    with pytest.raises(FrameError) as err:
        FrameDecoder().feed(struct.pack(">I", MAX_FRAME + 1))
    assert err.value.code == "too_large"


def test_largest_frame_round_trips_and_one_more_byte_is_refused() -> None:
    overhead = len(pack({"op": "data", "id": 1, "data": b""})) + 3  # bin8 -> bin32 header
    msg = {"op": "data", "id": 1, "data": bytes(MAX_FRAME - overhead)}
    frame = encode_frame(msg)
    assert len(frame) == 4 + MAX_FRAME
    assert FrameDecoder().feed(frame) == [msg]
    msg["data"] = bytes(MAX_FRAME - overhead + 1)
    with pytest.raises(FrameError) as err:
        encode_frame(msg)
    assert err.value.code == "too_large"


@pytest.mark.parametrize(
    ("msg", "code"),
    [
        ({"id": 1}, "no_op"),
        ({"op": 1}, "no_op"),
        ({"op": b"open"}, "no_op"),
        ({"op": "x", "v": 2**63}, "msgpack"),
        ({"op": "x", "v": -(2**63) - 1}, "msgpack"),
        ({"op": "x", "v": {1.0: 1}}, "msgpack"),
        ({"op": "x", "v": {True: 1}}, "msgpack"),
        ({"op": "x", "v": {None: 1}}, "msgpack"),
        ({"op": "x", "v": {(1,): 1}}, "msgpack"),
        ({"op": "x", "v": {1, 2}}, "msgpack"),
        ({"op": "x", "v": object()}, "msgpack"),
        ({"op": "x", "v": msgpack.ExtType(1, b"")}, "msgpack"),
        ({"op": "x", "v": msgpack.Timestamp(1)}, "msgpack"),
        ({"op": "x", "v": "\ud800"}, "msgpack"),
        ({"op": "x", "v": nested(64)}, "msgpack"),
    ],
)
def test_encode_refuses_what_the_addon_would_reject(msg: dict[str, Any], code: str) -> None:
    with pytest.raises(FrameError) as err:
        encode_frame(msg)
    assert err.value.code == code


def test_encode_depth_limit_is_inclusive() -> None:
    value = nested(63)
    frame = encode_frame({"op": "x", "v": value})  # the frame map + 63 arrays = 64 levels
    assert FrameDecoder().feed(frame)[0]["v"] == value
    with pytest.raises(FrameError):
        encode_frame({"op": "x", "v": [value]})


def test_tuples_and_bytearrays_encode_as_array_and_bin() -> None:
    assert pack((1, bytearray(b"a"))) == msgpack.packb([1, b"a"], use_bin_type=True)


def test_unpack_and_decode_payload() -> None:
    assert unpack(b"\x92\x01\xc4\x01a") == [1, b"a"]
    with pytest.raises(FrameError) as err:
        unpack(b"\x01\x02")
    assert err.value.code == "trailing"
    assert decode_payload(b"\x81\xa2op\xa1x") == {"op": "x"}


# Hypothesis: whatever arrives, the decoder answers with frames or FrameError, nothing else.

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=40)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=8) | st.integers(-1000, 1000), inner, max_size=5)
    ),
    max_leaves=20,
)
messages = st.builds(
    lambda op, extra: {"op": op, **extra},
    st.text(max_size=10),
    st.dictionaries(st.text(max_size=8).filter(lambda k: k != "op"), values, max_size=4),
)


def feed_all(data: bytes) -> list[dict[str, Any]]:
    """Feed `data`; only FrameError may escape (anything else fails the test)."""
    try:
        return FrameDecoder().feed(data)
    except FrameError as err:
        assert err.code in ERROR_CODES
        return err.frames


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_frame_error(data: bytes) -> None:
    feed_all(data)


@settings(max_examples=examples(300))
@given(st.binary(min_size=1, max_size=200))
def test_random_payload_in_a_frame_only_raises_frame_error(payload: bytes) -> None:
    feed_all(struct.pack(">I", len(payload)) + payload)


@settings(max_examples=examples(200))
@given(messages, st.data())
def test_truncated_or_mutated_frames_only_raise_frame_error(msg: dict[str, Any], data: Any) -> None:
    frame = encode_frame(msg)
    cut = data.draw(st.integers(0, len(frame) - 1))
    assert FrameDecoder().feed(frame[:cut]) == []
    pos = data.draw(st.integers(4, len(frame) - 1))
    byte = data.draw(st.integers(0, 255))
    mutated = frame[:pos] + bytes([byte]) + frame[pos + 1 :]
    feed_all(mutated)
    # Cutting the payload short inside its frame is never a valid frame either.
    if cut > 4:
        with pytest.raises(FrameError):
            FrameDecoder().feed(struct.pack(">I", cut - 4) + frame[4:cut])


@settings(max_examples=examples(100))
@given(st.lists(messages, min_size=1, max_size=8), st.data())
def test_split_stream_yields_the_same_frames(msgs: list[dict[str, Any]], data: Any) -> None:
    stream = b"".join(encode_frame(m) for m in msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = FrameDecoder()
    got: list[dict[str, Any]] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += decoder.feed(stream[start:end])
    assert [typed(m) for m in got] == [typed(m) for m in msgs]
    assert stream == b"".join(msgpack_frame(m) for m in msgs)


def msgpack_frame(msg: dict[str, Any]) -> bytes:
    payload = msgpack.packb(msg, use_bin_type=True)
    return struct.pack(">I", len(payload)) + payload


# --- the shortcut for `data` frames (frames.encode_data_frame, frames._data_frame) ---


@settings(max_examples=examples(300))
@given(st.integers(0, 2**63 - 1), st.binary(max_size=70000))
def test_encode_data_frame_is_encode_frame(client_id: int, data: bytes) -> None:
    assert encode_data_frame(client_id, data) == msgpack_frame(
        {"op": "data", "id": client_id, "data": data}
    )
    assert encode_data_frame(client_id, bytearray(data)) == encode_frame(
        {"op": "data", "id": client_id, "data": data}
    )


def test_encode_data_frame_falls_back_to_encode_frame() -> None:
    for odd_id in (-1, -(2**63), True, 1.5):
        want = encode_frame({"op": "data", "id": odd_id, "data": b"x"})
        assert encode_data_frame(odd_id, b"x") == want  # type: ignore[arg-type]
    with pytest.raises(FrameError):
        encode_data_frame(2**63, b"x")
    with pytest.raises(FrameError) as err:
        encode_data_frame(1, b"\0" * (MAX_FRAME - 22))
    assert err.value.code == "too_large"
    assert len(encode_data_frame(1, b"\0" * (MAX_FRAME - 23))) == MAX_FRAME + 4


@settings(max_examples=examples(500))
@given(st.integers(0, 2**64 - 1), st.binary(max_size=400), st.data())
def test_data_frame_shortcut_agrees_with_the_general_decoder(
    client_id: int, data: bytes, draw: Any
) -> None:
    payload = bytearray(msgpack.packb({"op": "data", "id": client_id, "data": data}))
    for _ in range(draw.draw(st.integers(0, 3))):
        pos = draw.draw(st.integers(0, len(payload) - 1))
        payload[pos] = draw.draw(st.integers(0, 255))
    payload = payload[: draw.draw(st.integers(1, len(payload)))]
    try:
        want: Any = typed(frames._decode_payload(bytes(payload)))
    except FrameError as err:
        want = err.code
    fast = frames._data_frame(payload, 0, len(payload))
    if fast is not None:
        assert typed(fast) == want
    try:
        got: Any = typed(decode_payload(payload))
    except FrameError as err:
        got = err.code
    assert got == want
    # Inside a stream, behind another frame.
    frame = struct.pack(">I", len(payload)) + payload
    try:
        streamed: Any = [typed(f) for f in FrameDecoder().feed(frame + frame)]
    except FrameError as err:
        streamed = err.code
    assert streamed == (want if isinstance(want, str) else [want, want])
