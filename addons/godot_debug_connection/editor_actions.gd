@tool
extends Object
## What the sidecar may ask of the editor. Requests arrive on the pump thread and run on
## the main thread (editor APIs are not thread-safe); results are queued back.

var _mutex: Mutex = Mutex.new()
var _results: Array[Dictionary] = []


## Schedules action `name` on the main thread; its result is queued for `take_results`.
func request(rid: int, name: String, args: Dictionary) -> void:
	_run.call_deferred(rid, name, args)


## Results finished since the last call, as `action_result` frames.
func take_results() -> Array[Dictionary]:
	_mutex.lock()
	var out: Array[Dictionary] = _results
	_results = []
	_mutex.unlock()
	return out


func _run(rid: int, name: String, args: Dictionary) -> void:
	var frame: Dictionary = {"op": "action_result", "rid": rid, "ok": true, "error": ""}
	match name:
		"ping":
			frame["result"] = {"pong": true}
		"editor_info":
			frame["result"] = _editor_info()
		_:
			frame["ok"] = false
			frame["result"] = null
			frame["error"] = "unknown editor action '%s' (args %s)" % [name, JSON.stringify(args)]
	_mutex.lock()
	_results.append(frame)
	_mutex.unlock()


func _editor_info() -> Dictionary:
	return {
		"godot_version": Engine.get_version_info().get("string", ""),
		"project": ProjectSettings.globalize_path("res://"),
		"headless": DisplayServer.get_name() == "headless",
	}
