@tool
extends RefCounted
## Where the bridge listens and what it runs: environment first, then project settings
## under `godot_debug_connection/`, then defaults. Read on the main thread.
##
## Godot's LSP and DAP ports are the ones this editor really serves: its own `--lsp-port` /
## `--dap-port` command-line flags first (they override the editor settings inside Godot, and
## the editor settings are shared by every editor of the machine, so they may name another
## editor's servers), then GODOT_LSP_PORT / GODOT_DAP_PORT or the project settings, then the
## editor settings.

const SETTING_PREFIX: String = "godot_debug_connection/"


## A port of one of Godot's servers and where it came from.
class ServicePort:
	var port: int
	var source: String

	func _init(p_port: int, p_source: String):
		port = p_port
		source = p_source


var bridge_port: int = 8080
var max_clients: int = 100
var lsp_port: int = 6005
var dap_port: int = 6006
## Where each of the two came from ("flag", "environment", "project setting", "editor
## setting", "default"), for the log line that names them.
var lsp_port_source: String = "default"
var dap_port_source: String = "default"
## The remote-debug port this editor's games connect back to: 0 picks a free one for the
## session (several editors on one machine then never clash), -1 leaves the editor setting.
var debug_port: int = 0
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
	var args: PackedStringArray = godot_command_line()
	var lsp: ServicePort = _service_port(
		args,
		["GODOT_BRIDGE_LSP_PORT", "--lsp-port", "GODOT_LSP_PORT", "lsp_port"],
		es,
		"network/language_server/remote_port"
	)
	lsp_port = lsp.port
	lsp_port_source = lsp.source
	var dap: ServicePort = _service_port(
		args,
		["GODOT_BRIDGE_DAP_PORT", "--dap-port", "GODOT_DAP_PORT", "dap_port"],
		es,
		"network/debug_adapter/remote_port"
	)
	dap_port = dap.port
	dap_port_source = dap.source
	debug_port = _int_setting("GODOT_BRIDGE_DEBUG_PORT", "debug_port", 0)
	python = _find_python(project_dir)
	idle_timeout = maxi(1, _int_setting("GODOT_BRIDGE_IDLE_TIMEOUT", "idle_timeout", 60))
	token = OS.get_environment("GODOT_BRIDGE_TOKEN").strip_edges()
	if token.is_empty():
		token = str(ProjectSettings.get_setting(SETTING_PREFIX + "token", "")).strip_edges()


## The editor's whole command line. [method OS.get_cmdline_args] leaves out every argument Godot
## itself took (`--path`, `--lsp-port`, ...), so it is read from the system: /proc on Linux,
## `ps` on macOS and the BSDs, the process's CIM record on Windows.
static func godot_command_line() -> PackedStringArray:
	var pid: int = OS.get_process_id()
	var raw: PackedByteArray = _read_proc_file("/proc/%d/cmdline" % pid)
	if not raw.is_empty():
		# NUL-separated, exactly as given: split by hand, a String stops at the first NUL.
		var out: PackedStringArray = []
		var start: int = 0
		for i: int in raw.size():
			if raw[i] == 0:
				out.append(raw.slice(start, i).get_string_from_utf8())
				start = i + 1
		return out
	var text: Array = []
	var code: int = -1
	if OS.get_name() == "Windows":
		var query: String = (
			"(Get-CimInstance Win32_Process -Filter 'ProcessId=%d').CommandLine" % pid
		)
		code = OS.execute("powershell", ["-NoProfile", "-Command", query], text)
	else:
		code = OS.execute("ps", ["-ww", "-o", "args=", "-p", str(pid)], text)
	if code != 0 or text.is_empty():
		return OS.get_cmdline_args()
	# Only numbers are read from it, so splitting at blanks is enough.
	return str(text[0]).replace('"', " ").strip_edges().split(" ", false)


## The bytes of a /proc file, or none where there is no such file. Such files report a length
## of 0, so FileAccess.get_file_as_bytes() reads nothing: read until a read comes back empty.
static func _read_proc_file(path: String) -> PackedByteArray:
	var out: PackedByteArray = PackedByteArray()
	var file: FileAccess = FileAccess.open(path, FileAccess.READ)
	if file == null:
		return out
	while true:
		var chunk: PackedByteArray = file.get_buffer(4096)
		if chunk.is_empty():
			return out
		out.append_array(chunk)
	return out


## The port of one of Godot's servers and its source. `names` is [relay variable, command-line flag,
## environment variable, project setting key]: the relay variable first (a relay or proxy
## between the sidecar and Godot, which tests put there, is named explicitly), then the flag,
## then the environment variable, then the project setting, then editor setting `editor_key`,
## then Godot's default.
static func _service_port(
	args: PackedStringArray, names: PackedStringArray, es: EditorSettings, editor_key: String
) -> ServicePort:
	var flag: String = names[1]
	var env: String = names[2]
	var key: String = names[3]
	var relay: String = OS.get_environment(names[0]).strip_edges()
	if relay.is_valid_int():
		return ServicePort.new(relay.to_int(), "relay")
	var from_flag: int = cmdline_port(args, flag)
	if from_flag > 0:
		return ServicePort.new(from_flag, "flag")
	var raw: String = OS.get_environment(env).strip_edges()
	if raw.is_valid_int():
		return ServicePort.new(raw.to_int(), "environment")
	if ProjectSettings.has_setting(SETTING_PREFIX + key):
		var value: Variant = ProjectSettings.get_setting(SETTING_PREFIX + key)
		if value is int or value is float:
			return ServicePort.new(int(value), "project setting")
	var fallback: int = 6005 if flag == "--lsp-port" else 6006
	if es != null and es.has_setting(editor_key):
		return ServicePort.new(int(es.get_setting(editor_key)), "editor setting")
	return ServicePort.new(fallback, "default")


## The port given to Godot as `flag` on its command line (`--lsp-port 123`; the last one
## wins, as in Godot), or -1. Godot 4.6 ignores the form `--lsp-port=123` (its servers stay on
## the editor setting's port), so that form names no port here either: it gets a warning.
## Arguments after `--` or `++` are the user's (the game's), not Godot's: not looked at.
static func cmdline_port(args: PackedStringArray, flag: String) -> int:
	var found: int = -1
	for i: int in args.size():
		if args[i] == "--" or args[i] == "++":
			break
		if args[i].begins_with(flag + "="):
			push_warning(
				(
					"GodotBridge: Godot ignores '%s'; write '%s %s' to move its server"
					% [args[i], flag, args[i].substr(flag.length() + 1)]
				)
			)
		if args[i] != flag or i + 1 >= args.size():
			continue
		var value: String = args[i + 1].strip_edges()
		if value.is_valid_int() and value.to_int() > 0 and value.to_int() < 65536:
			found = value.to_int()
	return found


static func _int_setting(env: String, key: String, fallback: int) -> int:
	var raw: String = OS.get_environment(env).strip_edges()
	if raw.is_valid_int():
		return raw.to_int()
	var value: Variant = ProjectSettings.get_setting(SETTING_PREFIX + key, fallback)
	return int(value) if (value is int or value is float) else fallback


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
