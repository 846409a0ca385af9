extends Node
## Runtime errors on request, for the bridge's /game/errors tests: run the game with
## `--demo-error` and every second it pushes one error and one warning, each saying when
## (Unix time) it was pushed, so a reader can measure how late it arrives.

const FLAG: String = "--demo-error"
const PERIOD_S: float = 1.0

var _elapsed: float = 0.0
var _pushed: int = 0
var _enabled: bool = false


func _ready() -> void:
	var args: PackedStringArray = OS.get_cmdline_args() + OS.get_cmdline_user_args()
	_enabled = FLAG in args
	set_process(_enabled)


func _process(delta: float) -> void:
	_elapsed += delta
	if _elapsed < PERIOD_S:
		return
	_elapsed = 0.0
	_pushed += 1
	_push_both()


func _push_both() -> void:
	var now: float = Time.get_unix_time_from_system()
	push_error("demo-error #%d at %.3f" % [_pushed, now])
	push_warning("demo-warning #%d at %.3f" % [_pushed, now])
