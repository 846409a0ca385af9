@tool
extends EditorPlugin
## Starts the agent bridge when the plugin is enabled and stops it when disabled; registers
## the debugger plugin that hot-reloads scripts in a running game; gives the editor a
## remote-debug port of its own for the session.

const BridgeSettings := preload("res://addons/godot_debug_connection/bridge_settings.gd")
const GodotBridge := preload("res://addons/godot_debug_connection/godot_bridge.gd")
const GameReloader := preload("res://addons/godot_debug_connection/game_reloader.gd")
const DebugPort := preload("res://addons/godot_debug_connection/debug_port.gd")
const GameDisplay := preload("res://addons/godot_debug_connection/game_display.gd")

var _bridge: GodotBridge
var _game_reloader: GameReloader
var _debug_port: DebugPort = DebugPort.new()


func _enter_tree() -> void:
	GameDisplay.run_headless_if_editor_is()
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
	GameDisplay.restore()
