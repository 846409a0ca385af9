extends "res://tests/gd/helpers.gd"
## Tests of addons/godot_debug_connection/frame_codec.gd against tests/fixtures/frames.json.
##
## godot --headless --path . --script res://tests/gd/test_frames.gd -- [fixtures.json]
## The last line is "gdscript: N passed, M failed"; the exit code is 1 when a check failed.

const FrameCodec = preload("res://addons/godot_debug_connection/frame_codec.gd")
const DEFAULT_FIXTURES: String = "res://tests/fixtures/frames.json"

var _valid: Array = []
var _invalid: Array = []


func _init() -> void:
	var args: PackedStringArray = OS.get_cmdline_user_args()
	var path: String = args[0] if args.size() > 0 else DEFAULT_FIXTURES
	var fixtures: Variant = parse_json(FileAccess.get_file_as_string(path))
	if fixtures is Dictionary:
		_valid = fixtures.valid
		_invalid = fixtures.invalid
	check(_valid.size() > 50 and _invalid.size() > 20, "fixtures loaded from %s" % path)
	run_tests()
	finish()


# What Godot decodes for a fixture, and the bytes it encodes that to.
func _expected(fx: Dictionary) -> Array:
	var value: Variant = from_json(fx.get("gd_value", fx.value))
	return [value, expand_hex(fx.get("gd_hex", fx.hex))]


func _decode_all(stream: PackedByteArray, chunk: int) -> Array:
	var decoder: FrameCodec.FrameDecoder = FrameCodec.FrameDecoder.new()
	var frames: Array = []
	for start: int in range(0, stream.size(), chunk):
		decoder.feed(stream.slice(start, start + chunk))
		var frame: Variant = decoder.next_frame()
		while frame != null:
			frames.append(frame)
			frame = decoder.next_frame()
	check(not decoder.has_error(), "stream in chunks of %d: %s" % [chunk, decoder.get_error()])
	check(decoder.get_buffered() == 0, "stream in chunks of %d fully used" % chunk)
	return frames


func _test_valid_fixtures_decode() -> void:
	for fx: Dictionary in _valid:
		var decoder: FrameCodec.FrameDecoder = FrameCodec.FrameDecoder.new()
		decoder.feed(expand_hex(fx.hex))
		var frame: Variant = decoder.next_frame()
		var want: Variant = _expected(fx)[0]
		var ok: bool = same(frame, want) and decoder.next_frame() == null
		check(ok, "" if ok else "%s: got %s (%s)" % [fx.name, frame, decoder.get_error()])


func _test_valid_fixtures_encode_to_identical_bytes() -> void:
	for fx: Dictionary in _valid:
		var expected: Array = _expected(fx)
		var got: PackedByteArray = FrameCodec.encode_frame(expected[0])
		var ok: bool = got == expected[1]
		check(ok, "" if ok else "%s: %s" % [fx.name, got.hex_encode().left(200)])


func _test_lossy_fixtures_keep_their_python_bytes() -> void:
	# The NUL fixtures: Python's bytes still decode, with U+FFFD where the NUL was.
	var lossy: int = 0
	for fx: Dictionary in _valid:
		if fx.has("gd_value"):
			lossy += 1
			var decoder: FrameCodec.FrameDecoder = FrameCodec.FrameDecoder.new()
			decoder.feed(expand_hex(fx.hex))
			var want: Variant = from_json(fx.gd_value)
			check(same(decoder.next_frame(), want), "%s decodes lossily" % fx.name)
	check(lossy >= 1, "there are NUL fixtures")


func _test_invalid_fixtures_are_rejected() -> void:
	for fx: Dictionary in _invalid:
		var decoder: FrameCodec.FrameDecoder = FrameCodec.FrameDecoder.new()
		decoder.feed(expand_hex(fx.hex))
		var frame: Variant = decoder.next_frame()
		var ok: bool = frame == null and decoder.get_error_code() == fx.error
		check(ok, "%s: want %s, got %s" % [fx.name, fx.error, decoder.get_error()])
		check(decoder.next_frame() == null and decoder.has_error(), "%s: stays failed" % fx.name)


func _test_whole_fixture_stream_in_pieces() -> void:
	var stream: PackedByteArray = PackedByteArray()
	var want: Array = []
	for fx: Dictionary in _valid:
		var raw: PackedByteArray = expand_hex(fx.hex)
		if raw.size() < 2000:
			stream.append_array(raw)
			want.append(_expected(fx)[0])
	for chunk: int in [1, 7, 4096, stream.size()]:
		var frames: Array = _decode_all(stream, chunk)
		check(same(frames, want), "stream in chunks of %d: %d frames" % [chunk, frames.size()])


func _test_many_small_frames_in_one_feed() -> void:
	var stream: PackedByteArray = PackedByteArray()
	var count: int = 20000
	for i: int in count:
		stream.append_array(
			FrameCodec.encode_frame({"op": "data", "id": i, "data": PackedByteArray([i & 0xFF])})
		)
	var start: int = Time.get_ticks_msec()
	var frames: Array = _decode_all(stream, stream.size())
	var elapsed: int = Time.get_ticks_msec() - start
	var ok: bool = frames.size() == count
	for i: int in frames.size():
		if frames[i].id != i or frames[i].data != PackedByteArray([i & 0xFF]):
			ok = false
	check(ok, "%d small frames from one feed" % frames.size())
	# Re-copying the buffer per frame would be quadratic: 20000 frames x ~240 KB.
	check(elapsed < 5000, "20000 small frames took %d ms" % elapsed)


func _test_feeding_while_frames_are_pending() -> void:
	var decoder: FrameCodec.FrameDecoder = FrameCodec.FrameDecoder.new()
	var frame: PackedByteArray = FrameCodec.encode_frame(
		{"op": "data", "id": 1, "data": PackedByteArray()}
	)
	var got: int = 0
	# Interleave feeds and reads so the read offset and compaction are exercised.
	for round: int in 300:
		for k: int in 10:
			decoder.feed(frame)
		decoder.feed(frame.slice(0, 5))
		while decoder.next_frame() != null:
			got += 1
		decoder.feed(frame.slice(5))
	while decoder.next_frame() != null:
		got += 1
	check(got == 300 * 11 and decoder.get_buffered() == 0, "interleaved: %d frames" % got)


func _test_append_data_frame_is_encode_frame() -> void:
	var ids: Array[int] = [0, 1, 127, 128, 255, 256, 65535, 65536, 0xFFFFFFFF, 0x100000000, 1 << 40]
	var sizes: Array[int] = [0, 1, 255, 256, 65535, 65536]
	for id: int in ids:
		for size: int in sizes:
			var data: PackedByteArray = PackedByteArray()
			data.resize(size)
			data.fill(id & 0xFF)
			var out: PackedByteArray = PackedByteArray([7, 7])
			FrameCodec.append_data_frame(out, id, data)
			var want: PackedByteArray = PackedByteArray([7, 7])
			want.append_array(FrameCodec.encode_frame({"op": "data", "id": id, "data": data}))
			check(out == want, "data frame of id %d, %d bytes" % [id, size])
			var decoder: FrameCodec.FrameDecoder = FrameCodec.FrameDecoder.new()
			decoder.feed(out.slice(2))
			var frame: Variant = decoder.next_frame()
			var ok: bool = (
				frame is Dictionary
				and frame.keys() == ["op", "id", "data"]
				and frame.id == id
				and frame.data == data
			)
			check(ok, "data frame of id %d, %d bytes decodes" % [id, size])


# What the general decoder makes of one frame's payload: the map, or the error code.
func _reference(payload: PackedByteArray) -> Variant:
	var res: Dictionary = MsgPack.decode(payload)
	if not res.ok:
		return "msgpack"
	if typeof(res.value) != TYPE_DICTIONARY:
		return "not_map"
	if res.consumed != payload.size():
		return "trailing"
	if typeof(res.value.get("op")) != TYPE_STRING:
		return "no_op"
	return res.value


func _test_data_frame_shortcut_agrees_with_the_general_decoder() -> void:
	# Every one-byte change and every cut of data frames must decode as the general decoder
	# (which the fixtures pin to msgpack-python) decodes them.
	var payloads: Array[PackedByteArray] = []
	for id: int in [5, 200, 40000, 0x12345678]:
		for size: int in [3, 300]:
			var data: PackedByteArray = PackedByteArray()
			data.resize(size)
			payloads.append(
				FrameCodec.encode_frame({"op": "data", "id": id, "data": data}).slice(4)
			)
	payloads.append(
		FrameCodec.encode_frame({"op": "data", "data": PackedByteArray(), "id": 1}).slice(4)
	)
	payloads.append(FrameCodec.encode_frame({"op": "data", "id": 1, "data": "text"}).slice(4))
	payloads.append(
		FrameCodec.encode_frame({"op": "data", "id": -1, "data": PackedByteArray()}).slice(4)
	)
	var bad: int = 0
	var cases: int = 0
	for base: PackedByteArray in payloads:
		var variants: Array[PackedByteArray] = [base]
		for i: int in mini(base.size(), 24):
			for value: int in [0x00, 0x7F, 0xA4, 0xC4, 0xC5, 0xC6, 0xCC, 0xCD, 0xCE, 0xCF, 0xFF]:
				var changed: PackedByteArray = base.duplicate()
				changed[i] = value
				variants.append(changed)
		for cut: int in range(1, base.size()):
			variants.append(base.slice(0, cut))
		for payload: PackedByteArray in variants:
			cases += 1
			var n: int = payload.size()
			var frame: PackedByteArray = PackedByteArray(
				[n >> 24, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF]
			)
			frame.append_array(payload)
			var decoder: FrameCodec.FrameDecoder = FrameCodec.FrameDecoder.new()
			decoder.feed(frame)
			var got: Variant = decoder.next_frame()
			if got == null:
				got = decoder.get_error_code()
			var want: Variant = _reference(payload)
			if not same(got, want):
				bad += 1
				if bad <= 5:
					printerr("  %s: got %s, want %s" % [payload.hex_encode(), got, want])
	check(bad == 0, "%d of %d changed data frames decode differently" % [bad, cases])


func _test_errors_are_sticky_and_reset_clears_them() -> void:
	var good: PackedByteArray = FrameCodec.encode_frame({"op": "open", "id": 1, "peer": "p"})
	var decoder: FrameCodec.FrameDecoder = FrameCodec.FrameDecoder.new()
	decoder.feed(good + PackedByteArray([0, 0, 0, 0]) + good)
	check(decoder.next_frame() is Dictionary, "frame before the error")
	check(decoder.next_frame() == null and decoder.get_error_code() == "empty", "then the error")
	decoder.feed(good)
	check(decoder.next_frame() == null and decoder.has_error(), "feed after an error is ignored")
	check(decoder.get_error().begins_with("empty"), "message: %s" % decoder.get_error())
	decoder.reset()
	decoder.feed(good)
	check(not decoder.has_error() and decoder.next_frame() is Dictionary, "reset decoder works")


func _test_length_limits() -> void:
	var decoder: FrameCodec.FrameDecoder = FrameCodec.FrameDecoder.new()
	decoder.feed(PackedByteArray([1, 0, 0, 0, 0x83]))
	check(decoder.next_frame() == null and not decoder.has_error(), "MAX_FRAME bytes: waits")
	decoder = FrameCodec.FrameDecoder.new()
	decoder.feed(PackedByteArray([1, 0, 0, 1]))
	check(decoder.next_frame() == null and decoder.get_error_code() == "too_large", "MAX_FRAME + 1")


func _test_largest_frame() -> void:
	var empty_len: int = (
		FrameCodec.encode_frame({"op": "data", "id": 1, "data": PackedByteArray()}).size()
	)
	var data: PackedByteArray = PackedByteArray()
	# From bin8 to bin32 the header grows by 3 bytes.
	data.resize(FrameCodec.MAX_FRAME - (empty_len - 4) - 3)
	var frame: PackedByteArray = FrameCodec.encode_frame({"op": "data", "id": 1, "data": data})
	check(frame.size() == FrameCodec.MAX_FRAME + 4, "largest frame: %d bytes" % frame.size())
	var decoder: FrameCodec.FrameDecoder = FrameCodec.FrameDecoder.new()
	decoder.feed(frame)
	var got: Variant = decoder.next_frame()
	check(got is Dictionary and got.data.size() == data.size(), "largest frame decodes")
	data.append(0)
	check(
		FrameCodec.encode_frame({"op": "data", "id": 1, "data": data}).is_empty(), "one byte more"
	)


func _test_encode_frame_refuses_bad_frames() -> void:
	check(FrameCodec.encode_frame({"id": 1}).is_empty(), "no op")
	check(FrameCodec.encode_frame({"op": 1}).is_empty(), "int op")
	check(FrameCodec.encode_frame({"op": "x", "v": Vector2()}).is_empty(), "unsupported value")
	check(FrameCodec.encode_frame({"op": "x", "v": {1.5: 0}}).is_empty(), "float key")
	var named: PackedByteArray = FrameCodec.encode_frame({&"op": &"open"})
	check(named == hx("00000009 81 a2 6f 70 a4 6f 70 65 6e"), "StringName op: %s" % named)
