"""Runs sqlglot's own column-lineage tests (``tests/test_lineage.py`` of a sqlglot checkout) and
reports how many of their ``lineage(column, sql, …)`` calls Tally's extractor answers alike.

Usage: ``python -m scripts.lineage_eval.sqlglot_suite /path/to/sqlglot-checkout [--show-diff]``

Each test is run with ``sqlglot.lineage.lineage`` wrapped so that every call is recorded; the
reference answer of a call is the set of source-table columns at the leaves of the lineage
tree that the installed sqlglot returns (the tree the test then asserts on). Tally's answer
is the set of columns its DIRECT edges reach from the same output column, with the call's
``sources`` (named queries) as models and its ``schema`` as known tables. The test file is
read from the checkout, never copied into this repository.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import unittest
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlglot
import sqlglot.lineage as sqlglot_lineage
from sqlglot import exp

from lineage.sql_lineage import SqlModel, project_lineage

QUERY = "__query__"


@dataclass
class Call:
    test: str
    column: str
    sql: str
    dialect: str
    schema: dict[str, list[str]]
    sources: dict[str, str]
    reference: frozenset[str] = frozenset()
    error: str = ""


@dataclass
class Report:
    calls: list[Call] = field(default_factory=list)
    agree: int = 0
    agree_by_name: int = 0  # also counting Tally's t.x where sqlglot, schema-less, says t.*
    tally_errors: int = 0
    diffs: list[tuple[Call, frozenset[str]]] = field(default_factory=list)


def _flat_schema(schema: Any, dialect: str) -> dict[str, list[str]]:
    """sqlglot's nested schema ({db: {table: {col: type}}} at any depth) as Tally's
    ``{"db.table": [cols]}``."""
    if schema is None:
        return {}
    if hasattr(schema, "mapping"):
        schema = schema.mapping
    flat: dict[str, list[str]] = {}

    def walk(prefix: list[str], node: Any) -> None:
        values = list(node.values()) if isinstance(node, dict) else []
        if values and all(not isinstance(v, dict) for v in values):
            flat[".".join(prefix)] = [str(c).strip('"').lower() for c in node]
            return
        for key, value in node.items():
            walk([*prefix, str(key).strip('"').lower()], value)

    walk([], schema)
    return flat


def _text(sql: Any, dialect: str) -> str:
    return sql.sql(dialect=dialect) if isinstance(sql, exp.Expr) else str(sql)


def _norm(name: str) -> str:
    parts = name.lower().replace('"', "").split(".")
    if len(parts) >= 3 and parts[0] == "main":
        parts = parts[1:]
    return ".".join(parts)


def _reference(node: Any) -> frozenset[str]:
    leaves = set()
    for n in node.walk():
        if n.downstream or not isinstance(n.expression, exp.Table):
            continue
        table = n.expression
        name = ".".join(p for p in (table.catalog, table.db, table.name) if p)
        leaves.add(_norm(f"{name}.{n.name.split('.')[-1]}"))
    return frozenset(leaves)


def record(checkout: Path) -> list[Call]:
    """Runs the checkout's test_lineage.py with the lineage function wrapped."""
    path = checkout / "tests" / "test_lineage.py"
    if not path.is_file():
        raise SystemExit(f"{path} not found: pass the root of a sqlglot checkout")
    calls: list[Call] = []
    real = sqlglot_lineage.lineage
    current = {"test": ""}

    def wrapped(column: Any, sql: Any, schema: Any = None, sources: Any = None,
                dialect: Any = None, **kwargs: Any) -> Any:  # fmt: skip
        name = column.sql() if isinstance(column, exp.Expr) else str(column)
        d = dialect or ""
        call = Call(current["test"], name.strip('"').lower(), _text(sql, d), d or "duckdb",
                    _flat_schema(schema, d), {k: _text(v, d) for k, v in (sources or {}).items()})  # fmt: skip
        calls.append(call)
        try:
            node = real(column, sql, schema=schema, sources=sources, dialect=dialect, **kwargs)
        except Exception as exc:  # the test may expect an error
            call.error = type(exc).__name__
            raise
        call.reference = _reference(node)
        return node

    spec = importlib.util.spec_from_file_location("sqlglot_test_lineage", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.lineage = wrapped  # type: ignore[attr-defined]  # the tests call the name they imported
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    for case in _cases(suite):
        current["test"] = case.id().rsplit(".", 1)[-1]
        case.run(unittest.TestResult())
    return calls


def _cases(suite: unittest.TestSuite) -> list[unittest.TestCase]:
    out: list[unittest.TestCase] = []
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            out.extend(_cases(item))
        else:
            out.append(item)
    return out


def tally_answer(call: Call) -> frozenset[str]:
    dialect = call.dialect if call.dialect else "duckdb"
    models = [SqlModel(name, sql) for name, sql in call.sources.items()]
    models.append(SqlModel(QUERY, call.sql))
    found = project_lineage(models, dialect=dialect, schema=call.schema)
    made = {_norm(f"main.{m.name}") for m in models}
    upstream: dict[str, set[str]] = {}
    for edge in found.edges:
        source, target, subtype = edge.key
        if subtype == "direct":
            upstream.setdefault(_norm(target), set()).add(_norm(source))
    start = _norm(f"main.{QUERY}.{call.column}")
    leaves, todo, seen = set(), [start], {start}
    while todo:
        node = todo.pop()
        above = upstream.get(node) or upstream.get(node.rsplit(".", 1)[0] + ".*", set())
        table = node.rsplit(".", 1)[0]
        if not above and node != start and table not in made:  # a source table's column
            leaves.add(node)
        for source in above - seen:
            seen.add(source)
            todo.append(source)
    return frozenset(leaves)


def compare(calls: list[Call]) -> Report:
    report = Report(calls=[c for c in calls if not c.error and c.reference])
    for call in report.calls:
        try:
            answer = tally_answer(call)
        except Exception:
            report.tally_errors += 1
            answer = frozenset()
        if answer == call.reference:
            report.agree += 1
            report.agree_by_name += 1
            continue
        stars = {r.rsplit(".", 1)[0] for r in call.reference if r.endswith(".*")}
        named = frozenset(
            f"{a.rsplit('.', 1)[0]}.*" if a.rsplit(".", 1)[0] in stars else a for a in answer
        )
        if named == call.reference and answer:
            report.agree_by_name += 1
        report.diffs.append((call, answer))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path)
    parser.add_argument("--show-diff", action="store_true")
    args = parser.parse_args(argv)
    calls = record(args.checkout)
    report = compare(calls)
    total = len(report.calls)
    skipped = len(calls) - total
    print(f"sqlglot {sqlglot.__version__}: {len(calls)} lineage() calls recorded, {skipped} without "
          f"a table-column answer (errors or literals only) left out")  # fmt: skip
    print(f"Tally agrees on {report.agree}/{total} ({report.agree / max(total, 1):.1%}); "
          f"{report.agree_by_name}/{total} counting a column Tally names through an unexpanded "
          f"* (t.x) where sqlglot stops at t.*; Tally errors: {report.tally_errors}")  # fmt: skip
    if args.show_diff:
        for call, answer in report.diffs:
            print(f"- {call.test} {call.column!r}: sqlglot={sorted(call.reference)} "
                  f"tally={sorted(answer)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
