@tool
extends RefCounted
## Gives this editor a remote-debug port of its own for the session. Godot's games connect
## back to the editor setting `network/debug/remote_port` (6007), which every editor of the
## machine shares; two editors launching games at once then contend for it. The port is set
## in memory only: [method release] puts the previous value back before the editor quits,
## and Godot writes only settings that differ from what they were loaded with, so the
## settings file ends as it started (docs/RELIABILITY.md).

const KEY: String = "network/debug/remote_port"
const HOST_KEY: String = "network/debug/remote_host"

## The port this editor's games connect back to, or -1 when the editor setting was left alone.
var port: int = -1

var _previous: Variant = null


## Sets the editor setting to `wanted`, or to a free port when `wanted` is 0; leaves it alone
## when `wanted` is negative. Returns the port set, or -1.
func claim(wanted: int) -> int:
	var es: EditorSettings = EditorInterface.get_editor_settings()
	if wanted < 0 or es == null or not es.has_setting(KEY):
		return -1
	var chosen: int = wanted if wanted > 0 else _free_port(str(es.get_setting(HOST_KEY)))
	if chosen <= 0:
		return -1
	_previous = es.get_setting(KEY)
	es.set_setting(KEY, chosen)
	port = chosen
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
