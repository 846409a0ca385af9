"""HTTP endpoints of the running game: `/game/tree` and `/game/node`.

What the game answers through Godot's remote debugger (docs/GAME_MESSAGES.md), shaped
for agents. The protocol work is in `godot.game.channel.GameChannel`; this module maps
the operations onto it and turns the parsed messages into answers.

Two choices agents rely on:
- **Object ids are strings** (`"26826769865"`): Godot's ids reach 2^63, beyond what a
  JSON number keeps exactly in most clients. Only ids up to 2^53 can be asked for
  (`/game/node` `id`): Godot reads the numbers of a debugger message as doubles.
- **Values are typed JSON**: `{"type": "Vector2", "value": {"x": 1.0, "y": 2.0}}`; colors
  `{r, g, b, a}`, rects `{position, size}`, transforms `{x, y, origin}` / `{basis,
  origin}` (`messages.decode_value`). An object-valued property is `{"object": true}`
  (its id does not survive Godot's DAP), a resource with a file `{"resource": path}`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from sidecar.errors import RequestError
from sidecar.godot.dap.session import DapSession
from sidecar.godot.game.channel import GameChannel
from sidecar.godot.game.messages import InspectedObject, Property, SceneNode
from sidecar.web.http import RouteTable
from sidecar.web.operation import Answer, Arguments, Caller, Method, Operation

DEFAULT_DEPTH = 3
ROOT = "/root"
_READ: tuple[Method, ...] = ("GET", "POST")
# A game that is silent (504), none at all (409), a request the game cannot take.
_GAME = ("invalid_field", "not_connected", "connection_lost", "timeout", "not_running")
_GAME_PATH_DOC = (
    "a node path in the running game: absolute (`/root/Main/Player`) or relative to "
    "`/root` (`Main/Player`)"
)


# -- arguments -----------------------------------------------------------------------


class TreeArguments(Arguments):
    path: str = Field(
        ROOT,
        min_length=1,
        description=f"the subtree's top node, {_GAME_PATH_DOC}; left out: the whole tree",
        examples=["/root/Main"],
    )
    depth: int = Field(
        DEFAULT_DEPTH,
        ge=0,
        description=f"levels of children below `path` to list (0: the node alone); "
        f"default {DEFAULT_DEPTH}. A node cut off says how many it hides in `truncated`",
        examples=[2],
    )


class NodeArguments(Arguments):
    path: str = Field(
        ROOT,
        min_length=1,
        description=f"the node, {_GAME_PATH_DOC}; left out: `/root`, or the node of `id`",
        examples=["Main/Mover"],
    )
    id: str | None = Field(
        None,
        pattern=r"^[0-9]{1,20}$",
        description="the node's (or object's) id from /game/tree, a decimal string; with "
        "`path` too, the node at `path` must have this id (404 otherwise)",
        examples=["26826769865"],
    )
    properties: str | None = Field(
        None,
        min_length=1,
        description="only these properties, comma-separated Godot names "
        "(`position,Members/speed`; a JSON body may give a list of names); left out: all",
        examples=["position,rotation"],
    )

    @field_validator("properties", mode="before")
    @classmethod
    def _names_as_text(cls, value: Any) -> Any:
        # A JSON body's list of names reads as the query's comma-separated text.
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return ",".join(value)
        return value

    def wanted(self) -> list[str] | None:
        if self.properties is None:
            return None
        return [name.strip() for name in self.properties.split(",") if name.strip()]


# -- answers -------------------------------------------------------------------------


class GameNode(Answer):
    name: str
    class_: str | None = Field(
        alias="class",
        description="the engine class, or the script's class_name; null for a node whose "
        "script has no class_name (GET /game/node tells its engine class)",
    )
    path: str
    id: str = Field(description="the object id, a decimal string (ids exceed 2^53)")
    scene_file: str | None = Field(description="set on an instanced scene's root")
    script: str | None = Field(
        None, description="the script's res:// path when the tree tells it (no class_name)"
    )
    visible: bool | None = Field(
        None, description="the node's own `visible`; left out for nodes without one"
    )
    child_count: int
    children: list[GameNode]
    truncated: int = Field(0, description="nodes below this one left out by `depth` (0: all shown)")


class TreeAnswer(Answer):
    root: GameNode = Field(description="the node at `path` and its children to `depth`")
    depth: int
    node_count: int = Field(description="nodes in the game's whole tree")
    truncated: int = Field(description="nodes of the subtree left out by `depth`")


class GameValue(Answer):
    type: str = Field(description="Godot's Variant type: int, Vector2, Color, Object, ...")
    value: Any = Field(description="the value as typed JSON (see the module's notes)")
    too_big: bool | None = Field(None, description="the game left the value out (too big)")


class PropertySection(Answer):
    category: str | None = Field(
        description="Godot's inspector section: the script file, then each class up the "
        "chain; null for the leading `Members/`, `Constants/` and `Node/` entries"
    )
    script: str | None = None
    properties: dict[str, GameValue]


class NodeAnswer(Answer):
    id: str
    class_: str = Field(alias="class", description="the engine class (Node2D), never the script")
    path: str | None = Field(description="the node's path; null for an object not in the tree")
    script: str | None
    sections: list[PropertySection] = Field(
        description="the properties grouped by inspector section, in Godot's order. Godot "
        "sends no inspector groups (only these sections), so there are none inside"
    )


# -- operations ----------------------------------------------------------------------

GAME_TREE = Operation(
    name="game_tree",
    path="/game/tree",
    methods=_READ,
    summary="the running game's scene tree (or a subtree), to a depth",
    description="Asks the game for its tree now (agents asking at the same moment share "
    "one answer). Each node: name, class, path, id (a string), scene_file, script, visible, "
    "children; a node cut off by `depth` counts what it hides in `truncated`. 409 without "
    "a game, 404 for a path not in the tree, 504 when the game does not answer.",
    arguments=TreeArguments,
    answer=TreeAnswer,
    errors=(*_GAME, "not_found", "bad_peer_message"),
    tags=("game",),
)

GAME_NODE = Operation(
    name="game_node",
    path="/game/node",
    methods=_READ,
    summary="one node of the running game and its properties, with typed values",
    description="By `path` or `id` (from /game/tree; neither: `/root`); `properties` keeps "
    "only the named ones. Values are typed JSON: a Vector2 is {x, y}, a Color {r, g, b, a}, "
    "an object {object: true} (its id does not survive Godot's debugger). 409 without a game, 404 "
    "for a node that does not exist, 504 when the game does not answer.",
    arguments=NodeArguments,
    answer=NodeAnswer,
    errors=(*_GAME, "not_found", "bad_peer_message"),
    tags=("game",),
)

OPERATIONS: tuple[Operation[Any], ...] = (GAME_TREE, GAME_NODE)


def register(routes: RouteTable, session: DapSession) -> None:
    """Serve the game operations on the session's game channel."""
    game = _Game(session)
    routes.serve(GAME_TREE, game.tree)
    routes.serve(GAME_NODE, game.node)


# -- shaping -------------------------------------------------------------------------


def absolute(path: str) -> str:
    """`Main/Player` → `/root/Main/Player`; trailing slashes do not matter."""
    path = path.rstrip("/") or "/"
    return path if path.startswith("/") else f"{ROOT}/{path}"


def node_json(node: SceneNode, depth: int) -> tuple[dict[str, Any], int]:
    """A node with its children to `depth`, and how many nodes below were left out."""
    shown: dict[str, Any] = {
        "name": node.name,
        "class": node.class_name,
        "path": node.path,
        "id": str(node.object_id),
        "scene_file": node.scene_file,
        "child_count": len(node.children),
        "children": [],
    }
    if node.script is not None:
        shown["script"] = node.script
    if node.visible is not None:
        shown["visible"] = node.visible
    if depth == 0:
        hidden = len(node.walk()) - 1
        if hidden:
            shown["truncated"] = hidden
        return shown, hidden
    left_out = 0
    for child in node.children:
        child_json, hidden = node_json(child, depth - 1)
        shown["children"].append(child_json)
        left_out += hidden
    return shown, left_out


def value_json(prop: Property) -> dict[str, Any]:
    shown: dict[str, Any] = {"type": prop.type_name, "value": prop.value}
    if prop.too_big:
        shown["too_big"] = True
    return shown


def object_json(obj: InspectedObject, wanted: list[str] | None) -> dict[str, Any]:
    """The object with its properties in Godot's inspector sections (only `wanted` ones)."""
    sections: list[dict[str, Any]] = []
    for prop in obj.properties:
        if wanted is not None and prop.name not in wanted:
            continue
        if not sections or sections[-1]["category"] != prop.category:
            section: dict[str, Any] = {"category": prop.category, "properties": {}}
            if prop.category is not None and prop.category == _script_category(obj):
                section["script"] = obj.script
            sections.append(section)
        sections[-1]["properties"][prop.name] = value_json(prop)
    path = obj.node_path
    return {
        "id": str(obj.object_id),
        "class": obj.class_name,
        "path": path if path is not None and path.startswith("/") else None,
        "script": obj.script,
        "sections": sections,
    }


def _script_category(obj: InspectedObject) -> str | None:
    """The section the script's own properties sit under: the first one, with a script."""
    if obj.script is None or not obj.categories:
        return None
    return obj.categories[0]


class _Game:
    def __init__(self, session: DapSession) -> None:
        self.session = session
        self.channel: GameChannel = session.game_channel

    def _require_connected(self) -> None:
        # Without the debug adapter there is no telling whether a game runs: 503, not 409.
        if not self.session.peer.connected:
            raise self.session.peer.unavailable()

    async def tree(self, args: TreeArguments, caller: Caller) -> Any:
        self._require_connected()
        whole = await self.channel.tree(caller.identity)
        top = self._find(whole, args.path)
        root, left_out = node_json(top, args.depth)
        return {
            "root": root,
            "depth": args.depth,
            "node_count": len(whole.walk()),
            "truncated": left_out,
        }

    async def node(self, args: NodeArguments, caller: Caller) -> Any:
        self._require_connected()
        by_path = args.id is None or "path" in args.model_fields_set
        object_id = int(args.id) if args.id is not None else 0
        if by_path:
            whole = await self.channel.tree(caller.identity)
            found_id = self._find(whole, args.path).object_id
            if args.id is not None and found_id != object_id:
                raise RequestError(
                    f"the node at {absolute(args.path)!r} has id {found_id}, not {object_id}",
                    code="not_found",
                    details={"field": "id"},
                )
            object_id = found_id
        found = await self.channel.inspect(caller.identity, object_id)
        if found is None:
            raise RequestError(
                f"the game has no object with id {object_id} (any more)",
                code="not_found",
                details={"field": "path" if by_path else "id"},
            )
        return object_json(found, args.wanted())

    @staticmethod
    def _find(tree: SceneNode, path: str) -> SceneNode:
        node = tree.find(absolute(path))
        if node is None:
            raise RequestError(
                f"no node at {absolute(path)!r} in the running game (GET /game/tree lists them)",
                code="not_found",
                details={"field": "path"},
            )
        return node
