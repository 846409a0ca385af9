"""The OpenAPI document and HTTP_API.md: made from the route table, valid, complete.

No editor needed: the route table is the one a sidecar builds (`Sidecar.routes`), and the
served document comes from a Sidecar app served in-process.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from apicheck import problems
from openapi_spec_validator import validate

from sidecar.api import openapi
from sidecar.api.schemas import SCHEMAS
from sidecar.app import Sidecar
from sidecar.config import Config
from sidecar.web.http import RouteTable


@pytest.fixture(scope="module")
def routes() -> RouteTable:
    return openapi.offline_routes()


def test_every_route_has_a_schema_and_every_schema_a_route(routes: RouteTable) -> None:
    served = {(r.method, r.path) for r in routes}
    missing = sorted(served - set(SCHEMAS))
    assert not missing, f"routes without a schema in sidecar/schemas.py: {missing}"
    assert not set(SCHEMAS) - served, f"schemas of no route: {sorted(set(SCHEMAS) - served)}"


def test_the_document_is_valid_openapi_3_1_and_lists_every_route(routes: RouteTable) -> None:
    doc = openapi.build(routes)
    validate(doc)  # raises with the offending part
    assert doc["openapi"] == "3.1.0"
    listed = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert listed == {(r.method, r.path) for r in routes}
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    assert not any(op.get("x-undocumented") for ops in doc["paths"].values() for op in ops.values())


def test_error_shapes_are_in_the_document(routes: RouteTable) -> None:
    doc = openapi.build(routes)
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["status", "error"]
    launch = doc["paths"]["/debug/launch"]["post"]["responses"]
    assert {"200", "400", "503", "504"} <= set(launch)
    assert launch["503"]["$ref"] == "#/components/responses/E503"
    assert "Retry-After" in doc["components"]["responses"]["E503"]["headers"]
    events = doc["paths"]["/debug/events"]["get"]
    assert {p.get("name") for p in events["parameters"]} >= {"since", "wait", "limit"}


@pytest.mark.parametrize("key", sorted(SCHEMAS), ids=lambda k: f"{k[0]} {k[1]}")
def test_examples_follow_their_schemas(key: tuple[str, str]) -> None:
    op = SCHEMAS[key]
    if op.example is not None and op.body is not None:
        assert not problems(op.body, op.example), problems(op.body, op.example)
    if op.answer is not None:
        assert not problems(op.result, op.answer), problems(op.result, op.answer)


def test_http_api_md_is_what_the_route_table_generates(routes: RouteTable) -> None:
    committed = openapi.HTTP_API_MD.read_text(encoding="utf-8")
    generated = openapi.markdown(routes)
    assert committed == generated, (
        "addons/godot_debug_connection/HTTP_API.md is out of date: run "
        "`.venv/bin/python -m sidecar.api.openapi --markdown -o "
        "addons/godot_debug_connection/HTTP_API.md`"
    )
    for r in routes:
        assert f"`{r.path}`" in committed


def test_served_document_is_built_from_the_live_route_table(tmp_path: Any) -> None:
    config = Config(
        project=str(tmp_path),
        link_port=None,
        link_token="",
        serve_port=None,
        lsp_port=9,
        dap_port=9,
    )

    async def main() -> tuple[dict[str, Any], dict[str, Any], int]:
        sidecar = Sidecar(config)
        async with TestClient(TestServer(sidecar.app)) as client:
            doc = await (await client.get("/openapi.json")).json()
            missing = await client.get("/no/such/endpoint")
            return doc, await missing.json(), missing.status

    doc, missing, status = asyncio.run(main())
    validate(doc)
    assert doc["servers"][0]["url"].startswith("http://127.0.0.1:")
    assert doc["paths"] == openapi.build(openapi.offline_routes())["paths"]
    # The 404 lists the same endpoints the document does.
    assert status == 404
    listed = {(m, e["path"]) for e in missing["error"]["endpoints"] for m in e["methods"]}
    assert listed == {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}


def test_cli_writes_the_same_markdown(tmp_path: Any, routes: RouteTable) -> None:
    out = tmp_path / "api.md"
    assert openapi.main(["--markdown", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == openapi.markdown(routes)
