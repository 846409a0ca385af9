@tool
extends RefCounted
## The bridge: agent connections on one side, the sidecar link on the other, and a byte
## pump on its own thread between them, so latency does not wait for an editor frame.

const AgentServer := preload("res://addons/godot_debug_connection/agent_server.gd")
const SidecarLink := preload("res://addons/godot_debug_connection/sidecar_link.gd")
const EditorActions := preload("res://addons/godot_debug_connection/editor_actions.gd")
const BridgeSettings := preload("res://addons/godot_debug_connection/bridge_settings.gd")

## How the pump waits (docs/BENCHMARKS.md has the measurements behind these numbers). A sleep
## costs ~0.1 ms however short it is asked to be, and every wake-up costs CPU, so the pump
## - spins (no sleep) for SPIN_USEC after bytes moved, and for ANSWER_SPIN_USEC while an agent
##   waits for the sidecar's answer: a request's round trip then pays no sleep at all. Not
##   with more than SPIN_MAX_WAITING answers due: under load the sidecar needs the CPU more;
## - then polls with sleeps from MIN_IDLE_USEC, doubling after HOT_USEC up to MAX_IDLE_USEC;
## - after WARM_USEC without traffic it parks: it sleeps LOOK_MSEC at a time (LONG_LOOK_MSEC
##   once nothing moved for LONG_QUIET_USEC) and only looks whether an agent connected or sent
##   bytes, the sidecar sent bytes or a sidecar respawn is due (two syscalls), and runs a full
##   pump pass every HOUSEKEEPING_MSEC for the agents' timeouts. GDScript has no `select`, so
##   something must look; a look from the editor's main thread (every frame, or on a Timer)
##   cost more idle CPU than this, and a thread of its own does not stall while the editor
##   imports or shows a dialog;
## - never parks while the SYNs a burst of connections lost to Godot's listen backlog are due
##   back: around those moments it looks at the listen socket alone, every ~0.2 ms
##   (agent_server.gd).
const SPIN_USEC: int = 400
const ANSWER_SPIN_USEC: int = 3000
const SPIN_MAX_WAITING: int = 2
const MIN_IDLE_USEC: int = 50
const MAX_IDLE_USEC: int = 2000
const HOT_USEC: int = 50000
const WARM_USEC: int = 1000000
const LOOK_MSEC: int = 50
const LONG_QUIET_USEC: int = 10000000
const LONG_LOOK_MSEC: int = 200
const HOUSEKEEPING_MSEC: int = 1000
## While resent connections are due (agent_server.gd), the pump watches the listen socket
## this long between passes.
const RESEND_LOOK_USEC: int = 2000

var _settings: BridgeSettings
var _agents: AgentServer = AgentServer.new()
var _link: SidecarLink
## Made once the bridge is listening: it scans the project for the scripts' baseline.
var _actions: EditorActions = null
var _thread: Thread = null
var _stopping: bool = false
var _running: bool = false
## client id -> true while an agent's request went to the sidecar and no answer came yet
var _in_flight: Dictionary = {}
## editor actions handed to the main thread whose results were not sent yet
var _actions_pending: int = 0
# Reused by every pump iteration instead of new arrays.
var _gone: Array[int] = []
var _accepted: Array[int] = []
var _got: Dictionary = {}
var _on_frame: Callable = _handle_frame


func _init(settings: BridgeSettings) -> void:
	_settings = settings
	_link = SidecarLink.new(settings)
	_link.link_up.connect(_on_link_up)
	_link.link_down.connect(_on_link_down)
	_agents.max_clients = settings.max_clients
	_agents.idle_timeout_msec = settings.idle_timeout * 1000


## Listens for agents, spawns the sidecar and starts the pump thread.
func start() -> void:
	var err: Error = _agents.listen(_settings.bridge_port)
	if err != OK:
		push_error(
			(
				(
					"GodotBridge: cannot listen on 127.0.0.1:%d (%s); set GODOT_BRIDGE_PORT "
					+ "or the project setting godot_debug_connection/port"
				)
				% [_settings.bridge_port, error_string(err)]
			)
		)
		return
	err = _link.start()
	if err != OK:
		push_error("GodotBridge: cannot open the sidecar link (%s)" % error_string(err))
		_agents.stop()
		return
	_actions = EditorActions.new()
	_running = true
	_thread = Thread.new()
	_thread.start(_pump)
	print(
		(
			"GodotBridge HTTP server listening on 127.0.0.1:%d (max %d clients)"
			% [_agents.get_port(), _settings.max_clients]
		)
	)
	print(
		(
			"GodotBridge: Godot's language server on port %d (%s), debug adapter on port %d (%s)"
			% [
				_settings.lsp_port,
				_settings.lsp_port_source,
				_settings.dap_port,
				_settings.dap_port_source,
			]
		)
	)


## Stops the pump, closes every agent and stops the sidecar.
func stop() -> void:
	if not _running:
		return
	_stopping = true
	_thread.wait_to_finish()
	_thread = null
	_agents.stop()
	_link.stop()
	_actions = null
	_running = false
	print("GodotBridge HTTP server stopped")


func _pump() -> void:
	var idle_usec: int = MIN_IDLE_USEC
	var last_busy: int = Time.get_ticks_usec()
	while not _stopping:
		if _pump_once():
			idle_usec = MIN_IDLE_USEC
			last_busy = Time.get_ticks_usec()
			continue
		var quiet: int = Time.get_ticks_usec() - last_busy
		var waiting: int = _in_flight.size()
		if waiting <= SPIN_MAX_WAITING:
			if quiet < SPIN_USEC or (quiet < ANSWER_SPIN_USEC and waiting > 0):
				continue
		if _agents.expects_resent_connections():
			# A burst overflowed the listen backlog and its dropped SYNs are due back now.
			_agents.wait_for_connection(RESEND_LOOK_USEC)
			continue
		if quiet >= WARM_USEC and _can_park():
			_park(LOOK_MSEC if quiet < LONG_QUIET_USEC else LONG_LOOK_MSEC)
			idle_usec = MIN_IDLE_USEC
			continue
		OS.delay_usec(idle_usec)
		if quiet > HOT_USEC:
			idle_usec = mini(idle_usec * 2, MAX_IDLE_USEC)


func _pump_once() -> bool:
	var busy: bool = false
	_accepted.clear()
	_gone.clear()
	_agents.accept_new(_accepted, _gone)
	# Agents found closed while making room: already dropped; the sidecar learns it before
	# it hears of the newcomers.
	for id: int in _gone:
		busy = true
		_in_flight.erase(id)
		_link.send({"op": "close", "id": id, "reason": "agent closed"})
	for id: int in _accepted:
		busy = true
		_link.send({"op": "open", "id": id, "peer": _agents.peer_name(id)})
	_gone.clear()
	_got.clear()
	_agents.read_all(_got, _gone)
	for id: int in _got:
		busy = true
		_forward_to_sidecar(id, _got[id])
	busy = _link.poll(_on_frame) or busy
	if _actions_pending > 0:
		for result: Dictionary in _actions.take_results():
			busy = true
			_actions_pending -= 1
			_link.send(result)
	busy = _agents.flush(_gone) or busy
	for id: int in _gone:
		_in_flight.erase(id)
		if _agents.drop(id):
			_link.send({"op": "close", "id": id, "reason": "agent closed"})
	return busy


## The pump may park when nothing is owed to anyone: nothing is left to write to the
## sidecar or to an agent, and no editor action is running.
func _can_park() -> bool:
	return _actions_pending == 0 and _link.is_quiet() and _agents.is_quiet()


## Sleeps until something waits for the pump, or HOUSEKEEPING_MSEC passed, or the bridge stops;
## looks every `look_msec`.
func _park(look_msec: int) -> void:
	var until: int = Time.get_ticks_msec() + HOUSEKEEPING_MSEC
	while not _stopping and Time.get_ticks_msec() < until:
		OS.delay_msec(look_msec)
		if _agents.has_input() or _link.has_input() or _link.is_due():
			return
		if _agents.expects_resent_connections():
			return


func _forward_to_sidecar(id: int, data: PackedByteArray) -> void:
	if _link.is_up():
		_in_flight[id] = true
		_link.send_data(id, data)
	else:
		_agents.refuse(
			id,
			"503 Service Unavailable",
			"sidecar_unavailable",
			"the bridge's sidecar is starting or restarting; retry in a second"
		)


func _handle_frame(frame: Dictionary) -> void:
	match str(frame.get("op", "")):
		"data":
			_in_flight.erase(frame["id"])
			_agents.send(frame["id"], frame["data"])
		"close":
			_agents.close_after_flush(frame["id"])
		"action":
			_actions.request(frame["rid"], str(frame["name"]), frame.get("args", {}))
			_actions_pending += 1
		"log":
			_print_sidecar_log(str(frame.get("level", "info")), str(frame.get("msg", "")))
		_:
			push_warning("GodotBridge: unexpected frame from the sidecar: %s" % frame.get("op"))


## Answers the sidecar's hello: the limits, and the agents already connected (after a
## respawn). `version` is not checked by either side yet; it stays for the wire's sake.
func _on_link_up() -> void:
	var hello: Dictionary = {
		"op": "hello",
		"version": 1,
		"max_clients": _settings.max_clients,
		"clients": _agents.describe(),
	}
	_link.send(hello)


## Requests the lost sidecar was answering will get no answer: refuse them.
func _on_link_down(_reason: String) -> void:
	for id: int in _in_flight:
		_agents.refuse(
			id,
			"503 Service Unavailable",
			"sidecar_restarting",
			"the bridge's sidecar stopped while answering; retry in a second"
		)
	_in_flight.clear()


func _print_sidecar_log(level: String, msg: String) -> void:
	match level:
		"error":
			push_error("GodotBridge sidecar: " + msg)
		"warning":
			push_warning("GodotBridge sidecar: " + msg)
		_:
			print("GodotBridge sidecar: " + msg)
