"""Checks answers and examples against sidecar/schemas.py (JSON Schema 2020-12)."""

from __future__ import annotations

from typing import Any

import jsonschema

from sidecar.api.schemas import COMPONENTS, SCHEMAS, Schema


def validator(schema: Schema) -> jsonschema.Draft202012Validator:
    """A validator for `schema` whose `#/components/schemas/...` refs resolve."""
    root = {**schema, "components": {"schemas": COMPONENTS}}
    return jsonschema.Draft202012Validator(root)


def problems(schema: Schema, value: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator(schema).iter_errors(value)
    ]


def assert_answer(method: str, path: str, result: Any) -> None:
    """`result` (the envelope's, or the raw answer) has the shape schemas.py promises."""
    op = SCHEMAS[(method, path)]
    found = problems(op.result, result)
    assert not found, f"{method} {path} answered off-schema: {found}\n{result!r}"
