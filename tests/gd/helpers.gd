extends SceneTree
## What the GDScript tests in tests/gd share. A test script extends this one
## ([code]extends "res://tests/gd/helpers.gd"[/code]), runs its [code]_test_*[/code] methods
## with [method run_tests], counts with [method check] and ends with [method finish], whose
## line "gdscript: N passed, M failed" tests/*.py read.
##
## Tagged JSON, the fixtures' notation for values JSON cannot tell apart: ints are JSON ints,
## floats JSON floats or {"$float": "<16 hex digits, big-endian bits>"}, bins {"$bin": "<hex>"},
## maps with non-str keys {"$map": [[k, v], ...]}; in hex, "(<hex>*<n>)" repeats <hex> n times.

const MsgPack = preload("res://addons/godot_debug_connection/msgpack.gd")

# Characters a JSON string literal must escape.
static var _json_special: RegEx = RegEx.create_from_string('[\\x{00}-\\x{1f}"\\\\]')

var _passed: int = 0
var _failed: int = 0
## The test method running, named in failures.
var _current: String = ""


## Calls every method of this script whose name starts with "_test_".
func run_tests() -> void:
	for method: Dictionary in get_method_list():
		var method_name: String = method.name
		if method_name.begins_with("_test_"):
			_current = method_name
			call(method_name)
	_current = ""


## Counts one check; prints what failed.
func check(ok: bool, what: String) -> void:
	if ok:
		_passed += 1
	else:
		_failed += 1
		printerr("FAIL %s: %s" % [_current, what])


## Prints the summary line and quits: exit code 1 when a check failed.
func finish() -> void:
	print("gdscript: %d passed, %d failed" % [_passed, _failed])
	quit(1 if _failed > 0 else 0)


## Fixture hex to bytes; "(<hex>*<n>)" stands for <hex> repeated n times.
static func expand_hex(text: String) -> PackedByteArray:
	var runs: RegEx = RegEx.create_from_string("\\(([0-9a-f]+)\\*(\\d+)\\)")
	var out: PackedByteArray = PackedByteArray()
	var from: int = 0
	for m: RegExMatch in runs.search_all(text):
		out.append_array(text.substr(from, m.get_start() - from).hex_decode())
		var unit: PackedByteArray = m.get_string(1).hex_decode()
		for k: int in m.get_string(2).to_int():
			out.append_array(unit)
		from = m.get_end()
	out.append_array(text.substr(from).hex_decode())
	return out


## Parses JSON keeping Python's distinction: a number without '.', 'e' or 'E' is an int.
## Also reads NaN, Infinity and -Infinity. \u0000 becomes U+FFFD (a String cannot hold it).
## Returns null and prints an error when the text is not JSON.
static func parse_json(text: String) -> Variant:
	var parser: _JsonParser = _JsonParser.new(text)
	var value: Variant = parser.parse()
	if parser.error != "":
		printerr("bad JSON at %d: %s" % [parser.pos, parser.error])
		return null
	return value


## Tagged JSON (see the file header) to the Variant it stands for.
static func from_json(value: Variant) -> Variant:
	var result: Variant = value
	if value is Array:
		result = []
		for item: Variant in value:
			result.append(from_json(item))
	elif value is Dictionary:
		var keys: Array = value.keys()
		var tag: String = keys[0] if keys.size() == 1 and keys[0] is String else ""
		if tag == "$bin":
			result = expand_hex(value[tag])
		elif tag == "$float":
			var raw: PackedByteArray = (value[tag] as String).hex_decode()
			raw.reverse()
			result = raw.decode_double(0)
		elif tag == "$map":
			result = {}
			for pair: Array in value[tag]:
				result[from_json(pair[0])] = from_json(pair[1])
		else:
			result = {}
			for key: Variant in keys:
				result[key] = from_json(value[key])
	return result


## A Variant as tagged JSON: floats as $float bits, every map as $map, so nothing is lost.
static func to_json(value: Variant) -> String:
	var text: String = ""
	match typeof(value):
		TYPE_NIL:
			text = "null"
		TYPE_BOOL:
			text = "true" if value else "false"
		TYPE_INT:
			text = str(value)
		TYPE_FLOAT:
			var raw: PackedByteArray = PackedByteArray()
			raw.resize(8)
			raw.encode_double(0, value)
			raw.reverse()
			text = '{"$float": "%s"}' % raw.hex_encode()
		TYPE_STRING:
			text = _quote(value)
		TYPE_PACKED_BYTE_ARRAY:
			text = '{"$bin": "%s"}' % (value as PackedByteArray).hex_encode()
		TYPE_ARRAY:
			var items: PackedStringArray = PackedStringArray()
			for item: Variant in value:
				items.append(to_json(item))
			text = "[%s]" % ", ".join(items)
		TYPE_DICTIONARY:
			var pairs: PackedStringArray = PackedStringArray()
			for key: Variant in value:
				pairs.append("[%s, %s]" % [to_json(key), to_json(value[key])])
			text = '{"$map": [%s]}' % ", ".join(pairs)
		_:
			text = '"<%s>"' % type_string(typeof(value))
	return text


# A JSON string literal; only characters JSON requires are escaped.
static func _quote(text: String) -> String:
	if _json_special.search(text) == null:
		return '"%s"' % text
	var parts: PackedStringArray = PackedStringArray()
	for i: int in text.length():
		var code: int = text.unicode_at(i)
		if code < 0x20:
			parts.append("\\u%04x" % code)
		elif code == 0x22 or code == 0x5C:
			parts.append("\\" + text[i])
		else:
			parts.append(text[i])
	return '"%s"' % "".join(parts)


## Deep equality that also requires equal types and bit-equal floats (NaN equals itself,
## -0.0 differs from 0.0), and equal key order in maps.
static func same(a: Variant, b: Variant) -> bool:
	if typeof(a) != typeof(b):
		return false
	var equal: bool = true
	match typeof(a):
		TYPE_FLOAT:
			equal = MsgPack.encode(a) == MsgPack.encode(b)
		TYPE_ARRAY:
			equal = a.size() == b.size()
			for i: int in a.size() if equal else 0:
				if not same(a[i], b[i]):
					equal = false
					break
		TYPE_DICTIONARY:
			equal = same(a.keys(), b.keys()) and same(a.values(), b.values())
		_:
			equal = a == b
	return equal


## -0.0. A literal -0.0 is not reliable: the compiler merges it with a 0.0 constant in the same
## function (the two compare equal), and unary minus of 0.0 gives 0.0.
static func neg_zero() -> float:
	return hx("0000000000000080").decode_double(0)


## Bytes from a hex string written with spaces.
static func hx(text: String) -> PackedByteArray:
	return text.replace(" ", "").hex_decode()


class _JsonParser:
	extends RefCounted
	var text: String
	var pos: int = 0
	var size: int = 0
	var error: String = ""
	var _next_backslash: int = -1

	func _init(source: String) -> void:
		text = source
		size = source.length()

	func parse() -> Variant:
		var value: Variant = _value()
		_skip_space()
		if error == "" and pos != size:
			error = "trailing text"
		return value

	func _skip_space() -> void:
		while pos < size and text.unicode_at(pos) in [0x20, 0x0A, 0x0D, 0x09]:
			pos += 1

	func _value() -> Variant:
		_skip_space()
		if pos >= size:
			error = "unexpected end"
			return null
		var c: String = text[pos]
		var value: Variant = null
		if c == "{":
			value = _object()
		elif c == "[":
			value = _array()
		elif c == '"':
			value = _string()
		else:
			value = _literal()
		return value

	func _literal() -> Variant:
		for word: String in ["true", "false", "null", "NaN", "Infinity", "-Infinity"]:
			if text.substr(pos, word.length()) == word:
				pos += word.length()
				return {"true": true, "false": false, "null": null, "NaN": NAN}.get(
					word, INF if word == "Infinity" else -INF
				)
		var start: int = pos
		while pos < size and "0123456789+-.eE".contains(text[pos]):
			pos += 1
		var number: String = text.substr(start, pos - start)
		if number.is_empty():
			error = "unexpected character"
			return null
		if number.contains(".") or number.contains("e") or number.contains("E"):
			return number.to_float()
		return number.to_int()

	func _array() -> Array:
		var items: Array = []
		pos += 1
		_skip_space()
		if pos < size and text[pos] == "]":
			pos += 1
			return items
		while error == "":
			items.append(_value())
			_skip_space()
			if pos < size and text[pos] == ",":
				pos += 1
			elif pos < size and text[pos] == "]":
				pos += 1
				break
			else:
				error = "',' or ']' expected"
		return items

	func _object() -> Dictionary:
		var map: Dictionary = {}
		pos += 1
		_skip_space()
		if pos < size and text[pos] == "}":
			pos += 1
			return map
		while error == "":
			_skip_space()
			var key: Variant = _string() if pos < size and text[pos] == '"' else null
			_skip_space()
			if key == null or pos >= size or text[pos] != ":":
				error = "key expected"
				break
			pos += 1
			map[key] = _value()
			_skip_space()
			if pos < size and text[pos] == ",":
				pos += 1
			elif pos < size and text[pos] == "}":
				pos += 1
				break
			else:
				error = "',' or '}' expected"
		return map

	func _string() -> String:
		pos += 1
		var parts: PackedStringArray = PackedStringArray()
		while error == "":
			var quote: int = text.find('"', pos)
			if _next_backslash < pos and _next_backslash != size:
				_next_backslash = text.find("\\", pos)
				_next_backslash = size if _next_backslash < 0 else _next_backslash
			if quote < 0:
				error = "unterminated string"
			elif quote < _next_backslash:
				parts.append(text.substr(pos, quote - pos))
				pos = quote + 1
				break
			else:
				parts.append(text.substr(pos, _next_backslash - pos))
				pos = _next_backslash + 1
				parts.append(_escape())
		return "".join(parts)

	# The character(s) of the escape after a backslash at pos - 1.
	func _escape() -> String:
		var c: String = text.substr(pos, 1)
		pos += 1
		var simple: Dictionary = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}
		if c in simple:
			return simple[c]
		if c != "u":
			return c
		var code: int = text.substr(pos, 4).hex_to_int()
		pos += 4
		if code >= 0xD800 and code < 0xDC00 and text.substr(pos, 2) == "\\u":
			var low: int = text.substr(pos + 2, 4).hex_to_int()
			if low >= 0xDC00 and low < 0xE000:
				pos += 6
				code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
		return String.chr(0xFFFD if code == 0 else code)
