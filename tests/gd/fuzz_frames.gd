extends SceneTree
## Feeds byte streams to frame_codec.gd's FrameDecoder for tests/test_msgpack.py, which
## generates them (random, truncated, damaged) and checks the answers against
## sidecar/link/frames.py.
##
## godot --headless --path . --script res://tests/gd/fuzz_frames.gd -- <in> <out>
## <in>: records of u32 big-endian stream length, u32 big-endian chunk size, stream bytes.
## <out>: one JSON line per stream: {"frames": [hex of each frame re-encoded], "error": code
## or "", "buffered": bytes left}. The stream is fed `chunk` bytes at a time, taking every
## frame after each feed, as the addon's link does.

const FrameCodec = preload("res://addons/godot_debug_connection/frame_codec.gd")


func _init() -> void:
	var args: PackedStringArray = OS.get_cmdline_user_args()
	if args.size() != 2:
		printerr("usage: fuzz_frames.gd -- <in> <out>")
		quit(2)
		return
	quit(_run(args[0], args[1]))


func _run(in_path: String, out_path: String) -> int:
	var data: PackedByteArray = FileAccess.get_file_as_bytes(in_path)
	var lines: PackedStringArray = PackedStringArray()
	var pos: int = 0
	while pos + 8 <= data.size():
		var n: int = _u32(data, pos)
		var chunk: int = maxi(1, _u32(data, pos + 4))
		pos += 8
		lines.append(_decode(data.slice(pos, pos + n), chunk))
		pos += n
	var file: FileAccess = FileAccess.open(out_path, FileAccess.WRITE)
	if file == null:
		printerr("cannot write %s" % out_path)
		return 2
	file.store_string("\n".join(lines) + "\n")
	file.close()
	return 0


func _decode(stream: PackedByteArray, chunk: int) -> String:
	var decoder: FrameCodec.FrameDecoder = FrameCodec.FrameDecoder.new()
	var frames: PackedStringArray = PackedStringArray()
	for start: int in range(0, stream.size(), chunk):
		decoder.feed(stream.slice(start, start + chunk))
		var frame: Variant = decoder.next_frame()
		while frame != null:
			frames.append('"%s"' % FrameCodec.encode_frame(frame).hex_encode())
			frame = decoder.next_frame()
	return (
		'{"frames": [%s], "error": "%s", "buffered": %d}'
		% [", ".join(frames), decoder.get_error_code(), decoder.get_buffered()]
	)


static func _u32(data: PackedByteArray, pos: int) -> int:
	return (data[pos] << 24) | (data[pos + 1] << 16) | (data[pos + 2] << 8) | data[pos + 3]
