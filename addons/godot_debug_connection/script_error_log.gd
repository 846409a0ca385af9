@tool
extends Logger
## Catches the errors Godot reports while editor_actions.gd reloads a script, so the
## answer can carry Godot's own message ("Parse Error: ..."). Needs Godot 4.5+ (Logger);
## editor_actions.gd loads it only when the class exists. Godot calls a logger from any
## thread, hence the mutex; it records nothing unless `begin` was called.

var _mutex: Mutex = Mutex.new()
var _capturing: bool = false
var _errors: Array[Dictionary] = []


## Starts recording errors (warnings are left out).
func begin() -> void:
	_mutex.lock()
	_capturing = true
	_errors = []
	_mutex.unlock()


## Stops recording; the errors seen since `begin`, as {file, line, message, script}.
func end() -> Array[Dictionary]:
	_mutex.lock()
	_capturing = false
	var out: Array[Dictionary] = _errors
	_errors = []
	_mutex.unlock()
	return out


func _log_error(
	_function: String,
	file: String,
	line: int,
	code: String,
	rationale: String,
	_editor_notify: bool,
	error_type: int,
	_script_backtraces: Array[ScriptBacktrace]
) -> void:
	if error_type == ERROR_TYPE_WARNING or error_type == ERROR_TYPE_SHADER:
		return
	_mutex.lock()
	if _capturing:
		var entry: Dictionary = {"file": file, "line": line, "message": code}
		if not rationale.is_empty():
			entry["message"] = rationale
		entry["script"] = error_type == ERROR_TYPE_SCRIPT
		_errors.append(entry)
	_mutex.unlock()


func _log_message(_message: String, _error: bool) -> void:
	pass
