"""tools/stress.py in a reduced size that still uses 100 agents at once, against a real editor.

Every answer must reach the agent that asked (nothing misrouted, lost, hung or unexpected,
every status 200), and the editor's and sidecar's file descriptors must be back where they
were once the agents have left. The full-size figures are in docs/RELIABILITY.md.
"""

from __future__ import annotations

import sys

import pytest
from harness import REPO, Editor

sys.path.insert(0, str(REPO / "tools"))
import stress


@pytest.mark.timing
def test_hundred_agents_each_get_their_own_answers(editor: Editor) -> None:
    mark = editor.mark()
    report = stress.run(editor.base_url, agents=100, requests=6, timeout=30, editor_pid=editor.pid)
    print("\n" + "\n".join(report.lines()))
    t = report.tally
    assert (t.misrouted, t.lost, t.hung, t.unexpected, t.not_run) == (0, 0, 0, 0, 0), t.examples
    assert dict(t.statuses) == {200: 100 * (6 + 3)}
    assert t.ok == 100 * 6
    assert t.connects == 100
    for name in ("editor", "sidecar"):
        assert report.after[name]["fds"] == report.before[name]["fds"], (name, report.after)
    # Every agent connected and left; nobody over the limit, nothing went wrong in the editor.
    assert editor.count(r"✓ Client \d+ connected", mark) >= 100
    assert editor.count(r"Max clients reached", mark) == 0
    noise = [
        line
        for line in editor.output[mark:].splitlines()
        if "ERROR" in line or "Traceback" in line or "WARNING" in line
    ]
    assert not noise, noise[:10]
