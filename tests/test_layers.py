"""The sidecar's layers as the folder tree shows them: imports point one way, no cycles.

    app → api → web, godot, project, control → link → errors, config, agents
    client: nothing of the sidecar (it is what agents install)

Read from the source with `ast`, so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

import pytest
from harness import REPO

SIDECAR = REPO / "sidecar"

# What each layer may import from the sidecar (besides itself and the package root).
ALLOWED: dict[str, set[str]] = {
    "base": set(),
    "link": {"base"},
    "project": {"base"},
    "godot": {"base", "project"},
    "control": {"base"},
    "web": {"base", "link"},
    "api": {"base", "web", "godot", "project", "control"},
    "app": {"base", "link", "web", "godot", "project", "api", "control"},
    "client": set(),
}
BASE_MODULES = {"errors", "config", "agents"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None  # the package root: only __version__
    top = parts[1]
    if top in BASE_MODULES:
        return "base"
    if top in ("app", "__main__"):
        return "app"
    return top if top in ALLOWED else None


@functools.cache
def _parsed() -> dict[Path, ast.Module]:
    """Every sidecar module's syntax tree, parsed once for all the tests here."""
    return {p: ast.parse(p.read_text(encoding="utf-8")) for p in sorted(SIDECAR.rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    tree = _parsed()[path]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("sidecar")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("sidecar"):
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in _parsed()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {m for m in _imports(path) if m in modules and m != name}
    return graph


def test_issue_12_no_relative_imports() -> None:
    """Absolute imports: a module's dependencies read the same wherever it moves."""
    relative = [
        f"{p.relative_to(REPO)}:{n.lineno}"
        for p, tree in _parsed().items()
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.level > 0
    ]
    assert relative == []


def test_issue_12_every_module_is_in_a_layer() -> None:
    unplaced = [m for m in _graph() if m != "sidecar" and _layer(m) is None]
    assert unplaced == []


def test_issue_12_imports_point_down_the_layers() -> None:
    wrong = []
    for module, deps in _graph().items():
        layer = _layer(module)
        for dep in deps:
            target = _layer(dep)
            if layer is None or target is None or target == layer:
                continue
            if target not in ALLOWED[layer]:
                wrong.append(f"{module} ({layer}) imports {dep} ({target})")
    assert wrong == []


def test_issue_12_no_import_cycles() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("sidecar.client", ("sidecar.",)),
        ("sidecar.godot.dap.session", ("sidecar.web", "sidecar.api", "aiohttp")),
        ("sidecar.godot.lsp.session", ("sidecar.web", "sidecar.api", "aiohttp")),
        ("sidecar.project.edits", ("sidecar.web", "sidecar.api", "aiohttp")),
    ],
)
def test_issue_12_a_layer_loads_nothing_above_it(module: str, forbidden: tuple[str, ...]) -> None:
    """What really gets loaded, package __init__ files included (ast can miss those)."""
    probe = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.split()
    package = ".".join(module.split(".")[:2])  # sidecar.<layer>: its own modules are fine
    leaked = [
        m
        for m in loaded
        if m != "sidecar"
        and not (m == package or m.startswith(package + "."))
        and any(m == f.rstrip(".") or m.startswith(f) for f in forbidden)
    ]
    assert leaked == []
