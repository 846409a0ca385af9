@tool
extends RefCounted
## Where the bridge listens and what it runs: environment first, then project settings
## under `godot_debug_connection/`, then defaults. Read on the main thread.

const SETTING_PREFIX: String = "godot_debug_connection/"

var bridge_port: int = 8080
var max_clients: int = 100
var lsp_port: int = 6005
var dap_port: int = 6006
var python: String = "python3"
var project_dir: String = ""
## Seconds an agent connection may sit idle (no request under way) before it is closed.
var idle_timeout: int = 60
## When not empty, agents must send `Authorization: Bearer <token>` (checked by the sidecar).
var token: String = ""


## Fills every field from the running editor's environment and settings.
func load_from_editor() -> void:
	project_dir = ProjectSettings.globalize_path("res://").trim_suffix("/")
	bridge_port = _int_setting("GODOT_BRIDGE_PORT", "port", 8080)
	max_clients = _int_setting("GODOT_BRIDGE_MAX_CLIENTS", "max_clients", 100)
	var es: EditorSettings = EditorInterface.get_editor_settings()
	lsp_port = _int_setting(
		"GODOT_LSP_PORT", "lsp_port", _editor_int(es, "network/language_server/remote_port", 6005)
	)
	dap_port = _int_setting(
		"GODOT_DAP_PORT", "dap_port", _editor_int(es, "network/debug_adapter/remote_port", 6006)
	)
	python = _find_python(project_dir)
	idle_timeout = maxi(1, _int_setting("GODOT_BRIDGE_IDLE_TIMEOUT", "idle_timeout", 60))
	token = OS.get_environment("GODOT_BRIDGE_TOKEN").strip_edges()
	if token.is_empty():
		token = str(ProjectSettings.get_setting(SETTING_PREFIX + "token", "")).strip_edges()


static func _int_setting(env: String, key: String, fallback: int) -> int:
	var raw: String = OS.get_environment(env).strip_edges()
	if raw.is_valid_int():
		return raw.to_int()
	var value: Variant = ProjectSettings.get_setting(SETTING_PREFIX + key, fallback)
	return int(value) if (value is int or value is float) else fallback


static func _editor_int(es: EditorSettings, key: String, fallback: int) -> int:
	if es != null and es.has_setting(key):
		return int(es.get_setting(key))
	return fallback


static func _find_python(project_dir: String) -> String:
	var from_env: String = OS.get_environment("GODOT_BRIDGE_PYTHON").strip_edges()
	if not from_env.is_empty():
		return from_env
	var from_setting: String = str(ProjectSettings.get_setting(SETTING_PREFIX + "python", ""))
	if not from_setting.strip_edges().is_empty():
		return from_setting.strip_edges()
	var venv: String = project_dir.path_join(".venv/bin/python")
	if FileAccess.file_exists(venv):
		return venv
	return "python3"
