"""The package's layers (docs/design.md, "Layers"): a module never imports one of a higher
layer, at module level or inside a function, and the library never imports QGIS."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "cwsc"

#: Lowest first. A module may import its own layer and those below it.
LAYERS = [
    ("foundation", ("cwsc", "cwsc.errors", "cwsc.progress")),
    ("machine", ("cwsc.machine",)),
    ("io", ("cwsc.io",)),
    ("hydro", ("cwsc.hydro",)),
    ("ml", ("cwsc.ml",)),
    ("evaluation", ("cwsc.evaluation",)),
    ("reports", ("cwsc.reports",)),
    ("runtime", ("cwsc.runtime",)),
    ("commands", ("cwsc.commands", "cwsc.cli", "cwsc.__main__")),
]
#: Synthetic data may use anything; only the commands (demo-data) may use it.
SYNTHETIC = "cwsc.synthetic"


def layer(module: str) -> int | None:
    best, rank = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            exact = prefix == "cwsc"
            if (module == prefix) if exact else (module == prefix or module.startswith(prefix + ".")):
                if len(prefix) > best:
                    best, rank = len(prefix), i
    return rank


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """Every ``cwsc`` module ``path`` imports, wherever the import stands."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def resolve(name: str) -> str:
    """``cwsc.io.rasters.Grid`` -> ``cwsc.io.rasters``: the longest prefix that is a module."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = PACKAGE.parent.joinpath(*parts[:i])
        if candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file():
            return ".".join(parts[:i])
    return name


def violations() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = module_name(path)
        for line, name in imports(path):
            top = name.split(".")[0]
            if top in ("qgis", "PyQt5", "cwsc_qgis"):
                out.append(f"{path.name}:{line} {me} imports {name}: the package never imports QGIS")
                continue
            if top != "cwsc":
                continue
            target = resolve(name)
            if target.startswith(SYNTHETIC):
                if not (me.startswith(SYNTHETIC) or layer(me) == len(LAYERS) - 1):
                    out.append(f"{path.relative_to(PACKAGE.parent)}:{line} {me} imports {target}")
                continue
            if me.startswith(SYNTHETIC):
                continue
            mine, theirs = layer(me), layer(target)
            assert mine is not None and theirs is not None, (me, target)
            if theirs > mine:
                out.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line} {me} ({LAYERS[mine][0]}) imports "
                    f"{target} ({LAYERS[theirs][0]})"
                )
    return sorted(set(out))


def test_every_module_has_a_layer():
    missing = [
        module_name(p)
        for p in PACKAGE.rglob("*.py")
        if layer(module_name(p)) is None and not module_name(p).startswith(SYNTHETIC)
    ]
    assert not missing


def test_no_module_imports_a_higher_layer():
    assert violations() == []


def test_the_check_sees_an_upward_import(tmp_path):
    """The test itself: a library module that imports the runtime is caught."""
    fake = tmp_path / "cwsc"
    (fake / "io").mkdir(parents=True)
    (fake / "runtime").mkdir()
    for d in (fake, fake / "io", fake / "runtime"):
        (d / "__init__.py").write_text("")
    (fake / "runtime" / "protocol.py").write_text("")
    (fake / "io" / "rasters.py").write_text("def f():\n    from cwsc.runtime import protocol\n")
    globals()["PACKAGE"] = fake
    try:
        found = violations()
    finally:
        globals()["PACKAGE"] = Path(__file__).resolve().parents[2] / "cwsc"
    assert "cwsc/io/rasters.py:2 cwsc.io.rasters (io) imports cwsc.runtime.protocol (runtime)" in found


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        me = module_name(path)
        targets = {resolve(name) for _, name in imports(path) if name.split(".")[0] == "cwsc"}
        # A package's __init__ is imported on the way to its modules: not an edge of its own.
        graph[me] = {t for t in targets if t != me and not me.startswith(t + ".") and t != "cwsc"}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_no_import_circle():
    assert cycles(import_graph()) == []
