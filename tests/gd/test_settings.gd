extends "res://tests/gd/helpers.gd"
## Tests of how addons/godot_debug_connection/bridge_settings.gd finds the ports Godot serves.
##
## godot --headless --path . --lsp-port <L> --dap-port <D>
##     --script res://tests/gd/test_settings.gd -- <L> <D>
## Last line "gdscript: N passed, M failed".

const BridgeSettings = preload("res://addons/godot_debug_connection/bridge_settings.gd")


func _init() -> void:
	run_tests()
	finish()


func _test_flag_with_a_separate_value() -> void:
	var args: PackedStringArray = ["godot", "--editor", "--lsp-port", "16505", "--path", "p"]
	check(BridgeSettings.cmdline_port(args, "--lsp-port") == 16505, "--lsp-port 16505")
	check(BridgeSettings.cmdline_port(args, "--dap-port") == -1, "no --dap-port")


func _test_the_last_flag_wins_as_in_godot() -> void:
	var args: PackedStringArray = ["--dap-port", "1", "--dap-port", "16506"]
	check(BridgeSettings.cmdline_port(args, "--dap-port") == 16506, "last --dap-port")


func _test_no_value_or_a_bad_one_names_no_port() -> void:
	check(BridgeSettings.cmdline_port(["--lsp-port"], "--lsp-port") == -1, "missing value")
	check(BridgeSettings.cmdline_port(["--lsp-port", "x"], "--lsp-port") == -1, "not a number")
	check(BridgeSettings.cmdline_port(["--lsp-port", "70000"], "--lsp-port") == -1, "too big")
	check(BridgeSettings.cmdline_port(["--lsp-port", "0"], "--lsp-port") == -1, "zero")


func _test_user_arguments_after_a_separator_are_not_godots() -> void:
	# After `--` or `++` the arguments are the game's or the user's; Godot serves no port there.
	for sep: String in ["--", "++"]:
		var args: PackedStringArray = ["--lsp-port", "16505", sep, "--lsp-port", "17000"]
		check(BridgeSettings.cmdline_port(args, "--lsp-port") == 16505, "stops at " + sep)
		check(BridgeSettings.cmdline_port([sep, "--dap-port", "1"], "--dap-port") == -1, sep)


func _test_the_equals_form_godot_ignores_names_no_port() -> void:
	# Godot 4.6 serves the editor setting's port for `--lsp-port=N`; so must the bridge.
	check(BridgeSettings.cmdline_port(["--lsp-port=16505"], "--lsp-port") == -1, "--lsp-port=N")


func _test_the_running_godots_own_command_line_holds_its_flags() -> void:
	# OS.get_cmdline_args() has dropped them; the system's record of the process has not.
	var user: PackedStringArray = OS.get_cmdline_user_args()
	check(user.size() == 2, "the test passes the two ports after --")
	if user.size() != 2:
		return
	var line: PackedStringArray = BridgeSettings.godot_command_line()
	check(not OS.get_cmdline_args().has("--lsp-port"), "get_cmdline_args drops --lsp-port")
	check(BridgeSettings.cmdline_port(line, "--lsp-port") == user[0].to_int(), "--lsp-port")
	check(BridgeSettings.cmdline_port(line, "--dap-port") == user[1].to_int(), "--dap-port")


func _test_proc_files_are_read_whole_on_linux() -> void:
	# /proc files report length 0; reading them must not depend on it (issue 11: without
	# this the command line came from `ps`, a package a fresh machine may not have).
	if OS.get_name() != "Linux":
		return
	var raw: PackedByteArray = BridgeSettings._read_proc_file(
		"/proc/%d/cmdline" % OS.get_process_id()
	)
	check(raw.size() > 0, "/proc/<pid>/cmdline read")
	check(raw.get_string_from_utf8().length() > 0, "it holds the executable's path")
