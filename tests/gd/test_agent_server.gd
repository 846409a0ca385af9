extends "res://tests/gd/helpers.gd"
## Tests of addons/godot_debug_connection/agent_server.gd on real loopback sockets, without an
## editor: one record per agent, dropped whole.
##
## godot --headless --path . --script res://tests/gd/test_agent_server.gd
## Last line "gdscript: N passed, M failed".

const AgentServer = preload("res://addons/godot_debug_connection/agent_server.gd")
## How long a socket may take to connect, be accepted or deliver bytes.
const WAIT_MSEC: int = 5000

var _accepted: Array[int] = []
var _freed: Array[int] = []


func _init() -> void:
	run_tests()
	finish()


func _test_a_dropped_agent_leaves_nothing_behind() -> void:
	var server: AgentServer = _listening()
	var first: StreamPeerTCP = _connect(server)
	var second: StreamPeerTCP = _connect(server)
	var ids: Array[int] = _accept(server, 2)
	check(ids.size() == 2, "both accepted: %s" % [ids])
	if ids.size() != 2:
		return
	server.close_after_flush(ids[0])
	check(not server.is_quiet(), "a close is owed to the first")
	check(server.drop(ids[0]), "drop() of a connected agent")
	check(server.is_quiet(), "nothing owed once it is dropped")
	check(not server.drop(ids[0]), "a second drop() finds nothing")
	check(server.peer_name(ids[0]) == "?", "no name for a dropped agent")
	server.send(ids[0], "late".to_utf8_buffer())
	check(server.is_quiet(), "bytes for a dropped agent are not queued")
	var listed: Array = server.describe()
	check(listed.size() == 1 and listed[0][0] == ids[1], "only the second is listed: %s" % [listed])
	server.send(ids[1], "answer".to_utf8_buffer())
	check(_read(second) == "answer", "the second still gets its answer")
	check(_closed(first), "the dropped agent's connection is closed")
	server.stop()


func _test_stop_closes_every_agent_and_frees_the_port() -> void:
	var server: AgentServer = _listening()
	var port: int = server.get_port()
	var clients: Array[StreamPeerTCP] = [_connect(server), _connect(server)]
	check(_accept(server, 2).size() == 2, "both accepted")
	server.stop()
	check(server.describe().is_empty(), "nobody listed after stop()")
	for client: StreamPeerTCP in clients:
		check(_closed(client), "closed by stop()")
	var again: TCPServer = TCPServer.new()
	check(again.listen(port, "127.0.0.1") == OK, "port %d free after stop()" % port)
	again.stop()


func _test_one_over_the_limit_gets_a_complete_503() -> void:
	var server: AgentServer = _listening()
	server.max_clients = 1
	var first: StreamPeerTCP = _connect(server)
	check(_accept(server, 1).size() == 1, "the first is accepted")
	var refused: StreamPeerTCP = _connect(server)
	server.accept_new(_accepted, _freed)
	var answer: String = _read(refused)
	check(answer.begins_with("HTTP/1.1 503 Service Unavailable"), "503: %s" % answer)
	check(answer.contains('"server_full"'), "server_full: %s" % answer)
	check(server.describe().size() == 1, "still one agent")
	check(first.get_status() == StreamPeerTCP.STATUS_CONNECTED, "the first stays connected")
	server.stop()


func _listening() -> AgentServer:
	var server: AgentServer = AgentServer.new()
	check(server.listen(0) == OK, "listens on a free port")
	return server


func _connect(server: AgentServer) -> StreamPeerTCP:
	var client: StreamPeerTCP = StreamPeerTCP.new()
	client.connect_to_host("127.0.0.1", server.get_port())
	var until: int = Time.get_ticks_msec() + WAIT_MSEC
	while client.get_status() == StreamPeerTCP.STATUS_CONNECTING:
		if Time.get_ticks_msec() > until:
			break
		OS.delay_msec(2)
		client.poll()
	check(client.get_status() == StreamPeerTCP.STATUS_CONNECTED, "client connected")
	return client


# Runs the server's accepting until `n` agents were taken; their ids.
func _accept(server: AgentServer, n: int) -> Array[int]:
	var ids: Array[int] = []
	var until: int = Time.get_ticks_msec() + WAIT_MSEC
	while ids.size() < n and Time.get_ticks_msec() < until:
		_accepted.clear()
		_freed.clear()
		server.accept_new(_accepted, _freed)
		ids.append_array(_accepted)
		OS.delay_msec(2)
	return ids


# What the client received until it stopped getting more for a moment.
func _read(client: StreamPeerTCP) -> String:
	var got: PackedByteArray = PackedByteArray()
	var until: int = Time.get_ticks_msec() + WAIT_MSEC
	var quiet_since: int = -1
	while Time.get_ticks_msec() < until:
		client.poll()
		var n: int = client.get_available_bytes()
		if n > 0:
			got.append_array(client.get_data(n)[1])
			quiet_since = Time.get_ticks_msec()
		elif quiet_since >= 0 and Time.get_ticks_msec() - quiet_since > 50:
			break
		OS.delay_msec(2)
	return got.get_string_from_utf8()


# True once the client sees its connection closed by the other end.
func _closed(client: StreamPeerTCP) -> bool:
	var until: int = Time.get_ticks_msec() + WAIT_MSEC
	while Time.get_ticks_msec() < until:
		client.poll()
		if client.get_status() != StreamPeerTCP.STATUS_CONNECTED:
			return true
		if client.get_available_bytes() > 0:
			client.get_data(client.get_available_bytes())
		OS.delay_msec(2)
	return false
