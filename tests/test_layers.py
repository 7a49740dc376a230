"""The layer rule, read from the source: every import of every module (module level and
inside functions), checked against the stage order of docs/design.md section 7.

    base (errors, dims, namespace) <- compute <- model <- levels <- io <- cli

A module may import its own layer or lower ones; the facade ``ngff_gpu/__init__.py`` may
import anything (and only ``cli`` may import it); modules import no private name (leading
underscore) from another module (a private module, such as ``cli/_common.py``, is
private to its package); and there is no import cycle between modules.
No exceptions are listed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ngff_gpu"
ROOT = "ngff_gpu"

#: Stage of each top-level name in the package; a higher rank may import a lower one.
LAYERS = {"errors": 0, "dims": 0, "namespace": 0, "compute": 1, "model": 2, "rfc4": 2,
          "levels": 3, "io": 4, "hcs": 4, "cli": 5}
FACADE = ROOT


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _resolve_from(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not _is_package(module):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str) -> list[tuple[str, str | None, int]]:
    """``(imported module, imported name or None, line)`` for every import in ``module``
    that targets the package; ``from pkg import sub`` counts as importing ``pkg.sub``."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names
                    if a.name == ROOT or a.name.startswith(ROOT + ".")]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve_from(module, node)
            if target != ROOT and not target.startswith(ROOT + "."):
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                if sub in MODULES:
                    out.append((sub, None, node.lineno))
                else:
                    out.append((target, a.name, node.lineno))
    return out


def layer_of(module: str) -> int:
    """Rank of ``module``; the facade counts as the top layer (only cli imports it)."""
    if module == FACADE:
        return max(LAYERS.values())
    return LAYERS[module.split(".")[1]]


def test_every_module_has_a_layer():
    unknown = sorted({m.split(".")[1] for m in MODULES if m != FACADE} - set(LAYERS))
    assert not unknown, f"modules outside every layer: {unknown}; add them to docs/design.md"


def test_imports_follow_the_layers():
    bad = []
    for module in MODULES:
        if module == FACADE:
            continue
        for target, _name, line in imports_of(module):
            if layer_of(target) > layer_of(module):
                bad.append(f"{MODULES[module].relative_to(PACKAGE.parent)}:{line} imports "
                           f"{target} (a higher layer)")
    assert not bad, "\n".join(bad)


def test_no_private_names_across_modules():
    bad = []
    for module in MODULES:
        for target, name, line in imports_of(module):
            if name is None:  # a module: a private one is private to its own package
                leaf, owner = target.rsplit(".", 1)[-1], target.rsplit(".", 1)[0]
                allowed = module.rsplit(".", 1)[0] == owner or module == owner
            else:
                leaf, allowed = name, target == module
            if leaf.startswith("_") and not leaf.startswith("__") and not allowed:
                bad.append(f"{MODULES[module].relative_to(PACKAGE.parent)}:{line} imports "
                           f"private {leaf} from {target}")
    assert not bad, "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    graph = {m: {t for t, _n, _l in imports_of(m) if t != m and t in MODULES} for m in MODULES}
    assert not _cycles(graph), f"import cycles: {_cycles(graph)}"


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
])
def test_cycle_finder_finds_cycles(graph, expected):
    assert _cycles(graph) == expected


def test_import_reader_sees_function_level_and_relative_imports():
    # The checks above are only as good as this reader: it must see imports inside
    # functions (the writer's lazy omero import) and resolve ``from pkg import sub``.
    found = {t for t, _n, _l in imports_of("ngff_gpu.io.writer")}
    assert "ngff_gpu.io.omero" in found
    assert {t for t, _n, _l in imports_of("ngff_gpu.cli.convert")} >= {"ngff_gpu.cli._common"}
