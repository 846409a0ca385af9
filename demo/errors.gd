extends Node
## Runtime errors on request, for the bridge's /game/errors tests. Run the game with
## `--demo-error` and every second it pushes one error and one warning, each saying when
## (Unix time) it was pushed, so a reader can measure how late it arrives. With
## `--demo-script-error` it makes one real script error after a second: under the
## debugger that stops the game (reason "exception") until it is continued.
## `--demo-error-period=S` pushes every S seconds instead (the bench's error latency figure).
## With `--demo-flood` it prints 10,000 numbered lines (`flood 00001` ...) spread evenly over
## one second, a second after it starts, then, a second and a half later (past Godot's
## one-second output window), `demo-flood: done` with how long the printing took.

const FLAG: String = "--demo-error"
const SCRIPT_ERROR_FLAG: String = "--demo-script-error"
const PERIOD_FLAG: String = "--demo-error-period="
const FLOOD_FLAG: String = "--demo-flood"
const FLOOD_LINES: int = 10000
const FLOOD_USEC: int = 1000000
const FLOOD_DELAY_USEC: int = 1000000  # the debugger session settles first
const FLOOD_DONE_DELAY_USEC: int = 1500000

var _period_s: float = 1.0

var _elapsed: float = 0.0
var _pushed: int = 0
var _pushing: bool = false
var _script_error_due: bool = false
var _flooding: bool = false
var _flood_start_usec: int = 0
var _flood_printed: int = 0
var _flood_end_usec: int = 0


func _ready() -> void:
	var args: PackedStringArray = OS.get_cmdline_args() + OS.get_cmdline_user_args()
	_pushing = FLAG in args
	_script_error_due = SCRIPT_ERROR_FLAG in args
	for arg: String in args:
		if arg.begins_with(PERIOD_FLAG):
			_pushing = true
			_period_s = maxf(arg.trim_prefix(PERIOD_FLAG).to_float(), 0.01)
	_flooding = FLOOD_FLAG in args
	_flood_start_usec = Time.get_ticks_usec() + FLOOD_DELAY_USEC
	set_process(_pushing or _script_error_due or _flooding)


func _process(delta: float) -> void:
	if _flooding:
		_flood()
	_elapsed += delta
	if _elapsed < _period_s:
		return
	_elapsed = 0.0
	if _script_error_due:
		_script_error_due = false
		_call_on_null()
	if _pushing:
		_pushed += 1
		_push_both()


func _push_both() -> void:
	var now: float = Time.get_unix_time_from_system()
	push_error("demo-error #%d at %.3f" % [_pushed, now])
	push_warning("demo-warning #%d at %.3f" % [_pushed, now])


func _call_on_null() -> void:
	var missing: Node = null
	print("demo: script error next, name %s" % missing.get_name())


## Prints the lines due by now: the count follows the clock, whatever the frame rate.
func _flood() -> void:
	var now: int = Time.get_ticks_usec()
	if now < _flood_start_usec:
		return
	if _flood_printed < FLOOD_LINES:
		@warning_ignore("integer_division")
		var due: int = mini(FLOOD_LINES, (now - _flood_start_usec) * FLOOD_LINES / FLOOD_USEC + 1)
		while _flood_printed < due:
			_flood_printed += 1
			print("flood %05d" % _flood_printed)
		if _flood_printed == FLOOD_LINES:
			_flood_end_usec = Time.get_ticks_usec()
	elif now - _flood_end_usec >= FLOOD_DONE_DELAY_USEC:
		_flooding = false
		var took: float = (_flood_end_usec - _flood_start_usec) / 1000000.0
		print("demo-flood: done, %d lines in %.3f s" % [FLOOD_LINES, took])
