"""Shared fixtures: the Godot binary, and one editor + addon + sidecar per test module.

Every test that needs Godot asks for `godot_bin` (directly or through `editor` /
`fresh_editor`) and is marked `godot`; a unit test that takes seconds (real processes,
timeouts it must wait out) is marked `slow`. The rest are the fast unit subset: `make unit`
(`pytest -m "not godot and not slow"`, with fewer hypothesis examples) runs them in seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import UNIT_ONLY, Editor, examples, godot_binary, make_demo_project
from hypothesis import settings

# `make unit`: property tests without a count of their own run a tenth of hypothesis' default
# examples (those with one use harness.examples); the whole suite keeps the default.
settings.register_profile("unit", max_examples=examples(settings.default.max_examples))
if os.environ.get(UNIT_ONLY):
    settings.load_profile("unit")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "godot_bin" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.godot)


@pytest.fixture(scope="session")
def godot_bin() -> str:
    return godot_binary()


@pytest.fixture(scope="module")
def editor(tmp_path_factory: pytest.TempPathFactory, godot_bin: str) -> Iterator[Editor]:
    """A headless editor on a copy of the demo project, bridge up and serving."""
    project = make_demo_project(tmp_path_factory.mktemp("project"))
    ed = Editor(project)
    try:
        ed.start()
        yield ed
    finally:
        ed.stop()


@pytest.fixture
def fresh_editor(tmp_path: Path, godot_bin: str) -> Iterator[Editor]:
    """An editor of the test's own, for tests that stop or overload it."""
    ed = Editor(make_demo_project(tmp_path / "project"))
    try:
        yield ed
    finally:
        ed.stop()
