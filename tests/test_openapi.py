"""The OpenAPI document and HTTP_API.md: made from the declarations, valid, complete.

No editor needed: the document comes from sidecar/api/catalog.py alone, and the route
table it is checked against is the one a sidecar builds (`Sidecar.routes`), served
in-process for the served document. tests/test_schemathesis.py checks the document
against a real editor.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from harness import REPO, offline_routes
from openapi_spec_validator import validate

from sidecar.api import apidoc, catalog, openapi
from sidecar.api.control import EFFECT_ERRORS
from sidecar.app import Sidecar
from sidecar.config import Config
from sidecar.errors import CODES, COMMON
from sidecar.web.http import RouteTable
from sidecar.web.operation import Operation


@pytest.fixture(scope="module")
def routes() -> RouteTable:
    table: RouteTable = offline_routes()
    return table


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return openapi.build()


def _spec(doc: dict[str, Any], op: Operation[Any], method: str) -> dict[str, Any]:
    spec: dict[str, Any] = doc["paths"][op.path][method.lower()]
    return spec


def _codes(response: dict[str, Any]) -> list[str]:
    schema = response["content"]["application/json"]["schema"]
    return list(schema["properties"]["error"]["properties"]["code"]["enum"])


# slow: openapi_spec_validator takes seconds over the whole document.
@pytest.mark.slow
def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    validate(doc)  # raises with the offending part


def test_the_document_lists_every_route(routes: RouteTable, doc: dict[str, Any]) -> None:
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] and doc["servers"] == [{"url": openapi.DEFAULT_SERVER}]
    assert set(openapi.documented(doc)) == {(r.method, r.path) for r in routes}
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


# slow: a fresh Python process, so that no other test's imports hide a cycle.
@pytest.mark.slow
def test_issue_12_the_document_needs_only_the_catalog() -> None:
    """No import cycle: building the document imports neither the app nor the frontends."""
    code = (
        "import sys, sidecar.api.openapi as o; o.build(); "
        "bad = [m for m in ('sidecar.app', 'sidecar.api.frontends') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("op", catalog.OPERATIONS, ids=lambda op: op.name)
def test_issue_12_declared_operations_come_from_their_models(
    op: Operation[Any], doc: dict[str, Any]
) -> None:
    model = op.arguments.model_json_schema()
    fields = model.get("properties", {})
    required = set(model.get("required", []))
    for method in op.methods:
        spec = _spec(doc, op, method)
        assert spec["operationId"] in (op.name, f"{op.name}_{method.lower()}")
        assert spec["summary"] == op.summary
        if method == "GET":
            query = {p["name"]: p for p in spec["parameters"] if p.get("in") == "query"}
            assert set(query) == set(fields)
            assert {n for n, p in query.items() if p["required"]} == required
        elif fields:
            # Required exactly when the model has a required field, or needs one of several
            # (an empty POST of such an operation is a 400 the document must announce).
            one_of = any(model.get(k) for k in ("anyOf", "oneOf", "allOf"))
            assert spec["requestBody"]["required"] is bool(required or one_of)
        else:
            assert "requestBody" not in spec
        ok = spec["responses"]["200"]["content"]["application/json"]["schema"]
        if op.envelope:
            assert ok["required"] == ["status", "result"]
        else:
            assert ok["allOf"][0]["properties"]["status"] == {"const": "ok"}
        listed = [c for s, r in spec["responses"].items() if s != "200" for c in _codes(r)]
        expected = {*COMMON, *op.errors, *(openapi.ARGUMENT_ERRORS if fields else ())}
        # What its effect brings (issue 14: a control operation can meet the lease).
        expected |= set(EFFECT_ERRORS.get(op.effect, ()))
        assert set(listed) == expected
        assert spec["x-effect"] == op.effect
        for status, response in spec["responses"].items():
            if status != "200":
                assert {CODES[c].status for c in _codes(response)} == {int(status)}


def test_issue_12_events_query_parameters_say_their_defaults(doc: dict[str, Any]) -> None:
    events = doc["paths"]["/debug/events"]["get"]
    params = {p["name"]: p for p in events["parameters"] if p.get("in") == "query"}
    assert set(params) == {"since", "wait", "limit"}
    assert params["since"]["schema"]["type"] == "integer"
    assert params["since"]["schema"]["default"] == 0 and not params["since"]["required"]
    assert params["since"]["description"]
    assert "Retry-After" not in str(events["responses"].get("400"))
    status = doc["paths"]["/status"]["get"]
    assert status["operationId"] == "status" and "requestBody" not in status


def test_issue_12_query_parameters_are_never_null() -> None:
    """A query cannot carry null: `X | None = None` is documented as leave-it-out."""
    schema = {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}
    params = openapi.query_parameters({"properties": {"line": schema}})
    assert params[0]["schema"] == {"type": "integer"} and not params[0]["required"]


def test_issue_12_error_responses_list_their_codes_per_status() -> None:
    responses = openapi.error_responses([*COMMON, "not_connected", "timeout", "not_stopped"])
    assert _codes(responses["409"]) == ["not_stopped"]
    assert _codes(responses["503"]) == ["not_connected"]
    assert "Retry-After" in responses["503"]["headers"]
    assert _codes(responses["504"]) == ["timeout"]
    assert "`not_stopped`" in responses["409"]["description"]


def test_issue_12_mcp_is_documented_as_json_rpc(doc: dict[str, Any]) -> None:
    post = doc["paths"]["/mcp"]["post"]
    assert {"200", "202", "400", "404", "406", "503"} <= set(post["responses"])
    rpc = {"$ref": "#/components/schemas/JsonRpcError"}
    for status in ("400", "404", "406", "503"):
        assert post["responses"][status]["content"]["application/json"]["schema"] == rpc
    assert "content" not in post["responses"]["202"]
    assert "Mcp-Session-Id" in {p.get("name") for p in post["parameters"]}
    assert "Missing session ID" in post["responses"]["400"]["description"]
    delete = doc["paths"]["/mcp"]["delete"]
    assert delete["responses"]["404"]["content"]["application/json"]["schema"] == rpc
    assert "get" not in doc["paths"]["/mcp"]  # the server never speaks first: GET is 405


def test_http_api_md_is_what_the_document_generates(
    routes: RouteTable, doc: dict[str, Any]
) -> None:
    committed = openapi.HTTP_API_MD.read_text(encoding="utf-8")
    generated = apidoc.markdown(doc)
    assert committed == generated, (
        "addons/godot_debug_connection/HTTP_API.md is out of date: run "
        "`.venv/bin/python -m sidecar.api.openapi --markdown -o "
        "addons/godot_debug_connection/HTTP_API.md`"
    )
    for r in routes:
        assert f"`{r.path}`" in committed


def test_issue_12_http_api_md_lists_the_vocabulary_and_line_bases(doc: dict[str, Any]) -> None:
    text = apidoc.markdown(doc)
    for code in CODES:
        assert f"| `{code}` |" in text
    assert "0-based" in text and "1-based" in text
    # The /mcp example opens a session first, then calls a tool with it.
    initialize = text.index('"method": "initialize"')
    call = text.index("Mcp-Session-Id: ", initialize)
    assert initialize < call < text.index('"method": "tools/call"')
    # The events table comes from the model: its default and its description.
    assert "| `limit` | integer ≥ 1 |  | `500` | most events in one answer |" in text


# slow: openapi_spec_validator takes seconds over the served document.
@pytest.mark.slow
async def test_served_document_is_built_from_the_declarations(tmp_path: Any) -> None:
    config = Config(
        project=str(tmp_path),
        link_port=None,
        link_token="",
        serve_port=None,
        lsp_port=9,
        dap_port=9,
    )
    sidecar = Sidecar(config)
    async with TestClient(TestServer(sidecar.app)) as client:
        doc = await (await client.get("/openapi.json")).json()
        answer = await client.get("/no/such/endpoint")
        missing, status = await answer.json(), answer.status
    validate(doc)
    assert doc["servers"][0]["url"].startswith("http://127.0.0.1:")
    assert doc["paths"] == openapi.build()["paths"]
    # The 404 lists the same endpoints the document does.
    assert status == 404
    listed = {(m, e["path"]) for e in missing["error"]["endpoints"] for m in e["methods"]}
    assert listed == set(openapi.documented(doc))


# slow: it also starts the module as a Python process.
@pytest.mark.slow
def test_cli_writes_the_same_markdown(tmp_path: Any, doc: dict[str, Any]) -> None:
    out = tmp_path / "api.md"
    assert openapi.main(["--markdown", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == apidoc.markdown(doc)
    run = subprocess.run(
        [sys.executable, "-m", "sidecar.api.openapi", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"openapi": "3.1.0"' in run.stdout
