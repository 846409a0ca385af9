@tool
extends RefCounted
## What the sidecar may ask of the editor. Requests arrive on the pump thread and run on
## the main thread (editor APIs are not thread-safe); results are queued back. Reference
## counted, so whoever made it cannot leave it behind; a request still deferred when the last
## reference goes is dropped with it.

const GameReloader := preload("res://addons/godot_debug_connection/game_reloader.gd")
const GameDisplay := preload("res://addons/godot_debug_connection/game_display.gd")
## Loaded only where Godot has the Logger class (4.5+).
const SCRIPT_ERROR_LOG_PATH: String = "res://addons/godot_debug_connection/script_error_log.gd"
## The bridge's own scripts are never reloaded: they are the code doing the reloading.
const OWN_DIR: String = "res://addons/godot_debug_connection"
const OWN_SCRIPTS_MESSAGE: String = "the bridge's own scripts are not reloaded while it runs"
const NOT_A_SCRIPT_MESSAGE: String = "not a GDScript file: rescanned in the editor, not reloaded"

var _mutex: Mutex = Mutex.new()
var _results: Array[Dictionary] = []
## res:// path of every .gd file in the project -> its modification time (seconds) at the
## last scan.
var _mtimes: Dictionary = {}
## md5 of the files whose modification time was within a second of the last scan: a later
## write in that same second keeps the time, so those are compared by content.
var _recent_md5: Dictionary = {}
## script_error_log.gd instance while registered with the OS (Godot 4.5+), else null.
var _error_log: RefCounted = null


func _init() -> void:
	_find_changes([], [])


func _notification(what: int) -> void:
	if what == NOTIFICATION_PREDELETE and _error_log != null:
		OS.call("remove_logger", _error_log)
		_error_log = null


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
		"reload_scripts":
			var paths: Variant = args.get("paths")
			if paths == null or paths is Array:
				frame["result"] = _reload_scripts(paths)
			else:
				frame["ok"] = false
				frame["result"] = null
				frame["error"] = "reload_scripts: 'paths' must be an array of res:// paths"
		"game_display":
			var display: Variant = args.get("display")
			if display is String and not str(display).is_empty():
				frame["result"] = GameDisplay.use_display(display)
			else:
				frame["ok"] = false
				frame["result"] = null
				frame["error"] = "game_display: 'display' must name an X display (':90')"
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
		"game_display": GameDisplay.current(),
	}


## Rescans the editor filesystem, reloads the changed scripts (`paths`, or every .gd file
## whose modification time changed since the last reload) in the editor, then in the game
## running under the debugger, if any. A script that does not parse is reported in
## `errors` and left out of the game's reload.
func _reload_scripts(paths: Variant) -> Dictionary:
	var errors: Array[Dictionary] = []
	var changed: Array[String] = []
	var removed: Array[String] = []
	var rescan: Array[String] = []
	if paths == null:
		_find_changes(changed, removed)
	else:
		_check_paths(paths, changed, removed, rescan, errors)
	var fs: EditorFileSystem = EditorInterface.get_resource_filesystem()
	for path: String in changed + removed + rescan:
		fs.update_file(path)
	fs.scan_sources()
	var reloaded: Array[String] = []
	for path: String in changed:
		var problems: Array[Dictionary] = _reload_in_editor(path)
		if problems.is_empty():
			reloaded.append(path)
		else:
			errors.append_array(problems)
	var reloader: GameReloader = GameReloader.active as GameReloader
	var game_running: bool = reloader != null and reloader.has_running_game()
	var game_reloaded: bool = false
	if game_running and not reloaded.is_empty():
		game_reloaded = reloader.reload_in_games(PackedStringArray(reloaded))
	return {
		"rescanned": true,
		"scripts": reloaded,
		"removed": removed,
		"game_running": game_running,
		"game_reloaded": game_reloaded,
		"errors": errors,
	}


## Sorts the paths an agent named into scripts to reload, files gone and other files to
## rescan only; anything unusable goes to `errors`.
func _check_paths(
	paths: Array,
	changed: Array[String],
	removed: Array[String],
	rescan: Array[String],
	errors: Array[Dictionary]
) -> void:
	for raw: Variant in paths:
		var path: String = str(raw)
		if not raw is String or not path.begins_with("res://"):
			errors.append({"path": path, "message": "not a res:// path"})
		elif path == OWN_DIR or path.begins_with(OWN_DIR + "/"):
			errors.append({"path": path, "message": OWN_SCRIPTS_MESSAGE})
		elif not FileAccess.file_exists(path):
			if _mtimes.has(path):
				_mtimes.erase(path)
				_recent_md5.erase(path)
				removed.append(path)
			else:
				errors.append({"path": path, "message": "no such file"})
		elif path.get_extension() != "gd":
			rescan.append(path)
			errors.append({"path": path, "message": NOT_A_SCRIPT_MESSAGE})
		elif not changed.has(path):
			changed.append(path)
			_remember(path, FileAccess.get_modified_time(path), _now_sec())


## Fills `changed` with the .gd files that are new or changed since the last scan and
## `removed` with those gone, and makes this scan the new reference.
func _find_changes(changed: Array[String], removed: Array[String]) -> void:
	var now_sec: int = _now_sec()
	var seen: Dictionary = {}
	_scan_dir("res://", seen)
	for path: String in seen:
		if not _mtimes.has(path) or _mtimes[path] != seen[path]:
			changed.append(path)
		elif _recent_md5.has(path) and FileAccess.get_md5(path) != _recent_md5[path]:
			changed.append(path)
	for path: String in _mtimes:
		if not seen.has(path):
			removed.append(path)
	_mtimes = {}
	_recent_md5 = {}
	for path: String in seen:
		_remember(path, seen[path], now_sec)
	changed.sort()
	removed.sort()


func _remember(path: String, mtime: int, now_sec: int) -> void:
	_mtimes[path] = mtime
	if mtime >= now_sec - 1:
		_recent_md5[path] = FileAccess.get_md5(path)
	else:
		_recent_md5.erase(path)


## Every .gd file under `dir_path` -> its modification time, skipping hidden directories
## (.godot among them), directories with a .gdignore file and the bridge's own.
func _scan_dir(dir_path: String, out: Dictionary) -> void:
	var dir: DirAccess = DirAccess.open(dir_path)
	if dir == null:
		return
	dir.include_hidden = false
	dir.include_navigational = false
	dir.list_dir_begin()
	var name: String = dir.get_next()
	while not name.is_empty():
		var path: String = dir_path.path_join(name)
		if name.begins_with("."):
			pass
		elif dir.current_is_dir():
			if path != OWN_DIR and not FileAccess.file_exists(path.path_join(".gdignore")):
				_scan_dir(path, out)
		elif name.get_extension() == "gd":
			out[path] = FileAccess.get_modified_time(path)
		name = dir.get_next()
	dir.list_dir_end()


## Makes the editor's copy of `path` match the file: its source is read from disk and the
## script recompiled, keeping live instances (tool scripts). Loading a script that failed
## to parse still gives a Script object, so the error comes from `reload`. Returns the
## errors, empty when it worked.
func _reload_in_editor(path: String) -> Array[Dictionary]:
	var text: String = FileAccess.get_file_as_string(path)
	var open_error: Error = FileAccess.get_open_error()
	if open_error != OK:
		return [{"path": path, "message": "cannot read: %s" % error_string(open_error)}]
	var script: Script = ResourceLoader.load(path, "", ResourceLoader.CACHE_MODE_REUSE) as Script
	if script == null:
		return [{"path": path, "message": "Godot could not load it as a script"}]
	_start_error_log()
	script.source_code = text
	var err: Error = script.reload(true)
	var logged: Array[Dictionary] = _stop_error_log()
	if err == OK:
		return []
	var out: Array[Dictionary] = []
	for entry: Dictionary in logged:
		if not entry["script"] and entry["file"] != path:
			continue  # another thread's trouble, logged meanwhile
		var item: Dictionary = {"path": path, "message": entry["message"]}
		if entry["line"] > 0:
			item["line"] = entry["line"]
		if entry["file"] != path:
			item["file"] = entry["file"]
		if not out.has(item):
			out.append(item)
	if out.is_empty():
		var why: String = "Godot could not compile it (%s)" % error_string(err)
		out.append({"path": path, "message": why + "; see /lsp/diagnostics for details"})
	return out


func _start_error_log() -> void:
	if _error_log == null and ClassDB.class_exists(&"Logger"):
		_error_log = load(SCRIPT_ERROR_LOG_PATH).new()
		OS.call("add_logger", _error_log)
	if _error_log != null:
		_error_log.call("begin")


func _stop_error_log() -> Array[Dictionary]:
	var out: Array[Dictionary] = []
	if _error_log != null:
		out.assign(_error_log.call("end"))
	return out


func _now_sec() -> int:
	return int(Time.get_unix_time_from_system())
