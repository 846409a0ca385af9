@tool
extends EditorDebuggerPlugin
## Hot-reloads scripts in games running under the editor's debugger. Sends Godot's own
## `reload_scripts` debugger message (no `capture:` prefix, so the game's RemoteDebugger
## handles it in its core capture); the game re-reads those files from disk and reloads
## them on its next idle frame, keeping the state of live instances.

## The instance plugin.gd registered with the editor, for editor_actions.gd; null when the
## plugin is not running.
static var active: EditorDebuggerPlugin = null


## Asks every game connected to the debugger to reload `paths` (res:// scripts). True if
## at least one game got the message.
func reload_in_games(paths: PackedStringArray) -> bool:
	var sent: bool = false
	for session: EditorDebuggerSession in get_sessions():
		if session.is_active():
			session.send_message("reload_scripts", Array(paths))
			sent = true
	return sent


## True while a game is connected to the editor's debugger.
func has_running_game() -> bool:
	for session: EditorDebuggerSession in get_sessions():
		if session.is_active():
			return true
	return false


## The bridge's game-side hands (game/agent_hands.gd) answer with `gdbridge:*` messages;
## the bridge reads them through Godot's DAP (`godot/custom_data`). Taken here only so
## that the editor does not warn "Unknown message" about each one.
func _has_capture(capture: String) -> bool:
	return capture == "gdbridge"


func _capture(_message: String, _data: Array, _session_id: int) -> bool:
	return true
