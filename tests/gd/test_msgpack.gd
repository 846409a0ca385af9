extends "res://tests/gd/helpers.gd"
## Tests of addons/godot_debug_connection/msgpack.gd.
##
## godot --headless --path . --script res://tests/gd/test_msgpack.gd -- [mode ...]
##   (no mode)                   run the unit tests; last line "gdscript: N passed, M failed"
##   --roundtrip <in> <out>      <in>: records of u32 big-endian length + bytes; decode each as
##                               one msgpack value and write one JSON line per record to <out>:
##                               {"ok": true, "hex": re-encoded, "value": tagged JSON} or
##                               {"ok": false, "error": "..."}
##   --encode <in> <out>         <in>: a JSON list of tagged values; write one JSON line per
##                               value: {"ok": true, "hex": encoding} or {"ok": false, ...}
##   --bench                     print codec throughput for a 1 KiB data frame
## Modes can be combined in one run. Tagged JSON: see helpers.gd.

const FrameCodec = preload("res://addons/godot_debug_connection/frame_codec.gd")


func _init() -> void:
	var args: PackedStringArray = OS.get_cmdline_user_args()
	if args.is_empty():
		run_tests()
		finish()
		return
	var code: int = 0
	var i: int = 0
	while i < args.size() and code == 0:
		match args[i]:
			"--roundtrip":
				code = _roundtrip(args[i + 1], args[i + 2])
				i += 3
			"--encode":
				code = _encode(args[i + 1], args[i + 2])
				i += 3
			"--bench":
				_bench()
				i += 1
			_:
				printerr("unknown argument %s" % args[i])
				code = 2
	quit(code)


# Messages are only built on failure: some values hold 65536 items.
func _check_encodes(value: Variant, hex: String) -> void:
	var want: PackedByteArray = hx(hex)
	var got: PackedByteArray = MsgPack.encode(value)
	check(got == want, "" if got == want else "encode %s: %s, want %s" % [value, got, want])
	var res: Dictionary = MsgPack.decode(want)
	var ok: bool = res.ok and same(res.value, value) and res.consumed == want.size()
	check(ok, "" if ok else "decode %s: %s" % [hex, res])


func _check_rejects(hex: String, error_part: String) -> void:
	var res: Dictionary = MsgPack.decode(hx(hex))
	check(not res.ok and res.value == null, "decode %s should fail: %s" % [hex, res])
	check(error_part in res.error, "decode %s: error %s lacks %s" % [hex, res.error, error_part])


func _test_ints_use_the_shortest_encoding() -> void:
	var cases: Dictionary = {
		0: "00",
		127: "7f",
		128: "cc80",
		255: "ccff",
		256: "cd0100",
		65535: "cdffff",
		65536: "ce00010000",
		4294967295: "ceffffffff",
		4294967296: "cf0000000100000000",
		9223372036854775807: "cf7fffffffffffffff",
		-1: "ff",
		-32: "e0",
		-33: "d0df",
		-128: "d080",
		-129: "d1ff7f",
		-32768: "d18000",
		-32769: "d2ffff7fff",
		-2147483648: "d280000000",
		-2147483649: "d3ffffffff7fffffff",
		-9223372036854775808: "d38000000000000000",
	}
	for v: int in cases:
		_check_encodes(v, cases[v])


func _test_non_shortest_ints_still_decode() -> void:
	check(same(MsgPack.decode(hx("cc05")).value, 5), "uint8 5")
	check(same(MsgPack.decode(hx("d3ffffffffffffffff")).value, -1), "int64 -1")
	check(same(MsgPack.decode(hx("d1 00 05")).value, 5), "int16 5")
	check(same(MsgPack.decode(hx("d2 ff ff ff fe")).value, -2), "int32 -2")


func _test_uint64_above_int64_is_an_error() -> void:
	_check_rejects("cf8000000000000000", "uint64")
	_check_rejects("cfffffffffffffffff", "uint64")


func _test_scalars() -> void:
	_check_encodes(null, "c0")
	_check_encodes(true, "c3")
	_check_encodes(false, "c2")
	_check_encodes(0.5, "cb3fe0000000000000")
	_check_encodes(neg_zero(), "cb8000000000000000")
	_check_encodes(INF, "cb7ff0000000000000")
	_check_encodes(-INF, "cbfff0000000000000")
	_check_encodes(NAN, "cb7ff8000000000000")
	_check_encodes("", "a0")
	_check_encodes("é", "a2c3a9")
	_check_encodes(PackedByteArray(), "c400")
	_check_encodes(PackedByteArray([0, 255]), "c40200ff")


func _test_float32_decodes() -> void:
	check(same(MsgPack.decode(hx("ca3fc00000")).value, 1.5), "float32 1.5")
	check(same(MsgPack.decode(hx("ca ff 80 00 00")).value, -INF), "float32 -inf")


func _test_length_boundaries() -> void:
	for n: int in [0, 15, 16, 31, 32, 255, 256, 65535, 65536]:
		var text: String = "x".repeat(n)
		var raw: PackedByteArray = text.to_utf8_buffer()
		var str_head: String = "%02x" % (0xA0 | n) if n < 32 else _head(n, "d9", "da", "db")
		_check_encodes(text, str_head + raw.hex_encode())
		_check_encodes(raw, _head(n, "c4", "c5", "c6") + raw.hex_encode())
		var items: Array = []
		items.resize(n)
		items.fill(1)
		var arr_head: String = "%02x" % (0x90 | n) if n < 16 else _head(n, "", "dc", "dd")
		_check_encodes(items, arr_head + "01".repeat(n))
		var map: Dictionary = {}
		var body: PackedStringArray = PackedStringArray()
		for i: int in n:
			map[i + 1000] = true
			body.append(MsgPack.encode(i + 1000).hex_encode() + "c3")
		var map_head: String = "%02x" % (0x80 | n) if n < 16 else _head(n, "", "de", "df")
		_check_encodes(map, map_head + "".join(body))


# Header with an 8/16/32-bit length (an empty `h8` means there is no 8-bit form).
func _head(n: int, h8: String, h16: String, h32: String) -> String:
	if n < 256 and h8 != "":
		return h8 + "%02x" % n
	if n < 65536:
		return h16 + "%04x" % n
	return h32 + "%08x" % n


func _test_nested_and_key_order() -> void:
	var value: Dictionary = {"a": [1, {"b": null}], 2: PackedByteArray([0, 255])}
	_check_encodes(value, "82a161920181a162c002c40200ff")
	var res: Dictionary = MsgPack.decode(hx("83 a1 7a 01 a1 61 02 a1 6d 03"))
	check(res.value.keys() == ["z", "a", "m"], "key order %s" % [res.value.keys()])


func _test_nul_in_str_becomes_replacement_char() -> void:
	var fffd: String = String.chr(0xFFFD)
	var cases: Dictionary = {
		"a3 61 00 62": "a" + fffd + "b",
		"a1 00": fffd,
		"a4 00 c3 a9 00": fffd + "é" + fffd,
		"a2 00 00": fffd + fffd,
	}
	for hex: String in cases:
		var res: Dictionary = MsgPack.decode(hx(hex))
		check(res.ok and res.value == cases[hex], "%s: %s" % [hex, res])


func _test_byte_order_marks_are_kept() -> void:
	var bom: String = String.chr(0xFEFF)
	for text: String in [bom + "abc", bom + bom + "x", "a" + bom, bom, bom + "é"]:
		var raw: PackedByteArray = MsgPack.encode(text)
		var res: Dictionary = MsgPack.decode(raw)
		check(res.ok and res.value == text, "BOM text %s: %s" % [text.to_utf8_buffer(), res])
		check(MsgPack.encode(res.value) == raw, "BOM re-encoded")
	var nul_bom: Dictionary = MsgPack.decode(hx("a4 00 ef bb bf"))
	check(nul_bom.value == String.chr(0xFFFD) + bom, "BOM after NUL: %s" % [nul_bom])


func _test_utf8_edges_decode() -> void:
	var cases: Dictionary = {
		"a3 ef bf bf": 0xFFFF,
		"a4 f4 8f bf bf": 0x10FFFF,
		"a2 c2 80": 0x80,
		"a3 e0 a0 80": 0x800,
		"a3 ed 9f bf": 0xD7FF,
		"a3 ee 80 80": 0xE000,
		"a4 f0 90 80 80": 0x10000,
	}
	for hex: String in cases:
		var res: Dictionary = MsgPack.decode(hx(hex))
		check(res.ok and res.value == String.chr(cases[hex]), "%s: %s" % [hex, res])


func _test_invalid_utf8_is_an_error() -> void:
	for hex: String in [
		"a1 80",
		"a1 ff",
		"a1 c2",
		"a2 c0 80",
		"a2 c1 bf",
		"a3 e0 80 af",
		"a3 ed a0 80",
		"a3 ed bf bf",
		"a4 f4 90 80 80",
		"a4 f5 80 80 80",
		"a4 f0 80 80 80",
		"a2 e2 82",
		"a3 61 00 ff",
		"a4 ef bb bf ff",
		"a2 c3 28",
		"a3 e2 28 a1",
	]:
		_check_rejects(hex, "UTF-8")


func _test_every_truncation_is_an_error() -> void:
	var value: Dictionary = {
		"op": "data",
		"id": 70000,
		"f": 0.25,
		"n": -40000,
		"s": "x".repeat(40),
		"b": PackedByteArray([1, 2]),
		"l": [null, true, [1.5]],
		7: {"k": "v"},
	}
	var raw: PackedByteArray = MsgPack.encode(value)
	check(same(MsgPack.decode(raw).value, value), "whole value")
	for cut: int in raw.size():
		var res: Dictionary = MsgPack.decode(raw, 0, cut)
		check(not res.ok and res.error.begins_with("truncated"), "cut at %d: %s" % [cut, res])


func _test_decode_range_and_consumed() -> void:
	var raw: PackedByteArray = hx("ff 92 01 02 c0")
	var res: Dictionary = MsgPack.decode(raw, 1)
	check(res.ok and same(res.value, [1, 2]) and res.consumed == 3, "range: %s" % [res])
	check(not MsgPack.decode(raw, 1, 3).ok, "range end cuts the array")
	check(not MsgPack.decode(raw, 9).ok, "start past the end")
	check(not MsgPack.decode(PackedByteArray()).ok, "empty input")


func _test_depth_limit() -> void:
	var value: Variant = 0
	for i: int in MsgPack.MAX_DEPTH:
		value = [value]
	var raw: PackedByteArray = MsgPack.encode(value)
	check(raw.size() == MsgPack.MAX_DEPTH + 1, "64 levels encode")
	check(same(MsgPack.decode(raw).value, value), "64 levels decode")
	check(MsgPack.encode([value]).is_empty(), "65 levels do not encode")
	_check_rejects("91" + raw.hex_encode(), "nesting")
	_check_rejects("81 a1 6b" + raw.hex_encode(), "nesting")
	_check_rejects("91".repeat(100000), "nesting")


func _test_ext_and_reserved_are_errors() -> void:
	for hex: String in ["d4 01 00", "d5 01 00 00", "d6 ff 00 00 00 01", "d7 01" + "00".repeat(8)]:
		_check_rejects(hex, "ext")
	for hex: String in ["d8 01" + "00".repeat(16), "c7 01 05 00", "c8 00 01 05 00"]:
		_check_rejects(hex, "ext")
	_check_rejects("c9 00 00 00 01 05 00", "ext")
	_check_rejects("c1", "reserved")


func _test_map_keys_must_be_str_or_int() -> void:
	for hex: String in ["81 c0 01", "81 c3 01", "81 cb 3ff0000000000000 01", "81 c4 01 61 01"]:
		_check_rejects(hex, "key")
	_check_rejects("81 91 01 01", "key")
	_check_rejects("81 80 01", "key")
	_check_rejects("82 a1 6b 01 a1 6b 02", "duplicate")
	_check_rejects("82 01 01 01 02", "duplicate")
	var mixed: Dictionary = MsgPack.decode(hx("82 a1 31 01 01 02")).value
	check(mixed.size() == 2 and mixed["1"] == 1 and mixed[1] == 2, "str 1 and int 1 differ")


func _test_huge_counts_fail_without_allocating() -> void:
	var start: int = Time.get_ticks_msec()
	_check_rejects("dd ffffffff 01", "truncated")
	_check_rejects("df ffffffff 01 01", "truncated")
	_check_rejects("c6 ffffffff 00", "truncated")
	_check_rejects("db ffffffff 61", "truncated")
	check(Time.get_ticks_msec() - start < 500, "huge counts answered at once")


func _test_encode_refuses_what_decode_rejects() -> void:
	var obj: Object = Object.new()
	var bad: Array = [Vector2(1, 2), obj, Callable(), {1.5: 1}, {true: 1}, {[1]: 1}]
	bad.append({null: 1})
	bad.append([1, [Color.RED]])
	for value: Variant in bad:
		var res: Dictionary = MsgPack.encode_checked(value)
		check(not res.ok and res.bytes.is_empty() and res.error != "", "refuse %s" % [value])
		check(MsgPack.encode(value).is_empty(), "encode %s is empty" % [value])
	obj.free()
	var cyclic: Array = []
	cyclic.append(cyclic)
	check(MsgPack.encode(cyclic).is_empty(), "a cycle hits the depth limit")
	cyclic.clear()


func _test_godot_only_types_encode_as_subset_types() -> void:
	_check_encodes_as(&"op", "a26f70")
	_check_encodes_as({&"op": &"x"}, "81a26f70a178")
	_check_encodes_as(PackedStringArray(["a", "b"]), "92a161a162")
	_check_encodes_as(PackedInt32Array([1, -1]), "9201ff")
	_check_encodes_as(PackedInt64Array([1 << 40]), "91cf0000010000000000")
	_check_encodes_as(PackedFloat32Array([0.5]), "91cb3fe0000000000000")
	_check_encodes_as(PackedFloat64Array([0.5]), "91cb3fe0000000000000")


func _check_encodes_as(value: Variant, hex: String) -> void:
	var got: PackedByteArray = MsgPack.encode(value)
	check(got == hx(hex), "encode %s: %s, want %s" % [value, got.hex_encode(), hex])


func _test_reused_decoder() -> void:
	var decoder: MsgPack.Decoder = MsgPack.Decoder.new()
	var wrong: int = 0
	for i: int in 2000:
		# 600 distinct short strings overflow the decoder's string cache a few times.
		var value: Dictionary = {"k%d" % (i % 600): "é%d" % (i % 7), "op": "data"}
		var res: Dictionary = decoder.decode(MsgPack.encode(value))
		if not (res.ok and same(res.value, value)):
			wrong += 1
	check(wrong == 0, "%d of 2000 decodes by one decoder were wrong" % wrong)
	check(not decoder.decode(hx("a2 61 ff")).ok, "bad str with a reused decoder")
	check(not decoder.decode(hx("a2 61 ff")).ok, "bad str is not cached")
	check(decoder.decode(hx("a2 61 62")).value == "ab", "decoder works after an error")
	var fresh: Dictionary = decoder.decode(hx("ff 92 01"), 1)
	check(not fresh.ok and fresh.error.begins_with("truncated"), "range after reuse")


func _test_random_bytes_never_break_the_decoder() -> void:
	var rng: RandomNumberGenerator = RandomNumberGenerator.new()
	rng.seed = 12345
	var ok_count: int = 0
	for i: int in 3000:
		var raw: PackedByteArray = PackedByteArray()
		raw.resize(rng.randi_range(0, 40))
		for k: int in raw.size():
			raw[k] = rng.randi_range(0, 255)
		var res: Dictionary = MsgPack.decode(raw)
		if res.ok:
			ok_count += 1
			if not same(MsgPack.decode(MsgPack.encode(res.value)).value, res.value):
				check(false, "re-encode of %s" % raw.hex_encode())
		elif res.error == "" or res.value != null:
			check(false, "failure without a reason for %s" % raw.hex_encode())
	check(ok_count > 100, "some random inputs decode (%d)" % ok_count)


func _test_json_helpers() -> void:
	var parsed: Variant = parse_json('[1, -9223372036854775808, 1.0, "a\\u00e9\\ud83d\\ude00\\n"]')
	var want: Array = [1, -9223372036854775808, 1.0, "aé" + String.chr(0x1F600) + "\n"]
	check(same(parsed, want), "parse_json %s" % [parsed])
	var tagged: String = '{"$map": [[1, {"$bin": "00(ab*3)"}], ["k", {"$float": "3ff8000000000000"}]]}'
	check(same(from_json(parse_json(tagged)), {1: hx("00ababab"), "k": 1.5}), "from_json")
	var round: Variant = {1: [null, true, 2.5, 'q"\\', PackedByteArray([7])], "": {}}
	check(same(from_json(parse_json(to_json(round))), round), "to_json round trip")
	check(not same(1, 1.0) and not same(1, true) and not same(0.0, neg_zero()), "same() is strict")
	check(same(NAN, NAN), "same(NAN, NAN)")


func _roundtrip(in_path: String, out_path: String) -> int:
	var data: PackedByteArray = FileAccess.get_file_as_bytes(in_path)
	var lines: PackedStringArray = PackedStringArray()
	var pos: int = 0
	while pos + 4 <= data.size():
		var n: int = (
			(data[pos] << 24) | (data[pos + 1] << 16) | (data[pos + 2] << 8) | data[pos + 3]
		)
		pos += 4
		var res: Dictionary = MsgPack.decode(data, pos, pos + n)
		if not res.ok:
			lines.append('{"ok": false, "error": %s}' % to_json(res.error))
		elif res.consumed != n:
			lines.append('{"ok": false, "error": "trailing"}')
		else:
			var again: PackedByteArray = MsgPack.encode(res.value)
			lines.append(
				'{"ok": true, "hex": "%s", "value": %s}' % [again.hex_encode(), to_json(res.value)]
			)
		pos += n
	return _write_lines(out_path, lines)


func _encode(in_path: String, out_path: String) -> int:
	var values: Variant = parse_json(FileAccess.get_file_as_string(in_path))
	if not values is Array:
		return 2
	var lines: PackedStringArray = PackedStringArray()
	for value: Variant in values:
		var res: Dictionary = MsgPack.encode_checked(from_json(value))
		if res.ok:
			lines.append('{"ok": true, "hex": "%s"}' % (res.bytes as PackedByteArray).hex_encode())
		else:
			lines.append('{"ok": false, "error": %s}' % to_json(res.error))
	return _write_lines(out_path, lines)


func _write_lines(path: String, lines: PackedStringArray) -> int:
	var file: FileAccess = FileAccess.open(path, FileAccess.WRITE)
	if file == null:
		printerr("cannot write %s" % path)
		return 2
	file.store_string("\n".join(lines) + "\n")
	file.close()
	return 0


func _bench() -> void:
	var payload: PackedByteArray = PackedByteArray()
	payload.resize(1024)
	var msg: Dictionary = {"op": "data", "id": 17, "data": payload}
	var count: int = 20000
	var start: int = Time.get_ticks_usec()
	var stream: PackedByteArray = PackedByteArray()
	for i: int in count:
		stream.append_array(FrameCodec.encode_frame(msg))
	var encoded: int = Time.get_ticks_usec()
	var decoder: FrameCodec.FrameDecoder = FrameCodec.FrameDecoder.new()
	decoder.feed(stream)
	var frames: int = 0
	while decoder.next_frame() != null:
		frames += 1
	var done: int = Time.get_ticks_usec()
	var small: Dictionary = {"op": "data", "id": 17, "data": PackedByteArray([1, 2, 3])}
	var small_start: int = Time.get_ticks_usec()
	for i: int in count:
		MsgPack.decode(MsgPack.encode(small))
	var small_done: int = Time.get_ticks_usec()
	print(
		(
			(
				"bench: 1 KiB data frame: encode %d frames/s, decode %d frames/s, both %d frames/s;"
				+ " 3-byte data frame encode+decode %d frames/s (%d frames)"
			)
			% [
				count * 1000000.0 / (encoded - start),
				frames * 1000000.0 / (done - encoded),
				count * 1000000.0 / (done - start),
				count * 1000000.0 / (small_done - small_start),
				frames,
			]
		)
	)
