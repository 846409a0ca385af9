"""Typed readers for the running game's remote-debugger messages.

Godot forwards every message of the launched game to a DAP client that launched with
`"godot/custom_data": true`, as a `godot/custom_data` event whose body is
`{"message": <name>, "data": [...]}`. The editor turns the game's binary Variants into
JSON with Godot's JSON writer on the way, so:

- numbers, bools, strings, arrays (packed ones too) and dictionaries stay JSON;
- every other Variant arrives as its `str()`: Vector2 `"(3.0, 4.0)"`, Color
  `"(0.25, 0.5, 0.75, 1.0)"`, Rect2 `"[P: (1.0, 2.0), S: (3.0, 4.0)]"`, Transform3D
  `"[X: (...), Y: (...), Z: (...), O: (...)]"`, NodePath/StringName the plain text;
- an Object property arrives as `"<EncodedObjectAsID#-9223370461071472709>"`: the id
  of the editor's temporary wrapper, NOT the game object's id (that one is lost);
  a resource with a file arrives as its `res://` path; null as null.

Layouts verified against Godot 4.6.3 (see docs/GAME_MESSAGES.md and the fixtures in
tests/fixtures/game_messages/, captured by tools/capture_game_messages.py). Each
`parse_*` takes the event's `data` and raises `MalformedMessage` naming the message
and the place when the layout is not the one expected.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sidecar.errors import ProtocolError

SCENE_TREE = "scene:scene_tree"
INSPECT_OBJECTS = "scene:inspect_objects"  # Godot 4.5+: [[id, class, props], ...]
INSPECT_OBJECT = "scene:inspect_object"  # before 4.5 (still answered by 4.6): [id, class, props]
ERROR = "error"
PROFILE_FRAME = "performance:profile_frame"
PROFILE_NAMES = "performance:profile_names"
SCREENSHOT = "game_view:get_screenshot"  # the answer to `scene:rq_screenshot [request id]`


class MalformedMessage(ProtocolError):
    """A game message whose layout is not the one this Godot version should send."""

    def __init__(self, message: str, where: str, problem: str) -> None:
        super().__init__(
            f"malformed '{message}' message from the game at {where}: {problem}",
            details={"godot_message": message, "at": where},
        )


# --- Variant types (Godot 4's Variant::Type, unchanged from 4.0 to 4.6) -----------------

VARIANT_TYPES: tuple[str, ...] = (
    "Nil", "bool", "int", "float", "String", "Vector2", "Vector2i", "Rect2", "Rect2i",
    "Vector3", "Vector3i", "Transform2D", "Vector4", "Vector4i", "Plane", "Quaternion",
    "AABB", "Basis", "Transform3D", "Projection", "Color", "StringName", "NodePath", "RID",
    "Object", "Callable", "Signal", "Dictionary", "Array", "PackedByteArray",
    "PackedInt32Array", "PackedInt64Array", "PackedFloat32Array", "PackedFloat64Array",
    "PackedStringArray", "PackedVector2Array", "PackedVector3Array", "PackedColorArray",
    "PackedVector4Array",
)  # fmt: skip

# Property usage flags (core/object/object.h) that mark inspector sections, not values.
USAGE_GROUP = 64
USAGE_CATEGORY = 128
USAGE_SUBGROUP = 256
# PROPERTY_HINT_OBJECT_TOO_BIG: the game left the value out (over its size limit).
HINT_OBJECT_TOO_BIG = 25

ENCODED_OBJECT = re.compile(r"^<EncodedObjectAsID#(-?\d+)>$")
_NUMBER = re.compile(r"-?(?:inf|nan|\d+(?:\.\d*)?(?:e[-+]?\d+)?)", re.IGNORECASE)

# How many numbers each string-encoded math type holds, and what they are called.
_AXES2 = ("x", "y")
_AXES3 = ("x", "y", "z")
_AXES4 = ("x", "y", "z", "w")
_INT_TYPES = {"Vector2i", "Vector3i", "Vector4i", "Rect2i"}


def type_name(variant_type: int) -> str:
    """Godot's name for a Variant type number (`"Vector2"` for 5)."""
    if 0 <= variant_type < len(VARIANT_TYPES):
        return VARIANT_TYPES[variant_type]
    return f"type{variant_type}"


def _numbers(text: str, count: int, integers: bool) -> list[float] | None:
    found = _NUMBER.findall(text)
    if len(found) != count:
        return None
    if integers:
        return [int(n) for n in found]
    return [float(n) for n in found]


def _vec(values: Sequence[float], names: Sequence[str]) -> dict[str, float]:
    return dict(zip(names, values, strict=True))


def decode_value(variant_type: int, value: Any) -> Any:
    """A value as JSON with structure: vectors `{x, y}`, colors `{r, g, b, a}`, rects
    `{position, size}`, transforms `{x, y, origin}` / `{basis, origin}`; objects
    `{"object": true}` (their id does not survive the DAP), resources `{"resource": path}`.

    A value whose text does not have the expected shape is returned as Godot sent it:
    a newer Godot's format must not make the whole object unreadable.
    """
    name = type_name(variant_type)
    if name == "Object":
        return _decode_object(value)
    if name.startswith("Packed") and name.endswith(("Vector2Array", "Vector3Array")):
        element = 5 if "Vector2" in name else 9
        return [decode_value(element, v) for v in value] if isinstance(value, list) else value
    if name == "PackedColorArray" and isinstance(value, list):
        return [decode_value(20, v) for v in value]
    if name == "PackedVector4Array" and isinstance(value, list):
        return [decode_value(12, v) for v in value]
    if not isinstance(value, str):
        return value
    decoded = _decode_math(name, value)
    return value if decoded is None else decoded


def _decode_object(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        if value.startswith(("res://", "uid://", "user://")):
            return {"resource": value}
        if ENCODED_OBJECT.match(value):
            return {"object": True}
    return value


def _decode_math(name: str, text: str) -> Any:
    ints = name in _INT_TYPES
    shapes: dict[str, tuple[int, Any]] = {
        "Vector2": (2, lambda n: _vec(n, _AXES2)),
        "Vector2i": (2, lambda n: _vec(n, _AXES2)),
        "Vector3": (3, lambda n: _vec(n, _AXES3)),
        "Vector3i": (3, lambda n: _vec(n, _AXES3)),
        "Vector4": (4, lambda n: _vec(n, _AXES4)),
        "Vector4i": (4, lambda n: _vec(n, _AXES4)),
        "Quaternion": (4, lambda n: _vec(n, _AXES4)),
        "Color": (4, lambda n: _vec(n, ("r", "g", "b", "a"))),
        "Plane": (4, lambda n: {"normal": _vec(n[:3], _AXES3), "d": n[3]}),
        "Rect2": (4, lambda n: {"position": _vec(n[:2], _AXES2), "size": _vec(n[2:], _AXES2)}),
        "Rect2i": (4, lambda n: {"position": _vec(n[:2], _AXES2), "size": _vec(n[2:], _AXES2)}),
        "AABB": (6, lambda n: {"position": _vec(n[:3], _AXES3), "size": _vec(n[3:], _AXES3)}),
        "Transform2D": (6, _transform2d),
        "Basis": (9, _basis),
        "Transform3D": (12, lambda n: {"basis": _basis(n[:9]), "origin": _vec(n[9:], _AXES3)}),
        "Projection": (16, _projection),
    }  # fmt: skip
    shape = shapes.get(name)
    if shape is None:
        return None
    count, build = shape
    numbers = _numbers(text, count, ints)
    return None if numbers is None else build(numbers)


def _transform2d(n: Sequence[float]) -> dict[str, Any]:
    return {"x": _vec(n[0:2], _AXES2), "y": _vec(n[2:4], _AXES2), "origin": _vec(n[4:6], _AXES2)}


def _projection(n: Sequence[float]) -> dict[str, Any]:
    return {axis: _vec(n[4 * i : 4 * i + 4], _AXES4) for i, axis in enumerate(_AXES4)}


def _basis(n: Sequence[float]) -> dict[str, Any]:
    return {axis: _vec(n[3 * i : 3 * i + 3], _AXES3) for i, axis in enumerate(_AXES3)}


# --- small checks ------------------------------------------------------------------------


def _list(message: str, where: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedMessage(message, where, f"expected an array, got {_kind(value)}")
    return value


def _int(message: str, where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedMessage(message, where, f"expected an integer, got {_kind(value)}")
    return value


def _str(message: str, where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise MalformedMessage(message, where, f"expected a string, got {_kind(value)}")
    return value


def _bool(message: str, where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise MalformedMessage(message, where, f"expected a boolean, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# --- scene:scene_tree ----------------------------------------------------------------------

# RemoteNode::ViewFlags (scene/debugger/scene_debugger.h, 4.5+), read off the wire too:
# visible Node2D → 14, hidden ColorRect → 2, the root Window → 0.
VIEW_HAS_VISIBLE_METHOD = 1 << 1
VIEW_VISIBLE = 1 << 2
VIEW_VISIBLE_IN_TREE = 1 << 3


@dataclass(frozen=True)
class SceneNode:
    """One node of the running game's tree.

    Godot sends one type field: the script's `class_name` if it has one, else the
    script's path if the node has a script, else the engine class. So `class_name` is
    the engine class only for nodes without a script; `script` is set only for a script
    without `class_name` (ask `scene:inspect_objects` for the rest).
    """

    name: str
    type_name: str
    object_id: int
    path: str
    scene_file: str | None
    view_flags: int | None  # None: a Godot before 4.5 sends none
    children: tuple[SceneNode, ...] = field(default=(), repr=False)

    @property
    def script(self) -> str | None:
        return self.type_name if self.type_name.startswith(("res://", "uid://")) else None

    @property
    def class_name(self) -> str | None:
        return None if self.script is not None else self.type_name

    @property
    def visible(self) -> bool | None:
        """The node's own `visible`; None for nodes that have none (Node, the root)."""
        if self.view_flags is None or not self.view_flags & VIEW_HAS_VISIBLE_METHOD:
            return None
        return bool(self.view_flags & VIEW_VISIBLE)

    @property
    def visible_in_tree(self) -> bool | None:
        if self.view_flags is None or not self.view_flags & VIEW_HAS_VISIBLE_METHOD:
            return None
        return bool(self.view_flags & VIEW_VISIBLE_IN_TREE)

    def walk(self) -> list[SceneNode]:
        """This node and all below it, depth first (the order Godot sends them in)."""
        nodes: list[SceneNode] = []
        stack: list[SceneNode] = [self]
        while stack:  # no recursion: a game's tree may be thousands of levels deep
            node = stack.pop()
            nodes.append(node)
            stack.extend(reversed(node.children))
        return nodes

    def find(self, path: str) -> SceneNode | None:
        return next((n for n in self.walk() if n.path == path), None)


def parse_scene_tree(data: Any, *, view_flags: bool | None = None) -> SceneNode:
    """The tree from a `scene:scene_tree` answer to `scene:request_scene_tree`.

    Godot flattens it depth first, per node `[child_count, name, type, object_id,
    scene_file_path]` plus `view_flags` since 4.5. `view_flags=None` tells the two
    layouts apart by which one reads the whole array; say True/False when the Godot
    version is known.
    """
    items = _list(SCENE_TREE, "data", data)
    if not items:
        raise MalformedMessage(SCENE_TREE, "data", "the tree is empty (no root)")
    strides = (6, 5) if view_flags is None else ((6,) if view_flags else (5,))
    first: MalformedMessage | None = None
    for stride in strides:
        try:
            return _read_tree(items, stride)
        except MalformedMessage as err:
            first = first or err
    assert first is not None
    raise first


def _read_tree(items: list[Any], stride: int) -> SceneNode:
    root, end = _read_node(items, 0, stride, "")
    if end != len(items):
        raise MalformedMessage(
            SCENE_TREE, f"data[{end}]", f"{len(items) - end} items left after the root's subtree"
        )
    return root


def _read_node(items: list[Any], start: int, stride: int, parent: str) -> tuple[SceneNode, int]:
    # Depth-first recursion mirrors Godot's own reader; an explicit stack keeps a deep
    # tree (thousands of levels) from hitting Python's recursion limit.
    pending: list[tuple[dict[str, Any], int, list[SceneNode]]] = []
    index = start
    head = _read_fields(items, index, stride)
    head["path"] = f"{parent}/{head['name']}"
    index += stride
    pending.append((head, head.pop("child_count"), []))
    while True:
        fields, remaining, children = pending[-1]
        if remaining == len(children):
            pending.pop()
            node = SceneNode(children=tuple(children), **fields)
            if not pending:
                return node, index
            pending[-1][2].append(node)
            continue
        child = _read_fields(items, index, stride)
        child["path"] = f"{fields['path']}/{child['name']}"
        index += stride
        pending.append((child, child.pop("child_count"), []))


def _read_fields(items: list[Any], at: int, stride: int) -> dict[str, Any]:
    if at + stride > len(items):
        raise MalformedMessage(
            SCENE_TREE, f"data[{at}]", f"a node needs {stride} items, {len(items) - at} left"
        )
    child_count, name, type_name, object_id, scene_file = items[at : at + 5]
    view_flags = items[at + 5] if stride == 6 else None
    # Checked in one go; only a bad node pays for naming the item that is wrong (a tree
    # has thousands of nodes and is read on every request).
    if not (
        _is_int(child_count)
        and child_count >= 0
        and isinstance(name, str)
        and isinstance(type_name, str)
        and _is_int(object_id)
        and isinstance(scene_file, str)
        and (view_flags is None or _is_int(view_flags))
    ):
        _explain_bad_node(items, at, stride)
    return {
        "child_count": child_count,
        "name": name,
        "type_name": type_name,
        "object_id": object_id,
        "scene_file": scene_file or None,
        "view_flags": view_flags,
    }


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _explain_bad_node(items: list[Any], at: int, stride: int) -> None:
    """Raise the MalformedMessage naming the first wrong item of the node at `at`."""

    def where(i: int) -> str:
        return f"data[{at + i}]"

    child_count = _int(SCENE_TREE, where(0), items[at])
    if child_count < 0:
        raise MalformedMessage(SCENE_TREE, where(0), f"negative child count {child_count}")
    _str(SCENE_TREE, where(1), items[at + 1])
    _str(SCENE_TREE, where(2), items[at + 2])
    _int(SCENE_TREE, where(3), items[at + 3])
    _str(SCENE_TREE, where(4), items[at + 4])
    if stride == 6:
        _int(SCENE_TREE, where(5), items[at + 5])


# --- scene:inspect_objects / scene:inspect_object -------------------------------------------


@dataclass(frozen=True)
class Property:
    """One row of the game's inspector: Godot's PropertyInfo and the value."""

    name: str
    type: int  # Variant::Type
    hint: int
    hint_string: str
    usage: int
    raw: Any  # the value as it came through the DAP
    category: str | None  # the inspector section (class or script file) it sits under
    # The inspector group inside that section. Godot 4.6 sends no group rows (they lack
    # PROPERTY_USAGE_EDITOR, which the game's filter keeps), so this is None there.
    group: str | None

    @property
    def type_name(self) -> str:
        return type_name(self.type)

    @property
    def value(self) -> Any:
        return decode_value(self.type, self.raw)

    @property
    def too_big(self) -> bool:
        """The game left the value out: bigger than its limit for debugger messages."""
        return self.hint == HINT_OBJECT_TOO_BIG


@dataclass(frozen=True)
class InspectedObject:
    object_id: int
    class_name: str  # the engine class (Node2D), never the script
    properties: tuple[Property, ...]
    script: str | None  # the script's res:// path, from its inspector section
    categories: tuple[str, ...]

    @property
    def node_path(self) -> str | None:
        """The node's path in the tree (`Node/path`), `"[Orphan]"` outside it; None if
        the object is not a node."""
        prop = self.get("Node/path")
        return None if prop is None else str(prop.raw)

    def get(self, name: str) -> Property | None:
        return next((p for p in self.properties if p.name == name), None)


def parse_inspect_objects(data: Any) -> list[InspectedObject]:
    """The objects of a `scene:inspect_objects` answer (Godot 4.5+).

    Asked with `put_msg "scene:inspect_objects" [[id, ...], false]` (false: do not
    change the game's own selection). An unknown id gets no answer under this name
    but `remote_selection_invalidated [[ids]]` and `remote_nothing_selected []` (or
    `remote_objects_selected` with the ones that exist) instead.
    """
    items = _list(INSPECT_OBJECTS, "data", data)
    return [
        _read_object(INSPECT_OBJECTS, _list(INSPECT_OBJECTS, f"data[{i}]", obj), f"data[{i}]")
        for i, obj in enumerate(items)
    ]


def parse_inspect_object(data: Any) -> InspectedObject | None:
    """The object of a `scene:inspect_object` answer (before 4.5; 4.6 still answers it).

    Asked with `put_msg "scene:inspect_object" [id]`; an unknown id answers `[]` (None).
    """
    items = _list(INSPECT_OBJECT, "data", data)
    if not items:
        return None
    return _read_object(INSPECT_OBJECT, items, "data")


def _read_object(message: str, items: list[Any], where: str) -> InspectedObject:
    if len(items) < 3:
        raise MalformedMessage(
            message, where, f"[id, class, properties] needs 3 items, got {len(items)}"
        )
    object_id = _int(message, f"{where}[0]", items[0])
    class_name = _str(message, f"{where}[1]", items[1])
    rows = _list(message, f"{where}[2]", items[2])
    properties: list[Property] = []
    categories: list[str] = []
    script: str | None = None
    category: str | None = None
    group: tuple[str, str] | None = None  # (label, name prefix)
    for i, row in enumerate(rows):
        prop = _read_property(message, f"{where}[2][{i}]", row)
        name, usage, hint_string = prop["name"], prop["usage"], prop["hint_string"]
        if usage & USAGE_CATEGORY:
            category, group = name, None
            categories.append(name)
            if hint_string.startswith(("res://", "uid://")) and script is None:
                script = hint_string
            continue
        if usage & (USAGE_GROUP | USAGE_SUBGROUP):
            group = (name, hint_string)
            continue
        if group is not None and group[1] and not name.startswith(group[1]):
            group = None  # a group covers only the names with its prefix
        properties.append(Property(category=category, group=group and group[0], **prop))
    return InspectedObject(object_id, class_name, tuple(properties), script, tuple(categories))


def _read_property(message: str, where: str, row: Any) -> dict[str, Any]:
    cells = _list(message, where, row)
    if len(cells) != 6:
        raise MalformedMessage(
            message,
            where,
            f"[name, type, hint, hint_string, usage, value] needs 6 items, got {len(cells)}",
        )
    return {
        "name": _str(message, f"{where}[0]", cells[0]),
        "type": _int(message, f"{where}[1]", cells[1]),
        "hint": _int(message, f"{where}[2]", cells[2]),
        "hint_string": _str(message, f"{where}[3]", cells[3]),
        "usage": _int(message, f"{where}[4]", cells[4]),
        "raw": cells[5],
    }


# --- error ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackFrame:
    file: str
    function: str
    line: int


@dataclass(frozen=True)
class GameError:
    """A runtime error or warning of the game (`push_error`, a failed engine check, a
    script error).

    `source_*` name where it was raised: the engine's C++ file for `push_error` and
    engine checks, the script for a GDScript error. `stack` is the script stack at that
    moment, innermost first; its first frame is the `res://` line to show an agent.
    """

    uptime_ms: int  # since the game started (hour/min/sec/msec of OS ticks, not a clock)
    source_file: str
    function: str
    line: int
    message: str
    description: str
    is_warning: bool
    stack: tuple[StackFrame, ...]

    @property
    def script_location(self) -> StackFrame | None:
        """Where in the project's scripts: the innermost script frame, else the source
        when it is a script itself."""
        if self.stack:
            return self.stack[0]
        if self.source_file.startswith("res://"):
            return StackFrame(self.source_file, self.function, self.line)
        return None


def parse_error(data: Any) -> GameError:
    """An `error` message: `[hour, min, sec, msec, source_file, source_func, source_line,
    error, error_descr, is_warning, 3 * frames, (file, func, line) * frames]`."""
    items = _list(ERROR, "data", data)
    if len(items) < 11:
        raise MalformedMessage(ERROR, "data", f"needs at least 11 items, got {len(items)}")
    hour, minute, sec, msec = (_int(ERROR, f"data[{i}]", items[i]) for i in range(4))
    stack_size = _int(ERROR, "data[10]", items[10])
    if stack_size < 0 or stack_size % 3 or 11 + stack_size != len(items):
        raise MalformedMessage(
            ERROR,
            "data[10]",
            f"stack size {stack_size} does not match the {len(items) - 11} items after it",
        )
    stack = tuple(
        StackFrame(
            _str(ERROR, f"data[{at}]", items[at]),
            _str(ERROR, f"data[{at + 1}]", items[at + 1]),
            _int(ERROR, f"data[{at + 2}]", items[at + 2]),
        )
        for at in range(11, 11 + stack_size, 3)
    )
    return GameError(
        uptime_ms=((hour * 60 + minute) * 60 + sec) * 1000 + msec,
        source_file=_str(ERROR, "data[4]", items[4]),
        function=_str(ERROR, "data[5]", items[5]),
        line=_int(ERROR, "data[6]", items[6]),
        message=_str(ERROR, "data[7]", items[7]),
        description=_str(ERROR, "data[8]", items[8]),
        is_warning=_bool(ERROR, "data[9]", items[9]),
        stack=stack,
    )


# --- performance:profile_frame ------------------------------------------------------------

# Performance.Monitor of Godot 4.6 in order, lower-cased (read from the 4.6.3 binary with
# ClassDB.class_get_enum_constants("Performance", "Monitor")): the game sends
# MONITOR_MAX (59) values, then one per custom monitor. Other versions have other lists.
MONITORS_4_6: tuple[str, ...] = tuple(
    name.lower()
    for name in (
        "TIME_FPS TIME_PROCESS TIME_PHYSICS_PROCESS TIME_NAVIGATION_PROCESS MEMORY_STATIC "
        "MEMORY_STATIC_MAX MEMORY_MESSAGE_BUFFER_MAX OBJECT_COUNT OBJECT_RESOURCE_COUNT "
        "OBJECT_NODE_COUNT OBJECT_ORPHAN_NODE_COUNT RENDER_TOTAL_OBJECTS_IN_FRAME "
        "RENDER_TOTAL_PRIMITIVES_IN_FRAME RENDER_TOTAL_DRAW_CALLS_IN_FRAME RENDER_VIDEO_MEM_USED "
        "RENDER_TEXTURE_MEM_USED RENDER_BUFFER_MEM_USED PHYSICS_2D_ACTIVE_OBJECTS "
        "PHYSICS_2D_COLLISION_PAIRS PHYSICS_2D_ISLAND_COUNT PHYSICS_3D_ACTIVE_OBJECTS "
        "PHYSICS_3D_COLLISION_PAIRS PHYSICS_3D_ISLAND_COUNT AUDIO_OUTPUT_LATENCY "
        "NAVIGATION_ACTIVE_MAPS NAVIGATION_REGION_COUNT NAVIGATION_AGENT_COUNT "
        "NAVIGATION_LINK_COUNT NAVIGATION_POLYGON_COUNT NAVIGATION_EDGE_COUNT "
        "NAVIGATION_EDGE_MERGE_COUNT NAVIGATION_EDGE_CONNECTION_COUNT NAVIGATION_EDGE_FREE_COUNT "
        "NAVIGATION_OBSTACLE_COUNT PIPELINE_COMPILATIONS_CANVAS PIPELINE_COMPILATIONS_MESH "
        "PIPELINE_COMPILATIONS_SURFACE PIPELINE_COMPILATIONS_DRAW "
        "PIPELINE_COMPILATIONS_SPECIALIZATION NAVIGATION_2D_ACTIVE_MAPS "
        "NAVIGATION_2D_REGION_COUNT NAVIGATION_2D_AGENT_COUNT NAVIGATION_2D_LINK_COUNT "
        "NAVIGATION_2D_POLYGON_COUNT NAVIGATION_2D_EDGE_COUNT NAVIGATION_2D_EDGE_MERGE_COUNT "
        "NAVIGATION_2D_EDGE_CONNECTION_COUNT NAVIGATION_2D_EDGE_FREE_COUNT "
        "NAVIGATION_2D_OBSTACLE_COUNT NAVIGATION_3D_ACTIVE_MAPS NAVIGATION_3D_REGION_COUNT "
        "NAVIGATION_3D_AGENT_COUNT NAVIGATION_3D_LINK_COUNT NAVIGATION_3D_POLYGON_COUNT "
        "NAVIGATION_3D_EDGE_COUNT NAVIGATION_3D_EDGE_MERGE_COUNT "
        "NAVIGATION_3D_EDGE_CONNECTION_COUNT NAVIGATION_3D_EDGE_FREE_COUNT "
        "NAVIGATION_3D_OBSTACLE_COUNT"
    ).split()
)


@dataclass(frozen=True)
class PerformanceFrame:
    """One `performance:profile_frame`: the monitors' values, about once a second.

    A custom monitor whose value is not a number arrives as null (None).
    """

    values: tuple[float | None, ...]

    def named(
        self, builtin: Sequence[str] = MONITORS_4_6, custom: Sequence[str] = ()
    ) -> dict[str, float | None]:
        """Values by monitor name: the built-in names of the game's Godot version, then the
        custom monitors' names (from `performance:profile_names`); unnamed values get
        `monitor_<index>`."""
        names = list(builtin) + list(custom)
        return {
            (names[i] if i < len(names) else f"monitor_{i}"): value
            for i, value in enumerate(self.values)
        }


def parse_profile_frame(data: Any) -> PerformanceFrame:
    items = _list(PROFILE_FRAME, "data", data)
    values: list[float | None] = []
    for i, item in enumerate(items):
        if item is None:
            values.append(None)
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            values.append(float(item))
        else:
            raise MalformedMessage(
                PROFILE_FRAME, f"data[{i}]", f"expected a number, got {_kind(item)}"
            )
    return PerformanceFrame(tuple(values))


def parse_profile_names(data: Any) -> tuple[str, ...]:
    """The custom monitors' names of a `performance:profile_names` message: 4.6 sends
    `[names, types]`, older versions `names` alone (read from Godot's source, not yet
    seen on the wire here: the demo adds no custom monitor)."""
    items = _list(PROFILE_NAMES, "data", data)
    if len(items) == 2 and all(isinstance(i, list) for i in items):
        items = items[0]
    return tuple(_str(PROFILE_NAMES, f"data[{i}]", name) for i, name in enumerate(items))


# --- game_view:get_screenshot ---------------------------------------------------------------


@dataclass(frozen=True)
class Screenshot:
    """The game's answer to `put_msg "scene:rq_screenshot" [request_id]` (recent 4.x).

    The game saves a PNG in its own temp directory (OS.get_temp_path(): TMPDIR or /tmp,
    `scr-<datetime><usec>.png`) and sends the path; it never deletes the file. A headless
    game cannot: it answers an `error` "Cannot get an image from a viewport texture of
    the main screen" instead, and no screenshot message.
    """

    request_id: int  # as sent; Godot's JSON reader made it a float on the way in
    width: int
    height: int
    png_path: str


def parse_screenshot(data: Any) -> Screenshot:
    items = _list(SCREENSHOT, "data", data)
    if len(items) != 4:
        raise MalformedMessage(
            SCREENSHOT, "data", f"[id, width, height, path] needs 4 items, got {len(items)}"
        )
    request = items[0]
    if isinstance(request, float) and request.is_integer():
        request = int(request)
    return Screenshot(
        request_id=_int(SCREENSHOT, "data[0]", request),
        width=_int(SCREENSHOT, "data[1]", items[1]),
        height=_int(SCREENSHOT, "data[2]", items[2]),
        png_path=_str(SCREENSHOT, "data[3]", items[3]),
    )
