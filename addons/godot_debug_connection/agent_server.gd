@tool
extends RefCounted
## Agent connections: accepts TCP on 127.0.0.1, gives each a client id, enforces the
## limit (a complete 503 to anyone over it) and keeps a send buffer per client.
## Used from the bridge's pump thread only.

## Emitted lines match the seed's console output; tests read them.
const REJECT_DRAIN_MSEC: int = 1000
const MAX_REJECTED: int = 64
const READ_CHUNK: int = 65536

var max_clients: int = 100

var _server: TCPServer = TCPServer.new()
var _next_id: int = 1
## client id -> StreamPeerTCP
var _peers: Dictionary = {}
## client id -> PackedByteArray waiting to be written
var _out: Dictionary = {}
## client ids to close once their send buffer is empty
var _closing: Dictionary = {}
## [StreamPeerTCP, deadline_msec] of connections refused over the limit
var _rejected: Array = []


## Listens on 127.0.0.1:port. Returns OK or the listen error.
func listen(port: int) -> Error:
	return _server.listen(port, "127.0.0.1")


## The port actually bound (useful with port 0).
func get_port() -> int:
	return _server.get_local_port()


## Number of connected agents.
func count() -> int:
	return _peers.size()


## [id, "host:port"] of every connected agent.
func describe() -> Array:
	var out: Array = []
	for id: int in _peers:
		out.append([id, _peer_name(_peers[id])])
	return out


## Takes new connections; returns the ids of the accepted ones.
func accept_new() -> Array[int]:
	var accepted: Array[int] = []
	while _server.is_connection_available():
		var peer: StreamPeerTCP = _server.take_connection()
		if peer == null:
			break
		if _peers.size() >= max_clients:
			_reject(peer)
			continue
		peer.set_no_delay(true)
		var id: int = _next_id
		_next_id += 1
		_peers[id] = peer
		_out[id] = PackedByteArray()
		accepted.append(id)
		print("✓ Client %d connected. Total clients: %d" % [id, _peers.size()])
	_drain_rejected()
	return accepted


## "host:port" of a connected agent.
func peer_name(id: int) -> String:
	return _peer_name(_peers[id]) if _peers.has(id) else "?"


## Reads what every agent sent. Returns {id: PackedByteArray}; ids of agents that went
## away are put into `gone`.
func read_all(gone: Array[int]) -> Dictionary:
	var got: Dictionary = {}
	for id: int in _peers:
		var peer: StreamPeerTCP = _peers[id]
		peer.poll()
		if peer.get_status() != StreamPeerTCP.STATUS_CONNECTED:
			gone.append(id)
			continue
		var n: int = peer.get_available_bytes()
		if n <= 0:
			continue
		var res: Array = peer.get_partial_data(mini(n, READ_CHUNK))
		if res[0] == OK and (res[1] as PackedByteArray).size() > 0:
			got[id] = res[1]
	return got


## Queues bytes for an agent; they go out on the next flush.
func send(id: int, data: PackedByteArray) -> void:
	if _out.has(id):
		_out[id].append_array(data)


## Writes queued bytes without blocking; closes agents marked for closing once flushed.
## Returns true when anything was written.
func flush(gone: Array[int]) -> bool:
	var wrote: bool = false
	for id: int in _out:
		var buf: PackedByteArray = _out[id]
		if buf.is_empty():
			if _closing.has(id):
				gone.append(id)
			continue
		var res: Array = (_peers[id] as StreamPeerTCP).put_partial_data(buf)
		if res[0] != OK:
			gone.append(id)
			continue
		var sent: int = res[1]
		if sent > 0:
			wrote = true
			_out[id] = buf.slice(sent)
	return wrote


## Closes an agent after what was queued for it is written.
func close_after_flush(id: int) -> void:
	if _peers.has(id):
		_closing[id] = true


## Closes an agent now and logs it. Returns false if it was not connected.
func drop(id: int) -> bool:
	if not _peers.has(id):
		return false
	var peer: StreamPeerTCP = _peers[id]
	peer.disconnect_from_host()
	_peers.erase(id)
	_out.erase(id)
	_closing.erase(id)
	print("✗ Client %d disconnected" % id)
	return true


## Answers an agent with a complete HTTP error (written by the addon itself) and closes it.
func refuse(id: int, status_line: String, code: String, message: String) -> void:
	send(id, http_error(status_line, code, message))
	close_after_flush(id)


## Closes every agent and stops listening.
func stop() -> void:
	print("Cleaning up %d client connections..." % _peers.size())
	for id: int in _peers.keys():
		var peer: StreamPeerTCP = _peers[id]
		var buf: PackedByteArray = _out.get(id, PackedByteArray())
		if not buf.is_empty():
			peer.put_partial_data(buf)
		peer.disconnect_from_host()
	_peers.clear()
	_out.clear()
	_closing.clear()
	for entry: Array in _rejected:
		(entry[0] as StreamPeerTCP).disconnect_from_host()
	_rejected.clear()
	_server.stop()


## A complete HTTP/1.1 error response with a JSON body in the bridge's error shape.
static func http_error(status_line: String, code: String, message: String) -> PackedByteArray:
	var body: String = JSON.stringify(
		{"status": "error", "error": {"code": code, "message": message}}
	)
	var body_bytes: PackedByteArray = body.to_utf8_buffer()
	var head: String = (
		(
			"HTTP/1.1 %s\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
			+ "Connection: close\r\nContent-Length: %d\r\n\r\n"
		)
		% [status_line, body_bytes.size()]
	)
	var out: PackedByteArray = head.to_utf8_buffer()
	out.append_array(body_bytes)
	return out


func _reject(peer: StreamPeerTCP) -> void:
	push_warning("Max clients reached (%d), rejecting new connection" % max_clients)
	var msg: String = "server full: %d agents connected; retry later" % max_clients
	peer.put_partial_data(http_error("503 Service Unavailable", "server_full", msg))
	if _rejected.size() >= MAX_REJECTED:
		peer.disconnect_from_host()
		return
	# Closing with the agent's request unread would reset the connection before the agent
	# reads our answer; read it away first.
	_rejected.append([peer, Time.get_ticks_msec() + REJECT_DRAIN_MSEC])


func _drain_rejected() -> void:
	var now: int = Time.get_ticks_msec()
	var keep: Array = []
	for entry: Array in _rejected:
		var peer: StreamPeerTCP = entry[0]
		peer.poll()
		var n: int = peer.get_available_bytes()
		if n > 0:
			var got: Array = peer.get_partial_data(n)
			if _has_request_end(got[1]):
				entry[1] = mini(entry[1], now + 50)
		if peer.get_status() != StreamPeerTCP.STATUS_CONNECTED or now >= int(entry[1]):
			peer.disconnect_from_host()
		else:
			keep.append(entry)
	_rejected = keep


static func _has_request_end(data: PackedByteArray) -> bool:
	return data.get_string_from_ascii().contains("\r\n\r\n")


static func _peer_name(peer: StreamPeerTCP) -> String:
	return "%s:%d" % [peer.get_connected_host(), peer.get_connected_port()]
