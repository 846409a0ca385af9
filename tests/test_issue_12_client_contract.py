"""The Python client and the gdbridge CLI, checked against the operation declarations.

Every operation in `sidecar.api.catalog.OPERATIONS` has a client method of its name that
sends to its path a body its arguments model accepts, each parameter landing in a declared
field, optional parameters not sent unless given (so the declared default applies). The
transport is stubbed at the client's one send function (`BridgeClient._send`): this is a
unit test of the client's mapping; tests/test_client.py drives a real editor.

It checks whatever is declared, so it grows with the catalog by itself.
"""

from __future__ import annotations

import inspect
import json
import keyword
import subprocess
import sys
import types
import typing
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from harness import REPO
from pydantic import BaseModel
from pydantic.fields import FieldInfo

import sidecar.client
from sidecar.api.catalog import OPERATIONS
from sidecar.client import cli
from sidecar.client import client as client_module
from sidecar.client.client import BridgeClient, BridgeError
from sidecar.errors import SidecarError as ServerError
from sidecar.web.operation import Operation

# Operations the client deliberately leaves to `BridgeClient.request` (name → why). Empty:
# the client wraps every declared operation.
NOT_WRAPPED: dict[str, str] = {}

# A parameter value per name, each distinct, so that where it lands in the body is plain.
SAMPLES: dict[str, Any] = {
    "path": "res://demo/zz_sample.gd",
    "paths": ["res://demo/zz_paths.gd"],
    "line": 37,
    "character": 11,
    "lines": [41],
    "expression": "zz + 1",
    "reference": 43,
    "frame_id": 3,
    "start": 2,
    "count": 9,
    "levels": 7,
    "start_frame": 1,
    "scene": "res://demo/zz_scene.tscn",
    "no_debug": True,
    "play_args": ["--zz"],
    "since": 13,
    "wait": 0.25,
    "limit": 17,
    "prefix": "zz_prefix",
    "include_declaration": False,
    "text": "extends Node # zz sample\n",
    "version": 5,
    "changes": [{"text": "extends Node # zz change\n"}],
    "start_line": 4,
    "end_line": 6,
    "edits": [
        {
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}},
            "newText": "extends Node # zz edit\n",
        }
    ],
    "expected_sha256": "a" * 64,
    "service": "dap",
    "force": True,
    "reason": "zz reason",
    "resume_after": 1.5,
    "everyone": True,
    "events": 6,
    "depth": 19,
    "id": "4711",
    "properties": ["zz_property"],
    "warnings": False,
    "names": "zz_monitor",
    "history": 3,
    "max_width": 321,
    "ttl": 45.0,
    "agent": "zz_agent",
    "kind": "zz_kind",
    "frames": 23,
    "until": {"path": "Main/ZzNode", "property": "zz_prop", "op": ">=", "value": 29},
    "timeout": 31.5,
    "scale": 0.75,
    "steps": [{"type": "wait", "frames": 7}],
    "screenshot": True,
    "property": "zz_property_name",
    "value": {"zz": 23},
}

# The client's friendlier names for a field (the field's own name, or its camelCase, needs
# no entry).
FIELD_NAMES: dict[str, set[str]] = {
    "path": {"uri", "path"},  # textDocument.uri, source.path, uri
    "lines": {"line"},  # breakpoints[].line
    "everyone": {"all", "everyone"},  # /debug/breakpoints calls it `all`
    "reference": {"variablesReference"},
    "changes": {"contentChanges"},
}

# Parameters whose default the client chooses because the operation requires the field
# ((method, parameter) → why). Allowed only while the field stays required.
CLIENT_CHOSEN: dict[tuple[str, str], str] = {
    ("scopes", "frame_id"): "frameId is required; `scopes()` has always meant the top frame",
}

# What a cross-field rule needs besides the required parameters (method → arguments), and
# what it needs with a parameter ((method, parameter) → arguments).
BASE: dict[str, dict[str, Any]] = {
    "apply_changes": {"text": "extends Node # zz base\n"},
    "game_set_property": {"id": "4711"},  # which node: `path` or `id`
}
WITH: dict[tuple[str, str], dict[str, Any]] = {
    ("apply_changes", "edits"): {"text": None},  # exactly one of text and edits
    ("clear_breakpoints", "everyone"): {"path": SAMPLES["path"]},  # everyone's in one file
}


# -- a client whose requests go nowhere --------------------------------------------------


@dataclass
class Sent:
    method: str
    path: str
    body: dict[str, Any]


class Anything(dict[str, Any]):
    """A result of any shape: whatever a method reads of it is there."""

    def __missing__(self, key: str) -> Anything:
        return Anything()


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Sent]:
    """Every request any BridgeClient sends, answered with a success of any shape."""
    log: list[Sent] = []

    def send(self: BridgeClient, req: urllib.request.Request) -> Any:
        url = urllib.parse.urlsplit(req.full_url)
        if req.get_method() == "GET":
            body: dict[str, Any] = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        else:
            body = json.loads(req.data or b"{}")  # type: ignore[arg-type]
        log.append(Sent(req.get_method(), url.path, body))
        if url.path in client_module.FLAT_PATHS:
            return {"status": "ok", **Anything()}
        return {"status": "ok", "result": Anything()}

    monkeypatch.setattr(BridgeClient, "_send", send)
    return log


def method_name(operation: Operation[Any]) -> str:
    return operation.name + "_" if keyword.iskeyword(operation.name) else operation.name


def call_once(client: BridgeClient, sent: list[Sent], name: str, kwargs: dict[str, Any]) -> Sent:
    before = len(sent)
    getattr(client, name)(**kwargs)
    assert len(sent) == before + 1, f"{name}({kwargs}) sent {len(sent) - before} requests"
    return sent[-1]


def parsed(operation: Operation[Any], request: Sent) -> dict[str, Any]:
    """The fields the request set, as the operation reads them (a 400 fails the test)."""
    try:
        args = operation.parse(request.body, from_query=request.method == "GET")
    except ServerError as err:
        pytest.fail(f"{operation.name}: the client sent {request.body}, refused: {err}")
    fields: dict[str, Any] = args.model_dump(by_alias=True, exclude_unset=True)
    return fields


def find(node: Any, target: Any, where: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Where `target` (or a one-item list's item) is in `node`, shallowest first."""
    items = [target]
    if isinstance(target, list) and len(target) == 1 and not isinstance(target[0], dict):
        items.append(target[0])
    if any(node == item and type(node) is type(item) for item in items):
        yield where
        return
    children: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        children = [(str(k), v) for k, v in node.items()]
    elif isinstance(node, list):
        children = [("[]", v) for v in node]
    for key, child in children:
        yield from find(child, target, (*where, key))


def field_of(operation: Operation[Any], fields: dict[str, Any], param: str) -> tuple[str, ...]:
    """The declared field `param`'s sample landed in, named as the client's table says."""
    found = list(find(fields, SAMPLES[param]))
    assert found, f"{operation.name}: `{param}` reaches no declared field (sent: {fields})"
    where = tuple(p for p in found[0] if p != "[]")
    names = FIELD_NAMES.get(param, {param, _camel(param)})
    assert where and where[-1] in names, f"{operation.name}: `{param}` lands in {where}"
    return where


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def declared(model: type[BaseModel], where: tuple[str, ...]) -> FieldInfo:
    """The declaration of the field at `where` (wire names) in `model`."""
    info: FieldInfo | None = None
    for part in where:
        info = next(
            (f for n, f in model.model_fields.items() if part in (n, f.alias)),
            None,
        )
        assert info is not None, f"{model.__name__} declares no field {part!r}"
        inner = list(_models_in(info.annotation))
        if inner:
            model = inner[0]
    assert info is not None
    return info


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            yield from _models_in(arg)


# -- every declared operation ------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.name)
def test_issue_12_client_method_per_operation(operation: Operation[Any], sent: list[Sent]) -> None:
    if operation.name in NOT_WRAPPED:
        return
    name = method_name(operation)
    method = getattr(BridgeClient, name, None)
    assert callable(method), f"BridgeClient has no method {name} for {operation.path}"
    client = BridgeClient("http://bridge.invalid", agent="zz")
    params = list(inspect.signature(method).parameters.values())[1:]
    required = {p.name: SAMPLES[p.name] for p in params if p.default is p.empty}
    base = {**required, **BASE.get(name, {})}

    request = call_once(client, sent, name, base)
    assert request.path == operation.path
    assert request.method in operation.methods
    base_fields = parsed(operation, request)
    for required_param in required:
        field_of(operation, base_fields, required_param)

    for param in (p for p in params if p.default is not p.empty):
        kwargs = {**base, param.name: SAMPLES[param.name], **WITH.get((name, param.name), {})}
        fields = parsed(operation, call_once(client, sent, name, kwargs))
        where = field_of(operation, fields, param.name)
        in_base = param.name in BASE.get(name, {})
        _check_default(operation, name, param, where, {} if in_base else base_fields)


def _check_default(
    operation: Operation[Any],
    name: str,
    param: inspect.Parameter,
    where: tuple[str, ...],
    base_fields: dict[str, Any],
) -> None:
    """None (and then not sent), or the declared default, or the client's documented choice
    for a field the operation requires."""
    info = declared(operation.arguments, where)
    if param.default is None:
        assert not list(find(base_fields, SAMPLES[param.name])), f"{name}: None was sent"
        assert _dig(base_fields, where) is _ABSENT, f"{name}({param.name}=None) sent {where}"
        return
    if (name, param.name) in CLIENT_CHOSEN:
        assert info.is_required(), f"{name}: {'.'.join(where)} has a default now: use None"
        return
    assert not info.is_required() and param.default == info.default, (
        f"{name}({param.name}={param.default!r}): the declared default of "
        f"{'.'.join(where)} is {info.default!r}; default to None instead"
    )


_ABSENT = object()


def _dig(fields: Any, where: tuple[str, ...]) -> Any:
    for part in where:
        if isinstance(fields, list):
            fields = fields[0] if fields else _ABSENT
        if not isinstance(fields, dict) or part not in fields:
            return _ABSENT
        fields = fields[part]
    return fields


def test_issue_12_client_unwraps_as_declared(sent: list[Sent]) -> None:
    """The answers the client takes whole are those of the operations declared unwrapped."""
    declared_paths = {op.path: op for op in OPERATIONS}
    for path in client_module.FLAT_PATHS:
        if path in declared_paths:
            assert not declared_paths[path].envelope, f"{path} is wrapped in 'result'"
    for op in OPERATIONS:
        assert (op.path in client_module.FLAT_PATHS) == (not op.envelope), op.name


# -- what the client sends when nothing is given -------------------------------------------


def test_issue_12_client_sends_no_defaults_of_its_own(sent: list[Sent]) -> None:
    c = BridgeClient("http://bridge.invalid")
    doc = {"textDocument": {"uri": "res://a.gd"}, "position": {"line": 1, "character": 2}}
    calls: list[tuple[Callable[[], Any], Sent]] = [
        (c.events, Sent("GET", "/debug/events", {})),
        (lambda: c.completion("res://a.gd", 1, 2), Sent("POST", "/lsp/completion", doc)),
        (lambda: c.references("res://a.gd", 1, 2), Sent("POST", "/lsp/references", doc)),
        (c.launch, Sent("POST", "/debug/launch", {})),
        (c.stack_trace, Sent("POST", "/debug/stackTrace", {})),
        (lambda: c.evaluate("x"), Sent("POST", "/debug/evaluate", {"expression": "x"})),
        (c.breakpoints, Sent("GET", "/debug/breakpoints", {})),
        (c.clear_breakpoints, Sent("POST", "/debug/clearBreakpoints", {})),
        (c.disconnect, Sent("POST", "/disconnect", {})),
        (
            lambda: c.diagnostics("res://a.gd"),
            Sent("GET", "/lsp/diagnostics", {"uri": "res://a.gd"}),
        ),
        (c.reload, Sent("POST", "/execute/reload", {})),
    ]
    for call, expected in calls:
        call()
        assert sent[-1] == expected
    # Given, a value goes as given, false included.
    c.events(0, 0, 100)
    assert sent[-1].body == {"since": "0", "wait": "0", "limit": "100"}
    c.references("res://a.gd", 1, 2, include_declaration=False)
    assert sent[-1].body["context"] == {"includeDeclaration": False}
    c.breakpoints(everyone=True)
    assert sent[-1].body == {"all": "true"}


def test_issue_12_client_positional_calls_still_work(sent: list[Sent]) -> None:
    c = BridgeClient("http://bridge.invalid")
    c.launch("res://x.tscn", True, ["--a"])
    assert sent[-1].body == {"scene": "res://x.tscn", "noDebug": True, "playArgs": ["--a"]}
    c.stack_trace(5, 1)
    assert sent[-1].body == {"levels": 5, "startFrame": 1}
    c.scopes()
    assert sent[-1].body == {"frameId": 0}
    c.disconnect("dap", True, "why", 2.0)
    assert sent[-1].body == {"service": "dap", "force": True, "reason": "why", "resume_after": 2.0}
    assert c.document_symbols("res://a.gd") == c.document_symbol("res://a.gd")
    assert sent[-1].path == "/lsp/documentSymbol"


def test_issue_12_client_refuses_a_success_without_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = {"/debug/threads": {"status": "ok"}, "/status": {"status": "ok", "x": 1}}
    monkeypatch.setattr(
        BridgeClient, "_send", lambda self, req: answers[urllib.parse.urlsplit(req.full_url).path]
    )
    c = BridgeClient("http://bridge.invalid")
    with pytest.raises(BridgeError, match="without a 'result'"):
        c.threads()
    assert c.status() == {"status": "ok", "x": 1}  # /status is not wrapped


# -- the package stands alone ------------------------------------------------------------


def test_issue_12_client_imports_nothing_of_the_sidecar() -> None:
    program = (
        "import sidecar.client, sys; "
        "print(sorted(m for m in sys.modules if m.startswith('sidecar')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(["sidecar", "sidecar.client", "sidecar.client.client"])

    done = subprocess.run(
        [sys.executable, "-c", program.replace("sidecar.client,", "sidecar.client.cli,")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    loaded = ["sidecar", "sidecar.client", "sidecar.client.cli", "sidecar.client.client"]
    assert done.stdout.strip() == str(loaded)


def test_issue_12_client_package_exports_the_client() -> None:
    assert sidecar.client.BridgeClient is BridgeClient
    assert sidecar.client.BridgeError is BridgeError
    for name in sidecar.client.__all__:
        assert getattr(sidecar.client, name) is getattr(client_module, name)


# -- the CLI -----------------------------------------------------------------------------

# Options about the CLI's own behaviour, not an operation's argument (dest → what it does).
CLI_OWN: dict[str, str] = {
    "json": "print JSON",
    "wait": "wait for a debug event after an action (diagnostics' --wait is its argument)",
    "wait_timeout": "how long --wait waits",
    "follow": "keep reading events",
    "until": "stop following at this event",
    "raw": "print only the file's text",
    "output": "where screenshot writes the PNG",
    "delete": "break -d removes instead of adding",
    "text_file": "where edit's new text comes from",
    "if_unchanged": "edit sends the sha256 `read` remembered",
    "ref": "vars of this variablesReference instead of a frame's",
}
# An option's field when its name differs (dest → field).
CLI_FIELDS: dict[str, str] = {
    "frame": "frameId",
    "ref": "variablesReference",
    "expect_sha256": "expected_sha256",
    "agent_filter": "agent",  # audit --agent: --agent alone is who you are (X-Agent-Id)
}


def subcommands() -> dict[str, Any]:
    sub = next(a for a in cli.parser()._actions if a.dest == "command")
    return dict(sub.choices)  # type: ignore[arg-type]


def options(command: Any) -> Iterator[Any]:
    """The optional arguments a subcommand takes (positionals are required)."""
    for action in command._actions:
        if action.option_strings and action.dest != "help":
            yield action


def field_names(model: type[BaseModel]) -> set[str]:
    """Every field name (wire and Python) of `model`, nested models included."""
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names |= {name, info.alias or name}
        for inner in _models_in(info.annotation):
            names |= field_names(inner)
    return names


def _top_level(model: type[BaseModel]) -> Iterator[str]:
    for name, info in model.model_fields.items():
        yield from {name, info.alias or name}


def test_issue_12_cli_reaches_every_declared_operation() -> None:
    commands = subcommands()
    for op in OPERATIONS:
        assert cli.ENDPOINTS.get(op.path) in commands, f"no gdbridge command for {op.path}"


def test_issue_12_cli_options_send_nothing_unless_given() -> None:
    check_cli_options(OPERATIONS)


def check_cli_options(declarations: tuple[Operation[Any], ...]) -> None:
    """Each option of a command is the CLI's own or a field of the operations it calls;
    none has a default of its own (a declared one at most)."""
    by_path = {op.path: op for op in declarations}
    for name, command in subcommands().items():
        operations = [by_path[p] for p, c in cli.ENDPOINTS.items() if c == name and p in by_path]
        for action in options(command):
            own = action.dest in CLI_OWN and not (name == "diagnostics" and action.dest == "wait")
            if own:
                continue
            fields = {CLI_FIELDS.get(action.dest, action.dest), _camel(action.dest)}
            for op in operations:  # declared: the option must be one of its fields
                for field in fields & set(_top_level(op.arguments)):
                    info = declared(op.arguments, (field,))
                    assert action.default is None or action.default == info.default, (
                        f"gdbridge {name} --{action.dest}: default {action.default!r}, "
                        f"declared {info.default!r}"
                    )
            if operations:
                known = set().union(*(field_names(op.arguments) for op in operations))
                assert fields & known, f"gdbridge {name} --{action.dest} is no declared field"
            assert action.default is None, f"gdbridge {name} --{action.dest}: a default of its own"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["complete", "res://a.gd:2:3"], Sent("POST", "/lsp/completion", {
            "textDocument": {"uri": "res://a.gd"}, "position": {"line": 1, "character": 2}})),
        (["events"], Sent("GET", "/debug/events", {})),
        (["events", "--limit", "3"], Sent("GET", "/debug/events", {"limit": "3"})),
        (["launch"], Sent("POST", "/debug/launch", {})),
        (["stack"], Sent("POST", "/debug/stackTrace", {})),
        (["eval", "x"], Sent("POST", "/debug/evaluate", {"expression": "x"})),
        (["breakpoints"], Sent("GET", "/debug/breakpoints", {})),
        (["diagnostics", "res://a.gd"], Sent("GET", "/lsp/diagnostics", {"uri": "res://a.gd"})),
        (["disconnect"], Sent("POST", "/disconnect", {})),
    ],
)  # fmt: skip
def test_issue_12_cli_sends_what_was_given(
    sent: list[Sent], capsys: pytest.CaptureFixture[str], argv: list[str], expected: Sent
) -> None:
    assert cli.run(["--url", "http://bridge.invalid", *argv]) == 0, capsys.readouterr().err
    assert sent[-1] == expected
