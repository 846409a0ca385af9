@tool
extends RefCounted
## The msgpack subset of the addon ⇄ sidecar link (docs/LINK.md, "msgpack subset").
##
## Output is byte-identical to msgpack-python's `packb(value, use_bin_type=True)`: shortest
## encodings, floats always as float 64. Decoding never prints an error: bad input (truncated,
## ext types, invalid UTF-8, uint64 above 2^63-1, nesting deeper than [constant MAX_DEPTH], map keys
## that are not str or int, duplicate keys) comes back as an error string.
## The static functions keep no shared state, so the pump thread and the main thread may call
## them at once; a [Decoder] (reusable, a little faster) belongs to one thread.
## Use it through [code]preload("res://addons/godot_debug_connection/msgpack.gd")[/code].
##
## Godot Strings cannot hold U+0000 (every String API turns it into U+FFFD), so a decoded str
## containing NUL has U+FFFD in its place: the one lossy case, and not an error.

## Containers may nest this deep; one more level is a decode (and encode) error.
const MAX_DEPTH: int = 64

# Strings up to this many bytes are checked for ASCII by a loop, cheaper than the RegEx.
const _SHORT_STR: int = 16
const _ARRAY_TYPES: Array[int] = [
	TYPE_ARRAY,
	TYPE_PACKED_STRING_ARRAY,
	TYPE_PACKED_INT32_ARRAY,
	TYPE_PACKED_INT64_ARRAY,
	TYPE_PACKED_FLOAT32_ARRAY,
	TYPE_PACKED_FLOAT64_ARRAY,
]
const _REPLACEMENT_CHAR: int = 0xFFFD
const _BOM: int = 0xFEFF
# The UTF-8 bytes of the byte order mark, as get_string_from_ascii shows them.
const _BOM_LATIN1: String = "\u00ef\u00bb\u00bf"
# Well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF), which is
# exactly what Python's strict decoder accepts, matched over a Latin-1 view of the bytes (one
# character per byte) because Godot's own UTF-8 parser prints an error for every bad sequence.
# It matches where the well-formed prefix stops short of the end: valid text (the usual case)
# finds nothing, and no RegExMatch is allocated.
const _UTF8_PATTERN: String = (
	"^(?:[\\x{01}-\\x{7F}]++"
	+ "|[\\x{C2}-\\x{DF}][\\x{80}-\\x{BF}]"
	+ "|\\x{E0}[\\x{A0}-\\x{BF}][\\x{80}-\\x{BF}]"
	+ "|[\\x{E1}-\\x{EC}\\x{EE}\\x{EF}][\\x{80}-\\x{BF}]{2}"
	+ "|\\x{ED}[\\x{80}-\\x{9F}][\\x{80}-\\x{BF}]"
	+ "|\\x{F0}[\\x{90}-\\x{BF}][\\x{80}-\\x{BF}]{2}"
	+ "|[\\x{F1}-\\x{F3}][\\x{80}-\\x{BF}]{3}"
	+ "|\\x{F4}[\\x{80}-\\x{8F}][\\x{80}-\\x{BF}]{2})*+(?!\\z)"
)


## Encodes [param value]; returns an empty array when it holds something outside the subset
## (see [method encode_checked] for the reason). An empty array is never a valid encoding.
static func encode(value: Variant) -> PackedByteArray:
	var out: PackedByteArray = PackedByteArray()
	if _write(out, value, 0) != "":
		return PackedByteArray()
	return out


## Encodes [param value]. Returns
## [code]{"ok": bool, "bytes": PackedByteArray, "error": String}[/code]. Besides the subset
## types it accepts StringName (written as str) and the packed String, int and float arrays
## (written as arrays). Map keys must be str, StringName or int.
static func encode_checked(value: Variant) -> Dictionary:
	var out: PackedByteArray = PackedByteArray()
	var error: String = _write(out, value, 0)
	if error != "":
		return {"ok": false, "bytes": PackedByteArray(), "error": error}
	return {"ok": true, "bytes": out, "error": ""}


## Like [method encode], preceded by the length of the encoding as a u32 big-endian: a link
## frame when [param value] is a map. Saves the copy of prepending the length afterwards.
static func encode_prefixed(value: Variant) -> PackedByteArray:
	var out: PackedByteArray = PackedByteArray([0, 0, 0, 0])
	if _write(out, value, 0) != "":
		return PackedByteArray()
	var n: int = out.size() - 4
	out[0] = n >> 24
	out[1] = (n >> 16) & 0xFF
	out[2] = (n >> 8) & 0xFF
	out[3] = n & 0xFF
	return out


## Decodes one value from [param bytes] between [param start] and [param end] (-1: the end of
## the array); bytes after the value are left alone. Returns
## [code]{"ok": bool, "value": Variant, "error": String, "consumed": int}[/code]: on success
## [code]consumed[/code] is the length of the value's encoding; on failure [code]value[/code]
## is null and [code]error[/code] says why (it starts with "truncated" when more bytes might
## have completed the value).
static func decode(bytes: PackedByteArray, start: int = 0, end: int = -1) -> Dictionary:
	return Decoder.new().decode(bytes, start, end)


# Appends the encoding of `value` to `out` (packed arrays are passed by reference); returns
# why it cannot be encoded, or "". One if-chain, most frequent types first: `match` costs more.
static func _write(out: PackedByteArray, value: Variant, depth: int) -> String:
	var kind: int = typeof(value)
	var error: String = ""
	if kind == TYPE_STRING or kind == TYPE_STRING_NAME:
		var text: String = value
		var raw: PackedByteArray = text.to_utf8_buffer()
		var n: int = raw.size()
		if n < 32:
			out.append(0xA0 | n)
		else:
			_write_length(out, n, 0xD9)
		out.append_array(raw)
	elif kind == TYPE_INT:
		_write_int(out, value)
	elif kind == TYPE_DICTIONARY:
		error = _write_map(out, value, depth)
	elif kind == TYPE_PACKED_BYTE_ARRAY:
		var raw: PackedByteArray = value
		_write_length(out, raw.size(), 0xC4)
		out.append_array(raw)
	elif kind == TYPE_NIL:
		out.append(0xC0)
	elif kind == TYPE_BOOL:
		out.append(0xC3 if value else 0xC2)
	elif kind == TYPE_FLOAT:
		var raw: PackedByteArray = PackedByteArray()
		raw.resize(8)
		raw.encode_double(0, value)
		raw.reverse()
		out.append(0xCB)
		out.append_array(raw)
	elif kind in _ARRAY_TYPES:
		error = _write_array(out, value, depth)
	else:
		error = "cannot encode a %s" % type_string(kind)
	return error


# Big-endian, `count` bytes of `v`.
static func _put(out: PackedByteArray, v: int, count: int) -> void:
	var shift: int = (count - 1) * 8
	while shift >= 0:
		out.append((v >> shift) & 0xFF)
		shift -= 8


# The same choices as msgpack-python: fixint, then the smallest uint for positives and the
# smallest int for negatives.
static func _write_int(out: PackedByteArray, v: int) -> void:
	if v >= 0:
		if v < 0x80:
			out.append(v)
		elif v < 0x100:
			out.append(0xCC)
			out.append(v)
		elif v < 0x10000:
			out.append(0xCD)
			_put(out, v, 2)
		elif v < 0x100000000:
			out.append(0xCE)
			_put(out, v, 4)
		else:
			out.append(0xCF)
			_put(out, v, 8)
	elif v >= -32:
		out.append(v & 0xFF)
	elif v >= -0x80:
		out.append(0xD0)
		out.append(v & 0xFF)
	elif v >= -0x8000:
		out.append(0xD1)
		_put(out, v, 2)
	elif v >= -0x80000000:
		out.append(0xD2)
		_put(out, v, 4)
	else:
		out.append(0xD3)
		_put(out, v, 8)


# The 8/16/32-bit length header of a str (`first` 0xD9) or bin (0xC4), whose three type bytes
# follow each other; arrays (0xDC) and maps (0xDE) have only 16 and 32-bit forms.
static func _write_length(out: PackedByteArray, n: int, first: int) -> void:
	var has_8bit: bool = first == 0xD9 or first == 0xC4
	if n < 0x100 and has_8bit:
		out.append(first)
		out.append(n)
		return
	var base: int = first + 1 if has_8bit else first
	if n < 0x10000:
		out.append(base)
		_put(out, n, 2)
	else:
		out.append(base + 1)
		_put(out, n, 4)


static func _write_array(out: PackedByteArray, items: Variant, depth: int) -> String:
	if depth >= MAX_DEPTH:
		return "nesting deeper than %d" % MAX_DEPTH
	var n: int = items.size()
	if n < 16:
		out.append(0x90 | n)
	else:
		_write_length(out, n, 0xDC)
	for item: Variant in items:
		var error: String = _write(out, item, depth + 1)
		if error != "":
			return error
	return ""


static func _write_map(out: PackedByteArray, map: Dictionary, depth: int) -> String:
	if depth >= MAX_DEPTH:
		return "nesting deeper than %d" % MAX_DEPTH
	var n: int = map.size()
	if n < 16:
		out.append(0x80 | n)
	else:
		_write_length(out, n, 0xDE)
	for key: Variant in map:
		var kind: int = typeof(key)
		if kind != TYPE_STRING and kind != TYPE_INT and kind != TYPE_STRING_NAME:
			return "map key must be str or int, not %s" % type_string(kind)
		var error: String = _write(out, key, depth + 1)
		if error == "":
			error = _write(out, map[key], depth + 1)
		if error != "":
			return error
	return ""


## What [method decode] uses, for callers that decode many values on one thread: it keeps
## the short strings it decoded (map keys, op names), so reusing one saves work per value.
## Not for use by two threads at once.
class Decoder:
	extends RefCounted

	const _CACHE_LIMIT: int = 256

	# Compiled once when the script loads (main thread); RegEx.search only reads it afterwards.
	static var _utf8_re: RegEx = RegEx.create_from_string(_UTF8_PATTERN)

	var _buf: PackedByteArray = PackedByteArray()
	var _pos: int = 0
	var _end: int = 0
	var _error: String = ""
	# Bytes of short str -> String.
	var _strings: Dictionary = {}

	## Same as the static [method decode] of the script.
	func decode(bytes: PackedByteArray, start: int = 0, end: int = -1) -> Dictionary:
		var size: int = bytes.size()
		_end = size if end < 0 else mini(end, size)
		if start < 0 or start > _end:
			return {"ok": false, "value": null, "error": "bad range", "consumed": 0}
		_buf = bytes
		_pos = start
		_error = ""
		var value: Variant = _read_value(0)
		# Drop the reference: the caller may append to its buffer, which would then copy it.
		_buf = PackedByteArray()
		if _error != "":
			return {"ok": false, "value": null, "error": _error, "consumed": 0}
		return {"ok": true, "value": value, "error": "", "consumed": _pos - start}

	func _read_value(depth: int) -> Variant:
		if _pos >= _end:
			return _fail("truncated: value expected")
		var b: int = _buf[_pos]
		_pos += 1
		var value: Variant = null
		if b < 0x80:
			value = b
		elif b >= 0xA0 and b < 0xC0:
			value = _read_str(b - 0xA0)
		elif b >= 0xE0:
			value = b - 0x100
		elif b < 0x90:
			value = _read_map(b - 0x80, depth)
		elif b < 0xA0:
			value = _read_array(b - 0x90, depth)
		else:
			value = _read_typed(b, depth)
		return value

	func _fail(message: String) -> Variant:
		if _error == "":
			_error = message
		return null

	# The 0xC0..0xDF type bytes; an if-chain because `match` costs more.
	func _read_typed(b: int, depth: int) -> Variant:
		var value: Variant = null
		if b >= 0xC4 and b <= 0xC6:
			value = _read_bin(_read_len(1 << (b - 0xC4)))
		elif b >= 0xCC and b <= 0xD3:
			value = _read_int(b)
		elif b == 0xC2 or b == 0xC3:
			value = b == 0xC3
		elif b >= 0xD9 and b <= 0xDB:
			value = _read_str(_read_len(1 << (b - 0xD9)))
		elif b == 0xDC or b == 0xDD:
			value = _read_array(_read_len(2 if b == 0xDC else 4), depth)
		elif b == 0xDE or b == 0xDF:
			value = _read_map(_read_len(2 if b == 0xDE else 4), depth)
		elif b == 0xCA or b == 0xCB:
			value = _read_float(4 if b == 0xCA else 8)
		elif b == 0xC1:
			_fail("reserved type byte 0xc1")
		elif b != 0xC0:
			_fail("ext types are not supported (type byte 0x%x)" % b)
		return value

	# Unsigned big-endian integer of `count` bytes (1, 2 or 4); -1 when truncated.
	func _read_len(count: int) -> int:
		if _end - _pos < count:
			_fail("truncated: length expected")
			return -1
		var v: int = _buf[_pos]
		if count >= 2:
			v = (v << 8) | _buf[_pos + 1]
		if count == 4:
			v = (v << 16) | (_buf[_pos + 2] << 8) | _buf[_pos + 3]
		_pos += count
		return v

	func _read_int(b: int) -> Variant:
		# 0xCC..0xCF are uint8..uint64, 0xD0..0xD3 int8..int64.
		var count: int = 1 << ((b - 0xCC) & 3)
		if _end - _pos < count:
			return _fail("truncated: integer expected")
		var first: int = _buf[_pos]
		if b == 0xCF and first >= 0x80:
			return _fail("uint64 above 2^63-1")
		var v: int = first
		for i: int in range(_pos + 1, _pos + count):
			v = (v << 8) | _buf[i]
		_pos += count
		if b >= 0xD0 and count < 8 and first >= 0x80:
			v -= 1 << (count * 8)
		return v

	func _read_float(count: int) -> Variant:
		if _end - _pos < count:
			return _fail("truncated: float expected")
		var raw: PackedByteArray = _buf.slice(_pos, _pos + count)
		_pos += count
		raw.reverse()
		return raw.decode_double(0) if count == 8 else raw.decode_float(0)

	func _read_str(n: int) -> Variant:
		if n < 0:
			return null
		if _end - _pos < n:
			return _fail("truncated: str of %d bytes" % n)
		var raw: PackedByteArray = _buf.slice(_pos, _pos + n)
		_pos += n
		var short: bool = n <= _SHORT_STR
		var text: Variant = _strings.get(raw) if short else null
		if text != null:
			return text
		text = utf8_to_string(raw)
		if text == null:
			return _fail("invalid UTF-8 in str")
		if short:
			if _strings.size() >= _CACHE_LIMIT:
				_strings.clear()
			_strings[raw] = text
		return text

	func _read_bin(n: int) -> Variant:
		if n < 0:
			return null
		if _end - _pos < n:
			return _fail("truncated: bin of %d bytes" % n)
		var raw: PackedByteArray = _buf.slice(_pos, _pos + n)
		_pos += n
		return raw

	# Checks a container header: `n` items (-1: its length was truncated) that need at least
	# `min_bytes` more bytes, checked before `n` is trusted with an allocation.
	func _container_ok(n: int, min_bytes: int, depth: int) -> bool:
		if n < 0:
			return false
		if depth >= MAX_DEPTH:
			_fail("nesting deeper than %d" % MAX_DEPTH)
		elif _end - _pos < min_bytes:
			_fail("truncated: container of %d items" % n)
		return _error == ""

	func _read_array(n: int, depth: int) -> Variant:
		if not _container_ok(n, n, depth):
			return null
		var items: Array = []
		items.resize(n)
		for i: int in n:
			items[i] = _read_value(depth + 1)
			if _error != "":
				return null
		return items

	func _read_map(n: int, depth: int) -> Variant:
		if not _container_ok(n, n * 2, depth):
			return null
		var map: Dictionary = {}
		for i: int in n:
			var key: Variant = _read_value(depth + 1)
			var kind: int = typeof(key)
			if _error == "" and kind != TYPE_STRING and kind != TYPE_INT:
				_fail("map key must be str or int, not %s" % type_string(kind))
			if _error != "":
				return null
			map[key] = _read_value(depth + 1)
			if _error != "":
				return null
		if map.size() != n:
			return _fail("duplicate map key")
		return map

	## Decodes UTF-8 [param bytes] like Python's strict decoder: returns the String, or null
	## when the bytes are not well-formed UTF-8. U+0000 becomes U+FFFD (Godot Strings cannot
	## hold it).
	static func utf8_to_string(bytes: PackedByteArray) -> Variant:
		var n: int = bytes.size()
		# get_string_from_ascii maps each byte to one character and stops at the first NUL.
		var latin: String = bytes.get_string_from_ascii()
		if latin.length() != n:
			return _utf8_with_nul(bytes)
		if n <= _SHORT_STR:
			var ascii: bool = true
			for byte: int in bytes:
				if byte >= 0x80:
					ascii = false
					break
			if ascii:
				return latin
		return _utf8_piece(bytes, latin)

	static func _utf8_with_nul(bytes: PackedByteArray) -> Variant:
		var n: int = bytes.size()
		var parts: PackedStringArray = PackedStringArray()
		var from: int = 0
		while from <= n:
			var nul: int = bytes.find(0, from)
			var stop: int = n if nul < 0 else nul
			var piece: PackedByteArray = bytes.slice(from, stop)
			var text: Variant = _utf8_piece(piece, piece.get_string_from_ascii())
			if text == null:
				return null
			parts.append(text)
			from = stop + 1
		return String.chr(_REPLACEMENT_CHAR).join(parts)

	# Decodes NUL-free bytes whose Latin-1 view is `latin`.
	static func _utf8_piece(bytes: PackedByteArray, latin: String) -> Variant:
		if latin.is_empty():
			return ""
		if _utf8_re.search(latin) != null:
			return null
		if not latin.begins_with(_BOM_LATIN1):
			return bytes.get_string_from_utf8()
		# get_string_from_utf8 drops one leading byte order mark; keep every one of them.
		var marks: int = 0
		while latin.substr(marks * 3, 3) == _BOM_LATIN1:
			marks += 1
		var rest: String = bytes.slice(marks * 3).get_string_from_utf8()
		return String.chr(_BOM).repeat(marks) + rest
