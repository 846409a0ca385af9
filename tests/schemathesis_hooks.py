"""Hooks tests/test_schemathesis.py loads into schemathesis (SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

from typing import Any

import schemathesis

# `wait` is a long-poll: any value from 0 is valid and the bridge holds the request that
# long (30 s at most) when no event comes. Replaced by a value just as valid but short, so
# the run stays bounded; negative values (what the negative cases send) go as generated.
LONG_POLL_FIELDS = ("wait",)
SHORT_WAIT = 0.05


def _shorten(values: Any) -> None:
    if not isinstance(values, dict):
        return
    for name in LONG_POLL_FIELDS:
        value = values.get(name)
        if isinstance(value, str):  # a query's value
            number = _parse(value)
            if number is not None and 0 <= number:
                values[name] = "0"
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if 0 <= value:
                values[name] = SHORT_WAIT if isinstance(value, float) else 0


def _parse(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    _shorten(case.query)
    _shorten(case.body)
