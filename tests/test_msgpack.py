"""msgpack.gd and frame_codec.gd, run by the Godot binary.

- The GDScript unit tests (tests/gd/test_msgpack.gd, tests/gd/test_frames.gd) must pass.
- Cross-check against msgpack-python, many values per Godot start (a start costs ~0.5 s):
  Python encodes -> GDScript decodes and re-encodes -> identical bytes, and GDScript reports
  the value it saw; GDScript encodes values it parsed from JSON -> the bytes msgpack-python
  writes; random and damaged bytes -> both sides accept or reject the same inputs.
Floats are compared by their bits (NaN included); Godot reads U+0000 in a str as U+FFFD, so
the expected Godot value is the Python value with that replacement (`as_godot`).
The Godot binary comes from the `godot_bin` fixture of tests/conftest.py.
"""

from __future__ import annotations

import json
import math
import re
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from test_frames import typed

from sidecar.link.frames import FrameDecoder, FrameError, encode_frame, pack, unpack

ROOT = Path(__file__).resolve().parent.parent
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Lines Godot prints when something went wrong, e.g. its UTF-8 parser complaining: decoding
# bad input must stay silent.
NOISE = re.compile(r"ERROR|WARNING|Unicode parsing error|leaked", re.IGNORECASE)


def run_gd(godot: str, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run tests/gd/<script> headless; fail on a crash, a non-zero exit or any error line."""
    cmd = [godot, "--headless", "--path", str(ROOT), "--script", f"res://tests/gd/{script}"]
    proc = subprocess.run(
        [*cmd, "--", *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    noise = [line for line in output.splitlines() if NOISE.search(line)]
    assert not noise, noise[:10]
    return proc


# Converting between Python values and the tagged JSON test_msgpack.gd reads and writes.


def as_godot(value: Any) -> Any:
    """What Godot holds after decoding `value`: U+0000 in any str becomes U+FFFD."""
    if isinstance(value, str):
        return value.replace("\0", "\ufffd")
    if isinstance(value, list):
        return [as_godot(v) for v in value]
    if isinstance(value, dict):
        return {as_godot(k): as_godot(v) for k, v in value.items()}
    return value


def to_tagged(value: Any) -> Any:
    if isinstance(value, float):
        return {"$float": struct.pack(">d", value).hex()}
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, list):
        return [to_tagged(v) for v in value]
    if isinstance(value, dict):
        return {"$map": [[to_tagged(k), to_tagged(v)] for k, v in value.items()]}
    return value


def from_tagged(value: Any) -> Any:
    if isinstance(value, list):
        return [from_tagged(v) for v in value]
    if isinstance(value, dict):
        ((tag, inner),) = value.items()
        if tag == "$float":
            return struct.unpack(">d", bytes.fromhex(inner))[0]
        if tag == "$bin":
            return bytes.fromhex(inner)
        assert tag == "$map", value
        return {from_tagged(k): from_tagged(v) for k, v in inner}
    return value


def read_lines(path: Path) -> list[dict[str, Any]]:
    # Not splitlines(): it also splits at characters like U+2028 that strings may hold.
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.split("\n") if line]


def cross_run(godot: str, records: list[bytes], values: list[Any]) -> tuple[list, list]:
    """One Godot run: decode+re-encode `records`, encode `values` (given as tagged JSON)."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "in.bin").write_bytes(b"".join(struct.pack(">I", len(r)) + r for r in records))
        (d / "in.json").write_text(
            json.dumps([to_tagged(v) for v in values], ensure_ascii=False), encoding="utf-8"
        )
        run_gd(
            godot,
            "test_msgpack.gd",
            *("--roundtrip", str(d / "in.bin"), str(d / "rt.jsonl")),
            *("--encode", str(d / "in.json"), str(d / "enc.jsonl")),
        )
        return read_lines(d / "rt.jsonl"), read_lines(d / "enc.jsonl")


def check_both_directions(godot: str, values: list[Any]) -> None:
    expected = [pack(as_godot(v)) for v in values]
    round_trip, encoded = cross_run(godot, [pack(v) for v in values], values)
    assert len(round_trip) == len(encoded) == len(values)
    for i, (value, want, rt, enc) in enumerate(
        zip(values, expected, round_trip, encoded, strict=True)
    ):
        what = f"value {i}: {short(value)}"
        # Python -> Godot -> Python: the same bytes, and Godot saw the same value.
        assert rt["ok"], (what, rt)
        assert bytes.fromhex(rt["hex"]) == want, what
        assert typed(from_tagged(rt["value"])) == typed(as_godot(value)), what
        # Godot encodes a value it never saw as msgpack: msgpack-python's bytes.
        assert enc["ok"], (what, enc)
        assert bytes.fromhex(enc["hex"]) == want, what
        assert typed(unpack(want)) == typed(as_godot(value)), what


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 300 else text[:300] + "..."


# Value strategies: the whole subset, with the integer boundaries msgpack cares about.

BOUNDARY_INTS = sorted(
    {
        s * (2**b + d)
        for b in (0, 5, 7, 8, 15, 16, 31, 32, 63)
        for d in (-1, 0, 1)
        for s in (1, -1)
        if INT64_MIN <= s * (2**b + d) <= INT64_MAX
    }
    | {-33, -32}
)
ints = st.integers(INT64_MIN, INT64_MAX) | st.sampled_from(BOUNDARY_INTS)
scalars = st.none() | st.booleans() | ints | st.floats() | st.text() | st.binary()
keys = st.text(max_size=12) | ints
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(keys, inner, max_size=6),
    max_leaves=15,
)


def encodable(batch: list[Any]) -> list[Any]:
    # Maps whose keys differ only by U+0000 vs U+FFFD are refused on both sides; skip them.
    def ok(value: Any) -> bool:
        try:
            pack(value)
        except FrameError:
            return False
        return True

    return [v for v in batch if ok(v)]


def test_gdscript_msgpack_unit_tests(godot_bin: str) -> None:
    proc = run_gd(godot_bin, "test_msgpack.gd")
    summary = re.search(r"^gdscript: (\d+) passed, (\d+) failed$", proc.stdout, re.M)
    assert summary, proc.stdout[-2000:]
    assert int(summary[2]) == 0
    assert int(summary[1]) >= 300


def test_gdscript_frame_unit_tests(godot_bin: str) -> None:
    fixtures = ROOT / "tests" / "fixtures" / "frames.json"
    proc = run_gd(godot_bin, "test_frames.gd", str(fixtures))
    summary = re.search(r"^gdscript: (\d+) passed, (\d+) failed$", proc.stdout, re.M)
    assert summary, proc.stdout[-2000:]
    assert int(summary[2]) == 0
    assert int(summary[1]) >= 250


def test_gdscript_codec_throughput(godot_bin: str) -> None:
    proc = run_gd(godot_bin, "test_msgpack.gd", "--bench")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("bench:"))
    print(line)
    rates = [int(n) for n in re.findall(r"(\d+) frames/s", line)]
    # A generous floor (measured: ~40000 encode+decode per second), to catch something quadratic.
    assert len(rates) == 4 and min(rates) > 3000, line


# No shrinking: every step would start Godot again; the failing value is in the message.
CROSS = settings(
    max_examples=8,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@CROSS
@given(st.lists(values, min_size=50, max_size=200))
def test_cross_check_random_values(godot_bin: str, batch: list[Any]) -> None:
    check_both_directions(godot_bin, encodable(batch))


def big_and_edge_values() -> Iterator[Any]:
    yield from BOUNDARY_INTS
    yield from [0.0, -0.0, 0.5, -1.25, 1e300, 5e-324, math.inf, -math.inf, math.nan]
    yield struct.unpack(">d", bytes.fromhex("fff8000000000001"))[0]  # a NaN with a payload
    for n in (0, 31, 32, 255, 256, 65535, 65536, 70000):
        yield "é" * (n // 2) + "x" * (n % 2)
        yield bytes(i % 251 for i in range(n))
    yield ["x"] * 65536
    yield {i: None for i in range(65536)}
    yield {str(i): i for i in range(16)}
    yield "\0"
    yield {"a\0b": ["\0", "\ufeff\0\ufeff"]}
    yield "\ufeff\ufeffbom"
    yield "".join(chr(c) for c in range(1, 0xD800, 97)) + "\U0001f600\U0010ffff"
    nested: Any = "leaf"
    for _ in range(64):
        nested = [nested]
    yield nested


def test_cross_check_big_and_edge_values(godot_bin: str) -> None:
    check_both_directions(godot_bin, list(big_and_edge_values()))


# Small, so that a batch of them fits in what hypothesis draws for one example.
small_values = st.recursive(
    st.none() | st.booleans() | ints | st.floats() | st.text(max_size=6) | st.binary(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """Bytes near the subset: random, a valid encoding cut short, or one with a byte changed."""
    kind = draw(st.sampled_from(["random", "cut", "mutate", "type_byte"]))
    if kind == "random":
        return draw(st.binary(max_size=24))
    raw = pack(draw(small_values))
    if kind == "cut":
        return raw[: draw(st.integers(0, len(raw)))]
    pos = draw(st.integers(0, len(raw) - 1))
    byte = draw(st.integers(0, 255) if kind == "mutate" else st.integers(0xC0, 0xDF))
    return raw[:pos] + bytes([byte]) + raw[pos + 1 :]


FIXED_RECORDS = [
    *(pack(v) for v in (None, 1, -1.5, "é", b"\0", [1, [2]], {"k": 1, 2: "v"})),
    *(b"\xc1", b"\xa2\xc3\x28", b"\xcf" + b"\xff" * 8, b"\xd4\x01\x00", b"\x82\x01\x01\x01\x02"),
    *(b"\x81\xc0\x01", b"\x91", b"\x01\x02", b"\xcb\x00", b"\xa3a\x00\xff"),
]


@CROSS
@given(st.lists(damaged(), min_size=50, max_size=150))
def test_both_sides_reject_the_same_bytes(godot_bin: str, batch: list[bytes]) -> None:
    # The fixed records make every example hold both kinds, even hypothesis' simplest one.
    records = batch + FIXED_RECORDS
    round_trip, _ = cross_run(godot_bin, records, [])
    accepted = 0
    for raw, rt in zip(records, round_trip, strict=True):
        try:
            value = unpack(raw)
        except FrameError as err:
            assert not rt["ok"], (raw.hex(), str(err), rt)
            continue
        assert rt["ok"], (raw.hex(), rt)
        accepted += 1
        # Godot re-encodes in the shortest form, as msgpack-python does.
        assert bytes.fromhex(rt["hex"]) == pack(as_godot(value)), raw.hex()
    assert 0 < accepted < len(records)


# Frame streams: the GDScript FrameDecoder against sidecar/link/frames.py, fed in chunks.


def python_frames(stream: bytes, chunk: int) -> tuple[list[str], str, int]:
    """What sidecar/link/frames.py makes of `stream` fed `chunk` bytes at a time, as
    tests/gd/fuzz_frames.gd reports it: frames re-encoded as Godot holds them, the error
    code (or ""), the bytes left buffered."""
    decoder = FrameDecoder()
    frames: list[dict[str, Any]] = []
    error = ""
    for start in range(0, len(stream), chunk):
        try:
            frames += decoder.feed(stream[start : start + chunk])
        except FrameError as err:
            frames += err.frames
            error = err.code
            break
    return [encode_frame(as_godot(f)).hex() for f in frames], error, decoder.buffered


def gd_frames(godot: str, streams: list[tuple[bytes, int]]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "in.bin").write_bytes(b"".join(struct.pack(">II", len(s), c) + s for s, c in streams))
        run_gd(godot, "fuzz_frames.gd", str(d / "in.bin"), str(d / "out.jsonl"))
        return read_lines(d / "out.jsonl")


def _encodable_frame(msg: dict[str, Any]) -> bytes | None:
    try:
        return encode_frame(msg)
    except FrameError:
        return None  # keys that differ only by U+0000 / U+FFFD


@st.composite
def damaged_streams(draw: st.DrawFn) -> tuple[bytes, int]:
    """Good frames, then cut short, a byte changed, junk appended, or random bytes."""
    frames = [f for f in draw(st.lists(frame_messages, max_size=3)) if f is not None]
    stream = b"".join(frames)
    kind = draw(st.sampled_from(["cut", "mutate", "junk_frame", "junk", "random", "length"]))
    if kind == "cut" and stream:
        stream = stream[: draw(st.integers(0, len(stream) - 1))]
    elif kind == "mutate" and stream:
        pos = draw(st.integers(0, len(stream) - 1))
        stream = stream[:pos] + bytes([draw(st.integers(0, 255))]) + stream[pos + 1 :]
    elif kind == "junk_frame":
        payload = draw(st.binary(max_size=24))
        stream += struct.pack(">I", len(payload)) + payload
    elif kind == "junk":
        stream += draw(st.binary(min_size=1, max_size=16))
    elif kind == "random":
        stream = draw(st.binary(max_size=48))
    else:  # a length prefix of any size, with or without what it promises
        stream += struct.pack(">I", draw(st.sampled_from([0, 1, 2**24, 2**24 + 1, 2**32 - 1])))
    return stream, draw(st.sampled_from([1, 2, 3, 7, 64, 1 << 20]))


frame_messages = st.builds(
    _encodable_frame,
    st.fixed_dictionaries(
        {"op": st.text(max_size=6)},
        optional={"id": ints, "data": st.binary(max_size=12), "v": small_values},
    ),
)


@CROSS
@given(st.lists(damaged_streams(), min_size=40, max_size=120))
def test_both_frame_decoders_agree_on_damaged_streams(
    godot_bin: str, batch: list[tuple[bytes, int]]
) -> None:
    """Random, truncated and damaged streams, in chunks: the GDScript decoder never breaks
    (run_gd fails on any error line or crash) and ends where Python's does: the same frames,
    the same error code, the same bytes left waiting."""
    good = encode_frame({"op": "data", "id": 1, "data": b"GET"})
    fixed = [
        (good + good[:5], 1),
        (good + struct.pack(">I", 0), 3),
        (struct.pack(">I", 2**24 + 1), 2),
        (good + struct.pack(">I", 2) + b"\x93\x01", 64),
        (struct.pack(">I", 3) + b"\x81\xa2o", 1),
    ]
    streams = batch + fixed
    got = gd_frames(godot_bin, streams)
    assert len(got) == len(streams)
    errors = set()
    for (stream, chunk), gd in zip(streams, got, strict=True):
        frames, error, buffered = python_frames(stream, chunk)
        what = f"{stream.hex()} in chunks of {chunk}"
        assert gd["error"] == error, (what, gd, error)
        assert gd["frames"] == frames, what
        assert gd["buffered"] == buffered, (what, gd, buffered)
        errors.add(error)
    assert {"", "empty", "too_large"} <= errors
