"""/game/tree and /game/node against a real headless editor, its sidecar and the launched
demo game (demo/main.tscn: `Main` with main.gd, and `Mover`, a Node2D that moves)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from harness import (
    Editor,
    call_json,
    ok_json,
    query,
    wait_connected,
    wait_for_main,
)

from sidecar.api.game import absolute, node_json
from sidecar.errors import PeerTimeout, RequestError
from sidecar.godot.game import channel as channel_module
from sidecar.godot.game.channel import GameChannel
from sidecar.godot.game.messages import parse_scene_tree

MAIN = "res://demo/main.gd"
MOVER = "res://demo/mover.gd"


@pytest.fixture
def game(editor: Editor) -> Iterator[Editor]:
    """The demo game, launched through the bridge, ended afterwards."""
    wait_connected(editor)
    ok_json(editor, "POST", "/debug/launch", {})
    try:
        wait_for_main(editor)
        yield editor
    finally:
        call_json(editor, "POST", "/debug/terminate", {})
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # the next test may want no game
            if call_json(editor, "GET", "/game/tree")[0] == 409:
                break
            time.sleep(0.2)


def child(node: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in node["children"] if c["name"] == name)


def prop(answer: dict[str, Any], name: str) -> dict[str, Any]:
    for section in answer["sections"]:
        if name in section["properties"]:
            return section["properties"][name]  # type: ignore[no-any-return]
    raise AssertionError(f"no property {name!r} in {answer}")


def test_issue_13_no_game_is_409(editor: Editor) -> None:
    wait_connected(editor)
    for path in ("/game/tree", "/game/node?path=Main"):
        status, answer = call_json(editor, "GET", path)
        assert status == 409, answer
        assert answer["error"]["code"] == "not_running"
    # Without the debug adapter nobody knows whether a game runs: 503, as on /debug/*.
    ok_json(editor, "POST", "/disconnect", {"service": "dap"})
    try:
        status, answer = call_json(editor, "GET", "/game/tree")
        assert (status, answer["error"]["code"]) == (503, "not_connected"), answer
    finally:
        ok_json(editor, "POST", "/connect", {"service": "dap"})
        wait_connected(editor)


def test_issue_13_tree_has_the_demo_nodes_and_scripts(game: Editor) -> None:
    tree = ok_json(game, "GET", "/game/tree")
    root = tree["root"]
    assert (root["name"], root["path"], root["class"]) == ("root", "/root", "Window")
    assert tree["depth"] == 3 and tree["truncated"] == 0
    main = child(root, "Main")
    assert main["path"] == "/root/Main" and main["script"] == MAIN
    assert main["class"] is None  # main.gd has no class_name: the tree tells only the script
    assert int(main["id"]) > 0 and isinstance(main["id"], str)
    mover = child(main, "Mover")
    assert mover["path"] == "/root/Main/Mover" and mover["script"] == MOVER
    assert mover["visible"] is True
    assert mover["children"] == [] and mover["child_count"] == 0
    assert tree["node_count"] >= 3


def test_issue_13_tree_depth_and_path_limit_it(game: Editor) -> None:
    top = ok_json(game, "GET", query("/game/tree", depth=0))
    assert top["root"]["children"] == [] and top["root"]["child_count"] >= 1
    assert top["root"]["truncated"] == top["truncated"] == top["node_count"] - 1
    one = ok_json(game, "POST", "/game/tree", {"depth": 1})
    main = child(one["root"], "Main")
    assert main["children"] == [] and main["truncated"] == 4 and main["child_count"] == 4
    for spelling in ("Main", "/root/Main", "/root/Main/"):
        sub = ok_json(game, "GET", query("/game/tree", path=spelling, depth=1))
        assert sub["root"]["path"] == "/root/Main"
        assert [c["name"] for c in sub["root"]["children"]] == [
            "Mover",
            "Errors",
            "Marker",
            "Controlled",
        ]
    status, answer = call_json(game, "GET", query("/game/tree", path="Main/Nope"))
    assert status == 404 and answer["error"]["code"] == "not_found", answer
    status, answer = call_json(game, "GET", query("/game/tree", depth=-1))
    assert status == 400 and answer["error"]["field"] == "depth", answer


def test_issue_13_node_properties_are_typed(game: Editor) -> None:
    node = ok_json(game, "GET", query("/game/node", path="Main/Mover"))
    assert node["class"] == "Node2D" and node["path"] == "/root/Main/Mover"
    assert node["script"] == MOVER
    categories = [s["category"] for s in node["sections"]]
    assert categories[0] is None and "Node2D" in categories and "Node" in categories
    assert next(s for s in node["sections"] if s.get("script") == MOVER)["category"] == ("mover.gd")
    assert prop(node, "speed") == {"type": "float", "value": 60.0}
    position = prop(node, "position")
    assert position["type"] == "Vector2" and set(position["value"]) == {"x", "y"}
    assert position["value"]["y"] == 20.0
    assert prop(node, "visible") == {"type": "bool", "value": True}
    assert prop(node, "Node/path")["value"] == "/root/Main/Mover"
    # By id, and only the properties asked for.
    tree = ok_json(game, "GET", query("/game/tree", path="Main/Mover", depth=0))
    by_id = ok_json(
        game, "POST", "/game/node", {"id": tree["root"]["id"], "properties": ["position"]}
    )
    assert by_id["id"] == tree["root"]["id"] == node["id"]
    assert [list(s["properties"]) for s in by_id["sections"]] == [["position"]]
    both = {"id": node["id"], "path": "/root/Main/Mover", "properties": "position,speed"}
    picked = ok_json(game, "GET", query("/game/node", **both))
    assert [n for s in picked["sections"] for n in s["properties"]] == ["speed", "position"]
    root = ok_json(game, "GET", "/game/node")
    assert (root["class"], root["path"]) == ("Window", "/root")


def mover_x(game: Editor) -> float:
    node = ok_json(game, "POST", "/game/node", {"path": "/root/Main/Mover"})
    return float(prop(node, "position")["value"]["x"])


def test_issue_13_position_changes_while_the_game_runs(game: Editor) -> None:
    first = mover_x(game)
    time.sleep(0.5)
    assert mover_x(game) > first


def test_issue_13_node_errors(game: Editor) -> None:
    cases = [
        ({"path": "Main/Nope"}, 404, "not_found"),
        ({"id": "123456"}, 404, "not_found"),  # no object has it
        ({"path": "Main", "id": "1"}, 404, "not_found"),  # the node at path has another id
        ({"id": "12x"}, 400, "invalid_field"),
        ({"id": str(2**60)}, 400, "invalid_field"),  # not exact through Godot's JSON
    ]
    for body, status, code in cases:
        got, answer = call_json(game, "POST", "/game/node", body)
        assert (got, answer["error"]["code"]) == (status, code), (body, answer)
    # Asking for an id the game does not have makes it log an engine error: the game runs on.
    events = ok_json(game, "GET", "/debug/events")
    assert not any(e["event"] == "stopped" for e in events["events"]), events
    first = mover_x(game)
    time.sleep(0.3)
    assert mover_x(game) > first


def test_issue_13_agents_asking_at_once_all_get_the_tree(game: Editor) -> None:
    def ask(i: int) -> Any:
        return ok_json(game, "GET", "/game/tree", agent=f"agent{i}")["root"]["id"]

    with ThreadPoolExecutor(12) as pool:
        ids = list(pool.map(ask, range(24)))
    assert len(set(ids)) == 1


def test_issue_13_tree_shaping_units() -> None:
    # [child_count, name, type, id, scene_file, view_flags] per node, depth first.
    data = [2, "root", "Window", 1, "", 0]
    data += [1, "A", "res://a.gd", 2, "res://a.tscn", 14, 0, "B", "Label", 3, "", 2]
    data += [0, "C", "Node", 4, "", 0]
    tree = parse_scene_tree(data)
    shown, hidden = node_json(tree, 1)
    assert hidden == 1
    a = shown["children"][0]
    assert (a["script"], a["class"], a["scene_file"], a["visible"]) == (
        "res://a.gd",
        None,
        "res://a.tscn",
        True,
    )
    assert a["truncated"] == 1 and a["children"] == []
    assert "visible" not in shown["children"][1] and "truncated" not in shown["children"][1]
    assert absolute("A/B") == "/root/A/B" and absolute("/root/") == "/root"


# -- the channel's matching, sharing and fallback, answered with captured game messages -----

FIXTURES = Path(__file__).parent / "fixtures" / "game_messages"


def captured(name: str) -> list[Any]:
    data: list[Any] = json.loads((FIXTURES / f"{name}.json").read_text())["data"]
    return data


class ScriptedGame:
    """A session whose game answers `put_msg`s with captured messages (or stays silent)."""

    def __init__(
        self, answers: dict[str, list[tuple[str, list[Any]]]], drop_first: int = 0
    ) -> None:
        self.answers = answers
        self.drop_first = drop_first  # requests lost, as a game still starting loses them
        self.sent: list[tuple[str, list[Any]]] = []
        self.running = True
        self.channel = GameChannel(self)

    async def put_msg(
        self, agent: str, message: str, data: list[Any], answer: str, **_: Any
    ) -> None:
        self.sent.append((message, data))
        if len(self.sent) <= self.drop_first:
            return
        replies = self.answers.get(message, [])
        loop = asyncio.get_running_loop()
        for reply in replies:  # as the game would: a little later, through the DAP
            loop.call_later(0.05, self.channel.feed, *reply)


def test_issue_13_channel_shares_one_tree_among_agents_asking_at_once() -> None:
    async def scenario() -> None:
        game = ScriptedGame(
            {"scene:request_scene_tree": [("scene:scene_tree", captured("scene_tree"))]}
        )
        trees = await asyncio.gather(*(game.channel.tree(f"a{i}") for i in range(10)))
        assert len(game.sent) == 1 and all(t == trees[0] for t in trees)
        await game.channel.tree("later")  # a later question is asked anew
        assert len(game.sent) == 2

    asyncio.run(scenario())


def test_issue_13_a_tree_asked_of_a_game_still_starting_is_asked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Right after a launch the game's scene debugger is not there yet and drops the
    # request without a word: that was a 504 after 5 s; now it is sent again.
    monkeypatch.setattr(channel_module, "RESEND_AFTER", 0.05)

    async def scenario() -> None:
        game = ScriptedGame(
            {"scene:request_scene_tree": [("scene:scene_tree", captured("scene_tree"))]},
            drop_first=2,
        )
        tree = await asyncio.wait_for(game.channel.tree("a"), 2.0)
        assert tree.name == "root" and len(game.sent) == 3

    asyncio.run(scenario())


def test_issue_13_channel_falls_back_to_the_older_inspect_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(channel_module, "PROBE_WAIT", 0.3)
    legacy = captured("inspect_object_legacy")

    async def scenario() -> None:
        # A Godot before 4.5: `scene:inspect_objects` goes unanswered.
        game = ScriptedGame({"scene:inspect_object": [("scene:inspect_object", legacy)]})
        found = await game.channel.inspect("a", legacy[0])
        assert found is not None and found.node_path == "/root/Capture/Mover/Label"
        assert [m for m, _ in game.sent] == ["scene:inspect_objects", "scene:inspect_object"]
        await game.channel.inspect("a", legacy[0])  # learnt: the older one straight away
        assert [m for m, _ in game.sent][2:] == ["scene:inspect_object"]
        # A known version decides without probing.
        newer = ScriptedGame({})
        newer.channel.godot_version = (4, 6)
        with pytest.raises(PeerTimeout):
            await newer.channel.inspect("a", 5)
        assert [m for m, _ in newer.sent] == ["scene:inspect_objects"]

    monkeypatch.setattr(channel_module, "INSPECT_WAIT", 0.3)
    asyncio.run(scenario())


def test_issue_13_channel_unknown_id_silence_and_no_game(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channel_module, "TREE_WAIT", 0.3)
    invalidated = captured("remote_selection_invalidated")

    async def scenario() -> None:
        asked = invalidated[0][0]
        game = ScriptedGame(
            {"scene:inspect_objects": [("remote_selection_invalidated", invalidated)]}
        )
        assert await game.channel.inspect("a", asked) is None
        with pytest.raises(PeerTimeout) as silent:  # the game says nothing: 504
            await game.channel.tree("a")
        assert silent.value.status == 504 and silent.value.code == "timeout"
        game.running = False
        with pytest.raises(RequestError) as none:
            await game.channel.tree("a")
        assert (none.value.status, none.value.code) == (409, "not_running")

    asyncio.run(scenario())
