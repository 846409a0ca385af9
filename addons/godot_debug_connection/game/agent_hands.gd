extends Node
## The bridge's hands in a game launched from the editor: injects input, evaluates
## expressions and sets properties for agents, talking over the game's debugger channel.
##
## Nothing loads it by itself: the bridge puts it into a running game with Godot's own
## live-edit messages (`scene:live_set_root`, `scene:live_instantiate_node`), which exist
## only while the game runs under the editor's debugger (never in an exported game, and
## project.godot is never touched). It then moves itself under /root, so a scene change does
## not free it, and answers `gdbridge:<command>` messages. Each request and each answer is
## ONE JSON string (Godot's JSON turns every number of a debugger message into a float and
## every Vector2 into text): `{"request": ..., ...}` in, `{"request": ..., "ok": ..., ...}` out as
## `gdbridge:reply`. docs/GAME_MESSAGES.md, "The game-side hands", tells the whole route.

## The name the hands take under /root; a second copy finds it there and leaves.
const HANDS_NAME := "GodotBridgeHands"
## The prefix of the messages the hands capture (EngineDebugger strips it).
const CAPTURE := "gdbridge"
## Bumped when the messages change, so the bridge can tell an old copy.
const VERSION := 1

const _BUTTONS := {
	"left": MOUSE_BUTTON_LEFT,
	"right": MOUSE_BUTTON_RIGHT,
	"middle": MOUSE_BUTTON_MIDDLE,
	"x1": MOUSE_BUTTON_XBUTTON1,
	"x2": MOUSE_BUTTON_XBUTTON2,
}
const _WHEEL := {
	"up": MOUSE_BUTTON_WHEEL_UP,
	"down": MOUSE_BUTTON_WHEEL_DOWN,
	"left": MOUSE_BUTTON_WHEEL_LEFT,
	"right": MOUSE_BUTTON_WHEEL_RIGHT,
}

## The copy that answers (the first one put in; later copies leave).
static var _active: Node = null

## Where the mouse is, as far as the injected events go (for `relative`).
var _mouse_at: Vector2 = Vector2.ZERO
## Mouse buttons held by injected events (a motion carries them as its button_mask).
var _mouse_mask: int = 0


## Answers at once, even in a game stopped at a breakpoint (its debug loop instantiates
## the hands and runs this); the move under /root waits for the game's next idle time.
func _ready() -> void:
	if not EngineDebugger.is_active():
		queue_free()  # not under a debugger: nothing can talk to it
		return
	if is_instance_valid(_active) and _active != self:
		# Put in again (the bridge was unsure, or the scene has several instances).
		_active.call("announce")
		queue_free()
		return
	_active = self
	process_mode = Node.PROCESS_MODE_ALWAYS
	if not EngineDebugger.has_capture(CAPTURE):
		EngineDebugger.register_message_capture(CAPTURE, _on_message)
	announce()
	_settle.call_deferred()


## Under /root for good, so that a scene change does not free the hands.
func _settle() -> void:
	var root: Window = get_tree().root
	if get_parent() != root:
		reparent(root, false)
	name = HANDS_NAME


## Tells the bridge the hands are there (`gdbridge:ready`).
func announce() -> void:
	var hello: Dictionary = {
		"version": VERSION,
		"path": str(get_path()),
		"pid": OS.get_process_id(),
		"frame": Engine.get_process_frames(),
	}
	EngineDebugger.send_message("gdbridge:ready", [JSON.stringify(hello, "", false, true)])


func _notification(what: int) -> void:
	# Not _exit_tree: moving under /root leaves the tree for a moment.
	if what == NOTIFICATION_PREDELETE and _active == self:
		_active = null
		if EngineDebugger.has_capture(CAPTURE):
			EngineDebugger.unregister_message_capture(CAPTURE)


func _on_message(command: String, data: Array) -> bool:
	var request: Variant = JSON.parse_string(str(data[0])) if data.size() == 1 else null
	if not request is Dictionary:
		return false
	var id: String = str(request.get("request", ""))
	match command:
		"ping":
			_reply(id, {"ok": true, "result": {"version": VERSION}})
		"input":
			_run_input(id, request)  # a coroutine: answers when its steps are done
		"evaluate":
			_reply(id, _evaluate(request))
		"set_property":
			_reply(id, _set_property(request))
		_:
			_reply(id, _failure("invalid_field", "command", "unknown command '%s'" % command))
	return true


func _reply(id: String, answer: Dictionary) -> void:
	answer["request"] = id
	EngineDebugger.send_message("gdbridge:reply", [JSON.stringify(answer, "", false, true)])


static func _failure(kind: String, field: String, message: String) -> Dictionary:
	return {"ok": false, "kind": kind, "field": field, "error": message}


# -- nodes -------------------------------------------------------------------------------


## The node at `path` (absolute, or relative to /root); the current scene when empty.
func _node_at(path: String) -> Node:
	if path.is_empty():
		return get_tree().current_scene
	if not path.begins_with("/"):
		path = "/root/" + path
	return get_tree().root.get_node_or_null(NodePath(path))


func _node_or_failure(request: Dictionary) -> Variant:
	var path: String = str(request.get("path", ""))
	var node: Node = null
	if request.get("id") != null:
		var object: Object = instance_from_id(int(str(request["id"])))
		node = object as Node
		if node == null:
			return _failure("not_found", "id", "the game has no node with id %s" % request["id"])
	else:
		node = _node_at(path)
	if node == null:
		var what: String = (
			"the game has no current scene"
			if path.is_empty()
			else ("no node at '%s' in the running game" % path)
		)
		return _failure("not_found", "path", what)
	return node


# -- evaluate ----------------------------------------------------------------------------


func _evaluate(request: Dictionary) -> Dictionary:
	var found: Variant = _node_or_failure(request)
	if found is Dictionary:
		return found
	var node: Node = found
	var expression := Expression.new()
	var text: String = str(request.get("expression", ""))
	if expression.parse(text) != OK:
		return _failure("evaluate_failed", "expression", expression.get_error_text())
	var value: Variant = expression.execute([], node, false)
	if expression.has_execute_failed():
		var why: String = expression.get_error_text()
		return _failure("evaluate_failed", "expression", why if why else "execution failed")
	return {"ok": true, "result": {"value": typed(value), "self": str(node.get_path())}}


# -- properties --------------------------------------------------------------------------


func _set_property(request: Dictionary) -> Dictionary:
	var found: Variant = _node_or_failure(request)
	if found is Dictionary:
		return found
	var node: Node = found
	var property: String = str(request.get("property", ""))
	var base: String = property.get_slice(":", 0)
	var declared: int = _declared_type(node, base)
	if declared < 0:
		return _failure(
			"not_found", "property", "%s has no property '%s'" % [node.get_class(), base]
		)
	var old: Variant = node.get_indexed(NodePath(property))
	var target: int = declared if declared != TYPE_NIL and base == property else typeof(old)
	var converted: Array = _from_json(request.get("value"), target)
	if converted.is_empty():
		return _failure(
			"invalid_field",
			"value",
			"cannot make a %s of %s" % [type_string(target), JSON.stringify(request.get("value"))]
		)
	node.set_indexed(NodePath(property), converted[0])
	var now: Variant = node.get_indexed(NodePath(property))
	return {
		"ok": true,
		"result": {"old": typed(old), "new": typed(now), "path": str(node.get_path())},
	}


## The property's declared Variant type (TYPE_NIL for a Variant-typed one), -1 without it.
static func _declared_type(object: Object, property: String) -> int:
	for info: Dictionary in object.get_property_list():
		if info["name"] == property:
			return int(info["type"])
	return -1


## `value` (typed JSON, as the bridge answers values) as a Variant of `target` type:
## [the value], or [] when it cannot be one. `{"type", "value"}` wrappers are unwrapped.
static func _from_json(value: Variant, target: int) -> Array:
	if value is Dictionary and value.has("type") and value.has("value"):
		value = value["value"]
	match target:
		TYPE_NIL:
			return [value]
		TYPE_BOOL:
			return [value] if value is bool else []
		TYPE_INT:
			if value is float and is_equal_approx(value, roundf(value)):
				return [int(value)]
			return [value] if value is int else []
		TYPE_FLOAT:
			return [float(value)] if value is float or value is int else []
		TYPE_STRING, TYPE_STRING_NAME, TYPE_NODE_PATH:
			return [type_convert(value, target)] if value is String else []
		TYPE_COLOR:
			if value is String:
				return [Color.from_string(value, Color())] if Color.html_is_valid(value) else []
			return _math(value, target)
		TYPE_OBJECT:
			return _object(value)
		TYPE_ARRAY, TYPE_DICTIONARY:
			return [value] if typeof(value) == target else []
	if value is Array and target >= TYPE_PACKED_BYTE_ARRAY:
		return [type_convert(value, target)]
	return _math(value, target)


static func _object(value: Variant) -> Array:
	if value == null:
		return [null]
	if value is Dictionary and value.has("resource"):
		var resource: Resource = load(str(value["resource"]))
		return [resource] if resource != null else []
	if value is Dictionary and value.has("path"):
		var tree: SceneTree = Engine.get_main_loop() as SceneTree
		var node: Node = tree.root.get_node_or_null(NodePath(str(value["path"])))
		return [node] if node != null else []
	return []


## Vectors {x, y[, z[, w]]}, colors {r, g, b[, a]}, rects/AABB {position, size},
## Transform2D {x, y, origin}, Basis {x, y, z}, Transform3D {basis, origin}, Plane
## {normal, d}, Quaternion {x, y, z, w}.
static func _math(value: Variant, target: int) -> Array:
	if not value is Dictionary:
		return []
	var d: Dictionary = value
	match target:
		TYPE_VECTOR2, TYPE_VECTOR2I:
			return _numbers(
				d, ["x", "y"], func(n: Array) -> Variant: return Vector2(n[0], n[1]), target
			)
		TYPE_VECTOR3, TYPE_VECTOR3I:
			return _numbers(
				d,
				["x", "y", "z"],
				func(n: Array) -> Variant: return Vector3(n[0], n[1], n[2]),
				target
			)
		TYPE_VECTOR4, TYPE_VECTOR4I:
			return _numbers(
				d,
				["x", "y", "z", "w"],
				func(n: Array) -> Variant: return Vector4(n[0], n[1], n[2], n[3]),
				target
			)
		TYPE_QUATERNION:
			return _numbers(
				d,
				["x", "y", "z", "w"],
				func(n: Array) -> Variant: return Quaternion(n[0], n[1], n[2], n[3]),
				target
			)
		TYPE_COLOR:
			if not d.has("a"):
				d = d.merged({"a": 1.0})
			return _numbers(
				d,
				["r", "g", "b", "a"],
				func(n: Array) -> Variant: return Color(n[0], n[1], n[2], n[3]),
				target
			)
		TYPE_PLANE:
			var normal: Array = _math(d.get("normal"), TYPE_VECTOR3)
			if normal.is_empty() or not (d.get("d") is float or d.get("d") is int):
				return []
			return [Plane(normal[0], float(d["d"]))]
	return _composite(d, target)


static func _composite(d: Dictionary, target: int) -> Array:
	var parts: Dictionary = {
		TYPE_RECT2: [["position", "size"], TYPE_VECTOR2],
		TYPE_RECT2I: [["position", "size"], TYPE_VECTOR2I],
		TYPE_AABB: [["position", "size"], TYPE_VECTOR3],
		TYPE_TRANSFORM2D: [["x", "y", "origin"], TYPE_VECTOR2],
		TYPE_BASIS: [["x", "y", "z"], TYPE_VECTOR3],
	}
	if target == TYPE_TRANSFORM3D:
		var basis: Array = _composite(d.get("basis", {}) as Dictionary, TYPE_BASIS)
		var origin: Array = _math(d.get("origin"), TYPE_VECTOR3)
		if basis.is_empty() or origin.is_empty():
			return []
		return [Transform3D(basis[0], origin[0])]
	if not parts.has(target):
		return []
	var got: Array = []
	for key: String in parts[target][0]:
		var part: Array = _math(d.get(key), parts[target][1])
		if part.is_empty():
			return []
		got.append(part[0])
	match target:
		TYPE_RECT2, TYPE_RECT2I:
			return [type_convert(Rect2(got[0], got[1]), target)]
		TYPE_AABB:
			return [AABB(got[0], got[1])]
		TYPE_TRANSFORM2D:
			return [Transform2D(got[0], got[1], got[2])]
	return [Basis(got[0], got[1], got[2])]


static func _numbers(d: Dictionary, keys: Array, build: Callable, target: int) -> Array:
	var numbers: Array = []
	for key: String in keys:
		var n: Variant = d.get(key)
		if not (n is float or n is int):
			return []
		numbers.append(float(n))
	return [type_convert(build.call(numbers), target)]


## A Variant as typed JSON: `{"type": "Vector2", "value": {"x": 1.0, "y": 2.0}}`.
static func typed(value: Variant) -> Dictionary:
	return {"type": type_string(typeof(value)), "value": plain(value)}


## A Variant as JSON with structure, the shapes /game/node answers (messages.decode_value).
static func plain(value: Variant) -> Variant:
	match typeof(value):
		TYPE_NIL, TYPE_BOOL, TYPE_INT, TYPE_STRING:
			return value
		TYPE_FLOAT:
			return value if is_finite(value) else str(value)
		TYPE_STRING_NAME, TYPE_NODE_PATH:
			return str(value)
		TYPE_VECTOR2, TYPE_VECTOR2I:
			return {"x": value.x, "y": value.y}
		TYPE_VECTOR3, TYPE_VECTOR3I:
			return {"x": value.x, "y": value.y, "z": value.z}
		TYPE_VECTOR4, TYPE_VECTOR4I, TYPE_QUATERNION:
			return {"x": value.x, "y": value.y, "z": value.z, "w": value.w}
		TYPE_COLOR:
			return {"r": value.r, "g": value.g, "b": value.b, "a": value.a}
		TYPE_RECT2, TYPE_RECT2I, TYPE_AABB:
			return {"position": plain(value.position), "size": plain(value.size)}
		TYPE_TRANSFORM2D:
			return {"x": plain(value.x), "y": plain(value.y), "origin": plain(value.origin)}
		TYPE_BASIS:
			return {"x": plain(value.x), "y": plain(value.y), "z": plain(value.z)}
		TYPE_TRANSFORM3D:
			return {"basis": plain(value.basis), "origin": plain(value.origin)}
		TYPE_PLANE:
			return {"normal": plain(value.normal), "d": value.d}
		TYPE_OBJECT:
			return _plain_object(value)
		TYPE_DICTIONARY:
			var out: Dictionary = {}
			for key: Variant in value:
				out[str(key)] = plain(value[key])
			return out
	if typeof(value) == TYPE_ARRAY or typeof(value) >= TYPE_PACKED_BYTE_ARRAY:
		var items: Array = []
		for item: Variant in value:
			items.append(plain(item))
		return items
	return str(value)


static func _plain_object(value: Object) -> Variant:
	if value == null or not is_instance_valid(value):
		return null
	if value is Resource and not (value as Resource).resource_path.is_empty():
		return {"resource": (value as Resource).resource_path}
	var shown: Dictionary = {
		"object": true, "class": value.get_class(), "id": str(value.get_instance_id())
	}
	if value is Node and (value as Node).is_inside_tree():
		shown["path"] = str((value as Node).get_path())
	return shown


# -- input -------------------------------------------------------------------------------


func _run_input(id: String, request: Dictionary) -> void:
	var steps: Array = request.get("steps", [])
	var first_frame: int = Engine.get_process_frames()
	var started: int = Time.get_ticks_msec()
	for index: int in steps.size():
		var step: Dictionary = steps[index]
		var problem: String = await _run_step(step, "steps[%d]" % index)
		if not problem.is_empty():
			var field: String = problem.get_slice("|", 0)
			_reply(id, _failure("invalid_field", field, problem.get_slice("|", 1)))
			return
	# One frame more: the last event has reached _input, _unhandled_input and the
	# Input singleton (the game handles injected events at its next frame's start).
	await get_tree().process_frame
	var result: Dictionary = {
		"steps": steps.size(),
		"frames": Engine.get_process_frames() - first_frame,
		"ms": Time.get_ticks_msec() - started,
	}
	_reply(id, {"ok": true, "result": result})


## Runs one step; "" when done, else "field|what is wrong".
func _run_step(step: Dictionary, where: String) -> String:
	var kind: String = str(step.get("type", ""))
	if kind == "wait":
		await _wait(step)
		return ""
	if kind == "text":
		_type_text(str(step.get("text", "")))
		return ""
	var press: Callable = _event_maker(kind, step)
	if not press.is_valid():
		return _bad_step(kind, step, where)
	if kind == "mouse_motion":
		Input.parse_input_event(press.call(true))
		return ""
	if step.get("pressed") != null:
		Input.parse_input_event(press.call(bool(step["pressed"])))
		return ""
	# Neither pressed nor released: a press held for `frames` frames, then released.
	Input.parse_input_event(press.call(true))
	for _frame: int in maxi(int(step.get("frames", 1)), 1):
		await get_tree().process_frame
	Input.parse_input_event(press.call(false))
	return ""


func _bad_step(kind: String, step: Dictionary, where: String) -> String:
	match kind:
		"action":
			var known: Array = InputMap.get_actions().filter(
				func(a: StringName) -> bool: return not str(a).begins_with("ui_")
			)
			return (
				"%s.action|the game has no input action '%s' (its own: %s; and Godot's ui_*)"
				% [
					where,
					step.get("action"),
					", ".join(known.map(func(a: StringName) -> String: return str(a)))
				]
			)
		"key":
			return (
				"%s.key|no key is called '%s' (Godot's names: A, Enter, Left, Space, Ctrl+S...)"
				% [where, step.get("key")]
			)
	return "%s.type|unknown step type '%s'" % [where, kind]


func _wait(step: Dictionary) -> void:
	var frames: int = int(step.get("frames", 0))
	for _frame: int in frames:
		await get_tree().process_frame
	var ms: int = int(step.get("ms", 0))
	if ms > 0:
		await get_tree().create_timer(ms / 1000.0, true, false, true).timeout


## A function pressed -> the step's event (a new object each time: Godot warns when one
## event object is parsed twice in a frame); an invalid Callable for a bad step.
func _event_maker(kind: String, step: Dictionary) -> Callable:
	var maker: Callable = Callable()
	match kind:
		"action":
			var action: StringName = StringName(str(step.get("action", "")))
			var strength: float = float(step.get("strength", 1.0))
			if InputMap.has_action(action):
				maker = func(pressed: bool) -> InputEvent:
					return _action_event(action, pressed, strength)
		"key":
			var code: int = OS.find_keycode_from_string(str(step.get("key", "")))
			if code != KEY_NONE:
				maker = func(pressed: bool) -> InputEvent: return _key_event(code, pressed, step)
		"mouse_button", "wheel":
			var button: int = _BUTTONS.get(str(step.get("button", "left")), MOUSE_BUTTON_LEFT)
			if kind == "wheel":
				button = _WHEEL.get(str(step.get("direction", "down")), MOUSE_BUTTON_WHEEL_DOWN)
			maker = func(pressed: bool) -> InputEvent: return _button_event(button, pressed, step)
		"mouse_motion":
			maker = func(_pressed: bool) -> InputEvent: return _motion_event(step)
	return maker


static func _action_event(action: StringName, pressed: bool, strength: float) -> InputEvent:
	var event := InputEventAction.new()
	event.action = action
	event.pressed = pressed
	event.strength = strength if pressed else 0.0
	return event


static func _key_event(code: int, pressed: bool, step: Dictionary) -> InputEvent:
	var event := InputEventKey.new()
	var key: Key = (code & KEY_CODE_MASK) as Key
	if bool(step.get("physical", false)):
		event.physical_keycode = key
	else:
		event.keycode = key
		event.physical_keycode = key
		event.key_label = key
	event.pressed = pressed
	event.echo = bool(step.get("echo", false)) and pressed
	event.shift_pressed = bool(step.get("shift", false)) or bool(code & KEY_MASK_SHIFT)
	event.ctrl_pressed = bool(step.get("ctrl", false)) or bool(code & KEY_MASK_CTRL)
	event.alt_pressed = bool(step.get("alt", false)) or bool(code & KEY_MASK_ALT)
	event.meta_pressed = bool(step.get("meta", false)) or bool(code & KEY_MASK_META)
	var text: String = OS.get_keycode_string(key)
	var plain_key: bool = (
		event.keycode != KEY_NONE and not (event.ctrl_pressed or event.alt_pressed)
	)
	if pressed and plain_key and text.length() == 1:
		event.unicode = (text if event.shift_pressed else text.to_lower()).unicode_at(0)
	return event


## Each character as a key press and release carrying its unicode, as a keyboard types it.
func _type_text(text: String) -> void:
	for character: String in text:
		var code: int = OS.find_keycode_from_string(character.to_upper())
		if character == " ":
			code = KEY_SPACE
		for pressed: bool in [true, false]:
			var event := InputEventKey.new()
			event.keycode = (code & KEY_CODE_MASK) as Key
			event.physical_keycode = event.keycode
			event.key_label = event.keycode
			event.pressed = pressed
			event.shift_pressed = character != character.to_lower()
			if pressed:
				event.unicode = character.unicode_at(0)
			Input.parse_input_event(event)


func _button_event(button: int, pressed: bool, step: Dictionary) -> InputEvent:
	var event := InputEventMouseButton.new()
	_place(event, step)
	event.button_index = button as MouseButton
	event.pressed = pressed
	event.factor = float(step.get("amount", 1.0))
	event.double_click = bool(step.get("double_click", false)) and pressed
	var bit: int = 1 << (button - 1)
	if button < MOUSE_BUTTON_WHEEL_UP or button > MOUSE_BUTTON_WHEEL_RIGHT:
		_mouse_mask = (_mouse_mask | bit) if pressed else (_mouse_mask & ~bit)
	event.button_mask = _mouse_mask as MouseButtonMask
	return event


func _motion_event(step: Dictionary) -> InputEvent:
	var event := InputEventMouseMotion.new()
	var before: Vector2 = _mouse_at
	_place(event, step)
	var relative: Variant = step.get("relative")
	event.relative = (
		Vector2(relative["x"], relative["y"]) if relative is Dictionary else _mouse_at - before
	)
	event.button_mask = _mouse_mask as MouseButtonMask
	return event


## The event at the step's `position` (the game window's pixels), else where the mouse is.
func _place(event: InputEventMouse, step: Dictionary) -> void:
	var at: Variant = step.get("position")
	if at is Dictionary:
		_mouse_at = Vector2(float(at["x"]), float(at["y"]))
	event.position = _mouse_at
	event.global_position = _mouse_at
