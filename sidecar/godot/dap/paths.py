"""Project paths as Godot's adapter takes them (absolute, real) and as agents see them."""

from __future__ import annotations

import os

from sidecar.project.paths import ProjectPaths


def to_project_path(
    project: str,
    raw: str,
    *,
    must_exist: bool = True,
    script: bool = False,
    field_name: str = "source.path",
) -> str:
    """Any spelling of a project file (project.paths) → its real absolute path.

    Godot's adapter only accepts absolute paths inside the editor's project.
    """
    paths = ProjectPaths(project)
    f = paths.script(raw, field_name) if script else paths.resolve(raw, field_name)
    if must_exist:
        f = paths.existing(f.res, field_name)
    return paths.real_path(f)


def to_res_path(project: str, absolute: str) -> str:
    rel = os.path.relpath(absolute, os.path.realpath(project))
    return "res://" + rel.replace(os.sep, "/")


def inside(project: str, path: str) -> bool:
    return os.path.commonpath([project, path]) == project


def shown(project: str, path: str) -> str:
    """A path as agents see it: res:// inside the project, else as Godot gave it."""
    if not os.path.isabs(path):
        return path
    real = os.path.realpath(path)
    return to_res_path(project, real) if inside(project, real) else path
