@tool
extends RefCounted
## Gives this editor a remote-debug port of its own for the session. Godot's games connect
## back to the editor setting `network/debug/remote_port` (6007), which every editor of the
## machine shares; two editors launching games at once then contend for it.
##
## The port is set in memory only. The settings file is written by `EditorSettings::save()`:
## when the editor quits normally, and whenever something saves the editor settings during
## the session (the Editor Settings dialog, for one); it holds every setting that differs from
## its default (docs/GODOT_FINDINGS.md). [method release] puts the user's value back before the
## normal quit's save. A save during the session writes the session port into the machine's
## file, and should the editor then end without its quit path (a crash, SIGKILL), it would stay
## there; so [method claim] remembers the port it set and the user's value in this project's
## `.godot/` (RECORD), and at the next start, when the setting still holds that claimed port,
## puts the user's value back first.

const KEY: String = "network/debug/remote_port"
const HOST_KEY: String = "network/debug/remote_host"
## {"claimed": the session port, "previous": the user's value}; removed on release.
const RECORD: String = "res://.godot/godot_debug_connection/debug_port"

## The port this editor's games connect back to, or -1 when the editor setting was left alone.
var port: int = -1

var _previous: Variant = null


## Sets the editor setting to `wanted`, or to a free port when `wanted` is 0; leaves it alone
## when `wanted` is negative. Returns the port set, or -1. First undoes what a session that
## ended without releasing left in the setting.
func claim(wanted: int) -> int:
	var es: EditorSettings = EditorInterface.get_editor_settings()
	if es == null or not es.has_setting(KEY):
		return -1
	recover(es, RECORD)
	if wanted < 0:
		return -1
	var chosen: int = wanted if wanted > 0 else _free_port(str(es.get_setting(HOST_KEY)))
	if chosen <= 0:
		return -1
	_previous = es.get_setting(KEY)
	es.set_setting(KEY, chosen)
	port = chosen
	_remember(RECORD, chosen, _previous)
	return port


## Puts the editor setting back as it was before [method claim].
func release() -> void:
	if _previous == null:
		return
	var es: EditorSettings = EditorInterface.get_editor_settings()
	if es != null:
		es.set_setting(KEY, _previous)
	_previous = null
	port = -1
	DirAccess.remove_absolute(ProjectSettings.globalize_path(RECORD))


## When `record` names a port a session claimed and `settings` still holds it there (that
## session ended without [method release] after the settings were saved), puts back the value
## the record remembers. Returns true when it did. The record is removed either way.
static func recover(settings: EditorSettings, record: String) -> bool:
	var path: String = ProjectSettings.globalize_path(record)
	if not FileAccess.file_exists(path):
		return false
	var saved: Variant = JSON.parse_string(FileAccess.get_file_as_string(path))
	DirAccess.remove_absolute(path)
	if not (saved is Dictionary and saved.has("claimed") and saved.has("previous")):
		return false
	var claimed: Variant = saved["claimed"]
	var previous: Variant = saved["previous"]
	if not (claimed is float or claimed is int) or not (previous is float or previous is int):
		return false
	if int(settings.get_setting(KEY)) != int(claimed) or int(claimed) == int(previous):
		return false
	settings.set_setting(KEY, int(previous))
	print(
		(
			(
				"GodotBridge: %s still held port %d of a session that ended without quitting; put "
				+ "back %d"
			)
			% [KEY, int(claimed), int(previous)]
		)
	)
	return true


## Writes the record [method recover] reads.
static func _remember(record: String, claimed: int, previous: Variant) -> void:
	var path: String = ProjectSettings.globalize_path(record)
	DirAccess.make_dir_recursive_absolute(path.get_base_dir())
	var file: FileAccess = FileAccess.open(path, FileAccess.WRITE)
	if file == null:
		push_warning("GodotBridge: cannot write %s (%s)" % [path, FileAccess.get_open_error()])
		return
	file.store_string(JSON.stringify({"claimed": claimed, "previous": int(previous)}))
	file.close()


## A port nobody listens on now, on the address Godot's debug server binds: the system's
## choice for port 0. (Should another process take it before a game is launched, Godot moves
## to the next port by itself and tells the game the one it bound.)
static func _free_port(host: String) -> int:
	var server: TCPServer = TCPServer.new()
	var bind: String = host if host.is_valid_ip_address() else "127.0.0.1"
	if server.listen(0, bind) != OK:
		return -1
	var found: int = server.get_local_port()
	server.stop()
	return found
