@tool
extends RefCounted
## The bridge: agent connections on one side, the sidecar link on the other, and a byte
## pump on its own thread between them, so latency does not wait for an editor frame.

const AgentServer := preload("res://addons/godot_debug_connection/agent_server.gd")
const SidecarLink := preload("res://addons/godot_debug_connection/sidecar_link.gd")
const EditorActions := preload("res://addons/godot_debug_connection/editor_actions.gd")

## Idle back-off of the pump: polls every MIN_IDLE_USEC while traffic is recent (an answer
## is usually under way), then sleeps longer and longer up to MAX_IDLE_USEC when quiet.
const MIN_IDLE_USEC: int = 50
const MAX_IDLE_USEC: int = 2000
const HOT_USEC: int = 50000

var _settings: RefCounted
var _agents: AgentServer = AgentServer.new()
var _link: SidecarLink
var _actions: EditorActions = EditorActions.new()
var _thread: Thread = null
var _stopping: bool = false
var _running: bool = false
## client id -> true while an agent's request went to the sidecar and no answer came yet
var _in_flight: Dictionary = {}


func _init(settings: RefCounted) -> void:
	_settings = settings
	_link = SidecarLink.new(settings)
	_agents.max_clients = settings.max_clients


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
	_running = true
	_thread = Thread.new()
	_thread.start(_pump)
	print(
		(
			"GodotBridge HTTP server listening on 127.0.0.1:%d (max %d clients)"
			% [_agents.get_port(), _settings.max_clients]
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
	_actions.free()
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
		OS.delay_usec(idle_usec)
		if Time.get_ticks_usec() - last_busy > HOT_USEC:
			idle_usec = mini(idle_usec * 2, MAX_IDLE_USEC)


func _pump_once() -> bool:
	var busy: bool = false
	for id: int in _agents.accept_new():
		busy = true
		_link.send({"op": "open", "id": id, "peer": _agents.peer_name(id)})
	var gone: Array[int] = []
	var got: Dictionary = _agents.read_all(gone)
	for id: int in got:
		busy = true
		_forward_to_sidecar(id, got[id])
	var frames: Array = []
	busy = _link.poll(frames) or busy
	for frame: Dictionary in frames:
		_handle_frame(frame)
	for result: Dictionary in _actions.take_results():
		busy = true
		_link.send(result)
	busy = _agents.flush(gone) or busy
	for id: int in gone:
		_in_flight.erase(id)
		if _agents.drop(id):
			_link.send({"op": "close", "id": id, "reason": "agent closed"})
	return busy


func _forward_to_sidecar(id: int, data: PackedByteArray) -> void:
	if _link.is_up():
		_in_flight[id] = true
		_link.send({"op": "data", "id": id, "data": data})
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
		"log":
			_print_sidecar_log(str(frame.get("level", "info")), str(frame.get("msg", "")))
		"_up":
			(
				_link
				. send(
					{
						"op": "hello",
						"version": 1,
						"max_clients": _settings.max_clients,
						"clients": _agents.describe(),
					}
				)
			)
		"_down":
			_refuse_in_flight()
		_:
			push_warning("GodotBridge: unexpected frame from the sidecar: %s" % frame.get("op"))


func _refuse_in_flight() -> void:
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
