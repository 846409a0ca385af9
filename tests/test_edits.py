"""applyChanges without Godot: safe paths, hashes, atomic writes, concurrent agents."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from sidecar.api.lsp import APPLY_CHANGES, ApplyChangesArguments
from sidecar.errors import RequestError
from sidecar.project.documents import Conflict
from sidecar.project.edits import Editor, EditRequest, apply_edit, safe_target
from sidecar.project.paths import Forbidden, ProjectPaths

ORIGINAL = "extends Node\n\nfunc f() -> int:\n\treturn 1\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "demo").mkdir(parents=True)
    (root / ".godot").mkdir()
    (root / "demo" / "main.gd").write_text(ORIGINAL)
    (root / "project.godot").write_text("config_version=5\n")
    return root


def _sha(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


def _req(**body: Any) -> EditRequest:
    args = APPLY_CHANGES.parse(body)
    assert isinstance(args, ApplyChangesArguments)
    return args.request()


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under root (the outside world included via tmp_path's parent)."""
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- writing ---------------------------------------------------------------------------------


def test_whole_text_with_the_right_hash(project: Path) -> None:
    paths = ProjectPaths(str(project))
    result = apply_edit(
        paths, _req(uri="res://demo/main.gd", text="extends Node\n", expected_sha256=_sha(ORIGINAL))
    )
    assert (project / "demo" / "main.gd").read_text() == "extends Node\n"
    assert result.sha256 == _sha("extends Node\n")
    assert result.previous_sha256 == _sha(ORIGINAL)
    assert not result.created


def test_text_edits_apply_to_the_file_on_disk(project: Path) -> None:
    edit = {
        "range": {"start": {"line": 3, "character": 8}, "end": {"line": 3, "character": 9}},
        "newText": "42",
    }
    result = apply_edit(ProjectPaths(str(project)), _req(uri="demo/main.gd", edits=[edit]))
    assert (project / "demo" / "main.gd").read_text() == ORIGINAL.replace("return 1", "return 42")
    assert result.sha256 == _sha((project / "demo" / "main.gd").read_bytes())


def test_stale_hash_is_409_and_nothing_is_written(project: Path) -> None:
    before = _tree(project)
    with pytest.raises(Conflict) as exc:
        apply_edit(
            ProjectPaths(str(project)),
            _req(uri="res://demo/main.gd", text="mine", expected_sha256=_sha("other")),
        )
    assert exc.value.status == 409
    assert exc.value.details["current_sha256"] == _sha(ORIGINAL)
    assert _tree(project) == before


def test_new_script_in_a_new_directory(project: Path) -> None:
    result = apply_edit(
        ProjectPaths(str(project)), _req(uri="res://scripts/new/enemy.gd", text="extends Node\n")
    )
    assert result.created and result.previous_sha256 is None
    target = project / "scripts" / "new" / "enemy.gd"
    assert target.read_text() == "extends Node\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_write_keeps_the_mode_and_leaves_no_temp_files(project: Path) -> None:
    target = project / "demo" / "main.gd"
    target.chmod(0o600)
    apply_edit(ProjectPaths(str(project)), _req(uri=str(target), text="x\n"))
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in (project / "demo").iterdir()) == ["main.gd"]


def test_write_through_an_inner_symlink_keeps_the_link(project: Path) -> None:
    link = project / "alias.gd"
    link.symlink_to(project / "demo" / "main.gd")
    apply_edit(ProjectPaths(str(project)), _req(uri="res://alias.gd", text="y\n"))
    assert link.is_symlink()
    assert (project / "demo" / "main.gd").read_text() == "y\n"


def test_non_utf8_file_refuses_edits_but_takes_text(project: Path) -> None:
    (project / "bin.gd").write_bytes(b"\xff\xfe\x00")
    paths = ProjectPaths(str(project))
    with pytest.raises(RequestError) as exc:
        apply_edit(paths, _req(uri="bin.gd", edits=[]))
    assert exc.value.code == "not_text"
    apply_edit(paths, _req(uri="bin.gd", text="ok"))
    assert (project / "bin.gd").read_text() == "ok"


# --- path safety -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "../outside.gd",
        "res://../outside.gd",
        "demo/../../outside.gd",
        "res://.godot/editor/x.gd",
        ".godot/global_script_class_cache.cfg",
        "res://demo/../.godot/x.gd",
    ],
)
def test_traversal_and_internals_are_403_nothing_written(project: Path, uri: str) -> None:
    before = _tree(project.parent)
    with pytest.raises(Forbidden) as exc:
        apply_edit(ProjectPaths(str(project)), _req(uri=uri, text="pwned"))
    assert exc.value.status == 403
    assert _tree(project.parent) == before


def test_absolute_path_outside_is_403(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.gd"
    for uri in (str(outside), outside.as_uri(), "/etc/hostname"):
        with pytest.raises(Forbidden):
            apply_edit(ProjectPaths(str(project)), _req(uri=uri, text="pwned"))
    assert not outside.exists()


def test_symlinked_directory_leading_out_is_403(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (project / "escape").symlink_to(elsewhere)
    with pytest.raises(Forbidden):
        apply_edit(ProjectPaths(str(project)), _req(uri="res://escape/x.gd", text="pwned"))
    assert list(elsewhere.iterdir()) == []


def test_symlinked_file_leading_out_is_403(project: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("keep")
    (project / "demo" / "link.gd").symlink_to(secret)
    with pytest.raises(Forbidden):
        apply_edit(ProjectPaths(str(project)), _req(uri="demo/link.gd", text="pwned"))
    assert secret.read_text() == "keep"


def test_symlink_into_godot_internals_is_403(project: Path) -> None:
    (project / "cache").symlink_to(project / ".godot")
    with pytest.raises(Forbidden):
        safe_target(ProjectPaths(str(project)), "res://cache/x.cfg")


def test_a_directory_is_not_a_file(project: Path) -> None:
    with pytest.raises(RequestError) as exc:
        apply_edit(ProjectPaths(str(project)), _req(uri="res://demo", text="x"))
    assert exc.value.status == 400


# --- request shape -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "x"}, "uri"),
        ({"uri": "a.gd"}, "text"),
        ({"uri": "a.gd", "text": "x", "edits": []}, "edits"),  # both: invalid (issue 12)
        ({"uri": "a.gd", "text": 3}, "text"),
        ({"uri": "a.gd", "edits": {}}, "edits"),
        ({"uri": "a.gd", "text": "x", "expected_sha256": 5}, "expected_sha256"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(RequestError) as exc:
        _req(**body)
    assert exc.value.status == 400
    assert exc.value.details["field"] == field


def test_overlapping_edits_are_400_nothing_written(project: Path) -> None:
    rng = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 5}}
    edits = [{"range": rng, "newText": "a"}, {"range": rng, "newText": "b"}]
    with pytest.raises(RequestError):
        apply_edit(ProjectPaths(str(project)), _req(uri="demo/main.gd", edits=edits))
    assert (project / "demo" / "main.gd").read_text() == ORIGINAL


# --- two agents at once --------------------------------------------------------------------------


async def test_two_agents_with_the_same_base_hash_one_wins(project: Path) -> None:
    editor = Editor(ProjectPaths(str(project)))
    base = _sha(ORIGINAL)
    results = await asyncio.gather(
        editor.apply(_req(uri="demo/main.gd", text="alice\n", expected_sha256=base)),
        editor.apply(_req(uri="res://demo/main.gd", text="bob\n", expected_sha256=base)),
        return_exceptions=True,
    )
    conflicts = [r for r in results if isinstance(r, Conflict)]
    wins = [r for r in results if not isinstance(r, BaseException)]
    assert len(conflicts) == 1 and len(wins) == 1
    assert (project / "demo" / "main.gd").read_text() == wins[0].text
    assert conflicts[0].details["current_sha256"] == wins[0].sha256


def test_no_temp_file_left_when_the_write_fails(project: Path, monkeypatch: Any) -> None:
    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        apply_edit(ProjectPaths(str(project)), _req(uri="demo/main.gd", text="x"))
    assert sorted(p.name for p in (project / "demo").iterdir()) == ["main.gd"]
    assert (project / "demo" / "main.gd").read_text() == ORIGINAL
