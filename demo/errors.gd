extends Node
## Runtime errors on request, for the bridge's /game/errors tests. Run the game with
## `--demo-error` and every second it pushes one error and one warning, each saying when
## (Unix time) it was pushed, so a reader can measure how late it arrives. With
## `--demo-script-error` it makes one real script error after a second: under the
## debugger that stops the game (reason "exception") until it is continued.

const FLAG: String = "--demo-error"
const SCRIPT_ERROR_FLAG: String = "--demo-script-error"
const PERIOD_S: float = 1.0

var _elapsed: float = 0.0
var _pushed: int = 0
var _pushing: bool = false
var _script_error_due: bool = false


func _ready() -> void:
	var args: PackedStringArray = OS.get_cmdline_args() + OS.get_cmdline_user_args()
	_pushing = FLAG in args
	_script_error_due = SCRIPT_ERROR_FLAG in args
	set_process(_pushing or _script_error_due)


func _process(delta: float) -> void:
	_elapsed += delta
	if _elapsed < PERIOD_S:
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
