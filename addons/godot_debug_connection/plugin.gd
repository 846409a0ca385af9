@tool
extends EditorPlugin
## Starts the agent bridge when the plugin is enabled and stops it when disabled; registers
## the debugger plugin that hot-reloads scripts in a running game; gives the editor a
## remote-debug port of its own for the session.

const BridgeSettings := preload("res://addons/godot_debug_connection/bridge_settings.gd")
const GodotBridge := preload("res://addons/godot_debug_connection/godot_bridge.gd")
const GameReloader := preload("res://addons/godot_debug_connection/game_reloader.gd")
const DebugPort := preload("res://addons/godot_debug_connection/debug_port.gd")

## Names the X display the games of a headless editor render on (see below).
const GAME_DISPLAY_VARIABLE := "GODOT_BRIDGE_GAME_DISPLAY"
const RENDERED_GAME_ARGS := "--rendering-driver opengl3 --rendering-method gl_compatibility"

var _bridge: GodotBridge
var _game_reloader: GameReloader
var _debug_port: DebugPort = DebugPort.new()
var _saved_run_args: Variant = null


func _enter_tree() -> void:
	_run_game_headless_if_editor_is()
	var settings: BridgeSettings = BridgeSettings.new()
	settings.load_from_editor()
	if _debug_port.claim(settings.debug_port) > 0:
		print("GodotBridge: games of this editor debug on port %d" % _debug_port.port)
	_game_reloader = GameReloader.new()
	add_debugger_plugin(_game_reloader)
	GameReloader.active = _game_reloader
	_bridge = GodotBridge.new(settings)
	_bridge.start()


func _exit_tree() -> void:
	if _bridge != null:
		_bridge.stop()
		_bridge = null
	if _game_reloader != null:
		GameReloader.active = null
		remove_debugger_plugin(_game_reloader)
		_game_reloader = null
	_debug_port.release()
	_restore_run_args()


## A headless editor can only launch a headless game; set that for this session only,
## never saved into the user's project.godot. When the environment variable
## GODOT_BRIDGE_GAME_DISPLAY names an X display (a virtual one, an Xvfb), the game renders
## there instead: DISPLAY is set in the editor's own environment, which the games it starts
## inherit, and the game runs with the Compatibility renderer (Mesa's software OpenGL).
func _run_game_headless_if_editor_is() -> void:
	if DisplayServer.get_name() != "headless":
		return
	var key: String = "editor/run/main_run_args"
	var current: String = str(ProjectSettings.get_setting(key, ""))
	if current.contains("--headless"):
		return
	var game_args: String = "--headless"
	var display: String = OS.get_environment(GAME_DISPLAY_VARIABLE)
	if not display.is_empty():
		OS.set_environment("DISPLAY", display)
		game_args = RENDERED_GAME_ARGS
	_saved_run_args = current
	ProjectSettings.set_setting(key, (current + " " + game_args).strip_edges())


func _restore_run_args() -> void:
	if _saved_run_args != null:
		ProjectSettings.set_setting("editor/run/main_run_args", _saved_run_args)
		_saved_run_args = null
