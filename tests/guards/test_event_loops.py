"""Tests start event loops on a thread of their own (``tests.conftest.in_own_thread``).

Bug (CI, twice): under xdist a worker that has run a browser journey keeps Playwright's
sync-API event loop running on its main thread (the browser is session-scoped), and from
then on a bare ``asyncio.run``/``anyio.run`` in a later test on that worker raises "cannot
be called from a running event loop". Which tests share a worker with a journey changes
from run to run, so the failure came and went. This guard reads every Python file under
tests/ (an AST walk: code in strings, such as a script run in a subprocess, is not code of
the test process) and names each loop-starting call that is not run by ``in_own_thread``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"

# Calls that start (or drive) an event loop on the calling thread, by dotted name.
LOOP_STARTERS = {"asyncio.run", "anyio.run", "asyncio.Runner", "asgiref.sync.async_to_sync"}
# Any `<loop>.run_until_complete(...)`, whatever the loop is called.
LOOP_METHODS = {"run_until_complete", "run_forever"}


def _imported_names(tree: ast.Module) -> dict[str, str]:
    """Local name → dotted name, for `import asyncio as aio` and `from anyio import run`."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.partition(".")[0]] = (
                    alias.name if alias.asname else alias.name.partition(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.expr, names: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(names.get(node.id, node.id))
    return ".".join(reversed(parts))


def bare_loop_calls(source: str, filename: str = "<test>") -> list[tuple[int, str]]:
    """(line, call) of each loop-starting call in ``source`` outside ``in_own_thread``.

    Allowed: the starter passed uncalled (``in_own_thread(asyncio.run, main())``), and calls
    inside a function or lambda that the same module hands to ``in_own_thread``.
    """
    tree = ast.parse(source, filename=filename)
    names = _imported_names(tree)
    threaded_functions: set[str] = set()
    threaded_lambdas: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            callee = _dotted(node.func, names)
            if callee and callee.rpartition(".")[2] == "in_own_thread":
                first = node.args[0]
                if isinstance(first, ast.Name):
                    threaded_functions.add(first.id)
                elif isinstance(first, ast.Lambda):
                    threaded_lambdas.add(id(first))

    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, allowed: bool) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            allowed = allowed or node.name in threaded_functions
        elif isinstance(node, ast.Lambda):
            allowed = allowed or id(node) in threaded_lambdas
        elif isinstance(node, ast.Call) and not allowed:
            callee = _dotted(node.func, names)
            method = node.func.attr if isinstance(node.func, ast.Attribute) else None
            if callee in LOOP_STARTERS:
                found.append((node.lineno, callee))
            elif method in LOOP_METHODS:
                found.append((node.lineno, f"….{method}"))
        for child in ast.iter_child_nodes(node):
            visit(child, allowed)

    visit(tree, False)
    return found


def offenders() -> list[str]:
    """file:line: call, for every test file."""
    lines: list[str] = []
    for path in sorted(TESTS.rglob("*.py")):
        for line, call in bare_loop_calls(path.read_text(), str(path)):
            lines.append(f"{path.relative_to(ROOT)}:{line}: {call}(…) outside in_own_thread")
    return lines


def test_no_test_starts_an_event_loop_on_the_workers_main_thread() -> None:
    """Every asyncio.run / anyio.run / run_until_complete in tests/ runs via in_own_thread."""
    found = offenders()
    assert not found, (
        "a test process may already run an event loop on its main thread (Playwright); "
        "use tests.conftest.in_own_thread(asyncio.run, main()):\n" + "\n".join(found)
    )


SAMPLE = '''
import asyncio
import anyio
from anyio import run as arun
from tests.conftest import in_own_thread

SCRIPT = """
anyio.run(main)
"""

def ok() -> None:
    in_own_thread(asyncio.run, main())
    in_own_thread(lambda: anyio.run(main))

def helper() -> int:
    return asyncio.run(main())

def test_ok() -> None:
    in_own_thread(helper)

def test_bad() -> None:
    asyncio.run(main())
    arun(main)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(main())
'''


def test_the_guard_sees_bare_calls_and_lets_threaded_ones_pass() -> None:
    """The checker itself: names the bare calls (aliases and loop methods too) by line, and
    passes the starter handed uncalled, a lambda or function run by in_own_thread, and code
    in a string."""
    assert bare_loop_calls(SAMPLE) == [
        (22, "asyncio.run"),
        (23, "anyio.run"),
        (25, "….run_until_complete"),
    ]


if __name__ == "__main__":
    print("\n".join(offenders()) or "no bare event loops in tests/")
