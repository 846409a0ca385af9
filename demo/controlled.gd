extends Node2D
## A node the agents steer with injected input (issue 14): it moves with the ui_right and
## ui_left actions and records what the game saw of the input, so tests can read it back
## through /game/node and /game/evaluate.

## Pixels a second while an arrow action is held.
@export var speed: float = 120.0
## Frames in which Input.is_action_pressed("ui_right") was true.
@export var right_frames: int = 0
## The last strength of ui_right that _process saw.
@export var right_strength: float = 0.0
## Events seen by _input, as short texts ("action ui_right pressed", "key A pressed"...).
@export var seen_input: PackedStringArray = PackedStringArray()
## The same for _unhandled_input.
@export var seen_unhandled: PackedStringArray = PackedStringArray()
## The characters typed (the unicode of key presses).
@export var typed: String = ""
## Where the last mouse event was, in the viewport's pixels.
@export var mouse_at: Vector2 = Vector2.ZERO
## Mouse button presses seen (left, right, ...), wheel notches included.
@export var clicks: int = 0
## Wheel notches seen (down counts up, up counts down).
@export var wheel: int = 0
## Frames in which Input.is_key_pressed(KEY_A) was true.
@export var a_frames: int = 0


func _process(delta: float) -> void:
	var axis: float = Input.get_axis("ui_left", "ui_right")
	position.x += axis * speed * delta
	if Input.is_action_pressed("ui_right"):
		right_frames += 1
		right_strength = Input.get_action_strength("ui_right")
	if Input.is_key_pressed(KEY_A):
		a_frames += 1


func _input(event: InputEvent) -> void:
	seen_input.append(describe(event))
	var key: InputEventKey = event as InputEventKey
	if key != null and key.pressed and key.unicode > 0:
		typed += char(key.unicode)
	var mouse: InputEventMouse = event as InputEventMouse
	if mouse != null:
		mouse_at = mouse.position
	var button: InputEventMouseButton = event as InputEventMouseButton
	if button != null and button.pressed:
		clicks += 1
		if button.button_index == MOUSE_BUTTON_WHEEL_DOWN:
			wheel += 1
		elif button.button_index == MOUSE_BUTTON_WHEEL_UP:
			wheel -= 1


func _unhandled_input(event: InputEvent) -> void:
	seen_unhandled.append(describe(event))


## A short text for an event: its kind, what it names and whether it is a press.
static func describe(event: InputEvent) -> String:
	var state: String = "pressed" if event.is_pressed() else "released"
	if event is InputEventAction:
		return "action %s %s" % [(event as InputEventAction).action, state]
	if event is InputEventKey:
		var key: InputEventKey = event
		var named: String = OS.get_keycode_string(key.keycode)
		if key.keycode == KEY_NONE:
			named = "physical " + OS.get_keycode_string(key.physical_keycode)
		return "key %s %s" % [named, state]
	if event is InputEventMouseButton:
		return "button %d %s" % [(event as InputEventMouseButton).button_index, state]
	if event is InputEventMouseMotion:
		return "motion"
	return event.get_class()


## Forgets what it saw (tests call it through /game/evaluate between checks).
func reset() -> bool:
	right_frames = 0
	right_strength = 0.0
	a_frames = 0
	seen_input.clear()
	seen_unhandled.clear()
	typed = ""
	clicks = 0
	wheel = 0
	return true
