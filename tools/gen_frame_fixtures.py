#!/usr/bin/env python3
"""Write tests/fixtures/frames.json: frames both codecs must decode, re-encode and reject.

Run from the repository root: `.venv/bin/python tools/gen_frame_fixtures.py`.
Frames come from msgpack-python itself (not from sidecar/link/frames.py) so the tests compare our
codecs with the reference implementation.

File format (an object):
- "valid": [{"name", "hex", "value"}, ...]. `hex` is the whole frame, length prefix included.
  `value` is JSON where a bin is {"$bin": "<hex>"} and a map with a non-str key (or one that
  would read as such a tag) is {"$map": [[key, value], ...]}. Optional "gd_value" / "gd_hex":
  what Godot decodes and re-encodes instead, where it cannot hold the value (U+0000 in a str).
- "invalid": [{"name", "hex", "error"}, ...]: `error` is the error code both decoders report.
- In every hex string (also inside "$bin"), "(<hex>*<count>)" stands for <hex> repeated
  <count> times, which keeps 64 KiB payloads from making the file huge.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import msgpack

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "frames.json"
TAGS = ("$bin", "$map")


def packb(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


def compact_hex(data: bytes) -> str:
    """Hex of `data`, with runs of at least 512 bytes of a repeated unit written (unit*count)."""
    parts: list[str] = []
    literal = 0
    i = 0
    while i < len(data):
        for unit in (1, 16, 256):
            piece = data[i : i + unit]
            count = 1
            while data[i + count * unit : i + (count + 1) * unit] == piece:
                count += 1
            if len(piece) == unit and count * unit >= 512:
                parts.append(data[literal:i].hex())
                parts.append(f"({piece.hex()}*{count})")
                i += count * unit
                literal = i
                break
        else:
            i += 1
    parts.append(data[literal:].hex())
    return "".join(parts)


def expand_hex(text: str) -> bytes:
    return bytes.fromhex(re.sub(r"\(([0-9a-f]+)\*(\d+)\)", lambda m: m[1] * int(m[2]), text))


def to_json(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$bin": compact_hex(value)}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        plain = all(isinstance(k, str) for k in value) and not (
            len(value) == 1 and next(iter(value)) in TAGS
        )
        if plain:
            return {k: to_json(v) for k, v in value.items()}
        return {"$map": [[to_json(k), to_json(v)] for k, v in value.items()]}
    return value


def nested(depth: int) -> Any:
    """`depth` arrays inside each other around a 0."""
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def op_frames() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("op/hello_from_sidecar", {"op": "hello", "token": "9f3c" * 8, "pid": 4242, "version": 1}),
        (
            "op/hello_from_addon",
            {
                "op": "hello",
                "version": 1,
                "max_clients": 64,
                "clients": [[1, "127.0.0.1:5000"], [2, "127.0.0.1:5001"]],
            },
        ),
        (
            "op/hello_from_addon_no_clients",
            {"op": "hello", "version": 1, "max_clients": 64, "clients": []},
        ),
        ("op/open", {"op": "open", "id": 1, "peer": "127.0.0.1:5000"}),
        ("op/data", {"op": "data", "id": 1, "data": b"GET"}),
        ("op/data_1k", {"op": "data", "id": 70000, "data": bytes(range(256)) * 4}),
        ("op/close_from_addon", {"op": "close", "id": 1, "reason": "agent went away"}),
        ("op/close_from_sidecar", {"op": "close", "id": 1, "reason": "Connection: close"}),
        ("op/action_ping", {"op": "action", "rid": 7, "name": "ping", "args": {}}),
        (
            "op/action_with_args",
            {"op": "action", "rid": 8, "name": "editor_info", "args": {"verbose": True, "n": 3}},
        ),
        (
            "op/action_result_ok",
            {"op": "action_result", "rid": 7, "ok": True, "result": {"pong": True}, "error": ""},
        ),
        (
            "op/action_result_info",
            {
                "op": "action_result",
                "rid": 8,
                "ok": True,
                "result": {"version": "4.6.3", "project": "/tmp/p", "headless": True},
                "error": "",
            },
        ),
        (
            "op/action_result_error",
            {"op": "action_result", "rid": 9, "ok": False, "result": None, "error": "no such"},
        ),
        ("op/log_info", {"op": "log", "level": "info", "msg": "sidecar listening on :8080"}),
        ("op/log_warning", {"op": "log", "level": "warning", "msg": "DAP slow"}),
        ("op/log_error", {"op": "log", "level": "error", "msg": "LSP gone: é"}),
    ]


def value_cases() -> list[tuple[str, Any]]:
    ints = {
        "0": 0, "fixint_max_127": 127, "uint8_min_128": 128, "uint8_max_255": 255,
        "uint16_min_256": 256, "uint16_max": 65535, "uint32_min": 65536,
        "uint32_max": 2**32 - 1, "uint64_min": 2**32, "int64_max": 2**63 - 1,
        "neg_fixint_-1": -1, "neg_fixint_min_-32": -32, "int8_-33": -33, "int8_min": -128,
        "int16_-129": -129, "int16_min": -32768, "int32_-32769": -32769,
        "int32_min": -(2**31), "int64_-2^31-1": -(2**31) - 1, "int64_min": -(2**63),
    }  # fmt: skip
    cases: list[tuple[str, Any]] = [(f"int/{k}", v) for k, v in ints.items()]
    cases += [("nil", None), ("bool/true", True), ("bool/false", False)]
    floats = {"0": 0.0, "-0": -0.0, "0.5": 0.5, "-1.25": -1.25, "1e300": 1e300, "1024": 1024.0}
    cases += [(f"float/{k}", v) for k, v in floats.items()]
    digits = "0123456789abcdef"
    for n in (0, 1, 31, 32, 255, 256, 65535, 65536):
        cases.append((f"str/{n}_bytes", (digits * (n // 16 + 1))[:n]))
    cases += [
        ("str/utf8_2byte", "é"),
        ("str/utf8_mixed", "añ€😀 ü 中文"),
        ("str/31_bytes_multibyte", "é" * 15 + "a"),
        ("str/32_bytes_16_chars", "é" * 16),
        ("str/bom_first", "\ufeffabc"),
        ("str/bom_twice", "\ufeff\ufeffx"),
        ("str/bom_middle", "a\ufeffb"),
        ("str/noncharacter_ffff", "\uffff\ufdd0"),
        ("str/max_code_point", "\U0010ffff"),
        ("str/controls", "\t\n\r\x01\x7f\x80"),
    ]
    for n in (0, 1, 255, 256, 65535, 65536):
        cases.append((f"bin/{n}_bytes", bytes(i & 0xFF for i in range(n))))
    cases += [
        ("array/empty", []),
        ("array/fix_15", list(range(15))),
        ("array/16", list(range(16))),
        ("array/300", list(range(300))),
        ("array/mixed", [None, True, -1, 0.5, "s", b"\x00", [1], {"k": 2}]),
        ("map/empty", {}),
        ("map/fix_15", {f"k{i}": i for i in range(15)}),
        ("map/16", {f"k{i}": i for i in range(16)}),
        ("map/int_keys", {1: "a", -1: "b", 300: "c", 2**40: "d"}),
        ("map/mixed_keys", {"1": "str", 1: "int", "": 0}),
        ("map/order_kept", {"z": 1, "a": 2, "m": 3}),
        ("map/tag_lookalike", {"$bin": "not a bin"}),
        ("nested/lists_and_maps", {"a": [{"b": [1, {"c": None}]}, []], "d": {"e": {"f": b"x"}}}),
        ("nested/depth_64", nested(63)),
    ]
    return cases


def valid_fixtures() -> list[dict[str, Any]]:
    out = []
    for name, msg in op_frames():
        out.append({"name": name, "hex": compact_hex(frame(packb(msg))), "value": to_json(msg)})
    for name, value in value_cases():
        msg = {"op": "test", "value": value}
        out.append({"name": name, "hex": compact_hex(frame(packb(msg))), "value": to_json(msg)})
    # Godot Strings cannot hold U+0000: the addon reads it as U+FFFD (docs of msgpack.gd).
    for name, text in (
        ("str/nul", "a\x00b"),
        ("str/only_nul", "\x00"),
        ("str/nul_edges", "\x00é\x00"),
    ):
        msg = {"op": "test", "value": text}
        gd_msg = {"op": "test", "value": text.replace("\x00", "\ufffd")}
        out.append(
            {
                "name": name,
                "hex": compact_hex(frame(packb(msg))),
                "value": to_json(msg),
                "gd_value": to_json(gd_msg),
                "gd_hex": compact_hex(frame(packb(gd_msg))),
            }
        )
    return out


def invalid_fixtures() -> list[dict[str, Any]]:
    op = packb("op") + packb("test")
    cases: list[tuple[str, bytes, str]] = [
        ("length_zero", bytes(4), "empty"),
        ("length_zero_then_map", bytes(4) + packb({"op": "x"}), "empty"),
        ("length_max_plus_1", (16 * 1024 * 1024 + 1).to_bytes(4, "big"), "too_large"),
        ("length_ffffffff", b"\xff\xff\xff\xff", "too_large"),
        ("payload_nil", frame(b"\xc0"), "not_map"),
        ("payload_int", frame(b"\x01"), "not_map"),
        ("payload_str", frame(packb("op")), "not_map"),
        ("payload_array", frame(packb(["op", "open"])), "not_map"),
        ("payload_nil_then_garbage", frame(b"\xc0\xc1"), "not_map"),
        ("trailing_nil", frame(packb({"op": "x"}) + b"\xc0"), "trailing"),
        ("trailing_second_map", frame(packb({"op": "x"}) * 2), "trailing"),
        ("no_op", frame(packb({"id": 1})), "no_op"),
        ("empty_map", frame(b"\x80"), "no_op"),
        ("op_int", frame(packb({"op": 1})), "no_op"),
        ("op_bin", frame(packb({"op": b"open"})), "no_op"),
        ("op_nil", frame(packb({"op": None})), "no_op"),
        ("op_key_is_bin", frame(b"\x81" + packb(b"op") + packb("x")), "msgpack"),
        ("truncated_map", frame(b"\x82" + op), "msgpack"),
        ("truncated_str", frame(b"\x81" + packb("op") + b"\xa4op"), "msgpack"),
        ("truncated_str32_header", frame(b"\x81" + packb("op") + b"\xdb\x00"), "msgpack"),
        ("truncated_float", frame(b"\x82" + op + b"\xa1v\xcb\x00\x00"), "msgpack"),
        ("truncated_uint32", frame(b"\x82" + op + b"\xa1v\xce\x00\x00\x00"), "msgpack"),
        ("huge_array_count", frame(b"\x82" + op + b"\xa1v\xdd\xff\xff\xff\xff"), "msgpack"),
        ("huge_map_count", frame(b"\xdf\xff\xff\xff\xff" + op), "msgpack"),
        ("huge_bin_length", frame(b"\x82" + op + b"\xa1v\xc6\xff\xff\xff\xff\x00"), "msgpack"),
        ("reserved_c1", frame(b"\x82" + op + b"\xa1v\xc1"), "msgpack"),
        ("fixext1", frame(b"\x82" + op + b"\xa1v\xd4\x01\x00"), "msgpack"),
        ("ext8", frame(b"\x82" + op + b"\xa1v\xc7\x02\x05ab"), "msgpack"),
        ("ext_timestamp32", frame(b"\x82" + op + b"\xa1v\xd6\xff\x00\x00\x00\x01"), "msgpack"),
        ("uint64_2^63", frame(b"\x82" + op + b"\xa1v\xcf\x80" + bytes(7)), "msgpack"),
        ("uint64_max", frame(b"\x82" + op + b"\xa1v\xcf" + b"\xff" * 8), "msgpack"),
        ("utf8_invalid_byte", frame(b"\x82" + op + b"\xa1v\xa2a\xff"), "msgpack"),
        ("utf8_lone_continuation", frame(b"\x82" + op + b"\xa1v\xa1\x80"), "msgpack"),
        ("utf8_truncated_sequence", frame(b"\x82" + op + b"\xa1v\xa2\xe2\x82"), "msgpack"),
        ("utf8_overlong_nul", frame(b"\x82" + op + b"\xa1v\xa2\xc0\x80"), "msgpack"),
        ("utf8_overlong_3byte", frame(b"\x82" + op + b"\xa1v\xa3\xe0\x80\xaf"), "msgpack"),
        ("utf8_surrogate", frame(b"\x82" + op + b"\xa1v\xa3\xed\xa0\x80"), "msgpack"),
        ("utf8_above_10ffff", frame(b"\x82" + op + b"\xa1v\xa4\xf4\x90\x80\x80"), "msgpack"),
        ("utf8_f5", frame(b"\x82" + op + b"\xa1v\xa4\xf5\x80\x80\x80"), "msgpack"),
        ("utf8_invalid_in_key", frame(b"\x82" + op + b"\xa1\xfe\x01"), "msgpack"),
        ("utf8_invalid_after_nul", frame(b"\x82" + op + b"\xa1v\xa3a\x00\xff"), "msgpack"),
        ("utf8_invalid_after_bom", frame(b"\x82" + op + b"\xa1v\xa4\xef\xbb\xbf\xff"), "msgpack"),
        ("depth_65", frame(packb({"op": "test", "value": nested(64)})), "msgpack"),
        ("key_array", frame(b"\x82" + op + b"\x91\x01\x02"), "msgpack"),
        ("key_map", frame(b"\x82" + op + b"\x80\x02"), "msgpack"),
        ("key_nil", frame(b"\x82" + op + b"\xc0\x02"), "msgpack"),
        ("key_bool", frame(b"\x82" + op + b"\xc3\x02"), "msgpack"),
        ("key_float", frame(b"\x82" + op + packb(1.0) + b"\x02"), "msgpack"),
        ("key_bin", frame(b"\x82" + op + packb(b"k") + b"\x02"), "msgpack"),
        ("duplicate_key", frame(b"\x83" + op + b"\xa1k\x01\xa1k\x02"), "msgpack"),
        ("duplicate_op", frame(b"\x82" + op + op), "msgpack"),
        ("duplicate_int_key", frame(b"\x83" + op + b"\x01\x01\x01\x02"), "msgpack"),
        (
            "duplicate_key_once_nul_reads_as_fffd",
            frame(b"\x83" + op + packb("a\x00") + b"\x01" + packb("a\ufffd") + b"\x02"),
            "msgpack",
        ),
        ("nested_bad_utf8", frame(b"\x82" + op + b"\xa1v\x91\x81\xa1k\xa1\xff"), "msgpack"),
    ]
    return [{"name": n, "hex": compact_hex(b), "error": e} for n, b, e in cases]


def main() -> int:
    data = {"valid": valid_fixtures(), "invalid": invalid_fixtures()}
    for fixture in data["valid"]:
        assert msgpack.unpackb(expand_hex(fixture["hex"])[4:], strict_map_key=False) is not None
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    OUT.write_text(text, encoding="utf-8")
    print(f"{OUT}: {len(data['valid'])} valid, {len(data['invalid'])} invalid, {len(text)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
