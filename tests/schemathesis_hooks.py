"""Hooks tests/test_schemathesis.py loads into schemathesis (SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

from typing import Any

import schemathesis

# `wait` is a long-poll: any value in 0..30 s is valid and the bridge holds the request
# that long when no event comes. Replaced by a value just as valid but short, so the run
# stays bounded; values outside 0..30 (what the negative cases send) go as generated.
LONG_POLL_FIELDS = ("wait",)
SHORT_WAIT = 0.05
MAX_WAIT = 30.0


def _shorten(values: Any) -> None:
    if not isinstance(values, dict):
        return
    for name in LONG_POLL_FIELDS:
        value = values.get(name)
        if _number(value) and 0 <= float(value) <= MAX_WAIT:
            values[name] = SHORT_WAIT if isinstance(value, float) else 0
        elif isinstance(value, str) and _number(_parse(value)) and 0 <= _parse(value) <= MAX_WAIT:
            values[name] = "0"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return None


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    _shorten(case.query)
    _shorten(case.body)
