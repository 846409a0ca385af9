"""One resolver for every path an agent names: `res://`, project-relative, absolute, `file://`.

Every endpoint goes through `ProjectPaths`: a path outside the project is 403
`outside_project`, a file that is not there 404 `not_found`, a non-script where only
scripts make sense 400 `not_a_script`, whatever the endpoint.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from sidecar.errors import RequestError, SidecarError

SCRIPT_SUFFIX = ".gd"


class Forbidden(SidecarError):
    """The path is not one the bridge may touch."""

    status = 403
    code = "outside_project"


# --- URIs and paths ------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectFile:
    """A file inside the project, by its project-relative POSIX path."""

    rel: str

    @property
    def res(self) -> str:
        return "res://" + self.rel

    @property
    def is_script(self) -> bool:
        """A GDScript file: the only kind Godot's language server and debugger know."""
        return self.rel.lower().endswith(SCRIPT_SUFFIX)


class ProjectPaths:
    """Maps the four spellings agents use onto project files, and files onto Godot URIs."""

    def __init__(self, root: str) -> None:
        self.root = posixpath.normpath(os.path.abspath(root))
        # Godot builds URIs from the root it was opened with, which may be the real path
        # (it chdirs into the project); the LSP session updates this from Godot's
        # `gdscript_client/changeWorkspace` notification.
        self.godot_root = self.root

    def set_godot_root(self, path: str) -> None:
        if path:
            self.godot_root = posixpath.normpath(path)

    def resolve(self, raw: Any, field_name: str = "uri") -> ProjectFile:
        """The project file `raw` names: 400 if it is not a path, 403 if outside."""
        if not isinstance(raw, str) or not raw.strip():
            raise RequestError(
                f"field '{field_name}' must be a non-empty string: res://, project-relative, "
                "absolute path or file:// URI",
                code="invalid_field",
                details={"field": field_name},
            )
        raw = raw.strip()
        if raw.startswith("res://"):
            return self._inside(raw[len("res://") :], raw)
        if raw.startswith("file:"):
            return self._absolute(_file_uri_path(raw, field_name), raw)
        if raw.startswith("/"):
            return self._absolute(raw, raw)
        if "://" in raw:
            raise RequestError(
                f"field '{field_name}': unsupported URI scheme in {raw!r}; "
                "use res://, file://, an absolute or a project-relative path",
                code="invalid_field",
                details={"field": field_name},
            )
        return self._inside(raw, raw)

    def script(self, raw: Any, field_name: str = "uri") -> ProjectFile:
        """Like `resolve`, and 400 naming the field unless it is a `.gd` file.

        Godot's language server parses whatever it is given as GDScript: a scene or a
        text file answers with dozens of false errors. Every endpoint where only a script
        makes sense goes through here.
        """
        f = self.resolve(raw, field_name)
        if not f.is_script:
            raise RequestError(
                f"field '{field_name}': {f.res} is not a GDScript file ({SCRIPT_SUFFIX}); "
                "the language server only knows scripts. Read or write other project "
                "files with /edit/read and /edit/applyChanges",
                code="not_a_script",
                details={"field": field_name, "path": f.res},
            )
        return f

    def _inside(self, rel: str, raw: str) -> ProjectFile:
        rel = rel.replace("\\", "/")
        norm = posixpath.normpath("/" + rel.lstrip("/")) if rel else "/"
        # normpath("/" + rel) swallows leading "..": check the raw parts instead.
        if _escapes(rel):
            raise Forbidden(f"{raw!r} leads outside the project", details={"path": raw})
        rel_norm = norm.lstrip("/")
        if not rel_norm:
            raise RequestError(f"{raw!r} names the project directory, not a file")
        return ProjectFile(rel_norm)

    def _absolute(self, path: str, raw: str) -> ProjectFile:
        path = posixpath.normpath(path)
        for root in self._roots():
            if path.startswith(root + "/"):
                return self._inside(path[len(root) + 1 :], raw)
        # A symlinked spelling of the project (macOS /tmp, bind mounts): compare real paths.
        real = os.path.realpath(path)
        real_root = os.path.realpath(self.root)
        if real.startswith(real_root + "/"):
            return self._inside(real[len(real_root) + 1 :], raw)
        raise Forbidden(f"{raw!r} is outside the project {self.root}", details={"path": raw})

    def _roots(self) -> list[str]:
        return list(dict.fromkeys([self.root, self.godot_root]))

    def uri(self, f: ProjectFile) -> str:
        """The URI Godot uses for `f` (see GDScriptWorkspace::get_file_uri)."""
        full = posixpath.join(self.godot_root, f.rel).lstrip("/")
        return "file:///" + "/".join(quote(part, safe="") for part in full.split("/"))

    def path(self, f: ProjectFile) -> str:
        """Where `f` lives on disk."""
        return os.path.join(self.root, *f.rel.split("/"))

    def try_resolve(self, raw: Any) -> ProjectFile | None:
        try:
            return self.resolve(raw)
        except SidecarError:
            return None

    def existing(self, raw: Any, field_name: str = "uri") -> ProjectFile:
        """Like `resolve`, and 404 `not_found` unless the file is there."""
        f = self.resolve(raw, field_name)
        if not os.path.isfile(self.path(f)):
            raise RequestError(
                f"no file {f.res} in the project (looked for {self.path(f)})",
                code="not_found",
                details={"field": field_name, "path": f.res},
            )
        return f

    def real_path(self, f: ProjectFile) -> str:
        """`f` on disk with symlinks resolved; 403 when a link leads out of the project."""
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(self.path(f))
        if not real.startswith(real_root + os.sep):
            raise Forbidden(
                f"{f.res} resolves to {real}, outside the project", details={"path": f.res}
            )
        return real


def _escapes(rel: str) -> bool:
    depth = 0
    for part in rel.split("/"):
        if part in ("", "."):
            continue
        depth += -1 if part == ".." else 1
        if depth < 0:
            return True
    return False


def _file_uri_path(raw: str, field_name: str) -> str:
    parts = urlsplit(raw)
    if parts.netloc not in ("", "localhost"):
        raise RequestError(
            f"field '{field_name}': file URI {raw!r} names another host",
            code="invalid_field",
            details={"field": field_name},
        )
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise RequestError(
            f"field '{field_name}': file URI {raw!r} has no absolute path",
            code="invalid_field",
            details={"field": field_name},
        )
    return path
