"""Breakpoint file paths (sidecar/godot/dap/paths.py): every spelling, confined to the project."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sidecar.errors import SidecarError
from sidecar.godot.dap.paths import to_project_path, to_res_path


def test_paths_are_converted_and_confined_to_the_project(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "demo").mkdir(parents=True)
    script = project / "demo" / "main.gd"
    script.write_text("extends Node\n")
    (tmp_path / "secret.gd").write_text("")
    real = str(script.resolve())
    assert to_project_path(str(project), "res://demo/main.gd") == real
    assert to_project_path(str(project), "demo/main.gd") == real
    assert to_project_path(str(project), str(script)) == real
    assert to_project_path(str(project), "demo/../demo/main.gd") == real
    assert to_res_path(str(project), real) == "res://demo/main.gd"
    for outside in ("../secret.gd", str(tmp_path / "secret.gd"), "res://../secret.gd"):
        with pytest.raises(SidecarError) as err:
            to_project_path(str(project), outside)
        assert err.value.status == 403 and err.value.code == "outside_project"
    os.symlink(tmp_path / "secret.gd", project / "link.gd")
    with pytest.raises(SidecarError) as err:
        to_project_path(str(project), "res://link.gd")
    assert err.value.status == 403
    with pytest.raises(SidecarError) as err:
        to_project_path(str(project), "res://demo/missing.gd")
    assert err.value.status == 404 and err.value.code == "not_found"


def test_issue_12_file_uris_name_breakpoint_files(tmp_path: Path) -> None:
    """The README promises file:// everywhere; setBreakpoints refused it with a 400."""
    script = tmp_path / "proj" / "my game" / "main.gd"
    script.parent.mkdir(parents=True)
    script.write_text("extends Node\n")
    uri = "file://" + str(script).replace(" ", "%20")
    assert to_project_path(str(tmp_path / "proj"), uri) == str(script.resolve())
    with pytest.raises(SidecarError) as err:
        to_project_path(str(tmp_path / "proj"), "res://my game/main.gd", script=False)
        to_project_path(str(tmp_path / "proj"), "res://my game/scene.tscn", script=True)
    assert (err.value.status, err.value.code) == (400, "not_a_script")
