@tool
extends RefCounted
## The addon's end of the link: spawns the Python sidecar, accepts its connection on an
## ephemeral loopback port, checks its one-time token and exchanges frames with it.
## Respawns the sidecar with backoff when it goes away. Used from the pump thread only.
##
## The link's state changes are signals, emitted on the thread that calls [method poll] (or
## [method stop]): every [signal link_up] is followed by one [signal link_down].

## A sidecar connected and presented its token; frames can go both ways. Emitted before the
## frames that came with its hello are handed on.
signal link_up
## The link that was up is gone (`reason` says why, for the log); a new sidecar is on its way
## unless the link was stopped. Emitted after the frames read before the loss are handed on.
signal link_down(reason: String)

enum State { IDLE, WAITING, UP, BACKOFF }

const FrameCodec := preload("res://addons/godot_debug_connection/frame_codec.gd")
const BridgeSettings := preload("res://addons/godot_debug_connection/bridge_settings.gd")
const HELLO_TIMEOUT_MSEC: int = 15000
const MIN_BACKOFF_MSEC: int = 250
const MAX_BACKOFF_MSEC: int = 8000
const STABLE_MSEC: int = 10000
const READ_CHUNK: int = 262144
## A full status poll of the link socket (it notices a closed link) and a look for intruders
## on the link port cost syscalls; between them, the pump only asks for available bytes.
const CHECK_MSEC: int = 50

var _state: State = State.IDLE

var _settings: BridgeSettings
var _server: TCPServer = TCPServer.new()
var _peer: StreamPeerTCP = null
var _decoder: FrameCodec.FrameDecoder = null
var _out: PackedByteArray = PackedByteArray()
var _pid: int = -1
var _token: String = ""
var _deadline_msec: int = 0
var _backoff_msec: int = MIN_BACKOFF_MSEC
var _up_since_msec: int = 0
var _next_check_msec: int = 0
## Frames of one read, before they are handed on (reused).
var _received: Array = []


func _init(settings: BridgeSettings) -> void:
	_settings = settings


## Opens the link port and spawns the sidecar. Returns OK or the listen error.
func start() -> Error:
	var err: Error = _server.listen(0, "127.0.0.1")
	if err != OK:
		return err
	_spawn()
	return OK


## True while a sidecar is connected and has said hello.
func is_up() -> bool:
	return _state == State.UP


## Queues a frame for the sidecar (dropped while the link is down).
func send(msg: Dictionary) -> void:
	if _state == State.UP:
		_out.append_array(FrameCodec.encode_frame(msg))


## Queues a `data` frame carrying `data` for agent `id`: the same bytes as [method send]
## of [code]{"op": "data", "id": id, "data": data}[/code], written straight into the queue.
func send_data(id: int, data: PackedByteArray) -> void:
	if _state == State.UP:
		FrameCodec.append_data_frame(_out, id, data)


## True when the pump may park: nothing left to write to the sidecar. (Waiting for a sidecar
## to connect or to be respawned needs no polling either: [method has_input] sees it connect
## and [method is_due] its deadlines.)
func is_quiet() -> bool:
	return _out.is_empty()


## For the parked pump: has the sidecar connected or sent something?
func has_input() -> bool:
	if _state == State.WAITING and _peer == null:
		return _server.is_connection_available()
	return _peer != null and _peer.get_available_bytes() > 0


## For the parked pump: is a respawn, or the deadline of a sidecar that has not connected
## yet, due?
func is_due() -> bool:
	var waits: bool = _state == State.BACKOFF or _state == State.WAITING
	return waits and Time.get_ticks_msec() >= _deadline_msec


## Moves bytes both ways: calls `on_frame` with each frame received (a Dictionary), in order,
## and emits [signal link_up] / [signal link_down] as the link comes and goes. Returns true if
## anything moved.
func poll(on_frame: Callable) -> bool:
	match _state:
		State.WAITING:
			return _poll_waiting(on_frame)
		State.UP:
			return _poll_up(on_frame)
		State.BACKOFF:
			if Time.get_ticks_msec() >= _deadline_msec:
				_spawn()
				return true
	return false


## Closes the link and stops the sidecar; waits briefly for it to exit on its own.
func stop() -> void:
	var was_up: bool = _state == State.UP
	if _peer != null:
		if not _out.is_empty():
			_peer.put_partial_data(_out)
		_peer.disconnect_from_host()
		_peer = null
	_out.clear()
	_stop_process(1000)
	_server.stop()
	_state = State.IDLE
	if was_up:
		link_down.emit("stopped")


func _spawn() -> void:
	_token = Crypto.new().generate_random_bytes(16).hex_encode()
	var args: PackedStringArray = [
		"-m",
		"sidecar",
		"--link-port",
		str(_server.get_local_port()),
		"--project",
		_settings.project_dir,
		"--bridge-port",
		str(_settings.bridge_port),
		"--lsp-port",
		str(_settings.lsp_port),
		"--dap-port",
		str(_settings.dap_port),
		"--max-clients",
		str(_settings.max_clients),
		# Who the sidecar works for: it checks that the servers it reaches are this editor's.
		"--editor-pid",
		str(OS.get_process_id()),
	]
	# The tokens travel in the environment so they never show in a process listing.
	OS.set_environment("GODOT_BRIDGE_LINK_TOKEN", _token)
	var agent_token_was_set: bool = OS.has_environment("GODOT_BRIDGE_TOKEN")
	if not _settings.token.is_empty():
		OS.set_environment("GODOT_BRIDGE_TOKEN", _settings.token)
	_pid = OS.create_process(_settings.python, args)
	OS.unset_environment("GODOT_BRIDGE_LINK_TOKEN")
	if not agent_token_was_set:
		OS.unset_environment("GODOT_BRIDGE_TOKEN")
	if _pid <= 0:
		push_error(
			(
				(
					"GodotBridge: cannot start the sidecar with '%s'; install it (pip install of "
					+ "this addon's repository) and set GODOT_BRIDGE_PYTHON or the project setting "
					+ "godot_debug_connection/python"
				)
				% _settings.python
			)
		)
		_go_down()
		return
	print("GodotBridge sidecar started (pid %d)" % _pid)
	_state = State.WAITING
	_deadline_msec = Time.get_ticks_msec() + HELLO_TIMEOUT_MSEC


func _poll_waiting(on_frame: Callable) -> bool:
	if _peer == null:
		if _server.is_connection_available():
			_peer = _server.take_connection()
			_peer.set_no_delay(true)
			_decoder = FrameCodec.FrameDecoder.new()
		elif Time.get_ticks_msec() > _deadline_msec or not OS.is_process_running(_pid):
			push_warning("GodotBridge: the sidecar did not connect; restarting it")
			_go_down()
			return true
		return false
	_received.clear()
	if not _read_frames(_received):
		push_warning("GodotBridge: the sidecar's link broke during the handshake")
		_go_down()
		return true
	if _received.is_empty():
		if Time.get_ticks_msec() > _deadline_msec:
			_go_down()
		return false
	var hello: Dictionary = _received.pop_front()
	if hello.get("op") != "hello" or str(hello.get("token", "")) != _token:
		push_warning("GodotBridge: link peer did not present the sidecar's token; closing it")
		_go_down()
		return true
	_token = ""
	_state = State.UP
	_up_since_msec = Time.get_ticks_msec()
	print("GodotBridge sidecar connected (pid %d)" % _pid)
	link_up.emit()
	_hand_on(on_frame)
	return true


func _poll_up(on_frame: Callable) -> bool:
	var now: int = Time.get_ticks_msec()
	var check: bool = now >= _next_check_msec
	if check:
		_next_check_msec = now + CHECK_MSEC
		# Only one sidecar at a time: anyone else knocking on the link port is turned away.
		while _server.is_connection_available():
			_server.take_connection().disconnect_from_host()
	_received.clear()
	var intact: bool = _read_frames(_received, check)
	var got_any: bool = not _received.is_empty()
	# What came before a bad frame or the close is still the sidecar's word: hand it on first.
	_hand_on(on_frame)
	if not intact:
		var reason: String = _decoder.get_error() if _decoder.has_error() else "link closed"
		push_warning("GodotBridge: sidecar link lost; restarting the sidecar")
		_go_down()
		link_down.emit(reason)
		return true
	var wrote: bool = _flush()
	if _backoff_msec != MIN_BACKOFF_MSEC and now - _up_since_msec > STABLE_MSEC:
		_backoff_msec = MIN_BACKOFF_MSEC
	return wrote or got_any


func _hand_on(on_frame: Callable) -> void:
	for frame: Dictionary in _received:
		on_frame.call(frame)
	_received.clear()


## Reads available bytes into the decoder and appends complete frames. False when the link
## is closed or sent a bad frame. `check`: also poll the socket's status (a closed link shows
## only there), else just read what is there.
func _read_frames(frames: Array, check: bool = true) -> bool:
	if check:
		_peer.poll()
	if _peer.get_status() != StreamPeerTCP.STATUS_CONNECTED:
		return false
	var n: int = _peer.get_available_bytes()
	if n > 0:
		var res: Array = _peer.get_partial_data(mini(n, READ_CHUNK))
		if res[0] != OK:
			return false
		_decoder.feed(res[1])
	while true:
		var frame: Variant = _decoder.next_frame()
		if frame == null:
			break
		frames.append(frame)
	if _decoder.has_error():
		push_warning("GodotBridge: bad frame from the sidecar: %s" % _decoder.get_error())
		return false
	return true


func _flush() -> bool:
	if _out.is_empty():
		return false
	var res: Array = _peer.put_partial_data(_out)
	if res[0] != OK:
		return false
	var sent: int = res[1]
	if sent == _out.size():
		_out.clear()
	elif sent > 0:
		_out = _out.slice(sent)
	return sent > 0


func _go_down() -> void:
	if _peer != null:
		_peer.disconnect_from_host()
		_peer = null
	_out.clear()
	_stop_process(0)
	_state = State.BACKOFF
	_deadline_msec = Time.get_ticks_msec() + _backoff_msec
	print("GodotBridge sidecar restarting in %.2f s" % (_backoff_msec / 1000.0))
	_backoff_msec = mini(_backoff_msec * 2, MAX_BACKOFF_MSEC)


## Ends the sidecar: a closed link makes it exit by itself within `grace_msec`, else kill.
func _stop_process(grace_msec: int) -> void:
	if _pid <= 0:
		return
	var until: int = Time.get_ticks_msec() + grace_msec
	while OS.is_process_running(_pid) and Time.get_ticks_msec() < until:
		OS.delay_msec(10)
	if OS.is_process_running(_pid):
		OS.kill(_pid)
		OS.delay_msec(20)
		OS.is_process_running(_pid)
	_pid = -1
