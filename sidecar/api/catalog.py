"""Every operation the bridge declares, in the order documents list them.

Built from the declarations alone (no session, no editor), so the OpenAPI document,
HTTP_API.md, the MCP tool list and the client checks need nothing running; the
sidecar's route table serves exactly these (tests/test_openapi.py checks both ways).
"""

from __future__ import annotations

from typing import Any

from sidecar.api import (
    control,
    dashboard,
    debug,
    editor,
    game,
    game_clock,
    game_hands,
    game_records,
    game_screenshot,
    lsp,
    status,
)
from sidecar.web.operation import Operation

OPERATIONS: tuple[Operation[Any], ...] = (
    *status.OPERATIONS,
    *debug.OPERATIONS,
    *game.OPERATIONS,
    *game_screenshot.OPERATIONS,
    *game_records.OPERATIONS,
    *game_clock.OPERATIONS,
    *game_hands.OPERATIONS,
    *lsp.OPERATIONS,
    *editor.OPERATIONS,
    *control.OPERATIONS,
    *dashboard.OPERATIONS,
)
