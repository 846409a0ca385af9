@tool
extends RefCounted
## The run arguments of a headless editor's games, for this editor session only (set in
## memory, never saved into the user's project.godot). A headless editor can only launch a
## headless game: `--headless` is added at start. When the sidecar gives the games an X
## display (its own Xvfb, or the one GODOT_BRIDGE_GAME_DISPLAY names), `use_display` sets
## DISPLAY in the editor's own environment, which the games it starts inherit, and has them
## render with the Compatibility renderer (Mesa's software OpenGL) instead. `restore` puts
## the user's own arguments and DISPLAY back.

const RUN_ARGS_KEY: String = "editor/run/main_run_args"
const HEADLESS_ARGS: String = "--headless"
## Mesa's software OpenGL (llvmpipe) runs the Compatibility renderer.
const RENDERER_ARGS: String = "--rendering-driver opengl3 --rendering-method gl_compatibility"
## A virtual display has no vsync: uncapped, a software-rendered game takes a whole core
## (~100 frames a second measured); 60 is what a monitor's vsync would give it. Nobody hears
## an invisible game, and a machine without a sound card would log an audio error each
## launch among the game's own errors: the Dummy audio driver, as a headless game has.
const RENDERED_ARGS: String = RENDERER_ARGS + " --max-fps 60 --audio-driver Dummy"

## The user's own run arguments while ours are set, else null.
static var _saved_run_args: Variant = null
## DISPLAY as it was before `use_display` set it ("" when unset), else null.
static var _saved_display: Variant = null
## The display `use_display` gave the games ("" when none).
static var _display: String = ""


## The display the games were given (""), so a restarted sidecar keeps using it.
static func current() -> String:
	return _display


## Adds `--headless` to the games' run arguments when the editor itself is headless.
static func run_headless_if_editor_is() -> void:
	if DisplayServer.get_name() != "headless" or _saved_run_args != null:
		return
	var current: String = str(ProjectSettings.get_setting(RUN_ARGS_KEY, ""))
	if current.contains(HEADLESS_ARGS):
		return  # the user's own choice: left alone
	_saved_run_args = current
	ProjectSettings.set_setting(RUN_ARGS_KEY, (current + " " + HEADLESS_ARGS).strip_edges())


## Has the games render on X display `display` (":90"); says whether it could.
static func use_display(display: String) -> Dictionary:
	if _saved_run_args == null:
		var why: String = (
			"the editor has a display"
			if DisplayServer.get_name() != "headless"
			else "the project's own run arguments ask for --headless"
		)
		return {"applied": false, "reason": why}
	if _saved_display == null:
		_saved_display = OS.get_environment("DISPLAY")
	OS.set_environment("DISPLAY", display)
	_display = display
	var args: String = (str(_saved_run_args) + " " + RENDERED_ARGS).strip_edges()
	ProjectSettings.set_setting(RUN_ARGS_KEY, args)
	return {"applied": true, "display": display, "run_args": args}


## The user's run arguments and DISPLAY as they were before the bridge changed them.
static func restore() -> void:
	_display = ""
	if _saved_run_args != null:
		ProjectSettings.set_setting(RUN_ARGS_KEY, _saved_run_args)
		_saved_run_args = null
	if _saved_display != null:
		if str(_saved_display).is_empty():
			OS.unset_environment("DISPLAY")
		else:
			OS.set_environment("DISPLAY", str(_saved_display))
		_saved_display = null
