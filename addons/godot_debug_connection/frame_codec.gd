@tool
extends RefCounted
## Frames of the addon ⇄ sidecar link (docs/LINK.md): a u32 big-endian payload length, then
## one msgpack map holding a str field [code]op[/code].
##
## [method encode_frame] builds one frame; [FrameDecoder] cuts a byte stream into frames.
## Use it through [code]preload("res://addons/godot_debug_connection/frame_codec.gd")[/code].
## Nothing here keeps shared state: one FrameDecoder per connection, used by one thread.

const MsgPack = preload("res://addons/godot_debug_connection/msgpack.gd")

## Largest payload a frame may carry, in bytes.
const MAX_FRAME: int = 16777216

## Error codes of [method FrameDecoder.get_error_code], the same as sidecar/link/frames.py uses.
const ERR_EMPTY: String = "empty"
const ERR_TOO_LARGE: String = "too_large"
const ERR_MSGPACK: String = "msgpack"
const ERR_NOT_MAP: String = "not_map"
const ERR_TRAILING: String = "trailing"
const ERR_NO_OP: String = "no_op"

# A `data` frame, {"op": "data", "id": <int>, "data": <bin>}, is what the link carries most;
# both encoders write its keys in that order, so its payload starts with these 12 bytes:
# 83 a2 6f 70 a4 64 61 74 | 61 a2 69 64 (fixmap 3, "op", "data", "id"), then the id, then
# a4 64 61 74 61 ("data") and the bin. The u64 / u32 are those bytes read little-endian, for
# a comparison in two calls.
const _DATA_HEAD_U64: int = 0x746164A4706FA283
const _DATA_HEAD_U32: int = 0x6469A261
const _DATA_KEY: PackedByteArray = [0xA4, 0x64, 0x61, 0x74, 0x61]
const _DATA_KEY_U32: int = 0x746164A4
# A frame's length (filled in afterwards) and _DATA_HEAD.
const _FRAME_HEAD: PackedByteArray = [
	0, 0, 0, 0, 0x83, 0xA2, 0x6F, 0x70, 0xA4, 0x64, 0x61, 0x74, 0x61, 0xA2, 0x69, 0x64
]


## Encodes [param msg] as one frame (length prefix included). Returns an empty array when
## [param msg] has no str [code]op[/code], holds a value outside the msgpack subset, or
## encodes to more than [constant MAX_FRAME] bytes: such a frame would be a protocol error.
static func encode_frame(msg: Dictionary) -> PackedByteArray:
	var op: Variant = msg.get("op")
	if typeof(op) != TYPE_STRING and typeof(op) != TYPE_STRING_NAME:
		return PackedByteArray()
	var frame: PackedByteArray = MsgPack.encode_prefixed(msg)
	if frame.size() > MAX_FRAME + 4:
		return PackedByteArray()
	return frame


## Appends the frame of [code]{"op": "data", "id": id, "data": data}[/code] to [param out]:
## byte for byte what [method encode_frame] makes of that map, without building it. [param id]
## must not be negative.
static func append_data_frame(out: PackedByteArray, id: int, data: PackedByteArray) -> void:
	var at: int = out.size()
	out.append_array(_FRAME_HEAD)
	if id < 0x80:
		out.append(id)
	elif id < 0x100:
		out.append(0xCC)
		out.append(id)
	elif id < 0x10000:
		out.append(0xCD)
		out.append(id >> 8)
		out.append(id & 0xFF)
	elif id < 0x100000000:
		out.append(0xCE)
		_put_u32(out, id)
	else:
		out.append(0xCF)
		_put_u32(out, id >> 32)
		_put_u32(out, id & 0xFFFFFFFF)
	out.append_array(_DATA_KEY)
	var n: int = data.size()
	if n < 0x100:
		out.append(0xC4)
		out.append(n)
	elif n < 0x10000:
		out.append(0xC5)
		out.append(n >> 8)
		out.append(n & 0xFF)
	else:
		out.append(0xC6)
		_put_u32(out, n)
	out.append_array(data)
	var length: int = out.size() - at - 4
	out[at] = length >> 24
	out[at + 1] = (length >> 16) & 0xFF
	out[at + 2] = (length >> 8) & 0xFF
	out[at + 3] = length & 0xFF


static func _put_u32(out: PackedByteArray, v: int) -> void:
	out.append(v >> 24)
	out.append((v >> 16) & 0xFF)
	out.append((v >> 8) & 0xFF)
	out.append(v & 0xFF)


## Streaming decoder: [method feed] bytes as they arrive, then call [method next_frame] until
## it returns null. A protocol error stops the decoder for good ([method has_error]); the link
## is then reset, which makes a new decoder (or call [method reset]).
class FrameDecoder:
	extends RefCounted

	# Consumed bytes are dropped from the front of the buffer only once they are this many and
	# at least half of it, so a burst of small frames is not copied once per frame.
	const _COMPACT_MIN: int = 65536

	var _buf: PackedByteArray = PackedByteArray()
	var _off: int = 0
	var _msgpack: MsgPack.Decoder = MsgPack.Decoder.new()
	var _error_code: String = ""
	var _error: String = ""

	## Appends received bytes. Ignored after an error.
	func feed(bytes: PackedByteArray) -> void:
		if _error_code != "":
			return
		if _off > 0 and (_off == _buf.size() or (_off >= _COMPACT_MIN and _off * 2 >= _buf.size())):
			_buf = _buf.slice(_off)
			_off = 0
		_buf.append_array(bytes)

	## Returns the next complete frame (a Dictionary with a String [code]"op"[/code]), or null
	## when more bytes are needed or after an error.
	func next_frame() -> Variant:
		var avail: int = _buf.size() - _off
		if _error_code != "" or avail < 4:
			return null
		var n: int = (
			(_buf[_off] << 24) | (_buf[_off + 1] << 16) | (_buf[_off + 2] << 8) | _buf[_off + 3]
		)
		if n == 0:
			return _fail(ERR_EMPTY, "frame length 0")
		if n > MAX_FRAME:
			return _fail(ERR_TOO_LARGE, "frame length %d above %d" % [n, MAX_FRAME])
		if avail - 4 < n:
			return null
		var msg: Variant = _data_frame(_off + 4, n)
		if msg == null:
			msg = _decode_payload(_off + 4, n)
		if msg != null:
			_off += 4 + n
		return msg

	## True once a protocol error was seen.
	func has_error() -> bool:
		return _error_code != ""

	## What the protocol error was, for the log; empty without an error.
	func get_error() -> String:
		return _error

	## One of the ERR_* codes; empty without an error.
	func get_error_code() -> String:
		return _error_code

	## Bytes received but not yet returned as frames.
	func get_buffered() -> int:
		return _buf.size() - _off

	## Forgets buffered bytes and any error.
	func reset() -> void:
		_buf = PackedByteArray()
		_off = 0
		_error_code = ""
		_error = ""

	# The `data` frame in the `n` bytes at `start` when they hold exactly one in the usual
	# layout (see _DATA_HEAD), else null: the general decoder then gives the same answer
	# for it, or the error. Saves most of the decoding work on the busiest path.
	func _data_frame(start: int, n: int) -> Variant:
		if n < 20:
			return null
		var buf: PackedByteArray = _buf
		if buf.decode_u64(start) != _DATA_HEAD_U64 or buf.decode_u32(start + 8) != _DATA_HEAD_U32:
			return null
		var end: int = start + n
		var p: int = start + 12
		var b: int = buf[p]
		var id: int = b
		if b < 0x80:
			p += 1
		elif b == 0xCC:
			id = buf[p + 1]
			p += 2
		elif b == 0xCD:
			id = (buf[p + 1] << 8) | buf[p + 2]
			p += 3
		elif b == 0xCE and end - p >= 5:
			id = (buf[p + 1] << 24) | (buf[p + 2] << 16) | (buf[p + 3] << 8) | buf[p + 4]
			p += 5
		else:
			return null
		# The key "data", then at least a bin8 header.
		if end - p < 7 or buf.decode_u32(p) != _DATA_KEY_U32 or buf[p + 4] != 0x61:
			return null
		p += 5
		var kind: int = buf[p]
		var size: int = -1
		if kind == 0xC4:
			size = buf[p + 1]
			p += 2
		elif kind == 0xC5 and end - p >= 3:
			size = (buf[p + 1] << 8) | buf[p + 2]
			p += 3
		elif kind == 0xC6 and end - p >= 5:
			size = (buf[p + 1] << 24) | (buf[p + 2] << 16) | (buf[p + 3] << 8) | buf[p + 4]
			p += 5
		if size < 0 or p + size != end:
			return null
		return {"op": "data", "id": id, "data": buf.slice(p, end)}

	# The map in the `n` bytes at `start`, or null after recording why it is not a frame.
	func _decode_payload(start: int, n: int) -> Variant:
		var res: Dictionary = _msgpack.decode(_buf, start, start + n)
		var msg: Variant = res.value
		if not res.ok:
			_fail(ERR_MSGPACK, res.error)
		elif typeof(msg) != TYPE_DICTIONARY:
			_fail(ERR_NOT_MAP, "payload is a %s, not a map" % type_string(typeof(msg)))
		elif res.consumed != n:
			_fail(ERR_TRAILING, "%d bytes after the map" % (n - res.consumed))
		elif typeof(msg.get("op")) != TYPE_STRING:
			_fail(ERR_NO_OP, "frame has no str field op")
		return null if _error_code != "" else msg

	func _fail(code: String, message: String) -> Variant:
		_error_code = code
		_error = "%s: %s" % [code, message]
		_buf = PackedByteArray()
		_off = 0
		return null
