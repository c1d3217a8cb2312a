"""Imports run one way between the floors of the code, with no circles (STYLE rule 5).

The first-party packages are read as text (an AST walk, nothing is imported), so the test
also sees imports inside functions: a lazy import hides a circle from Python, not from us.
Run it as a script (``python -m tests.guards.test_import_layers``) to list every violation.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tally", "registry", "semantic", "lineage")

# Floors, lowest first. A module may import from its own floor or a lower one, never a higher
# one. The longest matching prefix decides a module's floor.
FLOORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "foundation",
        (
            "tally",
            "tally.errors",
            "tally.env",
            "tally.settings",
            "tally.celery",
            "tally.apps",
            "tally.mail",
            "tally.throttling",
            "tally.lru",
            "tally.bulk",
            "tally.templatetags",
            "registry.roles",
            "semantic.warehouse.config",
        ),
    ),
    ("definitions", ("registry.definitions",)),
    ("compiler", ("semantic.compiler",)),
    ("registry", ("registry",)),
    ("semantic", ("semantic",)),
    (
        "jobs",
        (
            "semantic.jobs",
            "semantic.tasks",
            "registry.tasks",
            "semantic.receivers",
            "registry.receivers",
        ),
    ),
    ("lineage", ("lineage",)),
    (
        "interfaces",
        (
            "registry.api",
            "registry.views",
            "registry.forms",
            "registry.urls",
            "registry.ui_selectors",
            "registry.context_processors",
            "registry.management",
            # Each app's AppConfig.ready is the composition root: it imports the modules whose
            # receivers answer a lower floor's signals (registry.tasks, semantic.tasks,
            # lineage.receivers), so it sits above everything it wires.
            "registry.apps",
            "semantic.apps",
            "lineage.apps",
            "semantic.api",
            "semantic.views",
            "semantic.forms",
            "semantic.urls",
            "semantic.ui_selectors",
            "semantic.charts",
            "semantic.sqlapi",
            "semantic.management",
            "lineage.api",
            "lineage.views",
            "lineage.urls",
            "lineage.ui_selectors",
            "lineage.management",
            "tally.urls",
            "tally.middleware",
            "tally.cli",
            "tally.views",
            "tally.ui",
            "tally.health",
            "tally.client",
            "tally.mcp",
            "tally.management",
            "tally.asgi",
            "tally.wsgi",
        ),
    ),
)
FLOOR_NAMES = [name for name, _ in FLOORS]


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    names: tuple[str, ...]
    line: int


def modules() -> dict[str, Path]:
    """Every first-party module (migrations excluded), by dotted name."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(known: dict[str, Path]) -> Iterator[Import]:
    """First-party imports of every module, including those inside functions."""
    for source, path in known.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        package = source if path.name == "__init__.py" else source.rpartition(".")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = _known_prefix(alias.name, known)
                    if target and target != source:
                        yield Import(source, target, (), node.lineno)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                for alias in node.names:
                    # `from pkg import module` imports the module; `from module import name`
                    # imports the name from the module.
                    target = _known_prefix(f"{base}.{alias.name}", known)
                    names: tuple[str, ...] = ()
                    if target != f"{base}.{alias.name}":
                        target = _known_prefix(base, known)
                        names = (alias.name,)
                    if target and target != source:
                        yield Import(source, target, names, node.lineno)


def _known_prefix(name: str, known: dict[str, Path]) -> str | None:
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def floor_of(module: str) -> int:
    """Index into FLOORS of the floor a module lives on (longest matching prefix)."""
    best, best_length = 0, -1
    for index, (_, prefixes) in enumerate(FLOORS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    return best


def violations() -> tuple[list[str], list[str], list[str]]:
    """(upward imports, private-name imports, cycles), each as readable lines."""
    known = modules()
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(known)
    upward: list[str] = []
    private: list[str] = []
    for item in imports(known):
        graph.add_edge(item.source, item.target)
        source_floor, target_floor = floor_of(item.source), floor_of(item.target)
        where = f"{known[item.source].relative_to(ROOT)}:{item.line}"
        if target_floor > source_floor:
            upward.append(
                f"{where}: {item.source} ({FLOOR_NAMES[source_floor]}) imports "
                f"{item.target} ({FLOOR_NAMES[target_floor]})"
            )
        for name in item.names:
            if name.startswith("_") and not name.startswith("__"):
                private.append(f"{where}: {item.source} imports {item.target}.{name}")
    cycles = [
        " -> ".join(sorted(component))
        for component in nx.strongly_connected_components(graph)
        if len(component) > 1
    ]
    return sorted(set(upward)), sorted(set(private)), sorted(cycles)


def test_imports_form_no_cycle() -> None:
    """No first-party import circle, not even through a function-level import."""
    assert violations()[2] == []


def test_imports_never_go_up_a_floor() -> None:
    """definitions → compiler → registry → semantic → jobs → lineage → interfaces, one way."""
    assert violations()[0] == []


def test_no_module_imports_another_modules_private_names() -> None:
    """`from x import _y` reaches into another module's internals; make the name public."""
    assert violations()[1] == []


if __name__ == "__main__":
    up, hidden, circles = violations()
    for title, lines in (("upward", up), ("private", hidden), ("cycles", circles)):
        print(f"== {title}: {len(lines)}")
        for line in lines:
            print("  " + line)
    sys.exit(1 if up or hidden or circles else 0)
