"""One resolver for every path an agent names: res://, project-relative, absolute, file://."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sidecar.errors import RequestError
from sidecar.project.paths import Forbidden, ProjectFile, ProjectPaths

ROOT = "/srv/my project"


# --- URIs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "res://demo/main.gd",
        "demo/main.gd",
        "./demo/../demo/main.gd",
        "/srv/my project/demo/main.gd",
        "file:///srv/my%20project/demo/main.gd",
        "file://localhost/srv/my%20project/demo/main.gd",
        "  res://demo//main.gd ",
    ],
)
def test_every_spelling_names_the_same_file(raw: str) -> None:
    paths = ProjectPaths(ROOT)
    f = paths.resolve(raw)
    assert f == ProjectFile("demo/main.gd")
    assert f.res == "res://demo/main.gd"
    # Godot's own form: file:/// + each path segment percent-encoded.
    assert paths.uri(f) == "file:///srv/my%20project/demo/main.gd"


def test_uri_encodes_like_godot() -> None:
    paths = ProjectPaths("/p")
    assert paths.uri(ProjectFile("a b/ü+#.gd")) == "file:///p/a%20b/%C3%BC%2B%23.gd"
    assert paths.resolve("file:///p/a%20b/%C3%BC%2B%23.gd") == ProjectFile("a b/ü+#.gd")


@pytest.mark.parametrize(
    "raw", ["../x.gd", "res://../x.gd", "demo/../../x.gd", "/srv/other/x.gd", "file:///etc/passwd"]
)
def test_outside_the_project_is_forbidden(raw: str) -> None:
    with pytest.raises(Forbidden) as exc:
        ProjectPaths(ROOT).resolve(raw)
    assert exc.value.status == 403


@pytest.mark.parametrize("raw", ["", "   ", 7, None, "http://x/y.gd", "file://host/srv/x.gd"])
def test_bad_uris_are_400_naming_the_field(raw: Any) -> None:
    with pytest.raises(RequestError) as exc:
        ProjectPaths(ROOT).resolve(raw, "textDocument.uri")
    assert exc.value.status == 400
    assert exc.value.details["field"] == "textDocument.uri"


def test_godot_root_is_used_for_uris_and_understood_on_the_way_back() -> None:
    paths = ProjectPaths("/home/me/link")
    paths.set_godot_root("/data/real")
    f = paths.resolve("res://a.gd")
    assert paths.uri(f) == "file:///data/real/a.gd"
    assert paths.resolve("file:///data/real/a.gd") == f
    assert paths.resolve("/home/me/link/a.gd") == f


def test_symlinked_spelling_of_the_root(tmp_path: Any) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    paths = ProjectPaths(str(real))
    assert paths.resolve(str(tmp_path / "alias" / "x.gd")) == ProjectFile("x.gd")


# --- one code per condition (issue 12) ----------------------------------------------------


def test_issue_12_missing_file_is_404_not_found_naming_the_field(tmp_path: Path) -> None:
    paths = ProjectPaths(str(tmp_path))
    (tmp_path / "here.gd").write_text("extends Node\n")
    assert paths.existing("file://" + str(tmp_path / "here.gd")) == ProjectFile("here.gd")
    with pytest.raises(RequestError) as exc:
        paths.existing("res://gone.gd", "textDocument.uri")
    assert (exc.value.status, exc.value.code) == (404, "not_found")
    assert exc.value.details == {"field": "textDocument.uri", "path": "res://gone.gd"}


def test_issue_12_non_script_is_400_not_a_script(tmp_path: Path) -> None:
    with pytest.raises(RequestError) as exc:
        ProjectPaths(str(tmp_path)).script("res://main.tscn", "uri")
    assert (exc.value.status, exc.value.code) == (400, "not_a_script")
    assert exc.value.details["field"] == "uri"


def test_issue_12_symlink_out_is_403_outside_project(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "p", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / "escape").symlink_to(elsewhere)
    paths = ProjectPaths(str(root))
    f = paths.resolve("res://escape/x.gd")  # lexically inside
    with pytest.raises(Forbidden) as exc:
        paths.real_path(f)
    assert (exc.value.status, exc.value.code) == (403, "outside_project")
