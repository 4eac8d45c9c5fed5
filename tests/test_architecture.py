"""The package's floors (docs/architecture.md): which part may import which, and no import cycles.

Every module under src/dlradiomics is parsed with `ast` (nothing is imported): every import
statement counts, at module level or inside a function, relative imports resolved. A function-level
import is no way around a rule, and an import cycle is a cycle wherever its imports stand.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

PACKAGE = "dlradiomics"
SOURCE_ROOT = Path(__file__).resolve().parents[1] / "src"

# Leaf modules hold what every floor shares (table columns, library versions, progress, local workers); they import nothing
# of the package, so any floor may import them without climbing.
LEAVES = {"dlradiomics.schema", "dlradiomics.versions", "dlradiomics.progress", "dlradiomics.parallel"}

# The part of the package each module belongs to, by its dotted-name prefix (longest prefix wins).
PARTS = {
    "dlradiomics.io": "io",
    "dlradiomics.store": "store",
    "dlradiomics.models": "models",
    "dlradiomics.cohort": "cohort",
    "dlradiomics.features": "features",
    "dlradiomics.evaluation": "evaluation",
    "dlradiomics.bundle": "bundle",
    "dlradiomics.report": "report",
    "dlradiomics.study": "study",
    "dlradiomics.cli": "cli",
    "dlradiomics.serve": "serve",
    "dlradiomics.docs": "docs",
    "dlradiomics.demo": "demo",
    "dlradiomics.api": "api",
}

# What each part may import of the package ("only") or must never import ("never"). A leaf may
# be imported by every part; the leaves themselves import nothing of the package.
ONLY = {
    "io": {"io"},
    "store": {"store"},
    "models": {"models"},
    "cohort": {"cohort", "io"},
    # Evaluation computes on tables and writes no files: its callers write what it returns.
    "evaluation": {"models"},
    "leaf": set(),
}
# The top floor: the case viewer and the user pages serve the commands and nothing else.
ONLY_IMPORTED_BY = {"serve": {"cli"}, "docs": {"cli"}}
NEVER = {
    "features": {"models", "evaluation", "study", "report", "cli"},
    "bundle": {"study", "report", "cli"},
    "report": {"study", "models", "bundle"},
    "study": {"cli"},
}

# Rules that fail today only because of a file another stream is changing; strict, so each one
# turns into a failure ("XPASS(strict)") the moment it holds, and its entry must then go.
PENDING_FLOOR_RULES: dict[str, str] = {}
PENDING_CYCLES: dict[str, str] = {}


@dataclass(frozen=True)
class Import:
    """One import of a package module by another."""

    importer: str
    imported: str
    line: int
    in_function: bool

    def __str__(self) -> str:
        where = "function-level" if self.in_function else "module-level"
        return f"{self.importer} imports {self.imported} (line {self.line}, {where})"


def part_of(module: str) -> str:
    """The part a module belongs to: a leaf, one of `PARTS`, or the package root."""
    if module in LEAVES:
        return "leaf"
    prefixes = [prefix for prefix in PARTS if module == prefix or module.startswith(prefix + ".")]
    return PARTS[max(prefixes, key=len)] if prefixes else "root"


@cache
def package_modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its `__init__.py`)."""
    modules = {}
    for path in sorted((SOURCE_ROOT / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SOURCE_ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _resolve(name: str, known: set[str]) -> str | None:
    """The package module a dotted name refers to (the longest known prefix), or None outside the package."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports_of(module: str, path: Path, known: set[str]) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    # `from . import x` in a package's __init__ starts at the package itself.
                    anchor = module.split(".")
                    anchor = anchor if is_package else anchor[:-1]
                    anchor = anchor[: len(anchor) - (child.level - 1)]
                    base = ".".join(anchor + ([child.module] if child.module else []))
                else:
                    base = child.module or ""
                # `from package import submodule` imports the submodule; `from module import name`, the module.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                           for alias in child.names]
            for target in dict.fromkeys(targets):
                imported = _resolve(target, known)
                if imported is not None and imported != module:
                    found.append(Import(module, imported, child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


@cache
def import_graph() -> dict[str, tuple[Import, ...]]:
    """Every module's imports of package modules."""
    modules = package_modules()
    known = set(modules)
    return {module: tuple(_imports_of(module, path, known)) for module, path in modules.items()}


def forbidden_imports(module: str) -> list[Import]:
    """The imports of a module that break its part's rule."""
    part = part_of(module)
    broken = []
    for edge in import_graph()[module]:
        target = part_of(edge.imported)
        if target == part:
            continue
        if part in ONLY and (target not in ONLY[part] and (target != "leaf" or part == "leaf")):
            broken.append(edge)
        elif target in NEVER.get(part, set()):
            broken.append(edge)
        elif target in ONLY_IMPORTED_BY and part not in ONLY_IMPORTED_BY[target]:
            broken.append(edge)
    return broken


@cache
def modules_on_cycles() -> dict[str, tuple[str, ...]]:
    """For each module on an import cycle, the modules of its cycle (Tarjan's strongly connected components)."""
    graph = {module: sorted({edge.imported for edge in edges}) for module, edges in import_graph().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        # Recursion depth is bounded by the length of an import chain (a few dozen modules).
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(component)

    for node in graph:
        if node not in index:
            connect(node)
    return {member: tuple(sorted(component)) for component in components if len(component) > 1
            for member in component}


def _cases(pending: dict[str, str]) -> list:
    return [pytest.param(module, marks=pytest.mark.xfail(strict=True, reason=pending[module]))
            if module in pending else module for module in package_modules()]


def test_the_parser_sees_every_kind_of_import():
    """The rules below are only as good as the graph: check it on known imports of each kind."""
    edges = {(edge.importer, edge.imported): edge for edges in import_graph().values() for edge in edges}
    # module-level `from package.module import name`
    assert ("dlradiomics.evaluation.grid", "dlradiomics.evaluation.crossval") in edges
    # `from package import submodule` names the submodule, not the package
    assert ("dlradiomics.cli", "dlradiomics.cli.qa") in edges
    # a function-level import is recorded as such
    function_level = edges[("dlradiomics.study.features", "dlradiomics.features.deep.embeddings")]
    assert function_level.in_function
    assert part_of("dlradiomics.features.radiomic.extraction") == "features"
    assert part_of("dlradiomics.schema") == "leaf" and part_of("dlradiomics") == "root"


def test_relative_imports_resolve(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from . import a\n")
    (package / "a.py").write_text("def f():\n    from .sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("from .. import a\nfrom ..a import f\n")
    known = {"pkg", "pkg.a", "pkg.sub", "pkg.sub.b"}
    assert [(e.imported, e.in_function) for e in _imports_of("pkg", package / "__init__.py", known)] == [("pkg.a", False)]
    assert [(e.imported, e.in_function) for e in _imports_of("pkg.a", package / "a.py", known)] == [("pkg.sub.b", True)]
    assert [e.imported for e in _imports_of("pkg.sub.b", package / "sub" / "b.py", known)] == ["pkg.a", "pkg.a"]


@pytest.mark.parametrize("module", _cases(PENDING_FLOOR_RULES))
def test_module_imports_nothing_its_floor_forbids(module):
    broken = forbidden_imports(module)
    assert not broken, f"{part_of(module)} may not import these: " + "; ".join(map(str, broken))


# Calls that write a file; evaluation makes none of them (outputs are written atomically by io's writers).
FILE_WRITING_CALLS = {"to_csv", "to_parquet", "to_json", "to_excel", "write_text", "write_bytes", "savefig", "dump"}


def _file_writes(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name in FILE_WRITING_CALLS or (name == "open" and any(
                isinstance(argument, ast.Constant) and isinstance(argument.value, str) and set(argument.value) & set("wax")
                for argument in [*node.args[1:2], *(keyword.value for keyword in node.keywords if keyword.arg == "mode")])):
            found.append(f"{path.name}:{node.lineno} {name}(...)")
    return found


def test_the_file_write_check_sees_writes(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f(t, p):\n    t.to_csv(p)\n    open(p, 'w')\n    open(p, mode='ab')\n    open(p)\n")
    assert _file_writes(module) == ["m.py:2 to_csv(...)", "m.py:3 open(...)", "m.py:4 open(...)"]


def test_evaluation_writes_no_files():
    writes = [found for module, path in package_modules().items() if part_of(module) == "evaluation"
              for found in _file_writes(path)]
    assert not writes, f"evaluation writes files (callers should, with dlradiomics.io.atomic): {writes}"


@pytest.mark.parametrize("module", _cases(PENDING_CYCLES))
def test_module_is_on_no_import_cycle(module):
    cycle = modules_on_cycles().get(module)
    if cycle:
        edges = [str(edge) for edge in import_graph()[module] if edge.imported in cycle]
        pytest.fail(f"{module} is on an import cycle with {[m for m in cycle if m != module]}: " + "; ".join(edges))
