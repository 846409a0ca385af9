"""Capture the running game's remote-debugger messages, as they arrive through Godot's DAP.

Starts a headless editor (tests/harness.py `Editor`) on a copy of the demo project with a
small capture scene added (moving Node2D, Label, ColorRect, engine and script errors),
connects straight to the editor's DAP port (no sidecar in between), launches that scene
with `"godot/custom_data": true`, asks the game for its scene tree and for a few objects
(`godot/put_msg`), and writes what came back as JSON fixtures:

    PYTHONPATH=. GODOT=... .venv/bin/python tools/capture_game_messages.py [--display] [out_dir]

`--display` runs the game rendered on an Xvfb of its own (`--rendering-driver opengl3`,
the addon left out so that nothing adds `--headless`) and asks for a screenshot too.

Every `godot/custom_data` event body is kept verbatim (`{"message": ..., "data": [...]}`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.harness import Editor, make_demo_project

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "game_messages"

CAPTURE_SCENE = """[gd_scene load_steps=3 format=3]

[ext_resource type="Script" path="res://demo/capture.gd" id="1"]
[ext_resource type="Script" path="res://demo/mover.gd" id="2"]

[node name="Capture" type="Node2D"]
script = ExtResource("1")

[node name="Mover" type="Node2D" parent="."]
position = Vector2(10, 20)
rotation = 0.5
script = ExtResource("2")

[node name="Label" type="Label" parent="Mover"]
text = "hello"

[node name="Box" type="ColorRect" parent="."]
visible = false
offset_right = 40.0
offset_bottom = 30.0
color = Color(1, 0, 0, 1)
"""

CAPTURE_SCRIPT = """extends Node2D
## Capture scene: values of many variant types, and errors of each kind.

@export var speed: float = 2.5
@export var target: Vector2 = Vector2(3, 4)
@export var tint: Color = Color(0.25, 0.5, 0.75, 1)
@export var grid: Vector2i = Vector2i(7, 8)
@export var spot: Vector3 = Vector3(1, 2, 3)
@export var area: Rect2 = Rect2(1, 2, 3, 4)
@export var names: PackedStringArray = PackedStringArray(["a", "b"])
@export var numbers: Array[int] = [1, 2, 3]
@export var table: Dictionary = {"k": 1, "v": Vector2(5, 6)}
@export var link: Node
@export var shape: Resource
var basis_3d: Transform3D = Transform3D.IDENTITY
var frames: int = 0


func _ready() -> void:
	link = $Mover
	shape = RectangleShape2D.new()
	shape.size = Vector2(9, 9)


func _process(_delta: float) -> void:
	frames += 1
	if frames == 30:
		push_error("capture: a pushed error")
		push_warning("capture: a pushed warning")
		get_node("Missing")
	if frames == 45:
		var nothing: Node = null
		nothing.get_name()
"""

MOVER_SCRIPT = """extends Node2D


func _process(delta: float) -> void:
	position.x += 60.0 * delta
"""


class Dap:
    """A bare DAP client on a socket: Content-Length framing, requests by seq."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.settimeout(0.2)
        self.buf = b""
        self.seq = 0
        self.messages: list[dict[str, Any]] = []

    def send(self, command: str, arguments: dict[str, Any]) -> int:
        self.seq += 1
        body = json.dumps(
            {"seq": self.seq, "type": "request", "command": command, "arguments": arguments}
        ).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return self.seq

    def pump(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            if not chunk:
                return
            self.buf += chunk
            while b"\r\n\r\n" in self.buf:
                head, rest = self.buf.split(b"\r\n\r\n", 1)
                length = int(head.split(b":")[1])
                if len(rest) < length:
                    break
                self.messages.append(json.loads(rest[:length]))
                self.buf = rest[length:]

    def custom(self, message: str) -> list[Any]:
        return [
            m["body"]
            for m in self.messages
            if m.get("event") == "godot/custom_data" and m["body"].get("message") == message
        ]

    def put_msg(self, message: str, data: list[Any]) -> None:
        self.send("godot/put_msg", {"message": message, "data": data})


def make_project(root: Path, display: bool) -> Path:
    project = make_demo_project(root / "project")
    if display:
        # Without the addon nothing appends --headless to the game's arguments.
        settings = project / "project.godot"
        text = settings.read_text().split("[editor_plugins]")[0]
        text += '\n[editor]\n\nrun/main_run_args="--rendering-driver opengl3"\n'
        settings.write_text(text)
    (project / "demo" / "capture.tscn").write_text(CAPTURE_SCENE)
    (project / "demo" / "capture.gd").write_text(CAPTURE_SCRIPT)
    (project / "demo" / "mover.gd").write_text(MOVER_SCRIPT)
    return project


def tree_ids(data: list[Any]) -> dict[str, int]:
    """Name → object id from a 4.6 `scene:scene_tree` (6 fields a node)."""
    ids: dict[str, int] = {}
    i = 0
    while i + 5 < len(data):
        ids[str(data[i + 1])] = int(data[i + 3])
        i += 6
    return ids


def save(out: Path, name: str, body: Any) -> None:
    (out / f"{name}.json").write_text(json.dumps(body, indent=1, ensure_ascii=False) + "\n")


def write_fixtures(dap: Dap, out: Path) -> None:
    """One file per kind of message, each the verbatim `godot/custom_data` event body."""
    errors = dap.custom("error")
    pushed = [e for e in errors if e["data"][5] == "push_error"]
    warned = [e for e in errors if e["data"][5] == "push_warning"]
    engine = [e for e in errors if e["data"][5] == "get_node"]
    stackless = [e for e in errors if e["data"][10] == 0]
    script = [e for e in errors if str(e["data"][4]).startswith("res://")]
    if script:
        save(out, "error_script", script[0])
    shots = dap.custom("game_view:get_screenshot")
    if shots:
        save(out, "game_view_get_screenshot", shots[0])
    save(out, "set_pid", dap.custom("set_pid")[0])
    save(out, "scene_tree", dap.custom("scene:scene_tree")[0])
    objects = dap.custom("scene:inspect_objects")
    save(out, "inspect_objects_one", objects[0])
    save(out, "inspect_objects_two", objects[1])
    save(out, "inspect_object_legacy", dap.custom("scene:inspect_object")[0])
    save(out, "remote_selection_invalidated", dap.custom("remote_selection_invalidated")[0])
    save(out, "error_push_error", pushed[0])
    save(out, "error_push_warning", warned[0])
    save(out, "error_engine", engine[0])
    save(out, "error_no_stack", stackless[0])
    save(out, "performance_profile_frame", dap.custom("performance:profile_frame")[-1])
    seen = sorted({str(m.get("event", m.get("command"))) for m in dap.messages})
    names = sorted(
        {str(m["body"]["message"]) for m in dap.messages if m.get("event") == "godot/custom_data"}
    )
    print("DAP messages:", seen)
    print("custom_data messages:", names)


def free_display() -> int:
    number = 90
    while Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
        number += 1
    return number


def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"no DAP server on port {port}")


def stopped_continue(dap: Dap) -> None:
    """A script error stops the game in the debugger: let it go on."""
    for m in dap.messages:
        if m.get("event") == "stopped" and not m.get("_continued"):
            m["_continued"] = True
            dap.send("continue", {"threadId": 1})


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--display"]
    display = "--display" in sys.argv[1:]
    out = Path(args[0]) if args else OUT
    out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="capture-"))
    xvfb: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = {}
    if display:
        number = free_display()
        xvfb = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x720x24"])
        env["DISPLAY"] = f":{number}"
        time.sleep(1)
    editor = Editor(make_project(root, display), env=env)
    try:
        if display:
            editor.spawn()
            wait_for_port(editor.dap_port, 120)
        else:
            editor.start()
        capture(editor, out, display)
    finally:
        editor.stop()
        if xvfb is not None:
            xvfb.kill()
            xvfb.wait()
        os.environ.pop("DISPLAY", None)


def pump_continuing(dap: Dap, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        dap.pump(0.25)
        stopped_continue(dap)


def capture(editor: Editor, out: Path, display: bool) -> None:
    dap = Dap(editor.dap_port)
    dap.send("initialize", {"clientID": "capture", "adapterID": "godot"})
    dap.pump(1)
    dap.send("launch", {"scene": "res://demo/capture.tscn", "godot/custom_data": True})
    dap.send("configurationDone", {})
    deadline = time.monotonic() + 30
    while not dap.custom("set_pid") and time.monotonic() < deadline:
        dap.pump(0.5)
    pump_continuing(dap, 4)  # past frames 30 and 45: the errors
    dap.put_msg("scene:request_scene_tree", [])
    pump_continuing(dap, 2)
    tree = dap.custom("scene:scene_tree")[-1]["data"]
    ids = tree_ids(tree)
    dap.put_msg("scene:inspect_objects", [[ids["Capture"]], False])
    pump_continuing(dap, 2)
    dap.put_msg("scene:inspect_objects", [[ids["Mover"], ids["Box"]], False])
    pump_continuing(dap, 2)
    dap.put_msg("scene:inspect_object", [ids["Label"]])  # the pre-4.5 message
    pump_continuing(dap, 2)
    dap.put_msg("scene:inspect_objects", [[123456789], False])  # no such object
    pump_continuing(dap, 2)
    if display:
        dap.put_msg("scene:rq_screenshot", [7])
        pump_continuing(dap, 3)
        for shot in dap.custom("game_view:get_screenshot"):
            png = Path(shot["data"][3])
            print("screenshot", shot["data"], png.exists() and png.read_bytes()[:8])
            png.unlink(missing_ok=True)  # the game never deletes it
    dap.send("terminate", {})
    dap.pump(2)
    write_fixtures(dap, out)
    stops = [m["body"] for m in dap.messages if m.get("event") == "stopped"]
    print("stopped events:", stops)


if __name__ == "__main__":
    main()
