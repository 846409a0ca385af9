@tool
extends RefCounted
## Agent connections: accepts TCP on 127.0.0.1, gives each a client id, enforces the
## limit (a complete 503 to anyone over it) and keeps a send buffer per client.
## Used from the bridge's pump thread only.
##
## Slots are not held forever (docs/RELIABILITY.md): a client that has not sent a complete
## request head (up to the blank line) within HEAD_TIMEOUT_MSEC of connecting, or of
## starting its next request, gets a 408 and is closed; one with no request under way and
## nothing sent either way for `idle_timeout_msec` is closed. The addon does not parse
## HTTP: a request is "under way" from the end of its head until the sidecar's first byte
## of answer.

## Emitted lines match the seed's console output; tests read them.
const REJECT_DRAIN_MSEC: int = 1000
const MAX_REJECTED: int = 64
const READ_CHUNK: int = 65536
const HEAD_TIMEOUT_MSEC: int = 10000
## How often the timeouts above are checked.
const EXPIRE_EVERY_MSEC: int = 100
## How often every agent socket's status is polled (a closed connection shows only there);
## in between the pump only asks each for its available bytes, one syscall instead of four.
const SWEEP_MSEC: int = 50
## Godot's TCPServer listen backlog (core/io/tcp_server.cpp). Linux queues up to backlog + 1
## connections; a pass that takes more than the backlog at once found the queue full, and only
## then may SYNs have been dropped. Fewer is an ordinary handful of agents.
const LISTEN_BACKLOG: int = 8
## While connections keep arriving, look for the next one this long before doing anything
## else; never longer than BURST_MAX_USEC in one pass, so the reads and flushes of the agents
## already connected are not held up long.
const BURST_SPIN_USEC: int = 1000
const BURST_MAX_USEC: int = 5000
## Sleep between two looks at the listen socket while resent connections are due: a bare spin
## burnt a whole core around each resend (0.4-0.5 s of CPU for the 3 s and 7 s windows
## together, against 0.11-0.13 s with this nap); a connection waits at most ~0.2 ms for it.
const RESEND_NAP_USEC: int = 100
## The kernel drops the SYNs of a burst that overflows the backlog, and a Linux client resends
## each 1 s, 3 s and 7 s after its first (initial RTO 1 s, doubling): the resends of one burst
## come back as bursts of their own, as tight as the first. Around those moments the pump does
## nothing but look for connections. A burst's dropped SYNs were sent from up to a parked
## pump's look (200 ms) before its backlog was found full until the last time it was found full
## (within OVERFLOW_EPISODE_USEC of the first); the windows cover that span, shifted.
const RESENDS_AFTER_USEC: Array[int] = [1000000, 3000000, 7000000]
const RESEND_EARLY_USEC: int = 250000
const RESEND_LATE_USEC: int = 60000
const OVERFLOW_EPISODE_USEC: int = 500000

var max_clients: int = 100
var idle_timeout_msec: int = 60000


## One connected agent: its socket, what is owed to it and where its current request stands.
class Agent:
	var id: int
	var peer: StreamPeerTCP
	## Bytes waiting to be written.
	var out: PackedByteArray = PackedByteArray()
	## Close once [member out] is written.
	var closing: bool = false
	## msec since when it owes us a complete request head, or -1 while it owes none.
	var head_since: int = -1
	## Last bytes of the unfinished head, to find its end across reads.
	var head_tail: PackedByteArray = PackedByteArray()
	## True from the end of a request head until the first byte of the answer.
	var answering: bool = false
	## msec of the last byte read from or queued for it.
	var last_io: int = 0

	func _init(p_id: int, p_peer: StreamPeerTCP, now_msec: int) -> void:
		id = p_id
		peer = p_peer
		head_since = now_msec
		last_io = now_msec

	## Closes the connection; first hands the socket what is still queued when `write_rest`.
	func close(write_rest: bool) -> void:
		if write_rest and not out.is_empty():
			peer.put_partial_data(out)
		peer.disconnect_from_host()

	## "host:port" of the agent's end of the connection.
	func address() -> String:
		return "%s:%d" % [peer.get_connected_host(), peer.get_connected_port()]


var _server: TCPServer = TCPServer.new()
var _next_id: int = 1
## client id -> Agent, every connected agent
var _agents: Dictionary = {}
## client id -> Agent with bytes to write or a close to carry out: all that flush looks at
var _dirty: Dictionary = {}
var _next_sweep_msec: int = 0
## [StreamPeerTCP, deadline_msec] of connections refused over the limit
var _rejected: Array = []
var _next_expire_msec: int = 0
## Connections taken from the listen queue, not yet registered (reused)
var _incoming: Array[StreamPeerTCP] = []
## When the listen backlog was first and last found full in the latest burst, or -1
var _overflow_first_usec: int = -1
var _overflow_last_usec: int = -1


## Listens on 127.0.0.1:port. Returns OK or the listen error.
func listen(port: int) -> Error:
	return _server.listen(port, "127.0.0.1")


## The port actually bound (useful with port 0).
func get_port() -> int:
	return _server.get_local_port()


## [id, "host:port"] of every connected agent.
func describe() -> Array:
	var out: Array = []
	for agent: Agent in _agents.values():
		out.append([agent.id, agent.address()])
	return out


## Takes new connections; puts the ids of the accepted ones into `accepted` and those of
## agents found closed while making room for them into `freed` (both the caller's, reused: the
## pump calls this on every pass). Godot listens with a backlog of 8 and the kernel drops the
## SYNs of a burst beyond it (the client resends them 1 s, then 3 s later), so the queue is
## emptied first, with nothing else in between, and watched for BURST_SPIN_USEC more while a
## burst is arriving; the bookkeeping and log lines come after.
func accept_new(accepted: Array[int], freed: Array[int]) -> void:
	var last: int = Time.get_ticks_usec()
	var give_up: int = last + BURST_MAX_USEC
	while true:
		if _server.is_connection_available():
			var peer: StreamPeerTCP = _server.take_connection()
			if peer == null:
				break
			_incoming.append(peer)
			last = Time.get_ticks_usec()
			continue
		var now: int = Time.get_ticks_usec()
		if _incoming.size() < 2 or now - last >= BURST_SPIN_USEC or now >= give_up:
			break
	if _incoming.size() > LISTEN_BACKLOG:
		_note_overflow(Time.get_ticks_usec())
	var swept: bool = false
	for peer: StreamPeerTCP in _incoming:
		if _agents.size() >= max_clients and not swept:
			swept = true
			_free_closed(freed)
		if _agents.size() >= max_clients:
			_reject(peer)
		else:
			accepted.append(_add(peer))
	_incoming.clear()
	_drain_rejected()


## True while the SYNs a burst lost to the full backlog are due back: the pump then only
## looks for connections between its passes ([method wait_for_connection]) and never parks.
## Changes nothing (the latest burst is forgotten in [method _note_overflow]).
func expects_resent_connections() -> bool:
	if _overflow_first_usec < 0:
		return false
	var now: int = Time.get_ticks_usec()
	for after: int in RESENDS_AFTER_USEC:
		var opens: int = _overflow_first_usec + after - RESEND_EARLY_USEC
		if now >= opens and now <= _overflow_last_usec + after + RESEND_LATE_USEC:
			return true
	return false


## Returns as soon as a connection waits to be accepted, or after `max_usec`: looks at the
## listen socket alone, with a nap of RESEND_NAP_USEC between two looks.
func wait_for_connection(max_usec: int) -> void:
	var until: int = Time.get_ticks_usec() + max_usec
	while Time.get_ticks_usec() < until:
		if _server.is_connection_available():
			return
		OS.delay_usec(RESEND_NAP_USEC)


## "host:port" of a connected agent.
func peer_name(id: int) -> String:
	var agent: Agent = _agents.get(id)
	return agent.address() if agent != null else "?"


## Reads what every agent sent into `got` ({id: PackedByteArray}, the caller's, reused);
## ids of agents that went away are put into `gone`.
func read_all(got: Dictionary, gone: Array[int]) -> void:
	var sweep: bool = false
	if not _agents.is_empty():
		var now: int = Time.get_ticks_msec()
		sweep = now >= _next_sweep_msec
		if sweep:
			_next_sweep_msec = now + SWEEP_MSEC
	for id: int in _agents:
		var agent: Agent = _agents[id]
		var peer: StreamPeerTCP = agent.peer
		if sweep:
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
			_saw_request_bytes(agent, res[1])
	_expire()


## Sends bytes to an agent: written at once when nothing is queued for it, else (and
## whatever the socket did not take) queued for the next flush.
func send(id: int, data: PackedByteArray) -> void:
	var agent: Agent = _agents.get(id)
	if agent == null:
		return
	if agent.out.is_empty() and not data.is_empty():
		var res: Array = agent.peer.put_partial_data(data)
		var sent: int = res[1] if res[0] == OK else 0
		if sent < data.size():
			agent.out = data.slice(sent)
			_dirty[id] = agent
	else:
		agent.out.append_array(data)
		_dirty[id] = agent
	# An answer ends the request; the next byte from the agent starts the next one. An
	# interim "100 Continue" alone does not: the request's body follows it.
	if not _is_interim_answer(data):
		agent.answering = false
		agent.head_since = -1
	agent.last_io = Time.get_ticks_msec()


## Writes queued bytes without blocking; closes agents marked for closing once flushed.
## Returns true when anything was written.
func flush(gone: Array[int]) -> bool:
	if _dirty.is_empty():
		return false
	var wrote: bool = false
	for agent: Agent in _dirty.values():
		if agent.out.is_empty():
			if agent.closing:
				gone.append(agent.id)
			else:
				_dirty.erase(agent.id)
			continue
		var res: Array = agent.peer.put_partial_data(agent.out)
		if res[0] != OK:
			gone.append(agent.id)
			continue
		var sent: int = res[1]
		if sent == agent.out.size():
			wrote = true
			agent.out = PackedByteArray()
			if not agent.closing:
				_dirty.erase(agent.id)
		elif sent > 0:
			wrote = true
			agent.out = agent.out.slice(sent)
	return wrote


## True when nothing is owed to any agent: every answer written, no refused connection
## waiting to be closed. The pump may then park.
func is_quiet() -> bool:
	return _dirty.is_empty() and _rejected.is_empty()


## For the parked pump: a new connection, or bytes from an agent?
func has_input() -> bool:
	if _server.is_connection_available():
		return true
	for id: int in _agents:
		if (_agents[id] as Agent).peer.get_available_bytes() > 0:
			return true
	return false


## Closes an agent after what was queued for it is written.
func close_after_flush(id: int) -> void:
	var agent: Agent = _agents.get(id)
	if agent != null:
		agent.closing = true
		_dirty[id] = agent


## Closes an agent now and logs it. Returns false if it was not connected.
func drop(id: int) -> bool:
	var agent: Agent = _agents.get(id)
	if agent == null:
		return false
	agent.close(false)
	_agents.erase(id)
	_dirty.erase(id)
	print("✗ Client %d disconnected" % id)
	return true


## Answers an agent with a complete HTTP error (written by the addon itself) and closes it.
func refuse(id: int, status_line: String, code: String, message: String) -> void:
	send(id, http_error(status_line, code, message))
	close_after_flush(id)


## Closes every agent and stops listening.
func stop() -> void:
	print("Cleaning up %d client connections..." % _agents.size())
	for agent: Agent in _agents.values():
		agent.close(true)
	_agents.clear()
	_dirty.clear()
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


# Bookkeeping for the timeouts: bytes from `agent` start a request (if none is under way)
# and complete its head once they hold the blank line ending it.
func _saw_request_bytes(agent: Agent, data: PackedByteArray) -> void:
	var now: int = Time.get_ticks_msec()
	agent.last_io = now
	if agent.answering:
		return  # a body, or a pipelined request behind the one under way
	if agent.head_since < 0:
		agent.head_since = now
		agent.head_tail = PackedByteArray()
	var seen: PackedByteArray = agent.head_tail + data
	if agent.head_tail.is_empty():
		# Empty lines before a request line are skipped (RFC 9112 2.2): no head yet.
		var start: int = 0
		while start < seen.size() and (seen[start] == 13 or seen[start] == 10):
			start += 1
		seen = seen.slice(start)
	if _has_head_end(seen):
		agent.head_since = -1
		agent.head_tail = PackedByteArray()
		agent.answering = true
	else:
		agent.head_tail = seen.slice(maxi(0, seen.size() - 3))


# Closes agents that are too slow to send a request head, or idle too long.
func _expire() -> void:
	var now: int = Time.get_ticks_msec()
	if now < _next_expire_msec:
		return
	_next_expire_msec = now + EXPIRE_EVERY_MSEC
	for id: int in _agents:
		var agent: Agent = _agents[id]
		if agent.closing:
			continue
		if agent.head_since >= 0:
			if now - agent.head_since >= HEAD_TIMEOUT_MSEC:
				print(
					(
						"Client %d sent no complete request within %d s; closing it"
						% [id, HEAD_TIMEOUT_MSEC / 1000]
					)
				)
				refuse(
					id,
					"408 Request Timeout",
					"request_timeout",
					"no complete request head within %d s" % (HEAD_TIMEOUT_MSEC / 1000)
				)
		elif (
			not agent.answering
			and agent.out.is_empty()
			and now - agent.last_io >= idle_timeout_msec
		):
			print("Client %d idle for %d s; closing it" % [id, idle_timeout_msec / 1000])
			close_after_flush(id)


# True for an interim answer on its own ("HTTP/1.1 100 Continue\r\n\r\n", 25 bytes): every
# final answer of the sidecar carries headers that make it longer than 64 bytes.
static func _is_interim_answer(data: PackedByteArray) -> bool:
	return data.size() < 64 and data.size() > 9 and data[0] == 72 and data[9] == 49


# True when `data` holds the end of an HTTP head: an empty line (CRLF CRLF, or bare LF LF).
static func _has_head_end(data: PackedByteArray) -> bool:
	var i: int = data.find(10)
	while i != -1:
		if i >= 1 and data[i - 1] == 10:
			return true
		if i >= 3 and data[i - 1] == 13 and data[i - 2] == 10 and data[i - 3] == 13:
			return true
		i = data.find(10, i + 1)
	return false


# A pass found the backlog full. Within one burst that extends the span whose resends are
# awaited; a full backlog while resends come back belongs to the burst that sent them. One
# after the last resend window of the previous burst starts a new burst (expects_resent_
# connections() is false in between, whatever the old times say).
func _note_overflow(now: int) -> void:
	if _overflow_first_usec < 0 or now > _overflow_last_usec + RESENDS_AFTER_USEC[-1]:
		_overflow_first_usec = now
		_overflow_last_usec = now
	elif now - _overflow_first_usec <= OVERFLOW_EPISODE_USEC:
		_overflow_last_usec = now


func _add(peer: StreamPeerTCP) -> int:
	peer.set_no_delay(true)
	var id: int = _next_id
	_next_id += 1
	_agents[id] = Agent.new(id, peer, Time.get_ticks_msec())
	print("✓ Client %d connected. Total clients: %d" % [id, _agents.size()])
	return id


# At the limit: agents that closed since the last sweep still hold their slots (a closed
# connection shows only in a status poll); free those before refusing anyone.
func _free_closed(freed: Array[int]) -> void:
	var closed: Array[int] = []
	for agent: Agent in _agents.values():
		agent.peer.poll()
		if agent.peer.get_status() != StreamPeerTCP.STATUS_CONNECTED:
			closed.append(agent.id)
	for id: int in closed:
		drop(id)
		freed.append(id)


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
	if _rejected.is_empty():
		return
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
