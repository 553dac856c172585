"""The house stays walkable: no module of the core or of a plugin grows past a size a reader can
hold, and the core's modules import each other in one direction only (no import cycle)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 450


def is_generated_or_double(path: str) -> bool:
    """Generated protobuf code, containerd's generated API, and the Kubernetes test doubles."""
    name = path.rsplit("/", 1)[-1]
    return (
        "_pb2" in name
        or path.startswith("plugins/tinklet_containerd/tinklet_containerd/api/")
        or path.startswith("plugins/tinklet_kube_testing/")
    )


def source_modules() -> list[str]:
    """Every module of the core and of the shipped plugins (not their tests), relative to the root."""
    paths = [*ROOT.glob("tinklet_core/**/*.py"), *ROOT.glob("plugins/*/tinklet_*/**/*.py")]
    return sorted(path.relative_to(ROOT).as_posix() for path in paths if "egg-info" not in path.as_posix())


def test_no_module_is_longer_than_a_reader_can_hold() -> None:
    modules = source_modules()
    assert "tinklet_core/worker.py" in modules and "plugins/tinklet_kube/tinklet_kube/runtime.py" in modules
    lines = {path: len((ROOT / path).read_text().splitlines()) for path in modules}
    too_long = sorted(
        f"{path}: {count} lines"
        for path, count in lines.items()
        if count > MAX_LINES and not is_generated_or_double(path)
    )
    assert too_long == [], f"split these modules (at most {MAX_LINES} lines each)"


def core_modules() -> dict[str, Path]:
    """``tinklet_core.x.y`` → its file, for every module of the core (packages by ``__init__``)."""
    modules = {}
    for path in (ROOT / "tinklet_core").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_time_statements(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports run when a module is imported: at module level, in class bodies, ``try`` and
    ``if`` blocks, but not under ``if TYPE_CHECKING:`` nor inside functions."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from import_time_statements(node.body)
            yield from import_time_statements(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from import_time_statements(block)
        elif isinstance(node, ast.With | ast.ClassDef):
            yield from import_time_statements(node.body)


def imports_of(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The core modules ``module`` imports at import time."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in import_time_statements(ast.parse(path.read_text()).body):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            base = ".".join([*anchor, *([base] if base else [])])
        for alias in node.names:
            found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {name for name in found if name in known and name != module}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` (``[a, b, …, a]``), or ``[]``."""
    done: set[str] = set()
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> list[str]:
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target in on_stack:
                return [*stack[stack.index(target) :], target]
            if target not in done and (cycle := visit(target)):
                return cycle
        stack.pop()
        on_stack.discard(node)
        done.add(node)
        return []

    for start in sorted(graph):
        if start not in done and (cycle := visit(start)):
            return cycle
    return []


def test_the_cycle_finder_finds_a_cycle_and_an_import_under_type_checking_is_no_edge() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x\nimport y\n"
    source += "def f():\n    import z\n"
    names = {alias.name for node in import_time_statements(ast.parse(source).body) for alias in node.names}
    assert names == {"TYPE_CHECKING", "y"}


def test_no_import_cycle_inside_the_core() -> None:
    known = core_modules()
    graph = {module: imports_of(module, path, known) for module, path in known.items()}
    assert "tinklet_core.model" in graph["tinklet_core.worker"], "the import graph misses plain imports"
    assert "tinklet_core.testing.tink_server.records" in graph["tinklet_core.testing.tink_server.v2"]
    cycle = find_cycle(graph)
    assert cycle == [], "import cycle: " + " -> ".join(cycle)
