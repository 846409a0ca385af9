@tool
extends RefCounted
## The bridge: agent connections on one side, the sidecar link on the other, and a byte
## pump on its own thread between them, so latency does not wait for an editor frame.

const AgentServer := preload("res://addons/godot_debug_connection/agent_server.gd")
const SidecarLink := preload("res://addons/godot_debug_connection/sidecar_link.gd")
const EditorActions := preload("res://addons/godot_debug_connection/editor_actions.gd")

## How the pump waits (docs/BENCHMARKS.md has the measurements behind these numbers). A sleep
## costs ~0.1 ms however short it is asked to be, and every wake-up costs CPU, so the pump
## - spins (no sleep) for SPIN_USEC after bytes moved, and for ANSWER_SPIN_USEC while an agent
##   waits for the sidecar's answer: a request's round trip then pays no sleep at all;
## - then polls with sleeps from MIN_IDLE_USEC, doubling after HOT_USEC up to MAX_IDLE_USEC;
## - after WARM_USEC without traffic it parks on a semaphore. The main thread, which wakes up
##   every editor frame anyway, looks at the sockets cheaply and wakes the pump when bytes
##   or connections wait; a ticker thread wakes it every TICK_MSEC for the agents' timeouts
##   and in case the main loop is stalled (importing, a modal dialog).
const SPIN_USEC: int = 400
const ANSWER_SPIN_USEC: int = 3000
const MIN_IDLE_USEC: int = 50
const MAX_IDLE_USEC: int = 2000
const HOT_USEC: int = 50000
const WARM_USEC: int = 1000000
const TICK_MSEC: int = 200

var _settings: RefCounted
var _agents: AgentServer = AgentServer.new()
var _link: SidecarLink
var _actions: EditorActions = EditorActions.new()
var _thread: Thread = null
var _ticker: Thread = null
var _stopping: bool = false
var _running: bool = false
## client id -> true while an agent's request went to the sidecar and no answer came yet
var _in_flight: Dictionary = {}
## editor actions handed to the main thread whose results were not sent yet
var _actions_pending: int = 0
## True while the pump waits on `_wake`; then the sockets are the main thread's to look at.
var _parked: bool = false
var _park_mutex: Mutex = Mutex.new()
var _wake: Semaphore = Semaphore.new()
# Reused by every pump iteration instead of new arrays.
var _gone: Array[int] = []
var _frames: Array = []


func _init(settings: RefCounted) -> void:
	_settings = settings
	_link = SidecarLink.new(settings)
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
	_running = true
	_thread = Thread.new()
	_thread.start(_pump)
	_ticker = Thread.new()
	_ticker.start(_tick)
	var tree: SceneTree = Engine.get_main_loop() as SceneTree
	if tree != null:
		tree.process_frame.connect(_on_frame)
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
	var tree: SceneTree = Engine.get_main_loop() as SceneTree
	if tree != null and tree.process_frame.is_connected(_on_frame):
		tree.process_frame.disconnect(_on_frame)
	_stopping = true
	_unpark()
	_thread.wait_to_finish()
	_thread = null
	_ticker.wait_to_finish()
	_ticker = null
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
		var quiet: int = Time.get_ticks_usec() - last_busy
		if quiet < SPIN_USEC or (quiet < ANSWER_SPIN_USEC and not _in_flight.is_empty()):
			continue
		if quiet >= WARM_USEC and _can_park():
			_park()
			idle_usec = MIN_IDLE_USEC
			continue
		OS.delay_usec(idle_usec)
		if quiet > HOT_USEC:
			idle_usec = mini(idle_usec * 2, MAX_IDLE_USEC)


func _pump_once() -> bool:
	var busy: bool = false
	for id: int in _agents.accept_new():
		busy = true
		_link.send({"op": "open", "id": id, "peer": _agents.peer_name(id)})
	_gone.clear()
	var got: Dictionary = _agents.read_all(_gone)
	for id: int in got:
		busy = true
		_forward_to_sidecar(id, got[id])
	_frames.clear()
	busy = _link.poll(_frames) or busy
	for frame: Dictionary in _frames:
		_handle_frame(frame)
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


## The pump may sleep until woken when nothing is owed to anyone: the link is up (or not
## started), every agent's answer is written and no editor action is running.
func _can_park() -> bool:
	return _actions_pending == 0 and _link.is_quiet() and _agents.is_quiet()


func _park() -> void:
	_park_mutex.lock()
	var park: bool = not _stopping
	_parked = park
	_park_mutex.unlock()
	if park:
		_wake.wait()


## Wakes the parked pump; the caller must not touch the sockets afterwards.
func _unpark() -> void:
	_park_mutex.lock()
	if _parked:
		_parked = false
		_wake.post()
	_park_mutex.unlock()


## Main thread, every editor frame: while the pump is parked, wake it if anything waits.
func _on_frame() -> void:
	if not _parked:
		return
	_park_mutex.lock()
	if _parked and (_agents.has_input() or _link.has_input()):
		_parked = false
		_wake.post()
	_park_mutex.unlock()


## Ticker thread: wakes the parked pump every TICK_MSEC for timeouts and closed agents.
func _tick() -> void:
	while not _stopping:
		OS.delay_msec(TICK_MSEC)
		_unpark()


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
