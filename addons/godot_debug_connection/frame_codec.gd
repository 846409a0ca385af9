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

## Error codes of [method FrameDecoder.get_error_code], the same as sidecar/frames.py uses.
const ERR_EMPTY: String = "empty"
const ERR_TOO_LARGE: String = "too_large"
const ERR_MSGPACK: String = "msgpack"
const ERR_NOT_MAP: String = "not_map"
const ERR_TRAILING: String = "trailing"
const ERR_NO_OP: String = "no_op"


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
		var msg: Variant = _decode_payload(_off + 4, n)
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
