"""Record MetricFlow's answers to the conformance queries (run with .venv-mf's python).

    .venv-mf/bin/python scripts/metricflow/record.py [--work /tmp/conf] [--only NAME ...]

Steps:

1. Builds the demo warehouse ``<work>/warehouse.duckdb`` if it is missing, with
   ``.venv/bin/python -m tally.cli generate-demo --events 20000 --seed 42`` (``--tally-python``
   picks the interpreter; ``--rebuild-warehouse`` forces a fresh one).
2. Builds the dbt project ``<work>/dbt_project`` around fixtures/ and
   tests/conformance/extra_metrics.yml (make_project.py) and runs ``dbt parse``.
3. Runs every query of tests/conformance/queries.yml through MetricFlow's Python API in this
   process (``MetricFlowEngine.query``, the call behind ``mf query``) and writes
   ``tests/conformance/expected/<name>.json``::

       {"query": <the queries.yml entry>, "sql": <the SQL MetricFlow ran>,
        "columns": [...], "rows": [[...], ...]}

   plus ``"hand_sql"`` and ``"hand_rows"`` for queries marked ``mf_wrong`` (the right
   answer, from scripts/metricflow/hand_expected.py). Values are normalised by
   tests/conformance/normalize.py; rows are sorted unless the query has an order_by.
4. Writes ``tests/conformance/expected/_meta.json`` (tool versions, warehouse parameters and
   table sizes, query count) and deletes expected files of queries no longer in the set.

A query MetricFlow rejects makes the run fail (nothing is written for it); ``--keep-going``
records the others and lists the failures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CONFORMANCE = REPO / "tests" / "conformance"
sys.path[:0] = [str(HERE), str(CONFORMANCE)]

import hand_expected  # noqa: E402
import make_project  # noqa: E402
from normalize import normalize_rows, rows_equal, sort_rows  # noqa: E402

WAREHOUSE_EVENTS = 20000
WAREHOUSE_SEED = 42
TABLES = ("accounts", "users", "events", "subscriptions", "invoices", "time_spine")
VERSIONED_PACKAGES = (
    "metricflow",
    "dbt-metricflow",
    "dbt-core",
    "dbt-duckdb",
    "dbt-semantic-interfaces",
    "duckdb",
)
QUERY_KEYS = (
    "name",
    "description",
    "saved_query",
    "metrics",
    "group_by",
    "where",
    "start_time",
    "end_time",
    "order_by",
    "limit",
    "mf_wrong",
    "expected",
)


def load_queries(path: Path) -> list[dict[str, Any]]:
    queries = yaml.safe_load(path.read_text())["queries"]
    names = [query["name"] for query in queries]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SystemExit(f"{path}: duplicate query names {duplicates}")
    for query in queries:
        unknown = set(query) - set(QUERY_KEYS)
        if unknown:
            raise SystemExit(f"{path}: query {query['name']!r} has unknown keys {sorted(unknown)}")
        if (
            query.get("mf_wrong")
            and query.get("expected", {}).get("hand_sql") not in hand_expected.HAND
        ):
            raise SystemExit(f"{path}: mf_wrong query {query['name']!r} needs expected.hand_sql")
    return queries


def ensure_warehouse(warehouse: Path, tally_python: Path, rebuild: bool) -> None:
    if warehouse.exists() and not rebuild:
        return
    if warehouse.exists():
        warehouse.unlink()
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    command = [
        str(tally_python), "-m", "tally.cli", "generate-demo",
        "--events", str(WAREHOUSE_EVENTS), "--seed", str(WAREHOUSE_SEED), "--out", str(warehouse),
    ]  # fmt: skip
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=REPO)


def parse_time(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(str(value))


def mf_request(query: dict[str, Any]) -> Any:
    from metricflow.engine.metricflow_engine import MetricFlowQueryRequest

    return MetricFlowQueryRequest.create(
        saved_query_name=query.get("saved_query"),
        metric_names=query.get("metrics"),
        group_by_names=query.get("group_by"),
        where_constraints=query.get("where") or None,
        time_constraint_start=parse_time(query.get("start_time")),
        time_constraint_end=parse_time(query.get("end_time")),
        order_by_names=query.get("order_by"),
        limit=query.get("limit"),
    )


SAVED_ORDER_ITEM = re.compile(
    r"""^\s*(TimeDimension|Dimension|Entity|Metric)\(\s*'([^']+)'\s*(?:,\s*'([^']+)'\s*)?\)"""
    r"""(\.descending\(\s*(True|False)\s*\))?\s*$"""
)


def saved_query_order_by(name: str) -> list[str]:
    """A saved query's own order_by in the dunder form ("-" for descending)."""
    doc = yaml.safe_load((REPO / "fixtures" / "saved_queries.yml").read_text())
    for saved in doc.get("saved_queries") or []:
        if saved["name"] == name:
            items = []
            for item in saved.get("query_params", {}).get("order_by") or []:
                match = SAVED_ORDER_ITEM.match(item)
                if not match:
                    raise RuntimeError(f"saved query {name!r}: cannot read order_by item {item!r}")
                _, element, grain, _, descending = match.groups()
                items.append(
                    ("-" if descending == "True" else "")
                    + element
                    + (f"__{grain}" if grain else "")
                )
            return items
    raise RuntimeError(f"no saved query {name!r} in fixtures/saved_queries.yml")


def effective_order_by(query: dict[str, Any]) -> list[str]:
    """order_by of the query, else that of its saved query (what MetricFlow applies)."""
    if query.get("order_by"):
        return list(query["order_by"])
    if query.get("saved_query"):
        return saved_query_order_by(query["saved_query"])
    return []


def order_columns(order_by: list[str], columns: list[str]) -> list[int]:
    """Column positions of the order_by keys (for the tie check)."""
    positions = []
    for item in order_by:
        name = item.lstrip("-")
        if name not in columns:
            raise RuntimeError(f"order_by {item!r} is not an output column of {columns}")
        positions.append(columns.index(name))
    return positions


def record_one(engine: Any, connection: Any, query: dict[str, Any]) -> dict[str, Any]:
    result = engine.query(mf_request=mf_request(query))
    table = result.result_df
    columns = list(table.column_names)
    rows = normalize_rows(table.rows)
    order_by = effective_order_by(query)
    if order_by:
        keys = order_columns(order_by, columns)
        seen = [tuple(repr(row[i]) for i in keys) for row in rows]
        if len(set(seen)) != len(seen):
            raise RuntimeError("order_by leaves ties: make it total so the order is stable")
    else:
        rows = sort_rows(rows)
    record: dict[str, Any] = {
        "query": {key: query[key] for key in QUERY_KEYS if key in query},
        "ordered_by": order_by,
        "sql": result.sql,
        "columns": columns,
        "rows": rows,
    }
    if query.get("mf_wrong"):
        name = query["expected"]["hand_sql"]
        ordered = bool(order_by)
        hand: dict[str, list[list[Any]]] = {}
        for variant in ("right", "mf"):
            hand_columns, hand_rows = hand_expected.hand_result(connection, name, variant)
            if hand_columns != columns:
                raise RuntimeError(
                    f"hand SQL {name!r} columns {hand_columns} != MetricFlow's {columns}"
                )
            normalised = normalize_rows(hand_rows)
            hand[variant] = normalised if ordered else sort_rows(normalised)
        # The hand SQL with MetricFlow's defect put back must give MetricFlow's rows.
        if not rows_equal(hand["mf"], rows):
            raise RuntimeError(
                f"hand SQL {name!r} with the defect does not reproduce MetricFlow's rows"
            )
        if rows_equal(hand["right"], rows):
            raise RuntimeError(
                f"hand SQL {name!r}: MetricFlow's rows are right, the defect did not show"
            )
        record["defect"] = hand_expected.HAND[name]["defect"]
        record["hand_sql"] = " ".join(hand_expected.hand_sql(name).split())
        record["hand_rows"] = hand["right"]
    return record


def warehouse_facts(connection: Any) -> dict[str, Any]:
    counts = {
        table: connection.execute(f"SELECT COUNT(*) FROM main.{table}").fetchall()[0][0]
        for table in TABLES
    }
    first, last = connection.execute(
        "SELECT MIN(date_day), MAX(date_day) FROM main.time_spine"
    ).fetchall()[0]
    return {
        "command": (
            f"python -m tally.cli generate-demo --events {WAREHOUSE_EVENTS} --seed {WAREHOUSE_SEED} "
            "--out <work>/warehouse.duckdb"
        ),
        "events": WAREHOUSE_EVENTS,
        "seed": WAREHOUSE_SEED,
        "schema": "main",
        "row_counts": counts,
        "time_spine": [first.isoformat(), last.isoformat()],
    }


def dump(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Record MetricFlow's answers to the conformance queries."
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/conf"), help="scratch directory")
    parser.add_argument("--warehouse", type=Path, help="default: <work>/warehouse.duckdb")
    parser.add_argument("--rebuild-warehouse", action="store_true")
    parser.add_argument("--tally-python", type=Path, default=REPO / ".venv" / "bin" / "python")
    parser.add_argument("--queries", type=Path, default=CONFORMANCE / "queries.yml")
    parser.add_argument("--out", type=Path, default=CONFORMANCE / "expected")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="record only these queries")
    parser.add_argument("--keep-going", action="store_true", help="record the rest when one fails")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    warehouse = (args.warehouse or args.work / "warehouse.duckdb").resolve()
    ensure_warehouse(warehouse, args.tally_python, args.rebuild_warehouse)
    project = (args.work / "dbt_project").resolve()
    make_project.build(warehouse, project, [make_project.EXTRA_METRICS])
    make_project.dbt_parse(project)
    print(f"dbt project {project} parsed ({time.perf_counter() - started:.1f}s)", flush=True)

    queries = load_queries(args.queries)
    if args.only:
        missing = sorted(set(args.only) - {query["name"] for query in queries})
        if missing:
            raise SystemExit(f"unknown queries: {missing}")
        queries = [query for query in queries if query["name"] in args.only]

    # MetricFlow logs every query at INFO level; keep the console to our own lines.
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("DO_NOT_TRACK", "1")
    import duckdb
    from dbt_metricflow.cli.cli_configuration import CLIConfiguration

    config = CLIConfiguration()
    config.setup(dbt_profiles_path=project, dbt_project_path=project, configure_file_logging=False)
    engine = config.mf
    connection = duckdb.connect(str(warehouse), read_only=True)
    print(f"MetricFlow engine ready ({time.perf_counter() - started:.1f}s)", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    failures: dict[str, str] = {}
    query_started = time.perf_counter()
    for query in queries:
        t0 = time.perf_counter()
        try:
            record = record_one(engine, connection, query)
        except Exception as error:  # report every failing query
            failures[query["name"]] = f"{type(error).__name__}: {error}"
            print(f"FAIL {query['name']}: {failures[query['name']][:2000]}", flush=True)
            if not args.keep_going:
                break
            continue
        dump(args.out / f"{query['name']}.json", record)
        flag = "  (mf_wrong: hand_rows recorded)" if "hand_rows" in record else ""
        print(
            f"ok   {query['name']}: {len(record['rows'])} rows, {time.perf_counter() - t0:.2f}s{flag}",
            flush=True,
        )
    query_seconds = time.perf_counter() - query_started

    if not args.only and not failures:
        names = {query["name"] for query in queries}
        for path in args.out.glob("*.json"):
            if path.name != "_meta.json" and path.stem not in names:
                path.unlink()
                print(f"removed stale {path.name}")
        dump(
            args.out / "_meta.json",
            {
                "generator": "scripts/metricflow/record.py",
                "versions": {
                    "python": ".".join(map(str, sys.version_info[:3])),
                    **{package: metadata.version(package) for package in VERSIONED_PACKAGES},
                },
                "warehouse": warehouse_facts(connection),
                "dbt_project": {
                    "relation_prefix": f'"{make_project.CATALOG}"."{make_project.SCHEMA}"',
                    "extra_metrics": str(make_project.EXTRA_METRICS.relative_to(REPO)),
                },
                "normalisation": "tests/conformance/normalize.py (10 significant digits, ISO times)",
                "queries": len(queries),
                "mf_wrong": sorted(q["name"] for q in queries if q.get("mf_wrong")),
            },
        )
    print(
        f"{len(queries) - len(failures)} recorded, {len(failures)} failed; "
        f"queries {query_seconds:.1f}s, total {time.perf_counter() - started:.1f}s"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
